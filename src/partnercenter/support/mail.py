"""Email to support contacts through an outbox: written with the change, sent after commit.

:func:`enqueue` adds a row in the caller's transaction, so a mail exists exactly when the
change it tells of was committed. :func:`deliver_pending` runs after the commit (a background
task of the request, or ``partnercenter support send-mail``): it claims each unsent row for a
few minutes, sends it through the SMTP server of the settings (``smtp_host``, ``smtp_port``,
``mail_from``) and marks it sent; a failure is recorded and retried by the next run.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.config import Settings
from partnercenter.support.models import MailOutbox

if TYPE_CHECKING:
    from partnercenter.support.models import SupportRequest

log = logging.getLogger("partnercenter.support.mail")

CLAIM = timedelta(minutes=5)
MAX_ATTEMPTS = 10


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
    """Send the unsent mail; returns how many were sent. Safe to run in several processes."""
    sent = 0
    with factory() as session:
        ids = (
            session.execute(
                select(MailOutbox.id)
                .where(
                    MailOutbox.sent_at.is_(None),
                    MailOutbox.attempts < MAX_ATTEMPTS,
                    or_(MailOutbox.claimed_until.is_(None), MailOutbox.claimed_until < now),
                )
                .order_by(MailOutbox.created_at)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        session.rollback()
        for mail_id in ids:
            claimed = session.execute(
                update(MailOutbox)
                .where(
                    MailOutbox.id == mail_id,
                    MailOutbox.sent_at.is_(None),
                    or_(MailOutbox.claimed_until.is_(None), MailOutbox.claimed_until < now),
                )
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
            else:
                row.attempts += 1
                row.sent_at = now
                row.last_error = None
                sent += 1
            session.commit()
    return sent
