"""Email to support contacts through an outbox: written with the change, sent after commit.

:func:`enqueue` adds a row in the caller's transaction, so a mail exists exactly when the
change it tells of was committed. :func:`deliver_pending` runs after the commit (a background
task of the request, or ``partnercenter support send-mail``): it claims each unsent row for a
few minutes, sends it through the SMTP server of the settings (``smtp_host``, ``smtp_port``,
``mail_from``) and marks it sent; a failure is recorded and retried with back-off by the
background jobs (``partnercenter.jobs``), which also run it within seconds of the commit.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.config import Settings
from partnercenter.support.models import MailOutbox

if TYPE_CHECKING:
    from partnercenter.support.models import SupportRequest

log = logging.getLogger("partnercenter.support.mail")

# A sender that died mid-send leaves its claim: the row is tried again once it expires.
CLAIM = timedelta(minutes=2)
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: 30 s, 1 min, 2 min, ... at most an hour."""
    delay: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(delay, LONGEST_RETRY)


def enqueue(
    session: Session,
    *,
    request: SupportRequest,
    subject: str,
    body: str,
    now: datetime,
) -> MailOutbox:
    """Write a mail to the request's contact in the caller's transaction."""
    row = MailOutbox(
        id=uuid.uuid4(),
        request_id=request.id,
        recipient=request.contact_email,
        subject=subject[:300],
        body=body,
        created_at=now,
        attempts=0,
    )
    session.add(row)
    return row


def enqueue_to(
    session: Session, *, recipient: str, subject: str, body: str, now: datetime
) -> MailOutbox:
    """Write a mail that belongs to no support request (a notice to the provider)."""
    row = MailOutbox(
        id=uuid.uuid4(),
        request_id=None,
        recipient=recipient,
        subject=subject[:300],
        body=body,
        created_at=now,
        attempts=0,
    )
    session.add(row)
    return row


def _due(now: datetime) -> list[ColumnElement[bool]]:
    """Unsent, not given up, not claimed by a live sender, and past its back-off."""
    return [
        MailOutbox.sent_at.is_(None),
        MailOutbox.failed_at.is_(None),
        or_(MailOutbox.claimed_until.is_(None), MailOutbox.claimed_until < now),
        or_(MailOutbox.next_attempt_at.is_(None), MailOutbox.next_attempt_at <= now),
    ]


def _send(settings: Settings, row: MailOutbox) -> None:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Message-ID"] = f"<{row.id}@partnercenter>"
    message.set_content(row.body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def deliver_pending(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime, limit: int = 100
) -> int:
    """Send the mail that is due; returns how many were sent. Safe in several processes.

    Each row is claimed by a conditional update before it is sent, so two senders never
    send the same row; a failure records the error and backs off (:func:`retry_delay`);
    after ``MAX_ATTEMPTS`` the row is marked failed and waits for the provider.
    """
    sent = 0
    with factory() as session:
        ids = (
            session.execute(
                select(MailOutbox.id).where(*_due(now)).order_by(MailOutbox.created_at).limit(limit)
            )
            .scalars()
            .all()
        )
        session.rollback()
        for mail_id in ids:
            claimed = session.execute(
                update(MailOutbox)
                .where(MailOutbox.id == mail_id, *_due(now))
                .values(claimed_until=now + CLAIM)
            )
            session.commit()
            if getattr(claimed, "rowcount", 0) != 1:
                continue  # another process claimed it first
            row = session.get(MailOutbox, mail_id)
            assert row is not None
            try:
                _send(settings, row)
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("mail not sent", extra={"mail_id": str(mail_id), "error": str(exc)})
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                row.claimed_until = None
                if row.attempts >= MAX_ATTEMPTS:
                    row.failed_at = now
                else:
                    row.next_attempt_at = now + retry_delay(row.attempts)
            else:
                row.attempts += 1
                row.sent_at = now
                row.last_error = None
                sent += 1
            session.commit()
    return sent


def unsent(session: Session, *, limit: int = 200) -> list[MailOutbox]:
    """Mail not sent yet, failed first, then the oldest: what the provider should look at."""
    stmt = (
        select(MailOutbox)
        .where(MailOutbox.sent_at.is_(None))
        .order_by(MailOutbox.failed_at.is_(None), MailOutbox.created_at)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def retry(session: Session, *, mail_id: uuid.UUID) -> MailOutbox | None:
    """Give a failed or waiting mail a fresh set of attempts, due now; None if unknown/sent."""
    row = session.get(MailOutbox, mail_id)
    if row is None or row.sent_at is not None:
        return None
    row.failed_at = None
    row.next_attempt_at = None
    row.claimed_until = None
    row.attempts = 0
    return row
