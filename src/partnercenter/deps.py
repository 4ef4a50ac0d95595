"""Typed dependencies that make routes one-liners: session, clock, current user, permission."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from partnercenter.clock import Clock, SandboxClock
from partnercenter.config import Settings
from partnercenter.context import Actor, RequestInfo
from partnercenter.db import holds_transaction
from partnercenter.errors import CsrfFailed, Forbidden, Unauthenticated
from partnercenter.i18n import N_
from partnercenter.identity import services as identity
from partnercenter.identity.models import SandboxClockState, User, WebSession
from partnercenter.permissions import Action

SESSION_COOKIE = "pc_session"


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in a
# worker thread, a hop per dependency per request that costs more than the work itself.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; the route commits, teardown only rolls back and closes.

    On PostgreSQL the transaction begins at the request's first write
    (``db.lazy_transactions``): a read runs its statements alone and leaves nothing to end.
    Opening a session does no I/O, so it happens on the event loop. Closing one that still
    holds a transaction (a failed write, or a read on SQLite) rolls back over the network:
    that runs in a worker thread. Otherwise the session is closed here, without a thread hop.
    """
    session: Session = request.app.state.request_session_factory()
    try:
        yield session
    finally:
        if holds_transaction(session):
            await run_in_threadpool(_end, session)
        else:
            session.close()


def _end(session: Session) -> None:
    session.rollback()
    session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


async def get_clock(request: Request, session: SessionDep) -> Clock:
    clock: Clock = request.app.state.clock
    if isinstance(clock, SandboxClock):
        # Other app processes may have moved the sandbox clock: read the shared offset.
        await run_in_threadpool(_read_sandbox_offset, session, clock)
    return clock


def _read_sandbox_offset(session: Session, clock: SandboxClock) -> None:
    state = session.get(SandboxClockState, 1)
    clock.set_offset(timedelta(seconds=state.offset_seconds if state else 0))


ClockDep = Annotated[Clock, Depends(get_clock)]


async def get_now(clock: ClockDep) -> datetime:
    return clock.now()


NowDep = Annotated[datetime, Depends(get_now)]


async def get_security_now(request: Request) -> datetime:
    """Real time for tokens, sessions, links and throttles; never the sandbox clock."""
    clock: Clock = request.app.state.security_clock
    return clock.now()


SecurityNowDep = Annotated[datetime, Depends(get_security_now)]


async def get_request_info(request: Request) -> RequestInfo:
    return RequestInfo(
        client_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        correlation_id=getattr(request.state, "correlation_id", None),
    )


RequestInfoDep = Annotated[RequestInfo, Depends(get_request_info)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def get_optional_user(request: Request, session: SessionDep, now: SecurityNowDep) -> User | None:
    """The user of the bearer token, or of the session cookie for pages."""
    cached: User | None = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    user: User | None = None
    token = _bearer(request)
    if token is not None:
        actor: Actor | None = getattr(request.state, "actor", None)
        if actor is not None:  # resolved for this request already (get_optional_actor)
            user = session.get(User, actor.user_id)
        else:
            user = identity.resolve_token(session, secret=token, now=now)
        if user is None:
            raise Unauthenticated("The bearer token is invalid, expired or revoked.")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            ws = identity.resolve_web_session(session, token=cookie, now=now)
            request.state.session_expired = ws is None
            if ws is not None:
                _check_api_csrf(request, ws)
                user = session.get(User, ws.user_id)
                if user is not None and not user.is_active:
                    user = None
                request.state.web_session = ws
    request.state.user = user
    return user


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"


def _check_api_csrf(request: Request, ws: WebSession) -> None:
    """An API write carried by the browser's session cookie needs the session's CSRF token.

    The token goes in the ``X-CSRF-Token`` header, which another site cannot set on a
    cross-site request; a foreign ``Origin`` is refused as well. Bearer tokens are not
    affected (a browser never sends them by itself); pages check their forms' tokens.
    """
    if request.method in SAFE_METHODS or not request.url.path.startswith("/v1/"):
        return
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise CsrfFailed()
    given = request.headers.get(CSRF_HEADER, "")
    if not given or not hmac.compare_digest(given.encode(), ws.csrf_token.encode()):
        raise CsrfFailed(N_("An API write with the session cookie needs the X-CSRF-Token header."))


async def get_current_user(user: Annotated[User | None, Depends(get_optional_user)]) -> User:
    if user is None:
        raise Unauthenticated()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_optional_actor(request: Request, session: SessionDep) -> Actor | None:
    """The signed-in actor: of the bearer token, or of the session cookie for pages.

    A bearer token is resolved in one statement straight into an :class:`Actor`
    (``identity.resolve_token_actor``), without building the user as an ORM object; routes
    that need the ``User`` itself depend on :func:`get_optional_user` instead.

    Raises :class:`Unauthenticated` (401) for a bearer token that is invalid, expired or
    revoked; None when no credentials came.
    """
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    # Real time, as get_security_now gives it (read here: a dependency less to solve).
    now = request.app.state.security_clock.now()
    token = _bearer(request)
    if token is None:
        user = get_optional_user(request, session, now)
        return identity.actor_for(user) if user is not None else None
    actor = identity.resolve_token_actor(session, secret=token, now=now)
    if actor is None:
        raise Unauthenticated("The bearer token is invalid, expired or revoked.")
    request.state.actor = actor
    return actor


async def get_actor(actor: Annotated[Actor | None, Depends(get_optional_actor)]) -> Actor:
    """The signed-in actor, or 401."""
    if actor is None:
        raise Unauthenticated()
    return actor


ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_web_session(request: Request, user: CurrentUser) -> WebSession:
    ws: WebSession | None = getattr(request.state, "web_session", None)
    if ws is None:
        raise Unauthenticated("This page needs a browser session.")
    return ws


def require(action: Action) -> Callable[[Actor | None], Awaitable[Actor]]:
    """A dependency that refuses (403) unless the actor's roles allow ``action``."""

    # On get_optional_actor directly, not through get_actor: a dependency less to solve.
    async def _check(actor: Annotated[Actor | None, Depends(get_optional_actor)]) -> Actor:
        if actor is None:
            raise Unauthenticated()
        if not actor.can(action):
            raise Forbidden(data=[{"action": action.value}])
        return actor

    _check.__name__ = f"require_{action.name.lower()}"
    return _check


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """Parse an id from a path; anything that is not a UUID is simply not found."""
    from partnercenter.errors import NotFound

    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"The {what} was not found.") from None
