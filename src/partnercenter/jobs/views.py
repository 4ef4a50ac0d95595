"""HTML routes: the provider's Background jobs page.

What did not go by itself, in one place: support and provider mail not sent yet (failed and
unconfirmed first), the scheduled runs (each month close, the latest low-stock check and
clean-up) with their errors, and every partner's webhook deliveries that failed or are being
retried, each with its last error, attempts and next try; mail and webhook deliveries can be
sent again from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.deps import NowDep, SessionDep, parse_uuid
from partnercenter.identity.models import User
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.jobs.errors import MailNotFound
from partnercenter.jobs.models import ScheduledRun
from partnercenter.jobs.tasks import MONTH_CLOSE
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route
from partnercenter.support import mail
from partnercenter.support.models import MailOutbox
from partnercenter.web import check_csrf, render
from partnercenter.webhooks import services as webhooks
from partnercenter.webhooks.errors import DeliveryNotFound
from partnercenter.webhooks.models import WebhookDelivery

router = APIRouter(route_class=Route, include_in_schema=False)

PAGE = "/provider/jobs"


def _provider_user(request: Request, user: User | None) -> User:
    me = portal_user(request, user, TenantKind.PROVIDER)
    require_page(Action.VIEW_BACKGROUND_JOBS, me)
    return me


@dataclass(frozen=True)
class OutgoingRow:
    """A row of the mail or the webhook table: what is not sent yet and what comes next."""

    item: MailOutbox | WebhookDelivery
    status: str
    next_try: datetime | None  # the next attempt the jobs make by themselves
    partner: str = ""  # a webhook delivery's partner (its name)
    receiver: str = ""  # a webhook delivery's registration URL


def outgoing_row(
    item: MailOutbox | WebhookDelivery, status: str, *, partner: str = "", receiver: str = ""
) -> OutgoingRow:
    """Shape a row of the mail or the webhook table.

    ``status`` is the mail's (``support.mail.status_of``) or the delivery's (``failed`` or
    ``retrying``); the next try is shown only while retrying: otherwise nothing is due.
    """
    next_try = item.next_attempt_at if status == "retrying" else None
    return OutgoingRow(item, status, next_try, partner, receiver)


def run_state(run: ScheduledRun) -> str:
    """``failed`` (the last run's error is kept), ``done`` or ``running``."""
    if run.error:
        return "failed"
    return "done" if run.finished_at is not None else "running"


@router.get(PAGE)
def jobs_page(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    """The Background jobs page."""
    _provider_user(request, user)
    runs = list(
        session.execute(
            select(ScheduledRun)
            .order_by(ScheduledRun.error.is_(None), ScheduledRun.started_at.desc())
            .limit(60)
        ).scalars()
    )
    unsent = mail.unsent(session)
    return render(
        request,
        "provider/jobs.html",
        {
            "portal": "provider",
            "mails": [outgoing_row(m, mail.status_of(m)) for m in unsent],
            "runs": [(r, run_state(r)) for r in runs],
            "month_close": MONTH_CLOSE,
            "deliveries": [
                outgoing_row(
                    d,
                    "failed" if d.failed_at is not None else "retrying",
                    partner=partner,
                    receiver=url,
                )
                for d, partner, url in webhooks.troubled_deliveries(session)
            ],
        },
    )


def _check_retry(request: Request, user: User | None, action: Action) -> None:
    """A provider person allowed ``action``; raises otherwise (the route checks the form's
    token itself, where ``tests/test_web_security.py`` finds it)."""
    require_page(action, _provider_user(request, user))


def _sent_again(
    request: Request,
    session: Session,
    background: BackgroundTasks,
    now: datetime,
    *,
    runner_has_it: Callable[[], bool],
    deliver_pending: Callable[..., object],
    flash: str,
) -> Response:
    """Commit the retry; without a runner to pick it up (``runner_has_it`` says), send it
    after the response with ``deliver_pending``; back to the page with ``flash``."""
    session.commit()
    state = request.app.state
    if not runner_has_it():
        background.add_task(deliver_pending, state.session_factory, state.settings, now=now)
    return RedirectResponse(f"{PAGE}?flash={flash}", status_code=303)


@router.post(PAGE + "/mail/{mail_id}/retry")
def retry_mail(
    mail_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    background: BackgroundTasks,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Send a mail again now (the background jobs pick it up within seconds)."""
    _check_retry(request, user, Action.RETRY_MAIL)
    check_csrf(request, csrf_token)
    if mail.retry(session, mail_id=parse_uuid(mail_id, "mail")) is None:
        raise MailNotFound(source="mailId")
    return _sent_again(
        request,
        session,
        background,
        now,
        runner_has_it=request.app.state.jobs.mail_written,
        deliver_pending=mail.deliver_pending,
        flash="mail-retried",
    )


@router.post(PAGE + "/webhooks/{delivery_id}/retry")
def retry_delivery(
    delivery_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    background: BackgroundTasks,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Post a webhook delivery again now, with a fresh set of attempts."""
    _check_retry(request, user, Action.RETRY_WEBHOOK_DELIVERY)
    check_csrf(request, csrf_token)
    found = webhooks.retry_delivery(session, delivery_id=parse_uuid(delivery_id, "delivery"))
    if found is None:
        raise DeliveryNotFound(source="deliveryId")
    return _sent_again(
        request,
        session,
        background,
        now,
        runner_has_it=request.app.state.jobs.webhooks_written,
        deliver_pending=webhooks.deliver_pending,
        flash="webhook-retried",
    )
