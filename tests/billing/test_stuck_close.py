"""A month close killed midway: reported by `billing verify` and `/readyz`, finished again.

The close is killed for real: a child process starts the close (committing ``closing``),
issues every invoice inside the close's transaction, says so, and is killed with SIGKILL
before it commits. The month is left ``closing`` with no invoice; verify fails naming it,
``/readyz`` answers ``degraded`` with the reason; ``billing close`` again issues the month
once and both are clean again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from partnercenter.app import create_app
from partnercenter.billing import services as billing
from partnercenter.billing.models import BillingPeriod, Invoice, PeriodState
from partnercenter.cli import main as cli_main
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from tests.billing.conftest import two_partners_bought_in_november
from tests.live import committed_database

DEC_1 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
LATER = DEC_1 + timedelta(hours=1)
KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="

# The close as `billing close` runs it, stopped for good before its second commit.
CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from sqlalchemy import func, select
    from partnercenter.billing import services
    from partnercenter.billing.models import Invoice
    from partnercenter.db import make_engine, make_session_factory

    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    with make_session_factory(make_engine(sys.argv[1]))() as session:
        services.start_close(session, month="2026-11", now=now)
        session.commit()
        services.close_period(session, month="2026-11", now=now)
        session.flush()
        issued = session.execute(select(func.count()).select_from(Invoice)).scalar_one()
        print(f"issued {issued}", flush=True)
        time.sleep(120)
        session.commit()
    """
)


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A committed database of the backend with November's charges of two partners."""
    with committed_database(backend, tmp_path, "billing.db") as url:
        two_partners_bought_in_november(url)
        yield url


def _kill_mid_close(url: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("issued 4"), line  # every invoice written, none committed
    return child


def _period(url: str) -> tuple[PeriodState | None, int]:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        state = session.execute(
            select(BillingPeriod.state).where(BillingPeriod.month == "2026-11")
        ).scalar_one_or_none()
        invoices = session.execute(select(func.count()).select_from(Invoice)).scalar_one()
    engine.dispose()
    return state, invoices


def _readyz(url: str, tmp_path: Path, now: datetime) -> dict[str, object]:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 48, key_encryption_key=KEK)
    engine = make_engine(url)
    app = create_app(settings, session_factory=make_session_factory(engine), clock=FrozenClock(now))
    with TestClient(app) as client:
        answer = client.get("/readyz")
    engine.dispose()
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


def test_a_close_killed_midway_is_reported_and_finished_by_closing_again(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    env = {"DATABASE_URL": database, "PARTNERCENTER_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    child = _kill_mid_close(database)
    if backend == "postgresql":
        # While the close runs it holds the month's row: in progress, not stuck.
        monkeypatch.setattr(cli_main, "_now", lambda: LATER)
        running = runner.invoke(cli_main.app, ["billing", "verify"], env=env)
        assert running.exit_code == 0, running.output
        assert _readyz(database, tmp_path, LATER)["status"] == "ok"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert _period(database) == (PeriodState.CLOSING, 0)  # the close's transaction is gone

    # Right after the start, a close may still be on its way (SQLite cannot tell): not yet.
    monkeypatch.setattr(cli_main, "_now", lambda: DEC_1)
    if backend == "sqlite":
        assert runner.invoke(cli_main.app, ["billing", "verify"], env=env).exit_code == 0

    monkeypatch.setattr(cli_main, "_now", lambda: LATER)
    verified = runner.invoke(cli_main.app, ["billing", "verify"], env=env)
    assert verified.exit_code == 1
    assert "2026-11 is stuck in 'closing' since 2026-12-01T01:00:00+00:00" in verified.output
    assert "partnercenter billing close 2026-11" in verified.output
    ready = _readyz(database, tmp_path, LATER)
    assert ready["status"] == "degraded" and ready["billing"] == "stuck_close"
    assert "2026-11 is stuck in 'closing'" in str(ready["reasons"])

    closed = runner.invoke(cli_main.app, ["billing", "close", "2026-11"], env=env)
    assert closed.exit_code == 0, closed.output
    assert "2026-11 closed: 4 invoice(s)" in closed.output
    assert "Numbers G000000001 to G000000004." in closed.output  # no number was lost
    assert _period(database) == (PeriodState.CLOSED, 4)
    verified = runner.invoke(cli_main.app, ["billing", "verify"], env=env)
    assert verified.exit_code == 0 and "OK: 1 closed month(s), 4 invoice(s)" in verified.output
    assert _readyz(database, tmp_path, LATER) == {"status": "ok", "database": "ok"}


def test_a_month_closing_with_its_row_free_is_stuck_on_postgresql_only_after_the_start_grace(
    database: str, backend: str
) -> None:
    engine = make_engine(database)
    with make_session_factory(engine)() as session:
        billing.start_close(session, month="2026-11", now=DEC_1)
        session.commit()
        soon = billing.stuck_closes(session, now=DEC_1 + timedelta(seconds=30))
        assert soon == []
        stuck = billing.stuck_closes(session, now=DEC_1 + billing.CLOSE_GRACE)
        assert [s.month for s in stuck] == ["2026-11"]
        session.rollback()
    engine.dispose()
