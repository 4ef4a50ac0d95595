"""Real concurrent closes and charges racing a close, on a committed PostgreSQL database.

Each thread has its own engine and connection, as two app processes or two CLI runs would.
Lago's bug (a cancellation racing the billing run produced duplicate invoices and extra credit
notes) is the scenario of the last tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.billing import services as billing
from partnercenter.billing.models import Invoice, InvoiceLine
from partnercenter.clock import FrozenClock
from partnercenter.db import make_engine
from partnercenter.identity.models import Tenant
from partnercenter.orders.models import Charge
from tests.billing.conftest import Ledger, Purchase
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE
from tests.factories import Factory
from tests.live import committed_postgres

pytestmark = pytest.mark.skipif(not PG_REQUIRED, reason=PG_SKIP_MESSAGE)

NOV_15 = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
NOV_30_LATE = datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, 0, 1, tzinfo=UTC)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A migrated throwaway database whose rows are really committed."""
    with committed_postgres() as url:
        yield url


def _sessions(url: str) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    return engine, sessionmaker(bind=engine, expire_on_commit=False)


def _seed(url: str, partners: int = 3) -> tuple[list[Tenant], list[Purchase]]:
    engine, factory_of = _sessions(url)
    clock = FrozenClock(NOV_15)
    with factory_of() as session:
        factory = Factory(session, clock)
        ledger = Ledger(session, factory, clock)
        tenants, purchases = [], []
        for i in range(partners):
            partner = factory.partner(f"Race {i}")
            customer = factory.customer(partner)
            tenants.append(partner)
            purchases.append(ledger.purchase(partner, customer, unit_net=f"{i + 1}0.00"))
        session.commit()
    engine.dispose()
    return tenants, purchases


def _close(
    url: str,
    month: str,
    now: datetime,
    *,
    hold: float = 0.0,
    started: threading.Event | None = None,
) -> billing.CloseResult:
    """A full close as the CLI runs it, optionally holding the issuing transaction open."""
    engine, factory_of = _sessions(url)
    try:
        with factory_of() as session:
            billing.start_close(session, month=month, now=now)
            session.commit()

            def progress(step: str, done: int, total: int) -> None:
                if step == "invoices" and done == total:
                    if started is not None:
                        started.set()
                    time.sleep(hold)

            result = billing.close_period(session, month=month, now=now, progress=progress)
            session.commit()
            return result
    finally:
        engine.dispose()


def _run(*targets: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def runner(i: int, target: Callable[[], Any]) -> None:
        try:
            results[i] = target()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def _count(url: str, model: Any) -> int:
    engine, factory_of = _sessions(url)
    with factory_of() as session:
        n = session.execute(select(func.count()).select_from(model)).scalar_one()
    engine.dispose()
    return int(n)


def test_two_closes_at_the_same_time_issue_each_invoice_exactly_once(pg_url: str) -> None:
    _seed(pg_url, partners=5)
    barrier = threading.Barrier(2)

    def closer() -> billing.CloseResult:
        barrier.wait()
        return _close(pg_url, "2026-11", DEC_1, hold=0.3)

    first, second = _run(closer, closer)

    assert sorted([first.already_closed, second.already_closed]) == [False, True]
    assert first.invoices_issued == second.invoices_issued == 5
    assert (first.first_number, first.last_number) == (second.first_number, second.last_number)
    assert _count(pg_url, Invoice) == 5 and _count(pg_url, InvoiceLine) == 5
    engine, factory_of = _sessions(pg_url)
    with factory_of() as session:
        numbers = list(session.execute(select(Invoice.number).order_by(Invoice.number)).scalars())
        assert numbers == [f"G{n:09d}" for n in range(1, 6)]
        assert billing.verify(session).ok
    engine.dispose()


def _record_credit(
    url: str, purchase: Purchase, now: datetime, *, before_insert: Callable[[], None]
) -> tuple[str, float]:
    """Record a cancellation credit as the cancellation service does; returns its month."""
    engine, factory_of = _sessions(url)
    try:
        with factory_of() as session:
            started = time.monotonic()
            month = billing.open_billing_month(session, now=now)
            before_insert()
            ledger = Ledger(session, Factory(session, FrozenClock(now)), FrozenClock(now))
            credit = ledger.credit(purchase, at=now, month=month, cancel_line=False)
            session.commit()
            return credit.billing_month, time.monotonic() - started
    finally:
        engine.dispose()


def test_credit_recorded_while_the_close_starts_waits_and_lands_on_that_invoice(
    pg_url: str,
) -> None:
    """The credit's transaction holds the open month: the close waits and bills it."""
    _tenants, purchases = _seed(pg_url)
    stamped = threading.Event()
    close_started_at: list[float] = []

    def canceller() -> tuple[str, float]:
        def hold() -> None:
            stamped.set()
            time.sleep(0.5)  # the close begins meanwhile and must wait for this commit

        return _record_credit(pg_url, purchases[0], NOV_30_LATE, before_insert=hold)

    def closer() -> tuple[billing.CloseResult, float]:
        stamped.wait(10)
        close_started_at.append(time.monotonic())
        result = _close(pg_url, "2026-11", DEC_1)
        return result, time.monotonic() - close_started_at[0]

    (month, _), (result, waited) = _run(canceller, closer)

    assert month == "2026-11"
    assert waited >= 0.3  # the close waited for the credit's transaction
    assert result.invoices_issued == 3 and result.lines_billed == 4
    _assert_credit_billed_once(pg_url, purchases[0])


def test_credit_racing_a_running_close_goes_to_the_next_month_without_waiting(
    pg_url: str,
) -> None:
    """Lago: no duplicate invoice, no extra credit; the credit is on exactly one invoice."""
    _tenants, purchases = _seed(pg_url)
    issuing = threading.Event()

    def closer() -> billing.CloseResult:
        return _close(pg_url, "2026-11", DEC_1, hold=1.0, started=issuing)

    def canceller() -> tuple[str, float]:
        issuing.wait(10)
        return _record_credit(pg_url, purchases[0], NOV_30_LATE, before_insert=lambda: None)

    result, (month, took) = _run(closer, canceller)

    assert month == "2026-12" and took < 0.9  # it did not wait for the close to finish
    assert result.lines_billed == 3
    _close(pg_url, "2026-11", DEC_1)  # a rerun changes nothing
    _close(pg_url, "2026-12", JAN_1)
    _assert_credit_billed_once(pg_url, purchases[0])
    assert _count(pg_url, Invoice) == 4  # three November invoices and one December credit note


def _assert_credit_billed_once(url: str, purchase: Purchase) -> None:
    engine, factory_of = _sessions(url)
    with factory_of() as session:
        credits = list(
            session.execute(
                select(Charge.id).where(Charge.reverses_charge_id == purchase.charge.id)
            ).scalars()
        )
        assert len(credits) == 1
        billed = session.execute(
            select(func.count()).select_from(InvoiceLine).where(InvoiceLine.charge_id == credits[0])
        ).scalar_one()
        assert billed == 1
        per_key = session.execute(
            select(Invoice.partner_id, Invoice.billing_month, Invoice.currency, func.count())
            .group_by(Invoice.partner_id, Invoice.billing_month, Invoice.currency)
            .having(func.count() > 1)
        ).all()
        assert per_key == []
        report = billing.verify(session)
        assert report.ok, report.mismatches
    engine.dispose()
