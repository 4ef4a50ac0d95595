"""Oversized request lines and headers against `partnercenter serve` (granian), over real
sockets: up to hyper's own limits they reach the application and get our JSON 414/431; past
them granian answers a bare status, as serving.py documents. The limits are the server's,
not the database's: one SQLite node is enough."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from partnercenter.serving import GRANIAN_HTTP1_BUFFER, MAX_REQUEST_TARGET
from tests.jobs.live import wait_for
from tests.live import KEK, committed_database
from tests.support.conftest import free_port

PATH = "/v1/partners?q="


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One `partnercenter serve` node (granian, one worker) on a free port."""
    tmp_path = tmp_path_factory.mktemp("served")
    with committed_database("sqlite", tmp_path) as url:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "PARTNERCENTER_DATA_DIR": str(tmp_path),
            "PARTNERCENTER_SECRET_KEY": "limits-secret-" + "s" * 40,
            "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
            "PARTNERCENTER_JOBS": "off",
        }
        log = tmp_path / "node.log"
        with log.open("wb") as out:
            node = subprocess.Popen(
                [
                    *(sys.executable, "-m", "partnercenter.cli.main", "serve"),
                    *("--port", str(port), "--workers", "1"),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the node and its server workers die together
            )
        try:
            assert wait_for(lambda: _up(f"http://127.0.0.1:{port}/readyz"), seconds=240), (
                log.read_text()[-3000:]
            )
            yield port
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)


def _exchange(port: int, target: str, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    """Send one raw HTTP/1.1 GET; the status code and the body (empty when none)."""
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):  # the server may answer before reading it all
            sock.sendall(head.encode("latin-1"))
        data = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    _headers, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body


def _target(length: int) -> str:
    return PATH + "a" * (length - len(PATH))


def _ours(body: bytes) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(body)
    return parsed


@pytest.mark.parametrize("length", [8 * 1024 + 2, 20_000, MAX_REQUEST_TARGET])
def test_a_long_address_up_to_hypers_limit_gets_our_json_414(served: int, length: int) -> None:
    status, body = _exchange(served, _target(length), [])
    assert status == 414
    assert _ours(body)["errorName"] == "uri_too_long"


def test_an_address_at_the_limit_of_the_apps_own_setting_is_served(served: int) -> None:
    # Path and query count, not the "?" between them: 8 KiB exactly.
    status, body = _exchange(served, _target(8 * 1024 + 1), [])
    assert status == 401  # reached the route: no token given
    assert _ours(body)["errorName"] == "unauthenticated"


@pytest.mark.parametrize("length", [MAX_REQUEST_TARGET + 1, 200_000])
def test_past_hypers_uri_limit_granian_answers_a_bare_414(served: int, length: int) -> None:
    status, body = _exchange(served, _target(length), [])
    assert (status, body) == (414, b"")


@pytest.mark.parametrize("size", [33 * 1024, 100_000, 300_000])
def test_large_headers_within_the_buffer_get_our_json_431(served: int, size: int) -> None:
    status, body = _exchange(served, "/v1/partners", [("Cookie", "c=" + "x" * size)])
    assert status == 431
    answer = _ours(body)
    assert answer["errorName"] == "request_header_fields_too_large"
    assert answer["data"] == [{"limitBytes": 32 * 1024}]


def test_headers_under_our_limit_reach_the_route(served: int) -> None:
    status, body = _exchange(served, "/v1/partners", [("Cookie", "c=" + "x" * 30_000)])
    assert status == 401 and _ours(body)["errorName"] == "unauthenticated"


def test_a_head_well_past_the_buffer_gets_granians_bare_431(served: int) -> None:
    # hyper compares the buffer with its limit between reads: a head up to about a third over
    # it may still arrive whole in one read and reach the app. Twice the buffer never does.
    status, body = _exchange(
        served, "/v1/partners", [("Cookie", "c=" + "x" * (2 * GRANIAN_HTTP1_BUFFER))]
    )
    assert (status, body) == (431, b"")


def test_a_hundred_header_fields_reach_the_app_and_more_get_a_bare_431(served: int) -> None:
    # Host, Accept and Connection are three of the fields.
    fields = [(f"X-Field-{i}", "v") for i in range(97)]
    status, body = _exchange(served, "/v1/partners", fields)
    assert status == 401 and _ours(body)["errorName"] == "unauthenticated"
    status, body = _exchange(served, "/v1/partners", [*fields, ("X-One-More", "v")])
    assert (status, body) == (431, b"")
