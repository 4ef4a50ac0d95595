"""Health, readiness, Prometheus metrics and the sandbox clock."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from partnercenter.clock import SandboxClock, utc
from partnercenter.context import Actor
from partnercenter.deps import SessionDep, require
from partnercenter.errors import InvalidInput, NotFound, Unauthenticated
from partnercenter.i18n import N_
from partnercenter.identity.models import SandboxClockState
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.schemas import RequestModel

router = APIRouter(
    route_class=Route,
)


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["operations"],
    responses={503: {"description": "The database does not answer"}},
)
def readyz(session: SessionDep, request: Request, response: Response) -> dict[str, Any]:
    """The database answers; ``degraded`` (still 200) with the reasons when something needs care.

    A month close that stopped midway (left ``closing``) makes the deployment ``degraded``:
    it still serves every request, so it stays in its load balancer, but the reason tells the
    operator to finish the close (``partnercenter billing close YYYY-MM``).
    """
    from partnercenter.billing import services as billing

    try:
        session.execute(text("SELECT 1"))
    except Exception:
        response.status_code = 503
        return {"status": "unavailable", "database": "unreachable"}
    clock = request.app.state.clock
    if isinstance(clock, SandboxClock):
        state = session.get(SandboxClockState, 1)
        clock.set_offset(timedelta(seconds=state.offset_seconds if state else 0))
    stuck = billing.stuck_closes(session, now=clock.now())
    if stuck:
        return {
            "status": "degraded",
            "database": "ok",
            "billing": "stuck_close",
            "reasons": [s.describe() for s in stuck],
        }
    return {"status": "ok", "database": "ok"}


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Metrics"}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: open in development; in production only with the metrics token.

    Production without ``PARTNERCENTER_METRICS_TOKEN`` answers 404; with it, the scraper sends
    ``Authorization: Bearer <token>`` (401 otherwise).
    """
    settings = request.app.state.settings
    if settings.production:
        if not settings.metrics_token:
            raise NotFound()
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), settings.metrics_token.encode()
        ):
            raise Unauthenticated(N_("The metrics need the metrics bearer token."))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def sandbox_only(request: Request) -> None:
    """Outside sandbox mode the sandbox clock does not exist: 404 for everyone, signed in or not."""
    if not isinstance(request.app.state.clock, SandboxClock):
        raise NotFound("There is no sandbox clock: this deployment is not in sandbox mode.")


class ClockMove(RequestModel):
    now: datetime | None = Field(default=None, description="Set the clock to this instant.")
    advanceDays: float | None = Field(default=None, ge=0, le=3660)


class ClockState(BaseModel):
    now: datetime
    offsetSeconds: float


def _sandbox_clock(
    request: Request, session: Session
) -> tuple[SandboxClock, SandboxClockState | None, timedelta]:
    """The app's sandbox clock, its stored row (``None`` before the first move) and the offset
    the row holds (zero without one); raises ``NotFound`` outside sandbox mode."""
    clock = request.app.state.clock
    if not isinstance(clock, SandboxClock):
        raise NotFound()
    state = session.get(SandboxClockState, 1)
    return clock, state, timedelta(seconds=state.offset_seconds if state else 0)


@router.post(
    "/v1/sandbox/clock",
    tags=["sandbox"],
    response_model=ClockState,
    dependencies=[Depends(sandbox_only)],
)
def move_sandbox_clock(
    body: ClockMove,
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Action.MOVE_SANDBOX_CLOCK))],
) -> ClockState:
    """Move the sandbox clock forward (sandbox mode only; 404 otherwise)."""
    clock, state, offset = _sandbox_clock(request, session)
    real_now = clock.now() - clock.offset
    current = real_now + offset
    if body.now is not None:
        target = utc(body.now)
    elif body.advanceDays is not None:
        target = current + timedelta(days=body.advanceDays)
    else:
        raise InvalidInput("Give either 'now' or 'advanceDays'.")
    if target < current:
        raise InvalidInput("The sandbox clock only moves forward.", source="now")
    new_offset = (target - real_now).total_seconds()
    if state is None:
        session.add(SandboxClockState(id=1, offset_seconds=new_offset, updated_at=real_now))
    else:
        state.offset_seconds = new_offset
        state.updated_at = real_now
    session.commit()
    clock.set_offset(timedelta(seconds=new_offset))
    return ClockState(now=target, offsetSeconds=new_offset)


@router.get(
    "/v1/sandbox/clock",
    tags=["sandbox"],
    response_model=ClockState,
    dependencies=[Depends(sandbox_only)],
)
def read_sandbox_clock(
    request: Request,
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Action.MOVE_SANDBOX_CLOCK))],
) -> ClockState:
    """The sandbox clock's current time (sandbox mode only)."""
    clock, _, offset = _sandbox_clock(request, session)
    clock.set_offset(offset)
    return ClockState(now=clock.now(), offsetSeconds=offset.total_seconds())
