"""Throughput and server CPU of a large download through the application, beside nginx.

    .venv/bin/python -m bench.download [--size-mib 256] [--runs 3] [--keep]

One SQLite data folder, the demo catalog with one large file (``--size-mib``, random bytes)
as Windows Server 2022 Standard, en-US, x64, bought once by a partner's Admin agent. Every
application figure is the real download route, ``GET /v1/customers/{id}/software/{item}/
download``: bearer token, roles, the purchase checked, the audit record committed, then the
file. Modes, measured in turn in every round (``--runs`` rounds, interleaved):

1. **nginx**: Debian's nginx (``apt-get install nginx-light``) serving the store's folder
   with ``sendfile on``: the baseline of every ratio (same round);
2. **default serve**: ``partnercenter serve`` as it starts by default (granian, one worker
   per core): the file is handed to the server (ASGI ``http.response.pathsend``);
3. **uvicorn**: ``partnercenter serve --server uvicorn --workers 1``: streamed from Python;
4. **nginx -> app, X-Accel-Redirect**: nginx in front of the default server with
   ``PARTNERCENTER_DOWNLOAD_OFFLOAD=x-accel-redirect``; nginx sends the file from an internal
   location once the application said yes;
5. **default serve, Range**: the same route resuming at the middle of the file (206), which
   the application streams itself (pathsend sends whole files);
6. **nginx -> app, X-Accel-Redirect, Range**: the same Range request through mode 4: nginx
   answers the 206 from the file once the application said yes;
7. **presigned redirect to S3**: a second default server whose store is S3 (moto's server in
   this process, ``PARTNERCENTER_DOWNLOAD_REDIRECT_SECONDS=300``): the route answers a
   redirect to a presigned URL after the same checks and audit, and the client fetches the
   bytes from the store. The server CPU counted is the application's only (the store's is
   the store's, here a Python test double far slower than S3, so its MiB/s says nothing).

The client is the same for all: one GET over a raw socket read into a reusable 4 MiB
buffer. The SHA-256 of each mode's first answer is checked against ``X-Checksum-SHA256``
(outside the timing), and HEAD is checked to answer the length. Server CPU is the user +
system time of the server's whole process group (nginx and the application in mode 4), per
GiB sent. Prints min / median / max of each ratio to nginx and the load average; nothing is
asserted. Every mode is measured beside nginx in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import (
    add_reseller,
    bearer,
    free_port,
    group_cpu_seconds,
    load_average,
    spread,
    stop_group,
)

KEY = "bench/payload.bin"
ROUTE = "/bench/files/"


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, *, sha256: bool = False
) -> tuple[int, dict[str, str], int, float, str | None]:
    """GET over a raw socket; returns status, headers, body bytes, seconds, body SHA-256."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    buffer = bytearray(4 * 2**20)
    view = memoryview(buffer)
    digest = hashlib.sha256() if sha256 else None
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed before the headers")
            head += chunk
        raw_head, _, first_body = head.partition(b"\r\n\r\n")
        status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        response_headers = {
            k.strip().lower(): v.strip()
            for k, v in (line.split(":", 1) for line in header_lines if ":" in line)
        }
        expected = int(response_headers["content-length"])
        received = len(first_body)
        if digest:
            digest.update(first_body)
        while received < expected:
            n = sock.recv_into(view, min(len(buffer), expected - received))
            if n == 0:
                raise RuntimeError(f"connection closed after {received} of {expected} bytes")
            if digest:
                digest.update(view[:n])
            received += n
    elapsed = time.perf_counter() - started
    return status, response_headers, received, elapsed, digest.hexdigest() if digest else None


def fetch(
    port: int, path: str, headers: dict[str, str], *, sha256: bool = False
) -> tuple[int, dict[str, str], int, float, str | None]:
    """``http_get``, following one redirect to another loopback server (the S3 store)."""
    started = time.perf_counter()
    status, got, n, seconds, digest = http_get(port, path, headers, sha256=sha256)
    if status in (302, 303, 307):
        target = urlsplit(got["location"])
        status, got, n, _, digest = http_get(
            target.port or 80, f"{target.path}?{target.query}", sha256=sha256
        )
        seconds = time.perf_counter() - started
    return status, got, n, seconds, digest


