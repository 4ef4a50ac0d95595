"""HTML routes: the Activity log page of Partner Center, the Admin Center and the provider."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from partnercenter import labels
from partnercenter.audit import services
from partnercenter.audit.api import partner_resolver
from partnercenter.audit.errors import (
    DateRangeReversed,
    InvalidContinuationToken,
    InvalidDate,
    InvalidFilter,
)
from partnercenter.audit.services import (
    ActivityQuery,
    Cursor,
    Filter,
    FilterField,
    LogPage,
    ScopeKind,
)
from partnercenter.deps import NowDep, SessionDep, SettingsDep
from partnercenter.errors import DomainError
from partnercenter.i18n import N_
from partnercenter.identity import services as identity
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route

router = APIRouter(route_class=Route, include_in_schema=False)

PAGE_SIZE = 50

# Every action's label lives in labels.py, shared with the other pages.
OPERATION_LABELS: dict[str, str] = labels.OPERATION


_PORTALS: dict[str, tuple[TenantKind, Action]] = {
    "partner": (TenantKind.PARTNER, Action.READ_ACTIVITY_LOG),
    "admin": (TenantKind.CUSTOMER, Action.READ_OWN_ACTIVITY),
    "provider": (TenantKind.PROVIDER, Action.READ_ALL_ACTIVITY),
}


def one_month_before(day: date) -> date:
    """The same day of the previous month (or that month's last day)."""
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    for candidate in range(day.day, 27, -1) if day.day > 28 else (day.day,):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    return date(year, month, 28)


def _page_filters(user_text: str, customer_text: str, action: str) -> tuple[Filter, ...]:
    """The page's fields as API filters: a GUID is an id, other text a name."""
    filters: list[Filter] = []
    if user_text:
        try:
            uuid.UUID(user_text)
            field = FilterField.USER_ID
        except ValueError:
            field = FilterField.USER_PRINCIPAL_NAME
        filters.append(services.make_filter(field, "equals", user_text, where="user"))
    if customer_text:
        try:
            uuid.UUID(customer_text)
            filters.append(
                services.make_filter(
                    FilterField.CUSTOMER_ID, "equals", customer_text, where="customer"
                )
            )
        except ValueError:
            filters.append(
                services.make_filter(
                    FilterField.COMPANY_NAME, "substring", customer_text, where="customer"
                )
            )
    if action:
        filters.append(
            services.make_filter(FilterField.OPERATION_TYPE, "equals", action, where="action")
        )
    return services.normalise_filters(filters)


def _page_message(exc: DomainError) -> str:
    if isinstance(exc, DateRangeReversed):
        return N_("The From date must not be after the To date.")
    if isinstance(exc, InvalidDate):
        return N_("Enter the dates as YYYY-MM-DD.")
    if isinstance(exc, InvalidContinuationToken):
        return N_("This page link is no longer valid for these filters. Start again.")
    if isinstance(exc, InvalidFilter):
        return N_("A filter is not valid: a user, customer or action is too long or empty.")
    return exc.description


@router.get("/{portal}/activity-log")
def activity_log_page(
    portal: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Newest first, filtered by dates, user, customer and action, paged by keyset."""
    if portal not in _PORTALS:
        from partnercenter.errors import NotFound

        raise NotFound()
    kind, action = _PORTALS[portal]
    me = portal_user(request, user, kind)
    require_page(action, me)
    visibility = services.visibility_for(session, actor=identity.actor_for(me))
    params = request.query_params
    today = now.date()
    form = {
        "from": params.get("from", "").strip() or one_month_before(today).isoformat(),
        "to": params.get("to", "").strip() or today.isoformat(),
        "user": params.get("user", "").strip(),
        "customer": params.get("customer", "").strip()
        if visibility.kind != ScopeKind.CUSTOMER
        else "",
        "action": params.get("action", "").strip(),
    }
    if visibility.kind == ScopeKind.CUSTOMER:
        operations: tuple[str, ...] = services.KEY_AND_DOWNLOAD_OPERATIONS
    elif visibility.kind == ScopeKind.PARTNER:
        operations = tuple(op for op in labels.OPERATION if op not in labels.PROVIDER_OPERATIONS)
    else:
        operations = tuple(labels.OPERATION)
    context: dict[str, Any] = {
        "portal": portal,
        "me": me,
        "form": form,
        "operations": [(op, OPERATION_LABELS.get(op, op)) for op in operations],
        "labels": OPERATION_LABELS,
        "details_text": details_text,
        "show_customer": visibility.kind != ScopeKind.CUSTOMER,
        "entries": [],
        "partners": {},
    }
    try:
        start = services.parse_date(form["from"], source="from", end=False)
        end = services.parse_date(form["to"], source="to", end=True)
        start, end = services.date_range(now=now, start=start, end=end)
        filters = _page_filters(form["user"], form["customer"], form["action"])
        query = ActivityQuery(start, end, filters)
        cursor: Cursor | None = None
        token = params.get("ct")
        if token:
            token_query, cursor = services.decode_token(
                settings.signing_secret, token, visibility=visibility
            )
            query = services.continue_query(token_query, start=start, end=end, filters=filters)
        page = services.read_page(
            session, visibility=visibility, query=query, size=PAGE_SIZE, cursor=cursor
        )
    except DomainError as exc:
        context["error"] = _page_message(exc)
        return render_page(request, context, status=exc.status)
    context.update(_page_links(request, settings.signing_secret, visibility, query, page, form))
    context["entries"] = page.entries
    context["partners"] = partner_resolver(session, visibility, page.entries)
    return render_page(request, context)


def _page_links(
    request: Request,
    secret: bytes,
    visibility: services.Visibility,
    query: ActivityQuery,
    page: LogPage,
    form: dict[str, str],
) -> dict[str, Any]:
    base = {k: v for k, v in form.items() if v}

    def link(cursor: Cursor | None) -> str | None:
        if cursor is None:
            return None
        token = services.encode_token(secret, visibility=visibility, query=query, cursor=cursor)
        return f"{request.url.path}?{urlencode({**base, 'ct': token})}"

    export: dict[str, str] = {
        "startDate": form["from"],
        "endDate": form["to"],
    }
    if query.filters:
        export["filter"] = json.dumps(
            [
                {"Field": f.field.value, "Value": f.value, "Operator": f.operator}
                for f in query.filters
            ]
        )
    return {
        "next_url": link(page.next_cursor),
        "previous_url": link(page.previous_cursor),
        "export_url": "/v1/auditrecords/export?" + urlencode(export),
    }


def render_page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    from partnercenter.web import render

    return render(request, "activity_log.html", context, status=status)


def details_text(operation: str, details: dict[str, Any] | None) -> str:
    """The Details column: a readable sentence (labels.activity_details), translated on display."""
    return labels.activity_details(operation, details)
