"""What the benches share: figures, timing, ports, processes, a throwaway database, a server.

Every bench imports from here. Times are milliseconds unless a name says otherwise; the load
average is the kernel's 1, 5 and 15 minute figures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from partnercenter import migrate
from partnercenter.catalog import demo as catalog_demo
from partnercenter.catalog import services as catalog
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity import services as identity
from partnercenter.permissions import Role, TenantKind

ADMIN_URL = os.environ.get(
    "PARTNERCENTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AGENT_EMAIL = "agent@bench.example"
PASSWORD = "bench-password-123"
SECRET = "bench-secret-" + "x" * 40
KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


def spread(values: list[float], fmt: str = "{:.2f}", sep: str = " / ") -> str:
    """``min / median / max`` of ``values`` (any unit), each written with ``fmt``."""
    return sep.join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def load_average(fmt: str = "{:.1f}", sep: str = " / ") -> str:
    """The load average over 1 / 5 / 15 minutes (runnable processes), each written with ``fmt``."""
    return sep.join(fmt.format(x) for x in os.getloadavg())


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0 to 100) of ``values``, nearest rank; same unit as the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(n: int, call: Callable[[], object], *, warmup: int = 0) -> list[float]:
    """Milliseconds of each of ``n`` calls, one after the other, after ``warmup`` untimed."""
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_cpu_seconds(pgid: int) -> float:
    """Seconds of user + system CPU time of every live process in the process group ``pgid``.

    Read from ``/proc/<pid>/stat`` (Linux only); a process that ended is no longer counted.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group ``proc`` leads; SIGKILL it when it has not gone in 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def database_url(name: str) -> str:
    """The URL of the database ``name`` on the server of ``ADMIN_URL``."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def scratch_database(prefix: str = "pc_bench", *, keep: bool = False) -> Iterator[str]:
    """A new, empty PostgreSQL database named ``<prefix>_<random>``; yields its URL.

    Dropped when the block ends (connections forced off), unless ``keep``.
    """
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield database_url(name)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bearer(client: httpx.Client) -> dict[str, str]:
    """Sign the bench's Admin agent in over ``POST /v1/auth/token``; the Authorization header."""
    response = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": AGENT_EMAIL, "password": PASSWORD},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def seed(engine: Engine, settings: Settings, keys: int) -> dict[str, Any]:
    """Demo catalog, ``keys`` extra product keys, a partner with an Admin agent, a customer.

    Returns the ids: ``partner``, ``customer`` and ``user`` (UUIDs).
    """
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        catalog_demo.load(session, now=now, settings=settings)
        rows = "\n".join(f"2022,BENCH-{i:06d}-{uuid.uuid4().hex[:10].upper()}" for i in range(keys))
        catalog.import_keys(
            session,
            settings=settings,
            product_id="DG7GMGF0D7FV",
            sku_id="0001",
            csv_text="version,key\n" + rows,
            now=now,
            actor=None,
        )
        ids = add_reseller(session, now=now)
        session.commit()
        return ids


def add_reseller(session: Session, *, now: datetime) -> dict[str, Any]:
    """A partner with an Admin agent (``AGENT_EMAIL``, ``PASSWORD``) and one customer.

    Added to ``session``, not committed. Returns the ids: ``partner``, ``customer``, ``user``.
    """
    partner = identity.create_tenant(
        session, kind=TenantKind.PARTNER, name="Bench Reseller", country="US", now=now
    )
    session.flush()  # the customer and the user point at the partner
    customer = identity.create_tenant(
        session,
        kind=TenantKind.CUSTOMER,
        name="Bench Customer",
        country="US",
        domain="bench.onmicrosoft.com",
        parent_id=partner.id,
        now=now,
    )
    user = identity.create_user(
        session,
        tenant=partner,
        email=AGENT_EMAIL,
        display_name="Agent",
        password=PASSWORD,
        roles=[Role.ADMIN_AGENT.value],
        now=now,
    )
    session.flush()  # the user's id is given at the flush (a column default)
    return {"partner": partner.id, "customer": customer.id, "user": user.id}


@dataclass
class Seeded:
    """A throwaway PostgreSQL database at head, seeded by :func:`seed`, and its data folder."""

    data_dir: Path
    url: str
    engine: Engine
    settings: Settings
    ids: dict[str, Any]


@contextlib.contextmanager
def seeded_database(keys: int, **engine_options: Any) -> Iterator[Seeded]:
    """:func:`scratch_database` upgraded to head and seeded with ``keys`` extra product keys.

    ``engine_options`` go to ``make_engine`` (e.g. ``pool_size``); the engine is disposed and
    the database and the temporary data folder removed when the block ends.
    """
    with tempfile.TemporaryDirectory() as tmp, scratch_database() as url:
        engine = make_engine(url, **engine_options)
        migrate.upgrade(engine)
        settings = Settings(
            data_dir=Path(tmp), database_url=url, secret_key=SECRET, key_encryption_key=KEK
        )
        ids = seed(engine, settings, keys=keys)
        try:
            yield Seeded(Path(tmp), url, engine, settings, ids)
        finally:
            engine.dispose()


SERVER_PIDS: dict[str, int] = {}  # base URL -> the server's process group


@contextlib.contextmanager
def serve(
    url: str,
    data_dir: Path,
    extra: list[str],
    *,
    command: Callable[[int], list[str]] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``partnercenter serve`` with ``extra`` options, on a free port, until the block ends.

    ``command`` (the port → the argument list) serves something else instead, and ``env``
    adds to its environment. Yields the base URL; its process group is
    ``SERVER_PIDS[base]``. Raises ``RuntimeError`` (after printing the end of the server's
    log) when it does not answer ``/healthz`` with 200 in 60 s.
    """
    port = free_port()
    # The server's errors go to a file in the data folder, printed if it fails to start.
    log = (data_dir / f"serve-{port}.log").open("wb")
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "PARTNERCENTER_DATA_DIR": str(data_dir),
        "PARTNERCENTER_SECRET_KEY": SECRET,
        "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
        "PARTNERCENTER_LOG_JSON": "false",
        # Background jobs off: their clean-up and month close would act on the bench's rows.
        "PARTNERCENTER_JOBS": "off",
        **(env or {}),
    }
    argv = [sys.executable, "-m", "partnercenter.cli.main", "serve", "--port", str(port), *extra]
    proc = subprocess.Popen(
        command(port) if command else argv,
        env=environment, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
    )  # fmt: skip
    SERVER_PIDS[f"http://127.0.0.1:{port}"] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the app did not start")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        log.flush()
        sys.stderr.write((data_dir / f"serve-{port}.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        stop_group(proc)
        log.close()
