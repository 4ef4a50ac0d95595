"""The job bodies: plain functions that both job runners call (procrastinate and in-process).

Each opens its own short transactions through the environment's session factory and is safe
to run in several processes at once: the mail outbox claims each row before sending, the
month close is billing's own idempotent close (it holds the month's row ``FOR UPDATE``), and a
low-stock warning is written by whichever process inserts its alert row first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import idempotency
from partnercenter.billing import services as billing
from partnercenter.billing.errors import EarlierPeriodOpen
from partnercenter.billing.models import PeriodState
from partnercenter.catalog import services as catalog
from partnercenter.clock import Clock, SandboxClock
from partnercenter.config import Settings
from partnercenter.db import unit_of_work
from partnercenter.identity import services as identity
from partnercenter.identity.models import SandboxClockState
from partnercenter.jobs.models import LowStockAlert, ScheduledRun
from partnercenter.orders import services as orders
from partnercenter.support import mail

log = logging.getLogger("partnercenter.jobs")

MONTH_CLOSE = "month_close"
LOW_STOCK = "low_stock"
CLEAN_UP = "clean_up"
# The every-minute jobs keep one row each, the latest run: ``(low_stock, latest)``.
LATEST = "latest"


@dataclass
class JobEnv:
    """What a job needs: settings, a session factory and the business clock."""

    settings: Settings
    session_factory: sessionmaker[Session]
    clock: Clock
    # Called after a job wrote mail, so a runner can send it at once.
    on_mail_written: Any = field(default=None)

    def now(self, session: Session) -> datetime:
        """The business time (UTC); a sandbox clock reads the offset every process shares."""
        if isinstance(self.clock, SandboxClock):
            state = session.get(SandboxClockState, 1)
            self.clock.set_offset(timedelta(seconds=state.offset_seconds if state else 0))
        return self.clock.now()


def send_mail(env: JobEnv, *, limit: int = 100) -> int:
    """Send the support and provider mail that is due; returns how many were sent."""
    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
    return mail.deliver_pending(env.session_factory, env.settings, now=now, limit=limit)


def deliver_webhooks(env: JobEnv, *, limit: int = 100) -> int:
    """POST the webhook deliveries that are due; returns how many were delivered."""
    from partnercenter.webhooks import services as webhooks

    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
    return webhooks.deliver_pending(env.session_factory, env.settings, now=now, limit=limit)


def month_due(now: datetime, *, day: int, hour: int) -> str:
    """The latest month that should be closed at ``now`` (UTC), as ``YYYY-MM``.

    The previous month once ``now`` has reached the configured day and hour of this month;
    until then the month before it.
    """
    this_month = billing.month_of(now)
    reached = (now.day, now.hour) >= (day, hour)
    return billing.shift_month(this_month, -1 if reached else -2)


def _close(env: JobEnv, month: str) -> billing.CloseResult:
    """Billing's close, as `partnercenter billing close` runs it: two short transactions."""
    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
        billing.start_close(session, month=month, now=now)
        session.commit()
        result = billing.close_period(session, month=month, now=now)
        session.commit()
    return result


def _record_run(
    env: JobEnv,
    month: str,
    outcome: str | None,
    *,
    job: str = MONTH_CLOSE,
    error: str | None = None,
) -> None:
    """Record that a run started (once, whoever is first) or how it ended.

    ``outcome`` None records the start only; with an ``error`` the run is recorded as failed
    (the outcome says what was tried), without one any earlier error is cleared.
    """
    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # One statement: a second scheduler starting at the same moment inserts nothing.
        session.execute(
            insert(ScheduledRun)
            .values(job=job, run_key=month, started_at=now)
            .on_conflict_do_nothing()
        )
        if outcome is not None:
            values: dict[str, Any] = {
                "finished_at": now,
                "outcome": outcome[:2000],
                "error": error[:2000] if error else None,
            }
            if job != MONTH_CLOSE:
                values["started_at"] = now  # the latest run of an every-minute job
            session.execute(
                update(ScheduledRun)
                .where(ScheduledRun.job == job, ScheduledRun.run_key == month)
                .values(**values)
            )
        session.commit()


