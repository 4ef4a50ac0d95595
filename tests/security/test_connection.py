"""Over a real socket: hostile requests are answered and the keep-alive connection survives."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from partnercenter.clock import FrozenClock
from tests.conftest import START
from tests.live import committed_database, live_server


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _post(media: str, body: bytes, path: str = "/v1/auth/token") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {media}\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_hostile_requests_get_4xx_and_the_connection_stays_open(tmp_path: Path) -> None:
    with (
        committed_database("sqlite", tmp_path) as url,
        live_server(url, tmp_path, FrozenClock(START)) as live,
    ):
        address = urlsplit(live.url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            hostile = [
                b"GET /v1/customers/a%00b HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n",
                b"GET /v1/customers?q=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /v1/servicerequests?minAgeDays=1000000000 HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer pc_not-a-real-token\r\n\r\n",
                b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 7\r\n\r\nhello!!",
                _post("application/x-www-form-urlencoded", b"grant_type=password&username=a%00"),
                _post("application/json", b'{"name": "\\u0000"}', "/v1/users/me/tokens"),
                _post("application/json", b'{"a": ' * 5000 + b"1" + b"}" * 5000),
                b"OPTIONS /v1/partners HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
            for request in hostile:
                answer = _exchange(sock, request)
                status = int(answer.split(b" ", 2)[1])
                assert 200 <= status < 500, (request, answer[:300])
            healthy = _exchange(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert healthy.startswith(b"HTTP/1.1 200"), healthy[:200]


def test_a_control_character_in_a_header_is_refused(tmp_path: Path) -> None:
    with (
        committed_database("sqlite", tmp_path) as url,
        live_server(url, tmp_path, FrozenClock(START)) as live,
    ):
        address = urlsplit(live.url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            answer = _exchange(
                sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Display-Name: a\x01b\r\n\r\n"
            )
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
