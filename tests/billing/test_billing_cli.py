"""`partnercenter billing close YYYY-MM` and `partnercenter billing verify`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from partnercenter import migrate
from partnercenter.billing.models import Invoice
from partnercenter.cli import main as cli_main
from partnercenter.db import make_engine, make_session_factory
from tests.billing.conftest import two_partners_bought_in_november

DEC_1 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    two_partners_bought_in_november(url, credit_half=True)
    monkeypatch.setattr(cli_main, "_now", lambda: DEC_1)
    return {"DATABASE_URL": url, "PARTNERCENTER_DATA_DIR": str(tmp_path / "data")}


def test_close_issues_the_months_invoices_once_and_verify_agrees(env: dict[str, str]) -> None:
    runner = CliRunner()
    first = runner.invoke(cli_main.app, ["billing", "close", "2026-11"], env=env)
    assert first.exit_code == 0, first.output
    assert "2026-11 closed: 4 invoice(s)" in first.output
    assert "Numbers G000000001 to G000000004." in first.output
    again = runner.invoke(cli_main.app, ["billing", "close", "2026-11"], env=env)
    assert again.exit_code == 0 and "already closed" in again.output
    verified = runner.invoke(cli_main.app, ["billing", "verify"], env=env)
    assert verified.exit_code == 0 and "OK: 1 closed month(s), 4 invoice(s)" in verified.output
    engine = make_engine(env["DATABASE_URL"])
    with make_session_factory(engine)() as session:
        assert session.execute(select(func.count()).select_from(Invoice)).scalar_one() == 4
    engine.dispose()


def test_close_of_a_month_not_ended_fails_with_the_reason(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli_main.app, ["billing", "close", "2026-12"], env=env)
    assert result.exit_code == 1 and "has not ended yet" in result.output


def test_verify_fails_when_a_charge_of_a_closed_month_is_not_invoiced(
    env: dict[str, str],
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli_main.app, ["billing", "close", "2026-11"], env=env).exit_code == 0
    engine = make_engine(env["DATABASE_URL"])
    with engine.begin() as conn:  # a charge written behind the close's back
        conn.execute(
            text(
                "INSERT INTO charges (id, partner_id, customer_id, order_id, order_line_id, "
                "charge_type, currency, net_minor, tax_minor, gross_minor, quantity, "
                "billing_month, created_at) SELECT :id, partner_id, customer_id, order_id, "
                "order_line_id, 'customerCredit', currency, -100, 0, -100, 1, '2026-11', "
                "created_at FROM charges LIMIT 1"
            ),
            {"id": "0" * 32},
        )
    engine.dispose()
    result = runner.invoke(cli_main.app, ["billing", "verify"], env=env)
    assert result.exit_code == 1 and "mismatch" in result.output
