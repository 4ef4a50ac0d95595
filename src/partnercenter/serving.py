"""How ``partnercenter serve`` runs the application: which server, how many workers.

The default is granian (a Rust HTTP server) with one worker process per core. It was chosen
by measurement (``bench/checkout.py`` and ``bench/download.py`` run it beside uvicorn): it
offers the ASGI ``http.response.pathsend`` extension, so a download is sent by the server
from the file, not streamed in chunks through Python, and it costs less CPU per request.
uvicorn stays available (``--server uvicorn``).

Behind a reverse proxy in production, ``X-Forwarded-For`` / ``-Proto`` are honoured from the
addresses in ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1), as uvicorn does with its
``proxy_headers``; granian has no such option, so the application is wrapped here.
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
    """The application as the server runs it (factory): proxy headers in production."""
    from partnercenter.app import create_app
    from partnercenter.config import Settings

    settings = Settings()
    app: Any = create_app(settings)
    if settings.env == "production":
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        app = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
    return app


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

    uvicorn.run(target, factory=True, host=host, port=port, workers=workers, log_level="warning")
