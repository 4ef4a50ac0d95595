"""The provider's Background jobs page in Chromium: mail that failed or may have gone out,
a month close that failed, a webhook delivery that gave up; the Provider admin finds the page
in the menu, sends the mail again (a real SMTP server receives it, same Message-ID) and posts
the webhook again (a real receiver gets it). A Support agent sees the page too, in Spanish."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Page, expect
from sqlalchemy import delete, select

from partnercenter import demo
from partnercenter.db import make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import User
from partnercenter.jobs.models import ScheduledRun
from partnercenter.jobs.tasks import CLEAN_UP, LATEST, MONTH_CLOSE
from partnercenter.support import mail
from partnercenter.support.models import MailOutbox
from partnercenter.webhooks import services as webhooks
from partnercenter.webhooks.models import WebhookRegistration
from tests.browser.conftest import LiveServer, sign_in, snap
from tests.jobs.live import wait_for
from tests.support.conftest import Mailbox, free_port
from tests.webhooks.test_webhooks import Receiver, receiver  # noqa: F401 - fixture

pytestmark = pytest.mark.browser

SUPPORT = "support@northwind.example"
GLOBAL_ADMIN = "global.admin@fabrikam.example"


@dataclass
class Troubles:
    ids: dict[str, str]
    mailbox: Mailbox


@pytest.fixture
def troubles(
    live_server: LiveServer,
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> Iterator[Troubles]:
    """A failed mail, an unconfirmed one, a retrying one, a failed month close and a webhook
    delivery that gave up; a real SMTP server on the live server's settings meanwhile."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    settings = live_server.settings
    saved = (settings.smtp_host, settings.smtp_port)
    settings.smtp_host, settings.smtp_port = "127.0.0.1", port
    now = datetime.now(UTC)
    sessions = make_session_factory(live_server.engine)
    ids: dict[str, str] = {}
    with sessions() as session:
        for name in ("failed", "unconfirmed", "retrying"):
            row = mail.enqueue_to(
                session,
                recipient=f"{name}@provider.example",
                subject=f"Jobs page: the {name} mail",
                body="Hello",
                now=now - timedelta(hours=2),
            )
            row.attempts = mail.MAX_ATTEMPTS if name == "failed" else 2
            row.last_error = "ConnectionRefusedError: [Errno 111] Connection refused"
            if name == "failed":
                row.failed_at = now
            elif name == "unconfirmed":
                row.attempts, row.failed_at, row.handed_over_at = 1, now, now
                row.last_error = mail.UNCONFIRMED
            else:
                row.next_attempt_at = now + timedelta(hours=1)
            ids[name] = str(row.id)
        session.add(
            ScheduledRun(
                job=MONTH_CLOSE,
                run_key="2000-01",
                started_at=now,
                finished_at=now,
                outcome="failed",
                error="OperationalError: the database server closed the connection",
            )
        )
        session.merge(
            ScheduledRun(
                job=CLEAN_UP, run_key=LATEST, started_at=now, finished_at=now, outcome="done"
            )
        )
        admin = session.execute(select(User).where(User.email == GLOBAL_ADMIN)).scalar_one()
        reg, _secret = webhooks.register(
            session,
            actor=identity.actor_for(admin),
            settings=settings,
            url=receiver.url,
            event_names=[webhooks.TEST_EVENT],
            now=now,
        )
        delivery = webhooks.send_test_event(session, tenant_id=admin.tenant_id, now=now)
        delivery.attempts, delivery.failed_at = webhooks.MAX_ATTEMPTS, now
        delivery.last_status, delivery.last_error = 503, "HTTP 503"
        ids["delivery"] = str(delivery.id)
        ids["registration"] = str(reg.id)
        session.commit()
    try:
        yield Troubles(ids, box)
    finally:
        settings.smtp_host, settings.smtp_port = saved
        controller.stop()
        with sessions() as session:
            session.execute(
                delete(MailOutbox).where(
                    MailOutbox.id.in_(
                        [uuid.UUID(ids[n]) for n in ("failed", "unconfirmed", "retrying")]
                    )
                )
            )
            session.execute(delete(ScheduledRun).where(ScheduledRun.run_key == "2000-01"))
            session.execute(delete(WebhookRegistration).where(WebhookRegistration.id == reg.id))
            session.commit()


