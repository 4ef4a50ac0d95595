"""Server-rendered pages: templates, language, CSRF protection and flash messages."""

from __future__ import annotations

import hmac
import re
import secrets
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from partnercenter import i18n, labels, markets
from partnercenter.errors import CsrfFailed, Unauthenticated
from partnercenter.permissions import ROLE_LABELS, Action, allowed

PRE_SESSION_CSRF_COOKIE = "pc_csrf"

_templates_dir = str(resources.files("partnercenter").joinpath("templates"))
env = Environment(
    loader=FileSystemLoader(_templates_dir),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)
env.globals["ROLE_LABELS"] = ROLE_LABELS

_QUOTED = re.compile(r"&#39;((?:(?!&#39;)[^\s])(?:(?!&#39;).){0,199})&#39;")


def code_quoted(text: str) -> Markup:
    """``text`` escaped, each '…'-quoted literal (a document's own code, such as 'P1Y' or
    'perpetual_software') shown as ``<code>`` (the import page's error messages)."""
    escaped = str(escape(text))  # quotes become &#39;; the literal inside is escaped too
    return Markup(_QUOTED.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))  # noqa: S704


env.filters["code_quoted"] = code_quoted
env.globals["Action"] = Action


def language(request: Request) -> str:
    cached: str | None = getattr(request.state, "lang", None)
    if cached:
        return cached
    lang = i18n.choose(
        request.cookies.get(i18n.LOCALE_COOKIE), request.headers.get("accept-language")
    )
    request.state.lang = lang
    return lang


def gettext_for(request: Request) -> Any:
    return i18n.translations(language(request)).gettext


def newstyle(translations: Any, lang: str = i18n.DEFAULT) -> tuple[Any, Any]:
    """gettext/ngettext for templates that take their placeholders as keywords.

    ``_("Welcome, %(name)s.", name=user.display_name)`` translates first, then formats, so
    the catalog holds the sentence with its placeholder. Values are escaped by autoescape.
    A :class:`~partnercenter.i18n.Message` (an error description with its values) is
    translated with its values formatted for the reader.
    """

    def gettext(message: str, **variables: Any) -> str:
        if not message:
            return ""
        if callable(getattr(message, "localize", None)):
            return i18n.localize(message, lang)
        text: str = translations.gettext(message)
        if not variables:
            return text
        return text % {k: i18n.localize_value(v, lang) for k, v in variables.items()}

    def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
        text: str = translations.ngettext(singular, plural, n)
        return text % {"num": n, **variables}

    return gettext, ngettext


