"""How ``partnercenter serve`` runs the application: which server, how many workers.

The default is granian (a Rust HTTP server) with one worker process per core. It was chosen
by measurement (``bench/checkout.py`` and ``bench/download.py`` run it beside uvicorn): it
offers the ASGI ``http.response.pathsend`` extension, so a download is sent by the server
from the file, not streamed in chunks through Python, and it costs less CPU per request.
uvicorn stays available (``--server uvicorn``).

Behind a reverse proxy, ``X-Forwarded-For`` / ``-Proto`` are honoured by the application itself,
from the addresses in ``PARTNERCENTER_TRUSTED_PROXIES`` only (``app.py``), under either server.
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
        from granian.log import LogLevels
        from granian.server import Server as Granian

        Granian(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            factory=True,
            log_level=LogLevels.warning,
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