@contextlib.contextmanager
def running(
    command: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 20.0
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        wait_for_port(port, timeout)
        yield process
    finally:
        stop_group(process)
        if process.returncode not in (0, -signal.SIGTERM, 143) and process.stderr:
            sys.stderr.write(process.stderr.read().decode(errors="replace")[-2000:])
        if process.stderr:
            process.stderr.close()


def nginx_config(work: Path, name: str, port: int, locations: str) -> list[str]:
    """An nginx command line for ``work/<name>.conf``: one server on ``port``, with ``locations``.

    One worker, no master, sendfile on, its pid, error log and temporary folders in ``work``.
    """
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = work / f"{name}.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {work}/{name}.pid;
            error_log {work}/{name}-error.log warn;
            events {{ worker_connections 64; }}
            http {{
                access_log off;
                sendfile on;
                tcp_nopush on;
                client_body_temp_path {work}/body;
                proxy_temp_path {work}/proxy;
                fastcgi_temp_path {work}/fastcgi;
                uwsgi_temp_path {work}/uwsgi;
                scgi_temp_path {work}/scgi;
                server {{
                    listen 127.0.0.1:{port};
            {{locations}}
                }}
            }}
            """
        ).replace("{locations}", textwrap.indent(textwrap.dedent(locations).strip(), " " * 8))
    )
    return [nginx, "-p", str(work), "-c", str(conf)]


def nginx_command(root: Path, work: Path, port: int) -> list[str] | None:
    """nginx serving the folder ``root`` as it is; ``None`` when nginx is not installed."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return None
    return nginx_config(work, "nginx", port, f"location / {{ root {root}; }}")


FILE = {"version": "2022", "language": "en-US", "bitness": "x64"}


def proxy_command(work: Path, port: int, app_port: int, storage_root: Path) -> list[str]:
    """nginx in front of the application, serving X-Accel-Redirect from the store."""
    return nginx_config(
        work,
        "proxy",
        port,
        f"""
        location /_stored/ {{ internal; alias {storage_root}/; }}
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
        """,
    )


def seed(data_dir: Path, big: Path, storage_url: str | None = None) -> str:
    """Catalog, the large file, a partner with an agent and a customer; returns the customer.

    ``storage_url``: where the file is stored (default: the data folder's own store).
    """
    from datetime import UTC, datetime

    from partnercenter import migrate
    from partnercenter.catalog import demo as catalog_demo
    from partnercenter.catalog import services as catalog
    from partnercenter.config import Settings
    from partnercenter.db import make_engine, make_session_factory

    settings = Settings(data_dir=data_dir, storage_url=storage_url)
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        catalog_demo.load(session, now=now, settings=settings)
        with big.open("rb") as f:
            catalog.upload_artifact(
                session,
                settings=settings,
                product_id="DG7GMGF0D7FV",
                sku_id="0001",
                version="2022",
                language="en-US",
                bitness="x64",
                file_name="en-us_windows_server_2022_0001_x64.iso",
                fileobj=f,
                now=now,
                actor=None,
            )
        customer_id = str(add_reseller(session, now=now)["customer"])
        session.commit()
    engine.dispose()
    return customer_id


def buy(port: int, customer: str) -> tuple[str, dict[str, str]]:
    """Token, a purchase of the software over the API; returns the download path and auth."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
        auth = bearer(c)
        cart = c.post(
            f"/v1/customers/{customer}/carts",
            json={"lineItems": [{"catalogItemId": "DG7GMGF0D7FV:0001:USD-PERP-OT", "quantity": 1}]},
            headers=auth,
        )
        cart.raise_for_status()
        done = c.post(f"/v1/customers/{customer}/carts/{cart.json()['id']}/checkout", headers=auth)
        done.raise_for_status()
        item = c.get(f"/v1/customers/{customer}/software", headers=auth).json()["items"][0]["id"]
    query = "&".join(f"{k}={v}" for k, v in FILE.items())
    return f"/v1/customers/{customer}/software/{item}/download?{query}", auth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the store's request log

    work = Path(tempfile.mkdtemp(prefix="pc-bench-download-"))
    stack_outer = contextlib.ExitStack()
    try:
        data_dir = work / "data"
        data_dir.mkdir()
        size = args.size_mib * 2**20
        print(f"writing a {args.size_mib} MiB file of random bytes ...", file=sys.stderr)
        big = work / "source.bin"
        with big.open("wb") as f:
            block = os.urandom(2**20)
            for i in range(args.size_mib):
                f.write(hashlib.sha256(block + i.to_bytes(4, "big")).digest() * 32768)
        customer = seed(data_dir, big)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack_outer.callback(moto.stop)
        moto_host, moto_port = moto.get_host_and_port()
        s3_vars = {
            "PARTNERCENTER_S3_ENDPOINT_URL": f"http://{moto_host}:{moto_port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        os.environ.update(s3_vars)
        import boto3

        boto3.client("s3", endpoint_url=s3_vars["PARTNERCENTER_S3_ENDPOINT_URL"]).create_bucket(
            Bucket="bench"
        )
        s3_data = work / "s3-data"
        s3_data.mkdir()
        s3_customer = seed(s3_data, big, storage_url="s3://bench/files")
        big.unlink()
        storage_root = (data_dir / "storage").resolve()
        stored = next(
            p for p in storage_root.rglob("*") if p.is_file() and p.stat().st_size == size
        )
        static_path = "/" + str(stored.relative_to(storage_root))

        env = {
            **os.environ,
            "PARTNERCENTER_DATA_DIR": str(data_dir),
            "PARTNERCENTER_LOG_JSON": "false",
            # Background jobs off: their polling would be counted as the servers' CPU.
            "PARTNERCENTER_JOBS": "off",
        }
        serve = [sys.executable, "-m", "partnercenter.cli.main", "serve", "--port"]
        ports = {name: free_port() for name in ("nginx", "granian", "uvicorn", "offload", "proxy")}
        nginx = nginx_command(storage_root, work, ports["nginx"])
        if nginx is None:
            sys.exit("nginx is not installed: apt-get install nginx-light")
        offload_env = {**env, "PARTNERCENTER_DOWNLOAD_OFFLOAD": "x-accel-redirect"}
        s3_env = {
            **env,
            **s3_vars,
            "PARTNERCENTER_DATA_DIR": str(s3_data),
            "PARTNERCENTER_STORAGE_URL": "s3://bench/files",
            "PARTNERCENTER_DOWNLOAD_REDIRECT_SECONDS": "300",
        }
        with contextlib.ExitStack() as stack:
            procs = {
                "nginx": stack.enter_context(running(nginx, ports["nginx"])),
                "granian": stack.enter_context(
                    running([*serve, str(ports["granian"])], ports["granian"], env, 60)
                ),
                "uvicorn": stack.enter_context(
                    running(
                        [*serve, str(ports["uvicorn"]), "--server", "uvicorn", "--workers", "1"],
                        ports["uvicorn"],
                        env,
                        60,
                    )
                ),
                "offload": stack.enter_context(
                    running([*serve, str(ports["offload"])], ports["offload"], offload_env, 60)
                ),
            }
            procs["proxy"] = stack.enter_context(
                running(
                    proxy_command(work, ports["proxy"], ports["offload"], storage_root),
                    ports["proxy"],
                )
            )
            ports["s3app"] = free_port()
            procs["s3app"] = stack.enter_context(
                running([*serve, str(ports["s3app"])], ports["s3app"], s3_env, 60)
            )
            path, auth = buy(ports["granian"], customer)
            s3_path, s3_auth = buy(ports["s3app"], s3_customer)
            modes = {
                "nginx (sendfile), no checks": (["nginx"], ports["nginx"], static_path, {}),
                "default serve (granian, pathsend)": (["granian"], ports["granian"], path, auth),
                "uvicorn, 1 worker (streamed)": (["uvicorn"], ports["uvicorn"], path, auth),
                "nginx -> default serve, X-Accel-Redirect": (
                    ["proxy", "offload"],
                    ports["proxy"],
                    path,
                    auth,
                ),
                "default serve, Range from the middle (206)": (
                    ["granian"],
                    ports["granian"],
                    path,
                    {**auth, "Range": f"bytes={size // 2}-"},
                ),
                "nginx -> default serve, X-Accel-Redirect, Range (206)": (
                    ["proxy", "offload"],
                    ports["proxy"],
                    path,
                    {**auth, "Range": f"bytes={size // 2}-"},
                ),
                "default serve, presigned redirect to S3": (
                    ["s3app"],
                    ports["s3app"],
                    s3_path,
                    s3_auth,
                ),
            }
            for name, (_, port, url, headers) in modes.items():
                status, got, n, _, digest = fetch(port, url, headers, sha256=True)
                expected = size - size // 2 if "Range" in headers else size
                assert status in (200, 206) and n == expected, (name, status, n)
                if "Range" not in headers and "x-checksum-sha256" in got:
                    assert digest == got["x-checksum-sha256"], name
            import httpx

            head = httpx.head(f"http://127.0.0.1:{ports['granian']}{path}", headers=auth)
            head_proxy = httpx.head(f"http://127.0.0.1:{ports['proxy']}{path}", headers=auth)
            loads = [load_average()]
            rates: dict[str, list[float]] = {name: [] for name in modes}
            cpu: dict[str, list[float]] = {name: [] for name in modes}
            for _ in range(args.runs):
                for name, (owners, port, url, headers) in modes.items():
                    before = sum(group_cpu_seconds(procs[o].pid) for o in owners)
                    _, _, n, seconds, _ = fetch(port, url, headers)
                    used = sum(group_cpu_seconds(procs[o].pid) for o in owners) - before
                    rates[name].append(n / seconds / 2**20)
                    cpu[name].append(used / (n / 2**30))
                loads.append(load_average())
        base = "nginx (sendfile), no checks"
        print(
            f"\n{args.size_mib} MiB, loopback, page-cached, {args.runs} interleaved rounds; "
            f"load average (1/5/15 min) before and after each round: {'; '.join(loads)}\n"
        )
        print(
            "| mode | MiB/s min / median / max | share of nginx's MiB/s (same round) "
            "| server CPU s/GiB (median) | CPU / nginx's (same round) |"
        )
        print("|---|---|---|---:|---|")
        for name in modes:
            shares = [r / b for r, b in zip(rates[name], rates[base], strict=True)]
            cpus = [c / max(b, 1e-3) for c, b in zip(cpu[name], cpu[base], strict=True)]
            print(
                f"| {name} | {spread(rates[name])} | {spread(shares)} | "
                f"{statistics.median(cpu[name]):.2f} | {spread(cpus)} |"
            )
        print(
            f"\nHEAD on the download route: default serve {head.status_code}, "
            f"Content-Length {head.headers.get('content-length')}; through nginx (X-Accel) "
            f"{head_proxy.status_code}, Content-Length {head_proxy.headers.get('content-length')}"
        )
    finally:
        stack_outer.close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
