"""Email to support contacts through an outbox: written with the change, sent after commit.

:func:`enqueue` adds a row in the caller's transaction, so a mail exists exactly when the
change it tells of was committed. :func:`deliver_pending` runs after the commit (a background
task of the request, or ``partnercenter support send-mail``): it claims each unsent row for a
few minutes, sends it through the SMTP server of the settings (``smtp_host``, ``smtp_port``,
``mail_from``) and marks it sent; a failure is recorded and retried with back-off by the
background jobs (``partnercenter.jobs``), which also run it within seconds of the commit.
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
import smtplib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.config import Settings
from partnercenter.support.models import MailOutbox

if TYPE_CHECKING:
    from partnercenter.support.models import SupportRequest

log = logging.getLogger("partnercenter.support.mail")

# A sender's claim on a row, in real time. A sender that died before handing the message
# over leaves its claim: the row is tried again once it expires.
CLAIM = timedelta(minutes=2)
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: 30 s, 1 min, 2 min, ... at most an hour."""
    delay: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(delay, LONGEST_RETRY)


def why_not_sent(settings: Settings, exc: BaseException) -> str:
    """Why a mail did not go, and what to configure, for the log and the operator.

    Names the SMTP server (``PARTNERCENTER_SMTP_HOST``/``_PORT``) and the sender
    (``PARTNERCENTER_MAIL_FROM``) where they are the likely cause; quotes the server's reply
    code and text. Settings hold no secret (no SMTP password is configured); the recipient's
    address is not repeated.
    """
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return (
            f"the SMTP server {server} refused the sender {exc.sender!r} "
            f"({exc.smtp_code} {_reply(exc.smtp_error)}); set PARTNERCENTER_MAIL_FROM to an "
            "address it accepts"
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = ", ".join(f"{code} {_reply(reply)}" for code, reply in exc.recipients.values())
        return f"the SMTP server {server} refused the recipient's address ({codes})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the SMTP server {server} answered {exc.smtp_code} {_reply(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the SMTP server {server} closed the connection ({exc})"
    if isinstance(exc, OSError | smtplib.SMTPException):
        return (
            f"no SMTP server could be reached at {server} ({type(exc).__name__}: {exc}); "
            "set PARTNERCENTER_SMTP_HOST and PARTNERCENTER_SMTP_PORT to a mail relay that "
            "accepts mail from this host"
        )
    return f"{type(exc).__name__}: {exc}"


def _reply(text: bytes | str) -> str:
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).strip()


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


UNCONFIRMED = (
    "unconfirmed: the sender stopped after handing this message to the SMTP server and before "
    "hearing its answer; it may have been delivered, so it is not sent again by itself"
)


def _real_now() -> datetime:
    return datetime.now(UTC)


def _due(now: datetime, real_now: datetime) -> list[ColumnElement[bool]]:
    """Unsent, not given up, never handed over, unclaimed, and past its back-off.

    Claims are leases in real time; the back-off is business time (a sandbox clock moved on
    retries sooner, as the provider would expect).
    """
    return [
        MailOutbox.sent_at.is_(None),
        MailOutbox.failed_at.is_(None),
        MailOutbox.handed_over_at.is_(None),
        or_(MailOutbox.claimed_until.is_(None), MailOutbox.claimed_until < real_now),
        or_(MailOutbox.next_attempt_at.is_(None), MailOutbox.next_attempt_at <= now),
    ]


