"""What the edge checks cost per request: the application with EdgeGuard vs the same without.

    .venv/bin/python bench/edge.py            # 5 interleaved runs of 300 requests per case
    .venv/bin/python bench/edge.py --runs 9 --requests 500

Builds the application twice on one throwaway SQLite database (a partner, a Global admin and
a bearer token), once as served and once with EdgeGuard taken out of its middleware, and
times each case through TestClient, alternating the two apps run by run so that load on the
machine falls on both alike. Cases: GET /healthz (routing and headers only), an authenticated
GET /v1/users/me, an authenticated POST of a small JSON body, and a POST of a 1 MiB JSON
body (the edge buffers and scans it; without the edge, the framework parses it alone).
Prints min/median/max microseconds per request for both, their ratio (guarded / bare), and
the load average before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/edge.py``: the project folder, not bench/, belongs on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from bench.common import KEK, load_average
from partnercenter import migrate
from partnercenter.app import create_app
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.edge import EdgeGuard
from partnercenter.identity import services as identity
from partnercenter.permissions import Role, TenantKind

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _setup(folder: Path) -> tuple[Settings, Any, str]:
    url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        partner = identity.create_tenant(
            session, kind=TenantKind.PARTNER, name="Bench", country="US", now=NOW
        )
        session.flush()
        user = identity.create_user(
            session,
            tenant=partner,
            email="bench@bench.example",
            display_name="Bench",
            password="steady-lantern-41",
            roles=[Role.GLOBAL_ADMIN.value],
            now=NOW,
        )
        secret, _ = identity.issue_token(session, user=user, now=NOW, lifetime=timedelta(days=1))
        session.commit()
    settings = Settings(
        data_dir=folder,
        database_url=url,
        secret_key="b" * 48,
        key_encryption_key=KEK,
        log_json=True,
    )
    return settings, sessions, secret


def _client(settings: Settings, sessions: Any, guarded: bool) -> TestClient:
    app = create_app(settings, session_factory=sessions, clock=FrozenClock(NOW))
    if not guarded:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not EdgeGuard]
    return TestClient(app)


def _cases(secret: str) -> dict[str, Callable[[TestClient], Any]]:
    auth = {"Authorization": f"Bearer {secret}"}
    small = json.dumps({"name": "bench token"})
    big = json.dumps({"name": "bench token", "padding": "x" * (1024 * 1024 - 40)})
    json_auth = {**auth, "Content-Type": "application/json"}
    return {
        "GET /healthz": lambda c: c.get("/healthz"),
        "GET /v1/users/me": lambda c: c.get("/v1/users/me", headers=auth),
        "POST small JSON (400)": lambda c: c.post(
            "/v1/users/me/tokens", content=small.replace("name", "nome"), headers=json_auth
        ),
        "POST 1 MiB JSON (400)": lambda c: c.post(
            "/v1/users/me/tokens", content=big, headers=json_auth
        ),
    }


def _time(client: TestClient, case: Callable[[TestClient], Any], n: int) -> float:
    case(client)  # warm
    started = time.perf_counter()
    for _ in range(n):
        case(client)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        settings, sessions, secret = _setup(Path(tmp))
        clients = {g: _client(settings, sessions, g) for g in (True, False)}
        results: dict[tuple[str, bool], list[float]] = {}
        for name, case in _cases(secret).items():
            n = max(20, args.requests // (20 if "MiB" in name else 1))
            for _ in range(args.runs):
                for guarded in (True, False):  # interleaved
                    results.setdefault((name, guarded), []).append(_time(clients[guarded], case, n))
        for c in clients.values():
            c.close()
    print(f"load average before {load_before}, after {load_average()}")
    print(f"{'case':28} {'guarded µs min/med/max':>28} {'bare µs min/med/max':>28} ratio")
    for name in _cases("x"):
        g, b = results[(name, True)], results[(name, False)]

        def fmt(v: list[float]) -> str:
            return f"{min(v):8.0f}/{statistics.median(v):6.0f}/{max(v):6.0f}"

        ratio = statistics.median(g) / statistics.median(b)
        print(f"{name:28} {fmt(g):>28} {fmt(b):>28} {ratio:5.2f}")


if __name__ == "__main__":
    main()
