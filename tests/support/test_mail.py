"""The mail outbox: written in the change's transaction, retried when the SMTP server is
down, sent once when it is back, never sent for a change that rolled back."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnercenter.cli.main import app as cli
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.support import mail
from partnercenter.support.models import MailOutbox, SupportRequest
from tests.factories import PASSWORD
from tests.support.conftest import Desk, Mailbox, refund_body


def test_mail_waits_in_the_outbox_while_smtp_is_down_then_goes_once(
    client: TestClient,
    desk: Desk,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
) -> None:
    r = client.post("/v1/servicerequests", json=refund_body(desk), headers=desk.h("admin_agent"))
    assert r.status_code == 201  # filing does not depend on the mail server
    row = session.execute(select(MailOutbox)).scalar_one()
    session.refresh(row)
    assert row.sent_at is None
    assert row.attempts == 1
    assert row.last_error and "Connection" in row.last_error
    assert row.recipient == "ana@fabrikam.test"

    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=settings.smtp_port)
    controller.start()
    try:
        # The failed attempt backs off 30 seconds before the next one.
        assert row.next_attempt_at == clock.now() + mail.retry_delay(1)
        assert mail.deliver_pending(session_factory, settings, now=clock.now()) == 0
        clock.advance(seconds=30)
        assert mail.deliver_pending(session_factory, settings, now=clock.now()) == 1
        assert mail.deliver_pending(session_factory, settings, now=clock.now()) == 0
    finally:
        controller.stop()
    assert len(box.to("ana@fabrikam.test")) == 1
    session.refresh(row)
    assert row.sent_at is not None and row.attempts == 2 and row.last_error is None


def test_a_refused_change_writes_no_mail(client: TestClient, desk: Desk, session: Session) -> None:
    body = refund_body(desk, title="")
    assert (
        client.post("/v1/servicerequests", json=body, headers=desk.h("admin_agent")).status_code
        == 400
    )
    assert session.execute(select(MailOutbox)).first() is None


def test_each_change_sends_one_mail_to_the_contact(
    client: TestClient, desk: Desk, mailbox: Mailbox
) -> None:
    r = client.post("/v1/servicerequests", json=refund_body(desk), headers=desk.h("admin_agent"))
    rid = r.json()["id"]
    client.patch(
        f"/v1/servicerequests/{rid}", json={"status": "in_progress"}, headers=desk.h("support")
    )
    client.patch(
        f"/v1/servicerequests/{rid}",
        json={"refund": {"decision": "reject", "reason": "Bought more than 30 days ago."}},
        headers=desk.h("support"),
    )
    messages = mailbox.to("ana@fabrikam.test")
    title = "Refund for the wrong edition"
    assert [" ".join(str(m["Subject"]).split()) for m in messages] == [
        f"Support request received: {title}",
        f"Support request updated: {title}",
        f"Support request updated: {title}",
    ]
    # Filed without a language: every mail is in English only.
    assert "Status: In progress" in Mailbox.text(messages[1])
    assert "Estado" not in Mailbox.text(messages[1])
    text = Mailbox.text(messages[2])
    assert "The refund was rejected: Bought more than 30 days ago." in text
    assert "rechazado" not in text


@pytest.mark.parametrize("how", ["agent-locale", "accept-language"])
def test_mail_is_written_in_the_language_of_whoever_filed_the_request(
    client: TestClient, desk: Desk, mailbox: Mailbox, session: Session, how: str
) -> None:
    if how == "agent-locale":
        r = client.post(
            "/v1/servicerequests/es-ES", json=refund_body(desk), headers=desk.h("admin_agent")
        )
    else:
        headers = {**desk.h("admin_agent"), "Accept-Language": "es-ES,es;q=0.9"}
        r = client.post("/v1/servicerequests", json=refund_body(desk), headers=headers)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    stored = session.execute(
        select(SupportRequest.contact_language).where(SupportRequest.id == uuid.UUID(rid))
    ).scalar_one()
    assert stored == "es"
    client.patch(
        f"/v1/servicerequests/{rid}", json={"status": "in_progress"}, headers=desk.h("support")
    )
    messages = mailbox.to("ana@fabrikam.test")
    title = "Refund for the wrong edition"
    assert [" ".join(str(m["Subject"]).split()) for m in messages] == [
        f"Solicitud de soporte recibida: {title}",
        f"Solicitud de soporte actualizada: {title}",
    ]
    assert "Hola, Ana" in Mailbox.text(messages[0])
    assert "Hello" not in Mailbox.text(messages[0])
    assert "Estado: En curso" in Mailbox.text(messages[1])
    assert "Status" not in Mailbox.text(messages[1])


def test_a_request_filed_on_the_spanish_portal_is_mailed_in_spanish(
    client: TestClient, desk: Desk, mailbox: Mailbox
) -> None:
    from tests.web import csrf_of, sign_in

    agent = desk.user("admin_agent")
    spanish = {"Accept-Language": "es-ES"}
    assert sign_in(client, agent.email, PASSWORD, **spanish).status_code == 303
    token = csrf_of(client.get("/partner/support/new", headers=spanish).text)
    r = client.post(
        "/partner/support/new",
        data={
            "csrf_token": token,
            "topic": "billing",
            "severity": "minimal",
            "title": "Pregunta sobre facturas",
            "description": "¿Dónde veo la factura?",
            "first_name": "Ana",
            "last_name": "García",
            "email": "ana.portal@fabrikam.test",
            "phone": "+34 600 000 000",
        },
        headers=spanish,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    [message] = mailbox.to("ana.portal@fabrikam.test")
    assert str(message["Subject"]) == "Solicitud de soporte recibida: Pregunta sobre facturas"


def test_the_send_mail_command_is_there() -> None:
    result = CliRunner().invoke(cli, ["support", "send-mail", "--help"])
    assert result.exit_code == 0
    assert "outbox" in result.output or "Send unsent" in result.output
