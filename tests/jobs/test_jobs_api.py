"""The provider sees mail that could not be sent (failed first) and sends it again."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity.models import User
from partnercenter.permissions import Role
from partnercenter.support import mail
from partnercenter.support.models import MailOutbox
from tests.factories import Factory


def test_failed_mail_is_listed_for_the_provider_and_can_be_retried(
    client: TestClient,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    factory: Factory,
    auth_headers: Callable[[User], dict[str, str]],
) -> None:
    settings.smtp_host, settings.smtp_port = "127.0.0.1", 9  # nothing listens: every try fails
    row = mail.enqueue_to(
        session, recipient="ops@provider.example", subject="Hello", body="Hi", now=clock.now()
    )
    session.commit()
    for _ in range(mail.MAX_ATTEMPTS):
        mail.deliver_pending(session_factory, settings, now=clock.now())
        clock.advance(hours=1)
    session.refresh(row)
    assert row.failed_at is not None and row.attempts == mail.MAX_ATTEMPTS
    # Given up: no further attempt however long one waits.
    clock.advance(days=1)
    assert mail.deliver_pending(session_factory, settings, now=clock.now()) == 0

    support = auth_headers(factory.user(factory.provider(), Role.SUPPORT_AGENT))
    items = client.get("/v1/jobs/mail", headers=support).json()["items"]
    assert [(i["id"], i["status"], i["attempts"]) for i in items] == [
        (str(row.id), "failed", mail.MAX_ATTEMPTS)
    ]
    assert "Connection" in items[0]["lastError"] or "refused" in items[0]["lastError"].lower()

    r = client.post(f"/v1/jobs/mail/{row.id}/retry", headers=support)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    session.refresh(row)
    assert row.failed_at is None and row.attempts == 1  # tried again at once, failed again

    partner_admin = auth_headers(factory.user(factory.partner(), Role.ADMIN_AGENT))
    assert client.get("/v1/jobs/mail", headers=partner_admin).status_code == 403
    missing = client.post(
        "/v1/jobs/mail/00000000-0000-0000-0000-000000000000/retry", headers=support
    )
    assert missing.status_code == 404 and missing.json()["code"] == 10404
    assert session.get(MailOutbox, row.id) is not None