def close_due_month(env: JobEnv) -> str | None:
    """Close the month that is due (and any open month before it); returns it, or None.

    Idempotent with a manual `billing close` and with other schedulers: billing's close holds
    the month's row ``FOR UPDATE`` and leaves a closed month as it is.
    """
    settings = env.settings
    if not settings.month_close_auto:
        return None
    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
        month = month_due(now, day=settings.month_close_day, hour=settings.month_close_hour)
        period = billing.get_period(session, month)
        if period is not None and period.state == PeriodState.CLOSED:
            return None
    pending = [month]
    closed: str | None = None
    for _ in range(240):  # twenty years of unclosed months is the most we catch up on
        if not pending:
            break
        target = pending[0]
        try:
            _record_run(env, target, None)
            result = _close(env, target)
        except EarlierPeriodOpen as exc:
            earlier = [m for m in (exc.data or []) if m not in pending]
            pending = sorted(earlier) + pending
            continue
        except Exception as exc:
            # Shown to the provider (Background jobs page); the next tick tries again.
            _record_run(env, target, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        outcome = (
            "already closed"
            if result.already_closed
            else f"closed: {result.invoices_issued} invoice(s)"
        )
        _record_run(env, target, outcome)
        log.info("month closed", extra={"month": target, "outcome": outcome})
        pending.pop(0)
        closed = target
    return closed


LOW_STOCK_SUBJECT = "Low stock: {sku} {version} has {available} key(s) left"
LOW_STOCK_BODY = (
    "The available product keys of {product} / {sku}, version {version}, fell to "
    "{available} (the warning threshold is {threshold}).\n\n"
    "Import more keys: partnercenter keys import, or the Inventory page of the provider "
    "portal: {base_url}/provider/keys\n"
)


def check_low_stock(env: JobEnv) -> int:
    """Mail the Provider admins once per threshold crossing; returns the warnings written.

    A SKU version whose available keys are at or below its threshold gets one warning and an
    open alert row; the row is removed once stock is above the threshold again.
    """
    written = 0
    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
        open_alerts = {
            (a.product_id, a.sku_id, a.version)
            for a in session.execute(select(LowStockAlert)).scalars()
        }
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        recipients: list[str] | None = None
        for row in catalog.key_stock(session):
            key = (row.product_id, row.sku_id, row.version)
            if row.low and key not in open_alerts:
                # Whichever process inserts the alert first writes the warning.
                inserted = session.execute(
                    insert(LowStockAlert)
                    .values(
                        product_id=row.product_id,
                        sku_id=row.sku_id,
                        version=row.version,
                        available=row.available,
                        threshold=row.threshold,
                        alerted_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(LowStockAlert.version)
                ).first()
                if inserted is None:
                    continue
                if recipients is None:
                    recipients = identity.provider_admin_emails(session)
                names = {
                    "product": row.product_title,
                    "sku": row.sku_title,
                    "version": row.version,
                    "available": row.available,
                    "threshold": row.threshold,
                    "base_url": env.settings.base_url.rstrip("/"),
                }
                for recipient in recipients:
                    mail.enqueue_to(
                        session,
                        recipient=recipient,
                        subject=LOW_STOCK_SUBJECT.format(**names),
                        body=LOW_STOCK_BODY.format(**names),
                        now=now,
                    )
                written += 1
            elif not row.low and key in open_alerts:
                session.execute(
                    delete(LowStockAlert).where(
                        LowStockAlert.product_id == row.product_id,
                        LowStockAlert.sku_id == row.sku_id,
                        LowStockAlert.version == row.version,
                    )
                )
        session.commit()
    if written and env.on_mail_written is not None:
        env.on_mail_written()
    return written


def clean_up(env: JobEnv) -> dict[str, int]:
    """Delete expired carts and stored MS-RequestId responses past their retention."""
    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
        carts = orders.delete_expired_carts(session, now=now)
        keep = timedelta(hours=env.settings.idempotency_retention_hours)
        keys = idempotency.delete_older_than(session, before=now - keep)
        session.commit()
    if carts or keys:
        log.info("cleaned up", extra={"carts": carts, "idempotencyKeys": keys})
    return {"carts": carts, "idempotencyKeys": keys}


def maintain_activity_log(env: JobEnv) -> list[str]:
    """Make the activity log's partitions ahead, and archive the months past the retention.

    Partitions (PostgreSQL) are made for this month and the next
    ``audit_partitions_ahead``, by business time and by real time. With
    ``audit_retention_months`` set, each month older than it is archived in its own
    transaction (``audit.archive.archive_month``); several nodes doing this at once archive
    each month once (the partition lock). Returns the months archived (``YYYY-MM``).
    """
    from partnercenter.audit import archive, partitions
    from partnercenter.storage import get_storage

    settings = env.settings
    with unit_of_work(env.session_factory) as session:
        now = env.now(session)
        for moment in (now, datetime.now(UTC)):
            partitions.ensure_ahead(session, now=moment, ahead=settings.audit_partitions_ahead)
        session.commit()
    if settings.audit_retention_months is None:
        return []
    with unit_of_work(env.session_factory) as session:
        due = archive.months_due(session, now=now, retention_months=settings.audit_retention_months)
    done: list[str] = []
    storage = get_storage(settings) if due else None
    for month in due:
        assert storage is not None
        with unit_of_work(env.session_factory) as session:
            result = archive.archive_month(session, storage, month=month, now=now)
            session.commit()
        if result is not None:
            log.info(
                "activity log month archived",
                extra={"month": result.month, "records": result.record_count},
            )
            done.append(result.month)
    return done


def _recorded(env: JobEnv, name: str, job: Any) -> None:
    """Run an every-minute job and keep its latest run (and error) in ``scheduled_runs``."""
    try:
        result = job(env)
    except Exception as exc:
        _record_run(env, LATEST, "failed", job=name, error=f"{type(exc).__name__}: {exc}")
        raise
    _record_run(env, LATEST, f"done: {result}", job=name)


def run_scheduled(env: JobEnv) -> None:
    """The minute's scheduled work, each part on its own so one failure stops no other."""
    jobs: tuple[tuple[str, Any], ...] = (
        ("close_due_month", close_due_month),
        (LOW_STOCK, lambda e: _recorded(e, LOW_STOCK, check_low_stock)),
        (CLEAN_UP, lambda e: _recorded(e, CLEAN_UP, clean_up)),
        ("maintain_activity_log", maintain_activity_log),
        ("send_mail", send_mail),
        ("deliver_webhooks", deliver_webhooks),
    )
    for name, job in jobs:
        try:
            job(env)
        except Exception:
            log.exception("scheduled job failed", extra={"job": name})
