"""How ``partnercenter serve`` runs the application: which server, how many workers.

The default is granian (a Rust HTTP server) with one worker process per core. It was chosen
by measurement (``bench/checkout.py`` and ``bench/download.py`` run it beside uvicorn): it
offers the ASGI ``http.response.pathsend`` extension, so a download is sent by the server
from the file, not streamed in chunks through Python, and it costs less CPU per request.
uvicorn stays available (``--server uvicorn``).

Behind a reverse proxy, ``X-Forwarded-For`` / ``-Proto`` are honoured by the application itself,
from the addresses in ``PARTNERCENTER_TRUSTED_PROXIES`` only (``app.py``), under either server.

Oversized requests. The application answers, with our error body, 414 for a path and query
over ``PARTNERCENTER_MAX_URL_BYTES`` (8 KiB) and 431 for headers over
``PARTNERCENTER_MAX_HEADER_BYTES`` (32 KiB) (``edge.py``). Under granian, whose HTTP/1 parser is
hyper's, a request gets that far only within hyper's own limits, which answer with a bare
status line and no body (measured with granian 2.8 / hyper 1.x,
``tests/ops/test_served_limits.py``):

- a request target (path and query) of 65,535 bytes or more: 414. The ``http`` crate keeps
  URI offsets in 16 bits (``u16::MAX - 1``); no setting changes it;
- more than 100 header fields: 431 (hyper's fixed header array);
- a request head (request line and headers) larger than the HTTP/1 read buffer: 431 (a target
  that fills it counts too). hyper compares the buffer with its limit between reads, so a
  head up to about a third over it may still arrive whole and reach the application; twice
  the buffer never does. The buffer is :func:`http1_buffer_bytes`, at least granian's
  default of 408 KiB: heads of any size a client or proxy is likely to send reach the
  application and get our 414/431 (browsers and common proxies stop near 8 to 64 KiB).
"""

from __future__ import annotations

import os
from typing import Any, Literal

Server = Literal["granian", "uvicorn"]
SERVERS: tuple[Server, ...] = ("granian", "uvicorn")


def default_workers() -> int:
    """One worker process per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


# granian's default HTTP/1 read buffer (``granian.http.HTTP1Settings.max_buffer_size``).
GRANIAN_HTTP1_BUFFER = 8192 + 4096 * 100
# The longest request target hyper accepts (the ``http`` crate's URI length limit).
MAX_REQUEST_TARGET = 65_534


def http1_buffer_bytes(max_header_bytes: int) -> int:
    """granian's HTTP/1 read buffer, in bytes: room for the longest request target hyper takes
    plus twice our header limit (so headers over it reach the app and get our 431), and never
    less than granian's default. Each connection grows its buffer only as far as its request
    head needs."""
    return max(GRANIAN_HTTP1_BUFFER, MAX_REQUEST_TARGET + 2 * max_header_bytes + 8192)


def create_served_app() -> Any:
    """The application as the server runs it (factory)."""
    from partnercenter.app import create_app
    from partnercenter.config import Settings

    return create_app(Settings())


def run(*, server: Server, host: str, port: int, workers: int) -> None:
    """Serve until stopped (blocks). ``workers`` processes share the listening socket."""
    target = "partnercenter.serving:create_served_app"
    if server == "granian":
        from granian.constants import Interfaces
        from granian.http import HTTP1Settings
        from granian.log import LogLevels
        from granian.server import Server as Granian

        from partnercenter.config import Settings

        buffer = http1_buffer_bytes(Settings().max_header_bytes)
        Granian(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            factory=True,
            log_level=LogLevels.warning,
            http1_settings=HTTP1Settings(max_buffer_size=buffer),
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        target,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # The app reads X-Forwarded-For itself, from PARTNERCENTER_TRUSTED_PROXIES only.
        proxy_headers=False,
    )
