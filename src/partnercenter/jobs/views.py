"""HTML routes: the provider's Background jobs page.

What did not go by itself, in one place: support and provider mail not sent yet (failed and
unconfirmed first), the scheduled runs (each month close, the latest low-stock check and
clean-up) with their errors, and every partner's webhook deliveries that failed or are being
retried, each with its last error, attempts and next try; mail and webhook deliveries can be
sent again from here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from partnercenter.deps import NowDep, SessionDep, parse_uuid
from partnercenter.identity.models import User
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.jobs.errors import MailNotFound
from partnercenter.jobs.models import ScheduledRun
from partnercenter.jobs.tasks import MONTH_CLOSE
from partnercenter.permissions import Action, TenantKind
from partnercenter.support import mail
from partnercenter.web import check_csrf, render
from partnercenter.webhooks import services as webhooks
from partnercenter.webhooks.errors import DeliveryNotFound

router = APIRouter(include_in_schema=False)

PAGE = "/provider/jobs"


def _provider_user(request: Request, user: User | None) -> User:
    me = portal_user(request, user, TenantKind.PROVIDER)
    require_page(Action.VIEW_BACKGROUND_JOBS, me)
    return me


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
            "mails": [(m, mail.status_of(m)) for m in unsent],
            "runs": [(r, run_state(r)) for r in runs],
            "month_close": MONTH_CLOSE,
            "deliveries": [
                (d, partner, url, "failed" if d.failed_at is not None else "retrying")
                for d, partner, url in webhooks.troubled_deliveries(session)
            ],
        },
    )


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
    me = _provider_user(request, user)
    require_page(Action.RETRY_MAIL, me)
    check_csrf(request, csrf_token)
    if mail.retry(session, mail_id=parse_uuid(mail_id, "mail")) is None:
        raise MailNotFound(source="mailId")
    session.commit()
    state = request.app.state
    if not state.jobs.mail_written():  # no runner: send it after the response
        background.add_task(mail.deliver_pending, state.session_factory, state.settings, now=now)
    return RedirectResponse(f"{PAGE}?flash=mail-retried", status_code=303)


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
    me = _provider_user(request, user)
    require_page(Action.RETRY_WEBHOOK_DELIVERY, me)
    check_csrf(request, csrf_token)
    found = webhooks.retry_delivery(session, delivery_id=parse_uuid(delivery_id, "delivery"))
    if found is None:
        raise DeliveryNotFound(source="deliveryId")
    session.commit()
    state = request.app.state
    if not state.jobs.webhooks_written():  # no runner: post it after the response
        background.add_task(
            webhooks.deliver_pending, state.session_factory, state.settings, now=now
        )
    return RedirectResponse(f"{PAGE}?flash=webhook-retried", status_code=303)
