"""HTML routes: sign-in and out, language switch, the three portals' homes, users, tokens."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from partnercenter import i18n
from partnercenter.deps import (
    SESSION_COOKIE,
    NowDep,
    RequestInfoDep,
    SecurityNowDep,
    SessionDep,
    SettingsDep,
    get_optional_user,
)
from partnercenter.errors import DomainError, Forbidden, NotFound, Unauthenticated
from partnercenter.i18n import N_, Message
from partnercenter.identity import services
from partnercenter.identity.errors import BadCredentials, SignInThrottled
from partnercenter.identity.models import User
from partnercenter.markets import all_countries
from partnercenter.permissions import ROLES_BY_KIND, Action, TenantKind
from partnercenter.routing import Route
from partnercenter.web import check_csrf, language, render

router = APIRouter(route_class=Route, include_in_schema=False)

PORTAL_OF = {
    TenantKind.PARTNER: "/partner",
    TenantKind.CUSTOMER: "/admin",
    TenantKind.PROVIDER: "/provider",
}

OptionalUser = Annotated[User | None, Depends(get_optional_user)]


class SignInRequired(Unauthenticated):
    """Raised by pages; turned into a redirect to the sign-in page."""


def _safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site (no scheme, host, backslash or control
    character, at most 2,000 characters), else None: ``next`` can never leave the site."""
    if (
        target
        and len(target) <= 2000
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
        and not urlsplit(target).netloc
        and not urlsplit(target).scheme
    ):
        return target
    return None


# Each portal by the name its header shows (the brand link), for messages that send people there.
PORTAL_NAMES: dict[TenantKind, str] = {
    TenantKind.PARTNER: N_("Partner Center"),
    TenantKind.CUSTOMER: N_("Admin Center"),
    TenantKind.PROVIDER: N_("Provider console"),
}


def portal_user(request: Request, user: User | None, kind: TenantKind) -> User:
    """The signed-in user of this portal's tenant kind, or a redirect / refusal."""
    if user is None or getattr(request.state, "web_session", None) is None:
        raise SignInRequired()
    if user.tenant.kind != kind:
        raise Forbidden(
            N_(
                "This portal is not for your account. Go to %(portal)s instead.",
                portal=Message(PORTAL_NAMES[user.tenant.kind], {}),
            )
        )
    return user


def require_page(action: Action, user: User) -> None:
    if not services.actor_for(user).can(action):
        raise Forbidden(N_("Your roles do not allow this page."), data=[{"action": action.value}])


@router.get("/")
def root(request: Request, user: OptionalUser) -> Response:
    if user is None or getattr(request.state, "web_session", None) is None:
        return RedirectResponse("/signin", status_code=303)
    return RedirectResponse(PORTAL_OF[user.tenant.kind], status_code=303)


@router.get("/signin")
def signin_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None and getattr(request.state, "web_session", None) is not None:
        return RedirectResponse(_safe_next(next) or PORTAL_OF[user.tenant.kind], status_code=303)
    return render(request, "signin.html", {"next": _safe_next(next) or ""})


