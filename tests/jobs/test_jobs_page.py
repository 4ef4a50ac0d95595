"""The Background jobs page through the real app: who may open it and who may send again,
the form token, and an unknown mail or delivery."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from partnercenter.permissions import Role
from partnercenter.support import mail
from tests import web
from tests.factories import PASSWORD, Factory


def _signed_in(app: FastAPI, email: str) -> TestClient:
    c = TestClient(app, base_url="http://testserver")
    r = web.sign_in(c, email, PASSWORD)
    assert r.status_code == 303, r.text
    return c


def test_provider_people_open_the_page_and_only_they_send_again(
    app: FastAPI, session: Session, factory: Factory, clock: FrozenClock
) -> None:
    provider = factory.provider()
    admin = factory.user(provider, Role.PROVIDER_ADMIN)
    support = factory.user(provider, Role.SUPPORT_AGENT)
    partner_admin = factory.user(factory.partner(), Role.GLOBAL_ADMIN)
    row = mail.enqueue_to(
        session, recipient="ops@provider.example", subject="Held", body="Hi", now=clock.now()
    )
    row.attempts, row.failed_at, row.last_error = mail.MAX_ATTEMPTS, clock.now(), "refused"
    session.commit()

    as_support = _signed_in(app, support.email)
    page = as_support.get("/provider/jobs")
    assert page.status_code == 200
    assert 'href="/provider/jobs"' in page.text  # in the provider menu
    assert 'data-status="failed"' in page.text and "Held" in page.text
    token = web.csrf_of(page.text)
    # Provider support may send mail again, but not post a partner's webhook again.
    refused = as_support.post(
        f"/provider/jobs/webhooks/{uuid.uuid4()}/retry", data={"csrf_token": token}
    )
    assert refused.status_code == 403

    as_admin = _signed_in(app, admin.email)
    token = web.csrf_of(as_admin.get("/provider/jobs").text)
    no_token = as_admin.post(f"/provider/jobs/mail/{row.id}/retry", data={})
    assert no_token.status_code == 403
    unknown = as_admin.post(f"/provider/jobs/mail/{uuid.uuid4()}/retry", data={"csrf_token": token})
    assert unknown.status_code == 404
    missing_delivery = as_admin.post(
        f"/provider/jobs/webhooks/{uuid.uuid4()}/retry", data={"csrf_token": token}
    )
    assert missing_delivery.status_code == 404
    sent_again = as_admin.post(
        f"/provider/jobs/mail/{row.id}/retry",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert sent_again.status_code == 303
    assert sent_again.headers["location"] == "/provider/jobs?flash=mail-retried"
    session.refresh(row)
    assert row.failed_at is None  # tried again at once (no SMTP server here: retrying)
    assert row.attempts == 1 and row.next_attempt_at is not None

    as_partner = _signed_in(app, partner_admin.email)
    assert as_partner.get("/provider/jobs").status_code == 403