def message_of(settings: Settings, row: MailOutbox) -> EmailMessage:
    """The email of an outbox row; its Message-ID (``<row id@partnercenter>``) never changes."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Message-ID"] = f"<{row.id}@partnercenter>"
    message.set_content(row.body)
    return message


class _ClaimLost(Exception):
    """Another sender holds the row now: this one stops before handing anything over."""


class _Unconfirmed(Exception):
    """The connection broke after the message was handed over: delivery is unknown."""


def _send(settings: Settings, row: MailOutbox, hand_over: Callable[[], bool]) -> None:
    """Send one message, calling ``hand_over`` (which records it) just before SMTP DATA.

    Everything before DATA (connect, EHLO, MAIL FROM, RCPT TO) can fail without the server
    having taken anything, so such failures are retried. Raises ``_Unconfirmed`` when the
    connection broke during DATA (the server may have accepted the message), ``_ClaimLost``
    when ``hand_over`` found the claim gone, ``smtplib.SMTPException`` / ``OSError`` otherwise.
    """
    message = message_of(settings, row)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.ehlo_or_helo_if_needed()
        sender = email.utils.parseaddr(settings.mail_from)[1] or settings.mail_from
        international = not (sender + row.recipient).isascii()
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        code, reply = smtp.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = smtp.rcpt(row.recipient)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({row.recipient: (code, reply)})
        if not hand_over():
            smtp.rset()
            raise _ClaimLost()
        try:
            # As smtplib's send_message flattens it: CRLF line ends, UTF-8 headers if needed.
            policy = email.policy.SMTPUTF8 if international else email.policy.SMTP
            smtp.data(message.as_bytes(policy=policy))
        except smtplib.SMTPResponseException:
            raise  # a definite refusal: nothing was accepted, a retry is safe
        except (OSError, smtplib.SMTPException) as exc:
            raise _Unconfirmed(f"{type(exc).__name__}: {exc}") from exc


def _give_up_unconfirmed(session: Session, *, now: datetime, real_now: datetime) -> int:
    """Mark mail whose sender died during its hand-over as unconfirmed (failed, not resent)."""
    result = session.execute(
        update(MailOutbox)
        .where(
            MailOutbox.sent_at.is_(None),
            MailOutbox.failed_at.is_(None),
            MailOutbox.handed_over_at.is_not(None),
            MailOutbox.claimed_until < real_now,
        )
        .values(failed_at=now, claimed_until=None, attempt_id=None, last_error=UNCONFIRMED)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def deliver_pending(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime, limit: int = 100
) -> int:
    """Send the mail that is due; returns how many were sent. Safe in several processes.

    Each row is claimed (a real-time lease with a fresh ``attempt_id``) by a conditional
    update before it is sent, so two senders never send the same row. Just before the SMTP
    DATA command the claim is turned into a hand-over (``handed_over_at``, committed), and
    after the server's 250 the row is marked sent. A sender killed between the two leaves a
    hand-over behind: when its claim expires the row is marked failed with ``UNCONFIRMED``
    and waits for the provider (at most once; docs/dev/jobs.md). A failure before DATA or a
    refusal of the message records the error and backs off (:func:`retry_delay`); after
    ``MAX_ATTEMPTS`` the row is marked failed and waits for the provider.
    """
    sent = 0
    with factory() as session:
        _give_up_unconfirmed(session, now=now, real_now=_real_now())
        session.commit()
        ids = (
            session.execute(
                select(MailOutbox.id)
                .where(*_due(now, _real_now()))
                .order_by(MailOutbox.created_at)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        session.rollback()
        for mail_id in ids:
            attempt = uuid.uuid4()
            real_now = _real_now()
            claimed = session.execute(
                update(MailOutbox)
                .where(MailOutbox.id == mail_id, *_due(now, real_now))
                .values(claimed_until=real_now + CLAIM, attempt_id=attempt)
            )
            session.commit()
            if getattr(claimed, "rowcount", 0) != 1:
                continue  # another process claimed it first
            row = session.get(MailOutbox, mail_id)
            assert row is not None
            ours = (MailOutbox.id == mail_id, MailOutbox.attempt_id == attempt)

            def hand_over(ours: tuple[ColumnElement[bool], ...] = ours) -> bool:
                moment = _real_now()
                marked = session.execute(
                    update(MailOutbox)
                    .where(*ours, MailOutbox.claimed_until > moment)
                    .values(handed_over_at=moment)
                )
                session.commit()
                return getattr(marked, "rowcount", 0) == 1

            try:
                _send(settings, row, hand_over)
            except _ClaimLost:
                continue
            except _Unconfirmed as exc:
                log.warning(
                    "mail unconfirmed: the connection to the SMTP server %s:%s broke while the "
                    "message was being handed over (%s); it may have been delivered, so it is "
                    "not sent again: the provider's Jobs page shows it",
                    settings.smtp_host,
                    settings.smtp_port,
                    exc,
                    extra={"mail_id": str(mail_id), "error": str(exc)},
                )
                session.execute(
                    update(MailOutbox)
                    .where(*ours)
                    .values(
                        attempts=MailOutbox.attempts + 1,
                        failed_at=now,
                        claimed_until=None,
                        last_error=f"{UNCONFIRMED} ({exc})"[:1000],
                    )
                )
            except (OSError, smtplib.SMTPException) as exc:
                attempts = row.attempts + 1
                if attempts >= MAX_ATTEMPTS:
                    then = (
                        f"gave up after {attempts} attempts; the provider's Jobs page "
                        "can send it again"
                    )
                else:
                    then = (
                        f"attempt {attempts} of {MAX_ATTEMPTS}, next in "
                        f"{int(retry_delay(attempts).total_seconds())} s"
                    )
                log.warning(
                    "mail %s not sent: %s (%s)",
                    mail_id,
                    why_not_sent(settings, exc),
                    then,
                    extra={
                        "mail_id": str(mail_id),
                        "error": f"{type(exc).__name__}: {exc}",
                        "attempts": attempts,
                    },
                )
                session.execute(
                    update(MailOutbox)
                    .where(*ours)
                    .values(
                        attempts=attempts,
                        last_error=f"{type(exc).__name__}: {exc}"[:1000],
                        claimed_until=None,
                        handed_over_at=None,  # refused: nothing was accepted
                        failed_at=now if attempts >= MAX_ATTEMPTS else None,
                        next_attempt_at=None
                        if attempts >= MAX_ATTEMPTS
                        else now + retry_delay(attempts),
                    )
                )
            else:
                # The server accepted it: mark it sent whatever became of the claim meanwhile.
                session.execute(
                    update(MailOutbox)
                    .where(MailOutbox.id == mail_id)
                    .values(
                        attempts=MailOutbox.attempts + 1,
                        sent_at=now,
                        last_error=None,
                        failed_at=None,
                        claimed_until=None,
                    )
                )
                sent += 1
            session.commit()
    return sent


def status_of(row: MailOutbox, *, real_now: datetime | None = None) -> str:
    """``unconfirmed`` (handed over, outcome unknown), ``failed`` (gave up), ``sending`` (a
    sender holds it now), ``retrying`` (an attempt failed, another is due) or ``pending``."""
    if row.failed_at is not None:
        return "unconfirmed" if row.handed_over_at is not None else "failed"
    moment = real_now or _real_now()
    if row.claimed_until is not None and row.claimed_until > moment:
        return "sending"
    return "retrying" if row.attempts else "pending"


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
    """Give a failed or waiting mail a fresh set of attempts, due now; None if unknown/sent.

    An unconfirmed mail (see :func:`deliver_pending`) is sent again only this way: the
    provider decided that a possible second copy is better than none. Its Message-ID stays
    the same, so the receiving side can recognise a repeat.
    """
    row = session.get(MailOutbox, mail_id)
    if row is None or row.sent_at is not None:
        return None
    row.failed_at = None
    row.next_attempt_at = None
    row.claimed_until = None
    row.attempt_id = None
    row.handed_over_at = None  # the provider chose to send it again (same Message-ID)
    row.attempts = 0
    return row