@router.post("/signin")
def signin(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    security_now: SecurityNowDep,
    info: RequestInfoDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    _ = i18n.translations(getattr(request.state, "lang", None) or "en").gettext
    try:
        user = services.authenticate(
            session,
            settings=settings,
            email=email,
            password=password,
            now=now,
            request=info,
            channel="web",
            security_now=security_now,
        )
    except (BadCredentials, SignInThrottled) as exc:
        session.commit()  # failures stay on record even though sign-in fails
        response = render(
            request,
            "signin.html",
            {"error": exc, "email": email, "next": _safe_next(next) or ""},
            status=exc.status,
        )
        if isinstance(exc, SignInThrottled):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    token, _ws = services.start_web_session(session, user=user, settings=settings, now=security_now)
    session.commit()
    target = _safe_next(next) or PORTAL_OF[user.tenant.kind]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    return response


@router.post("/signout")
def signout(
    request: Request,
    session: SessionDep,
    now: NowDep,
    user: OptionalUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ws = getattr(request.state, "web_session", None)
    if ws is not None:
        check_csrf(request, csrf_token)
        services.end_web_session(session, ws=ws, now=now)
        session.commit()
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
def set_language(
    request: Request,
    user: OptionalUser,
    settings: SettingsDep,
    lang: Annotated[str, Form()] = "en",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check_csrf(request, csrf_token)
    chosen = lang if lang in i18n.SUPPORTED else i18n.DEFAULT
    response = RedirectResponse(_safe_next(next) or "/", status_code=303)
    response.set_cookie(
        i18n.LOCALE_COOKIE,
        chosen,
        max_age=365 * 86400,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    return response


@router.get("/partner")
def partner_home(request: Request, user: OptionalUser) -> Response:
    me = portal_user(request, user, TenantKind.PARTNER)
    return render(request, "partner/home.html", {"portal": "partner", "me": me})


@router.get("/admin")
def admin_home(request: Request, user: OptionalUser) -> Response:
    me = portal_user(request, user, TenantKind.CUSTOMER)
    return render(request, "admin/home.html", {"portal": "admin", "me": me})


@router.get("/provider")
def provider_home(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    me = portal_user(request, user, TenantKind.PROVIDER)
    partners = (
        services.list_partners(session)
        if services.actor_for(me).can(Action.MANAGE_PARTNERS)
        else []
    )
    return render(
        request, "provider/home.html", {"portal": "provider", "me": me, "partners": partners}
    )


# --- users of the signed-in user's own tenant -------------------------------------------

_MANAGE_USERS = {
    TenantKind.PARTNER: Action.MANAGE_PARTNER_USERS,
    TenantKind.PROVIDER: Action.MANAGE_PROVIDER_USERS,
}


def _users_page_user(request: Request, user: User | None, portal: str) -> User:
    kind = TenantKind.PARTNER if portal == "partner" else TenantKind.PROVIDER
    me = portal_user(request, user, kind)
    require_page(_MANAGE_USERS[kind], me)
    return me


def _render_users(
    request: Request,
    session: Session,
    me: User,
    portal: str,
    *,
    error: DomainError | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    users = services.list_users(session, tenant_id=me.tenant_id)
    return render(
        request,
        "users.html",
        {
            "portal": portal,
            "me": me,
            "users": users,
            "roles": ROLES_BY_KIND[me.tenant.kind],
            "error": error,
            "form": form,
        },
        status=error.status if error is not None else 200,
    )


def _target_user(session: Session, me: User, user_id: str) -> User:
    try:
        target_id = uuid.UUID(user_id)
    except ValueError:
        raise NotFound(N_("The user was not found.")) from None
    return services.get_user_in_tenant(session, tenant_id=me.tenant_id, user_id=target_id)


@router.get("/{portal}/users")
def users_page(portal: str, request: Request, user: OptionalUser, session: SessionDep) -> Response:
    if portal not in ("partner", "provider"):
        raise NotFound()
    me = _users_page_user(request, user, portal)
    return _render_users(request, session, me, portal)


@router.post("/{portal}/users")
def users_create(
    portal: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    email: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if portal not in ("partner", "provider"):
        raise NotFound()
    me = _users_page_user(request, user, portal)
    check_csrf(request, csrf_token)
    try:
        services.add_user(
            session,
            actor=services.actor_for(me),
            tenant=me.tenant,
            email=email,
            display_name=display_name,
            password=password,
            roles=roles or [],
            now=now,
            request=info,
        )
    except DomainError as exc:
        session.rollback()
        form = {"email": email, "display_name": display_name, "roles": roles or []}
        return _render_users(request, session, me, portal, error=exc, form=form)
    session.commit()
    return RedirectResponse(f"/{portal}/users?flash=created", status_code=303)


@router.post("/{portal}/users/{user_id}/roles")
def users_set_roles(
    portal: str,
    user_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    roles: Annotated[list[str] | None, Form()] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if portal not in ("partner", "provider"):
        raise NotFound()
    me = _users_page_user(request, user, portal)
    check_csrf(request, csrf_token)
    target = _target_user(session, me, user_id)
    try:
        services.update_user(
            session,
            user=target,
            actor=services.actor_for(me),
            now=now,
            request=info,
            roles=roles or [],
        )
    except DomainError as exc:
        session.rollback()
        return _render_users(request, session, me, portal, error=exc)
    session.commit()
    return RedirectResponse(f"/{portal}/users?flash=saved", status_code=303)


@router.post("/{portal}/users/{user_id}/remove")
def users_remove(
    portal: str,
    user_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Remove a user: it can no longer sign in; its sessions and tokens end, records stay."""
    if portal not in ("partner", "provider"):
        raise NotFound()
    me = _users_page_user(request, user, portal)
    check_csrf(request, csrf_token)
    target = _target_user(session, me, user_id)
    try:
        services.delete_user(
            session, user=target, actor=services.actor_for(me), now=now, request=info
        )
    except DomainError as exc:
        session.rollback()
        return _render_users(request, session, me, portal, error=exc)
    session.commit()
    return RedirectResponse(f"/{portal}/users?flash=removed", status_code=303)


# --- partners (provider console) -----------------------------------------------------------


def _render_partners(
    request: Request,
    session: Session,
    me: User,
    *,
    error: DomainError | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    partners = services.list_partners(session)
    counts = services.count_users(session, [p.id for p in partners])
    locale = i18n.babel_locale(language(request))
    countries = sorted(
        ((code, locale.territories.get(code, c.name)) for code, c in all_countries().items()),
        key=lambda pair: pair[1],
    )
    return render(
        request,
        "provider/partners.html",
        {
            "portal": "provider",
            "me": me,
            "partners": partners,
            "user_counts": counts,
            "countries": countries,
            "country_names": dict(countries),
            "error": error,
            "form": form or {},
        },
        status=error.status if error is not None else 200,
    )


def _partners_page_user(request: Request, user: User | None) -> User:
    me = portal_user(request, user, TenantKind.PROVIDER)
    require_page(Action.MANAGE_PARTNERS, me)
    return me


@router.get("/provider/partners")
def partners_page(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    me = _partners_page_user(request, user)
    return _render_partners(request, session, me)


@router.post("/provider/partners")
def partners_create(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    company_name: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "",
    admin_email: Annotated[str, Form()] = "",
    admin_name: Annotated[str, Form()] = "",
    admin_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Create a partner and its first Global admin."""
    me = _partners_page_user(request, user)
    check_csrf(request, csrf_token)
    try:
        services.create_partner_with_admin(
            session,
            actor=services.actor_for(me),
            name=company_name,
            country=country,
            admin_email=admin_email,
            admin_name=admin_name,
            admin_password=admin_password,
            now=now,
            request=info,
        )
    except DomainError as exc:
        session.rollback()
        form = {
            "company_name": company_name,
            "country": country,
            "admin_email": admin_email,
            "admin_name": admin_name,
        }
        return _render_partners(request, session, me, error=exc, form=form)
    session.commit()
    return RedirectResponse("/provider/partners?flash=created", status_code=303)


# --- named API tokens --------------------------------------------------------------------


def _any_portal_user(request: Request, user: User | None) -> User:
    if user is None or getattr(request.state, "web_session", None) is None:
        raise SignInRequired()
    return user


@router.get("/account/tokens")
def tokens_page(request: Request, user: OptionalUser, session: SessionDep) -> Response:
    me = _any_portal_user(request, user)
    tokens = services.list_named_tokens(session, user_id=me.id)
    return render(
        request,
        "tokens.html",
        {"portal": PORTAL_OF[me.tenant.kind].strip("/"), "me": me, "tokens": tokens},
    )


@router.post("/account/tokens")
def tokens_create(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    security_now: SecurityNowDep,
    info: RequestInfoDep,
    name: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = _any_portal_user(request, user)
    check_csrf(request, csrf_token)
    try:
        secret, _token = services.create_named_token(
            session, user=me, name=name, now=now, request=info, security_now=security_now
        )
    except DomainError as exc:  # shown beside the field, the form kept
        session.rollback()
        return render(
            request,
            "tokens.html",
            {
                "portal": PORTAL_OF[me.tenant.kind].strip("/"),
                "me": me,
                "tokens": services.list_named_tokens(session, user_id=me.id),
                "error": exc,
                "name": name,
            },
            status=exc.status,
        )
    session.commit()
    tokens = services.list_named_tokens(session, user_id=me.id)
    response = render(
        request,
        "tokens.html",
        {
            "portal": PORTAL_OF[me.tenant.kind].strip("/"),
            "me": me,
            "tokens": tokens,
            "new_secret": secret,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/tokens/{token_id}/revoke")
def tokens_revoke(
    token_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = _any_portal_user(request, user)
    check_csrf(request, csrf_token)
    try:
        tid = uuid.UUID(token_id)
    except ValueError:
        raise NotFound() from None
    services.revoke_token(session, user=me, token_id=tid, now=now, request=info)
    session.commit()
    return RedirectResponse("/account/tokens?flash=revoked", status_code=303)


def _same_origin_referer(request: Request) -> str | None:
    """The path and query of the Referer when it is a page of this site, else None."""
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.scheme not in ("http", "https") or parts.netloc != request.headers.get("host", ""):
        return None
    target = parts.path + ("?" + parts.query if parts.query else "")
    return _safe_next(target)


def signin_redirect(request: Request) -> Response:
    """Send a browser whose session is missing or expired to sign-in, then back.

    After signing in the browser GETs ``next``: for a GET that is the page itself; for a
    form that was POSTed (which has no page at its own address) it is the page the form was
    on, from a same-origin Referer, else the home of the portal the form belongs to.
    """
    if request.method in ("GET", "HEAD"):
        target: str | None = request.url.path
        if request.url.query:
            target = f"{target}?{request.url.query}"
    else:
        target = _same_origin_referer(request)
        if target is None:
            first = request.url.path.strip("/").split("/", 1)[0]
            target = f"/{first}" if first in ("partner", "admin", "provider") else "/"
    return RedirectResponse(f"/signin?next={quote(_safe_next(target) or '/')}", status_code=303)
