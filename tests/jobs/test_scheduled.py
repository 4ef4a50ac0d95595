"""The scheduled jobs as the runners call them: month close on its day and hour, low-stock
warnings once per threshold crossing, clean-up of expired carts and old MS-RequestIds."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import idempotency
from partnercenter.audit.models import AuditRecord
from partnercenter.billing import services as billing
from partnercenter.billing.models import Invoice, PeriodState
from partnercenter.catalog.models import KeyStatus, ProductKey, Sku
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.idempotency import IdempotencyKey
from partnercenter.identity import services as identity
from partnercenter.jobs import tasks
from partnercenter.jobs.models import LowStockAlert, ScheduledRun
from partnercenter.orders import services as orders
from partnercenter.orders.models import Cart
from partnercenter.permissions import Role
from partnercenter.support.models import MailOutbox
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE
from tests.factories import Factory
from tests.live import committed_postgres
from tests.orders import catalog_data


def _env(
    settings: Settings, session_factory: sessionmaker[Session], clock: FrozenClock
) -> tasks.JobEnv:
    return tasks.JobEnv(settings=settings, session_factory=session_factory, clock=clock)


def test_the_month_due_is_the_previous_one_from_the_configured_day_and_hour() -> None:
    at = datetime(2026, 12, 1, 1, 59, tzinfo=UTC)
    assert tasks.month_due(at, day=1, hour=2) == "2026-10"
    assert tasks.month_due(at + timedelta(minutes=1), day=1, hour=2) == "2026-11"
    assert tasks.month_due(datetime(2026, 12, 4, 23, tzinfo=UTC), day=5, hour=0) == "2026-10"
    assert tasks.month_due(datetime(2027, 1, 5, 0, tzinfo=UTC), day=5, hour=0) == "2026-12"


def test_the_previous_month_closes_by_itself_at_the_configured_hour_once(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
) -> None:
    settings.month_close_day, settings.month_close_hour = 1, 2
    env = _env(settings, session_factory, clock)
    clock.set(datetime(2026, 12, 1, 1, 59, tzinfo=UTC))
    tasks.close_due_month(env)  # closes October (and nothing later)
    november = billing.get_period(session, "2026-11")
    assert november is None or november.state != PeriodState.CLOSED

    clock.set(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert tasks.close_due_month(env) == "2026-11"
    session.expire_all()
    period = billing.get_period(session, "2026-11")
    assert period is not None and period.state == PeriodState.CLOSED
    run = session.get(ScheduledRun, ("month_close", "2026-11"))
    assert run is not None and run.finished_at is not None
    assert run.outcome is not None and run.outcome.startswith("closed")

    # Again, and after a manual close that found it closed: nothing is issued twice.
    invoices = session.execute(select(func.count()).select_from(Invoice)).scalar_one()
    assert tasks.close_due_month(env) is None
    assert billing.close_period(session, month="2026-11", now=clock.now()).already_closed
    assert session.execute(select(func.count()).select_from(Invoice)).scalar_one() == invoices
    assert billing.verify(session).ok


def test_a_manual_close_first_leaves_the_scheduler_nothing_to_do(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
) -> None:
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    for month in ("2026-10", "2026-11"):
        billing.start_close(session, month=month, now=clock.now())
        billing.close_period(session, month=month, now=clock.now())
    session.commit()
    assert tasks.close_due_month(_env(settings, session_factory, clock)) is None
    assert session.get(ScheduledRun, ("month_close", "2026-11")) is None


def test_automatic_close_can_be_switched_off(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
) -> None:
    settings.month_close_auto = False
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    assert tasks.close_due_month(_env(settings, session_factory, clock)) is None
    assert billing.get_period(session, "2026-11") is None or (
        billing.get_period(session, "2026-11").state != PeriodState.CLOSED  # type: ignore[union-attr]
    )


def _warnings(session: Session) -> list[MailOutbox]:
    return list(
        session.execute(select(MailOutbox).where(MailOutbox.subject.like("Low stock:%"))).scalars()
    )


def test_low_stock_mails_the_provider_admins_once_per_threshold_crossing(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    factory: Factory,
) -> None:
    catalog_data.load(session, settings=settings, now=clock.now(), keys=3)
    admin = factory.provider_admin()
    sku = session.execute(select(Sku).where(Sku.product_id == "DG7GMGF0D3SJ")).scalar_one()
    sku.low_stock_threshold = 2
    sku.versions = ["2022"]  # the keys loaded are of 2022
    session.commit()
    env = _env(settings, session_factory, clock)

    assert tasks.check_low_stock(env) == 0  # three keys, above two
    key = (
        session.execute(
            select(ProductKey).where(ProductKey.sku_pk == sku.id, ProductKey.version == "2022")
        )
        .scalars()
        .first()
    )
    assert key is not None
    key.status = KeyStatus.RESERVED  # one handed out: two left, at the threshold
    session.commit()
    assert tasks.check_low_stock(env) == 1
    assert tasks.check_low_stock(env) == 0  # still low: no second warning
    (warning,) = _warnings(session)
    assert warning.recipient == admin.email
    assert "Standard 2022 has 2 key(s) left" in warning.subject
    assert "threshold is 2" in warning.body

    key.status = KeyStatus.AVAILABLE  # stock back above the threshold: the alert clears
    session.commit()
    assert tasks.check_low_stock(env) == 0
    assert session.execute(select(LowStockAlert)).first() is None
    key.status = KeyStatus.RESERVED  # the next crossing warns again
    session.commit()
    assert tasks.check_low_stock(env) == 1
    assert len(_warnings(session)) == 2


def test_clean_up_deletes_expired_carts_and_old_request_ids_only(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    factory: Factory,
) -> None:
    catalog_data.load(session, settings=settings, now=clock.now())
    partner = factory.partner()
    customer = factory.customer(partner)
    actor = identity.actor_for(factory.user(partner, Role.ADMIN_AGENT))
    line = [{"catalogItemId": catalog_data.WINDOWS, "quantity": 1}]
    expired = orders.create_cart(
        session, actor=actor, customer=customer, lines=line, now=clock.now() - timedelta(days=30)
    )
    fresh = orders.create_cart(session, actor=actor, customer=customer, lines=line, now=clock.now())
    key = idempotency.RequestKey(
        tenant_id=customer.id, request_id="old", method_path="POST /x", body_hash="0" * 64
    )
    idempotency.remember(
        session, key, status_code=201, body={}, now=clock.now() - timedelta(hours=49)
    )
    recent = idempotency.RequestKey(
        tenant_id=customer.id, request_id="new", method_path="POST /x", body_hash="0" * 64
    )
    idempotency.remember(session, recent, status_code=201, body={}, now=clock.now())
    session.commit()
    expired_id, fresh_id = expired.id, fresh.id

    assert tasks.clean_up(_env(settings, session_factory, clock)) == {
        "carts": 1,
        "idempotencyKeys": 1,
    }
    session.expire_all()
    assert session.get(Cart, expired_id) is None
    assert session.get(Cart, fresh_id) is not None
    left = session.execute(select(IdempotencyKey.request_id)).scalars().all()
    assert left == ["new"]


@pytest.mark.postgres_only
def test_two_schedulers_at_the_same_moment_close_the_month_once(tmp_path: Path) -> None:
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_postgres() as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        settings = Settings(
            data_dir=tmp_path, database_url=url, secret_key="s" * 48, log_json=False
        )
        at = FrozenClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
        envs = [tasks.JobEnv(settings=settings, session_factory=sessions, clock=at)] * 2
        barrier = threading.Barrier(2)

        def scheduler(env: tasks.JobEnv) -> str | None:
            barrier.wait()
            return tasks.close_due_month(env)

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(scheduler, envs))
        try:
            assert "2026-11" in results  # one of them closed it; neither failed
            with sessions() as session:
                period = billing.get_period(session, "2026-11")
                assert period is not None and period.state == PeriodState.CLOSED
                closes = session.execute(
                    select(func.count())
                    .select_from(AuditRecord)
                    .where(AuditRecord.operation_type == "close_billing_period")
                ).scalar_one()
                assert closes == 1  # November, once
                assert billing.verify(session).ok
        finally:
            engine.dispose()