def test_the_provider_sees_what_did_not_go_by_itself_and_sends_it_again(
    open_page: Callable[..., Page],
    live_server: LiveServer,
    troubles: Troubles,
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    ids = troubles.ids
    page = open_page()
    sign_in(page, live_server.url, demo.PROVIDER_ADMIN_EMAIL)
    page.locator("nav.sidenav").get_by_role("link", name="Background jobs").click()
    expect(page.get_by_role("heading", name="Background jobs", level=1)).to_be_visible()

    mails = page.get_by_test_id("unsent-mail")
    failed = mails.locator("tr", has_text="the failed mail")
    expect(failed).to_contain_text("Failed")
    expect(failed).to_contain_text("Connection refused")
    expect(failed).to_contain_text(str(mail.MAX_ATTEMPTS))
    unconfirmed = mails.locator("tr", has_text="the unconfirmed mail")
    expect(unconfirmed).to_contain_text("Unconfirmed: may have been delivered")
    expect(unconfirmed).to_contain_text("The recipient may receive it twice.")
    retrying = mails.locator("tr", has_text="the retrying mail")
    expect(retrying).to_contain_text("Retrying")
    expect(retrying.locator("td").nth(4)).to_contain_text("UTC")  # its next try

    runs = page.get_by_test_id("scheduled-runs")
    close = runs.locator("tr[data-job='month_close'][data-status='failed']")
    expect(close).to_contain_text("Month close")
    expect(close).to_contain_text("January 2000")
    expect(close).to_contain_text("closed the connection")
    expect(close.get_by_role("link")).to_have_attribute("href", "/provider/billing")
    expect(runs.locator("tr[data-job='clean_up']")).to_contain_text("Done")

    hooks = page.get_by_test_id("webhook-deliveries")
    delivery = hooks.locator("tr", has_text="test-created")
    expect(delivery).to_contain_text("Fabrikam")
    expect(delivery).to_contain_text("HTTP 503")
    expect(delivery).to_contain_text("Failed")
    snap(page, "background-jobs", phone=True)

    # Send the failed mail again: the SMTP server gets it, with the row's Message-ID.
    failed.get_by_role("button", name="Send again").click()
    expect(page.get_by_role("status")).to_contain_text("sent again within seconds")
    assert wait_for(lambda: len(troubles.mailbox.to("failed@provider.example")) == 1)
    message = troubles.mailbox.to("failed@provider.example")[0]
    assert message["Message-ID"] == f"<{ids['failed']}@partnercenter>"
    page.reload()
    expect(mails.locator("tr", has_text="the failed mail")).to_have_count(0)

    # Post the webhook again: the receiver gets the same delivery id.
    delivery.get_by_role("button", name="Post again").click()
    expect(page.get_by_role("status")).to_contain_text("posted again within seconds")
    assert wait_for(lambda: len(receiver.received) == 1)
    headers, _body = receiver.received[0]
    assert headers["x-partnercenter-delivery"] == ids["delivery"]
    page.reload()
    expect(page.get_by_text("Every webhook has been delivered.")).to_be_visible()
    snap(page, "background-jobs-after-retries")

    # Provider support sees the page; a partner's webhook is the Provider admin's to post.
    support = open_page("es-ES")
    sign_in(support, live_server.url, SUPPORT)
    support.locator("nav.sidenav").get_by_role("link", name="Trabajos en segundo plano").click()
    expect(support.get_by_role("heading", level=1)).to_have_text("Trabajos en segundo plano")
    expect(support.get_by_test_id("unsent-mail")).to_contain_text("Sin confirmar")
    expect(support.get_by_role("button", name="Volver a enviar").first).to_be_visible()