def csrf_token(request: Request) -> str:
    """The token forms must send back: the session's, or a pre-session cookie's."""
    ws = getattr(request.state, "web_session", None)
    if ws is not None:
        token: str = ws.csrf_token
        return token
    existing = request.cookies.get(PRE_SESSION_CSRF_COOKIE) or getattr(
        request.state, "new_csrf_cookie", None
    )
    if existing:
        return str(existing)
    fresh = secrets.token_urlsafe(32)
    request.state.new_csrf_cookie = fresh
    return fresh


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form unless it carries this browser's token and comes from this site.

    Raises :class:`CsrfFailed` (403); when the browser still sends a session cookie whose
    session has expired, :class:`Unauthenticated` instead, which pages turn into sign-in.
    """
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise CsrfFailed()
    ws = getattr(request.state, "web_session", None)
    expected = ws.csrf_token if ws is not None else request.cookies.get(PRE_SESSION_CSRF_COOKIE)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        if ws is None and getattr(request.state, "session_expired", False):
            # The form was filled in a session that has since expired: sign in again and
            # come back to the form's page rather than a bare "form has expired".
            raise Unauthenticated()
        raise CsrfFailed()


def _finish(request: Request, response: Response) -> Response:
    fresh = getattr(request.state, "new_csrf_cookie", None)
    if fresh:
        settings = request.app.state.settings
        response.set_cookie(
            PRE_SESSION_CSRF_COOKIE,
            fresh,
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
            path="/",
        )
    return response


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    user = getattr(request.state, "user", None)
    lang = language(request)
    translations = i18n.translations(lang)
    roles = set(user.roles) if user is not None else set()
    gettext, ngettext = newstyle(translations, lang)

    def can(action: Action) -> bool:
        return user is not None and allowed(user.tenant.kind, roles, action)

    ctx: dict[str, Any] = {
        "request": request,
        "user": user,
        "lang": lang,
        "can": can,
        "csrf_token": csrf_token(request),
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "flash": request.query_params.get("flash"),
        "here": here(request),
        "fmt_number": lambda value: i18n.format_number(value, lang),
        "fmt_money": lambda value, currency="": i18n.format_money(value, currency, lang),
        "fmt_minor": lambda minor, currency: _minor_money(minor, currency, lang),
        "fmt_day": lambda value: i18n.format_date(value, lang),
        "fmt_moment": lambda value, seconds=False: i18n.format_datetime(
            value, lang, seconds=seconds
        ),
        "fmt_month": lambda value, short=False: i18n.format_month(value, lang, short=short),
        "fmt_country": lambda code: markets.country_name(code, lang),
        "label": lambda kind, value: gettext(labels.label(kind, value)),
        "line_no": labels.line_number,
        "country_options": markets.country_options(lang),
        "country_name": lambda code: markets.country_name(code, lang),
    }
    ctx.update(context or {})
    html = env.get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return _finish(request, response)


def here(request: Request) -> str:
    """Where the language switch returns to: this page with its query string.

    A page shown in answer to a form (POST) returns to the page the form was on.
    """
    if request.method == "GET":
        query = request.url.query
        return request.url.path + ("?" + query if query else "")
    referer = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    if referer and host and referer.split("://", 1)[-1].startswith(host + "/"):
        return "/" + referer.split("://", 1)[-1].split("/", 1)[1]
    return request.url.path


def _minor_money(minor: int | None, currency: str, lang: str) -> str:
    from partnercenter.money import from_minor

    if minor is None:
        return ""
    return i18n.format_money(from_minor(minor, currency), currency, lang)


_PORTAL_PREFIXES = {"partner": "/partner", "customer": "/admin", "provider": "/provider"}


def _reload_signed_in(request: Request) -> str | None:
    """Load the signed-in user and web session afresh for an error page; return its portal.

    By the time an error is rendered the request's database session has been rolled back
    and closed, so ``request.state.user`` is detached and its roles and tenant cannot load.
    This reads them again in a short session of their own (closed without expiring them), so
    the error page keeps the portal's layout and menu. Returns ``"partner"``, ``"admin"`` or
    ``"provider"`` when the path is inside the user's own portal, else None.
    """
    from sqlalchemy import inspect

    from partnercenter.identity.models import User, WebSession

    user = getattr(request.state, "user", None)
    cookie = request.cookies.get("pc_session")
    if user is None and not cookie:
        return None
    ws = getattr(request.state, "web_session", None)
    user_id = inspect(user).identity if user is not None else None
    ws_id = inspect(ws).identity if ws is not None else None
    session = request.app.state.session_factory()
    try:
        if user is None and cookie:
            # No route ran (an unknown address): read the browser's session here, with
            # the same clock the request's dependencies use.
            from partnercenter.identity import services as identity

            now = request.app.state.clock.now()
            found = identity.resolve_web_session(session, token=cookie, now=now)
            if found is not None:
                user_id, ws_id = (found.user_id,), (found.id,)
        fresh = session.get(User, user_id[0]) if user_id else None
        if fresh is not None and not fresh.is_active:
            fresh = None
        fresh_ws = session.get(WebSession, ws_id[0]) if ws_id else None
        if fresh is not None:
            _ = (fresh.roles, fresh.tenant.kind, fresh.tenant.name, fresh.display_name)
        if fresh_ws is not None:
            _ = fresh_ws.csrf_token
    finally:
        session.close()
    request.state.user = fresh
    request.state.web_session = fresh_ws
    if fresh is None:
        return None
    kind = str(getattr(fresh.tenant.kind, "value", fresh.tenant.kind))
    prefix = _PORTAL_PREFIXES.get(kind)
    path = request.url.path
    if prefix and (path == prefix or path.startswith(prefix + "/") or path == "/account/tokens"):
        return {"customer": "admin"}.get(kind, kind)
    return None


def render_error_page(request: Request, status: int, body: dict[str, Any]) -> Response:
    """The error page, inside the signed-in user's portal layout and in the reader's language.

    Falls back to a minimal page only if rendering itself fails (that failure is logged).
    """
    try:
        portal = _reload_signed_in(request)
        context: dict[str, Any] = {"status": status, "error": body}
        if portal:
            context["portal"] = portal
        return render(request, "error.html", context, status=status)
    except Exception:  # the error page must never fail itself
        import logging

        from partnercenter.errors import html_error

        logging.getLogger("partnercenter.errors").exception("the error page failed")

        return html_error(status, body)
