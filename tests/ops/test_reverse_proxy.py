"""docs/ops/nginx.conf for real: Debian's nginx in front of two `partnercenter serve` nodes
on one database; requests and signed-in API calls reach both, and go on when one node dies."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from partnercenter.db import make_engine
from tests.jobs.live import token, wait_for
from tests.live import committed_database
from tests.support.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[str, list[int], list[subprocess.Popen[bytes]]]]:
    with committed_database("sqlite", tmp_path) as url:
        from tests.jobs.live import seed

        engine = make_engine(url)
        seed(engine)
        engine.dispose()
        ports = [free_port(), free_port()]
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "PARTNERCENTER_DATA_DIR": str(tmp_path),
            "PARTNERCENTER_SECRET_KEY": "proxy-secret-" + "s" * 40,
            "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
            "PARTNERCENTER_JOBS": "off",
        }
        nodes = []
        for p in ports:
            with (tmp_path / f"node-{p}.log").open("wb") as log:
                nodes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "partnercenter.cli.main",
                            "serve",
                            "--port",
                            str(p),
                            "--workers",
                            "1",
                        ],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # the node and its server workers die together
                    )
                )
        try:
            for p in ports:
                assert wait_for(lambda p=p: _up(f"http://127.0.0.1:{p}/readyz"), seconds=240), (
                    tmp_path / f"node-{p}.log"
                ).read_text()[-3000:]
            yield url, ports, nodes
        finally:
            for n in nodes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(n.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    n.wait(timeout=15)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(n.pid, signal.SIGKILL)


def _nginx_config(tmp_path: Path, ports: list[int], listen: int) -> Path:
    site = (ROOT / "docs/ops/nginx.conf").read_text()
    site = site.replace("127.0.0.1:8001", f"127.0.0.1:{ports[0]}")
    site = site.replace("127.0.0.1:8002", f"127.0.0.1:{ports[1]}")
    site = re.sub(r"listen 8080;", f"listen 127.0.0.1:{listen};", site)
    site = site.replace("/var/log/nginx/partnercenter.log", str(tmp_path / "access.log"))
    (tmp_path / "site.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n"
        f"  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
        f"  fastcgi_temp_path {tmp_path}/fcgi;\n  uwsgi_temp_path {tmp_path}/uwsgi;\n"
        f"  scgi_temp_path {tmp_path}/scgi;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    return main


@pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is not installed (apt-get install nginx)"
)
def test_nginx_spreads_requests_over_two_nodes_and_survives_one_dying(
    tmp_path: Path, two_nodes: tuple[str, list[int], list[subprocess.Popen[bytes]]]
) -> None:
    _url, ports, nodes = two_nodes
    listen = free_port()
    config = _nginx_config(tmp_path, ports, listen)
    proxy = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{listen}"
    try:
        assert wait_for(lambda: _up(f"{base}/healthz"), seconds=20), proxy.stderr
        with httpx.Client(base_url=base, timeout=30) as client:
            headers = token(client)  # signed in through one node ...
            for _ in range(12):  # ... and used on both
                assert client.get("/v1/servicerequests", headers=headers).status_code == 200
            assert client.get("/metrics").status_code == 200  # from 127.0.0.1 only
            log = (tmp_path / "access.log").read_text()
            for p in ports:
                assert f"upstream=127.0.0.1:{p}" in log

            os.killpg(nodes[0].pid, signal.SIGKILL)  # the whole node, server workers too
            nodes[0].wait(timeout=10)
            assert not _up(f"http://127.0.0.1:{ports[0]}/healthz")
            for _ in range(8):
                assert client.get("/v1/servicerequests", headers=headers).status_code == 200
    finally:
        proxy.send_signal(signal.SIGQUIT)
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
