"""Background jobs for the provider: mail not sent yet (failed first), retrying it, and the
scheduled runs (month closes) with their outcome."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from sqlalchemy import select

from partnercenter.context import Actor
from partnercenter.deps import NowDep, SessionDep, require
from partnercenter.jobs.errors import MailNotFound
from partnercenter.jobs.models import ScheduledRun
from partnercenter.jobs.schemas import ScheduledRunOut, UnsentMail
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.support import mail
from partnercenter.support.models import MailOutbox

router = APIRouter(route_class=Route, tags=["background jobs"])


def _mail_out(row: MailOutbox) -> UnsentMail:
    return UnsentMail(
        id=row.id,
        recipient=row.recipient,
        subject=row.subject,
        createdAt=row.created_at,
        attempts=row.attempts,
        lastError=row.last_error,
        nextAttemptAt=row.next_attempt_at,
        failedAt=row.failed_at,
        status=mail.status_of(row),
    )


@router.get("/v1/jobs/mail", response_model=dict[str, list[UnsentMail]])
def list_unsent_mail(
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Action.VIEW_BACKGROUND_JOBS))],
) -> dict[str, list[UnsentMail]]:
    """Mail not sent yet: those that gave up first (``status: failed``), then the waiting."""
    return {"items": [_mail_out(r) for r in mail.unsent(session)]}


@router.post("/v1/jobs/mail/{mail_id}/retry", response_model=UnsentMail)
def retry_mail(
    mail_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    now: NowDep,
    background: BackgroundTasks,
    actor: Annotated[Actor, Depends(require(Action.RETRY_MAIL))],
) -> UnsentMail:
    """Send an unsent mail again now, with a fresh set of attempts (404 once sent)."""
    row = mail.retry(session, mail_id=mail_id)
    if row is None:
        raise MailNotFound(source="mailId")
    out = _mail_out(row)
    session.commit()
    if not request.app.state.jobs.mail_written():  # no runner: send it after the response
        state = request.app.state
        background.add_task(mail.deliver_pending, state.session_factory, state.settings, now=now)
    return out


@router.get("/v1/jobs/scheduled", response_model=dict[str, list[ScheduledRunOut]])
def list_scheduled_runs(
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Action.VIEW_BACKGROUND_JOBS))],
) -> dict[str, list[ScheduledRunOut]]:
    """The scheduled runs (the automatic month close of each month), newest first."""
    rows = session.execute(
        select(ScheduledRun).order_by(ScheduledRun.started_at.desc()).limit(200)
    ).scalars()
    return {
        "items": [
            ScheduledRunOut(
                job=r.job,
                key=r.run_key,
                startedAt=r.started_at,
                finishedAt=r.finished_at,
                outcome=r.outcome,
            )
            for r in rows
        ]
    }
