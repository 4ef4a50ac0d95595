"""A mail that was not sent says why and what to configure: in the log line (with its id
and attempt) and in the `support send-mail` summary; nothing secret is written."""

from __future__ import annotations

import logging
import smtplib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import logs
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.support import mail
from tests.support.conftest import Desk, refund_body


def test_an_unreachable_smtp_server_is_named_with_the_settings_to_change(
    settings: Settings,
) -> None:
    reason = mail.why_not_sent(settings, ConnectionRefusedError(111, "Connection refused"))
    assert reason == (
        f"no SMTP server could be reached at 127.0.0.1:{settings.smtp_port} "
        "(ConnectionRefusedError: [Errno 111] Connection refused); set "
        "PARTNERCENTER_SMTP_HOST and PARTNERCENTER_SMTP_PORT to a mail relay that accepts "
        "mail from this host"
    )


def test_a_refused_sender_names_the_mail_from_setting(settings: Settings) -> None:
    exc = smtplib.SMTPSenderRefused(553, b"5.7.1 Sender not allowed", "support@x.test")
    assert mail.why_not_sent(settings, exc) == (
        f"the SMTP server 127.0.0.1:{settings.smtp_port} refused the sender 'support@x.test' "
        "(553 5.7.1 Sender not allowed); set PARTNERCENTER_MAIL_FROM to an address it accepts"
    )


def test_a_refused_recipient_quotes_the_server_without_repeating_the_address(
    settings: Settings,
) -> None:
    exc = smtplib.SMTPRecipientsRefused({"ana@fabrikam.test": (550, b"5.1.1 No such user")})
    reason = mail.why_not_sent(settings, exc)
    assert reason == (
        f"the SMTP server 127.0.0.1:{settings.smtp_port} refused the recipient's address "
        "(550 5.1.1 No such user)"
    )
    assert "ana@" not in reason


def test_the_log_line_of_a_mail_not_sent_carries_reason_id_and_next_attempt(
    client: TestClient,
    desk: Desk,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="partnercenter.support.mail"):
        r = client.post(
            "/v1/servicerequests", json=refund_body(desk), headers=desk.h("admin_agent")
        )
        assert r.status_code == 201
    lines = [rec for rec in caplog.records if rec.name == "partnercenter.support.mail"]
    assert len(lines) == 1
    record = lines[0]
    text = record.getMessage()
    assert text.startswith(f"mail {record.mail_id} not sent: no SMTP server could be reached")  # type: ignore[attr-defined]
    assert f"127.0.0.1:{settings.smtp_port}" in text
    assert "PARTNERCENTER_SMTP_HOST" in text
    assert text.endswith("(attempt 1 of 10, next in 30 s)")
    assert record.attempts == 1  # type: ignore[attr-defined]
    # The console format (log_json off) shows the extras too, not a bare message.
    formatted = logs.TextFormatter().format(record)
    assert formatted.split(": ", 1)[1].startswith(text)
    assert f"mail_id={record.mail_id}" in formatted  # type: ignore[attr-defined]
    assert "error=ConnectionRefusedError" in formatted
    assert settings.secret_key not in formatted  # type: ignore[operator]


def test_the_last_attempt_says_it_gave_up_and_where_to_send_it_again(
    client: TestClient,
    desk: Desk,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = client.post("/v1/servicerequests", json=refund_body(desk), headers=desk.h("admin_agent"))
    assert r.status_code == 201
    with caplog.at_level(logging.WARNING, logger="partnercenter.support.mail"):
        for attempt in range(2, mail.MAX_ATTEMPTS + 1):
            clock.advance(seconds=int(mail.retry_delay(attempt - 1).total_seconds()))
            assert mail.deliver_pending(session_factory, settings, now=clock.now()) == 0
    texts = [rec.getMessage() for rec in caplog.records if rec.name == "partnercenter.support.mail"]
    assert len(texts) == mail.MAX_ATTEMPTS  # the first attempt (after the filing) included
    assert texts[0].endswith("(attempt 1 of 10, next in 30 s)")
    assert texts[1].endswith("(attempt 2 of 10, next in 60 s)")
    assert texts[-1].endswith(
        "(gave up after 10 attempts; the provider's Jobs page can send it again)"
    )
