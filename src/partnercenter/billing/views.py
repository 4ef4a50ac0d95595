"""HTML routes: Billing → Invoices for the partner, Billing periods for the provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from partnercenter.billing import services
from partnercenter.billing.api import close_month, statement_response
from partnercenter.billing.models import Invoice, InvoiceLine
from partnercenter.billing.pdf import charge_label
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, parse_uuid
from partnercenter.errors import DomainError
from partnercenter.i18n import babel_locale
from partnercenter.identity import services as identity
from partnercenter.identity.models import User
from partnercenter.identity.views import OptionalUser, portal_user, require_page
from partnercenter.money import from_minor, minor_units
from partnercenter.permissions import Action, TenantKind
from partnercenter.routing import Route
from partnercenter.web import check_csrf, language, render

router = APIRouter(route_class=Route, include_in_schema=False)

CHART_WIDTH = 680
CHART_HEIGHT = 232
CHART_TOP = 22
CHART_BOTTOM = 42
CHART_LEFT = 72
CHART_RIGHT = 8
PAGE_SIZE = 24
"""Invoices per page of the invoice list (two years of one currency)."""


@dataclass(frozen=True)
class Bar:
    label: str
    month: str
    amount: Decimal
    x: int
    y: int
    width: int
    height: int
    value: str
    value_y: int
    year: str = ""


@dataclass(frozen=True)
class Tick:
    y: int
    label: str


@dataclass(frozen=True)
class Chart:
    currency: str
    bars: list[Bar]
    baseline: int
    ticks: list[Tick]
    left: int = CHART_LEFT
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def _nice_step(span: Decimal) -> Decimal:
    """A round tick step (1, 2 or 5 times a power of ten) giving about four ticks."""
    raw = span / 4
    if raw <= 0:
        return Decimal(1)
    power = Decimal(10) ** (raw.adjusted())
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            return power * factor
    return power * 10


def chart_of(
    currency: str,
    points: list[tuple[str, Decimal]],
    *,
    month_label: Callable[[str], str] = services.month_label,
    amount_label: Callable[[Decimal], str] = lambda a: f"{a:,f}",
) -> Chart:
    """Bars for the twelve months on a labelled amount axis; credits hang below zero.

    Each bar carries its amount as text above it (below it for a negative month), the axis
    has round ticks from the lowest to the highest month. Coordinates are SVG user units.
    """
    top = max([a for _, a in points if a > 0], default=Decimal(0))
    bottom = min([a for _, a in points if a < 0], default=Decimal(0))
    step = _nice_step((top - bottom) or Decimal(1))
    top_tick = (top / step).to_integral_value(rounding=ROUND_CEILING) * step
    bottom_tick = (bottom / step).to_integral_value(rounding=ROUND_FLOOR) * step
    span = (top_tick - bottom_tick) or step
    usable = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM

    def y_of(amount: Decimal) -> int:
        return CHART_TOP + int(usable * (top_tick - amount) / span)

    baseline = y_of(Decimal(0))
    ticks = []
    value = bottom_tick
    while value <= top_tick:
        whole = value == value.to_integral_value()
        ticks.append(
            Tick(y_of(value), amount_label(value.quantize(Decimal(1)) if whole else value))
        )
        value += step
    slot = (CHART_WIDTH - CHART_LEFT - CHART_RIGHT) // max(len(points), 1)
    bars = []
    for i, (month, amount) in enumerate(points):
        size = abs(y_of(amount) - baseline)
        if amount and size < 1:
            size = 1
        y = baseline - size if amount >= 0 else baseline
        bars.append(
            Bar(
                month_label(month),
                month,
                amount,
                CHART_LEFT + i * slot + 4,
                y,
                slot - 8,
                size,
                amount_label(amount) if amount else "",
                y - 4 if amount >= 0 else y + size + 11,
                month[:4] if i == 0 or month.endswith("-01") else "",
            )
        )
    return Chart(currency, bars, baseline, ticks)


def _partner_user(request: Request, user: User | None) -> User:
    me = portal_user(request, user, TenantKind.PARTNER)
    require_page(Action.VIEW_INVOICES, me)
    return me


def _partner_invoice(
    request: Request, user: User | None, session: Session, invoice_id: str
) -> tuple[User, Invoice]:
    """The signed-in partner person and their partner's invoice ``invoice_id``; raises
    ``InvoiceNotFound`` for another partner's or an unknown invoice."""
    me = _partner_user(request, user)
    invoice = services.get_invoice(
        session, partner_id=me.tenant_id, invoice_id=parse_uuid(invoice_id, "invoice")
    )
    return me, invoice


def _money(minor: int, currency: str) -> Decimal:
    return from_minor(minor, currency)


def _by_customer(lines: list[InvoiceLine]) -> list[tuple[InvoiceLine, list[InvoiceLine]]]:
    groups: dict[str, list[InvoiceLine]] = {}
    for line in lines:
        groups.setdefault(str(line.customer_id), []).append(line)
    return [(group[0], group) for group in groups.values()]


def _line_context() -> dict[str, Any]:
    return {
        "money": _money,
        "charge_period": services.charge_period,
        "charge_label": charge_label,
        "unit_prices": services.unit_prices,
    }


@router.get("/partner/billing")
def billing_home() -> Response:
    return RedirectResponse("/partner/billing/invoices", status_code=303)


def _short_month(lang: str) -> Callable[[str], str]:
    """``2026-11`` as the reader's short month name ("Nov", "nov"); the year is drawn apart."""
    from babel.dates import format_date

    locale = babel_locale(lang)
    return lambda month: format_date(services.month_start(month).date(), "LLL", locale=locale)


def _amount_format(currency: str, locale: Any) -> Callable[[Decimal], str]:
    """Amounts in the reader's notation with the currency's decimals (3,597.19 / 3.597,19)."""
    from babel.numbers import format_decimal

    places = minor_units(currency)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return lambda amount: str(format_decimal(amount, format=pattern, locale=locale))


@router.get("/partner/billing/invoices")
def invoices_page(
    request: Request, user: OptionalUser, session: SessionDep, now: NowDep, page: str = "1"
) -> Response:
    me = _partner_user(request, user)
    partner_id = me.tenant_id
    total = services.count_invoices(session, partner_id=partner_id)
    pages = max(-(-total // PAGE_SIZE), 1)
    number = int(page) if page.isdigit() else 1
    number = min(max(number, 1), pages)
    invoices = services.list_invoices(
        session, partner_id=partner_id, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    lang = language(request)
    short_month = _short_month(lang)
    locale = babel_locale(lang)
    unbilled = services.unbilled_lines(session, partner_id=partner_id)
    unbilled_totals: dict[str, list[int]] = {}
    for line in unbilled:
        sums = unbilled_totals.setdefault(line.currency, [0, 0, 0])
        sums[0] += line.net_minor
        sums[1] += line.tax_minor
        sums[2] += line.gross_minor
    charts = [
        chart_of(
            currency,
            points,
            month_label=short_month,
            amount_label=_amount_format(currency, locale),
        )
        for currency, points in services.monthly_totals(
            session, partner_id=partner_id, now=now
        ).items()
    ]
    return render(
        request,
        "partner/billing/invoices.html",
        {
            "portal": "partner",
            "me": me,
            "invoices": invoices,
            "page": number,
            "pages": pages,
            "invoice_total": total,
            "unbilled": _by_customer(unbilled),
            "unbilled_count": len(unbilled),
            "unbilled_totals": sorted(unbilled_totals.items()),
            "open_month": services.month_of(now),
            "charts": charts,
            "month_label": services.month_label,
            **_line_context(),
        },
    )


@router.get("/partner/billing/invoices/{invoice_id}")
def invoice_page(
    invoice_id: str, request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    me, invoice = _partner_invoice(request, user, session, invoice_id)
    lines = list(services.invoice_lines(session, invoice=invoice))
    return render(
        request,
        "partner/billing/invoice.html",
        {
            "portal": "partner",
            "me": me,
            "invoice": invoice,
            "groups": _by_customer(lines),
            "month_label": services.month_label,
            **_line_context(),
        },
    )


@router.get("/partner/billing/invoices/{invoice_id}/statement.pdf")
def invoice_pdf(
    invoice_id: str, request: Request, user: OptionalUser, session: SessionDep
) -> Response:
    _, invoice = _partner_invoice(request, user, session, invoice_id)
    return statement_response(request, session, invoice)


# --- provider console ----------------------------------------------------------------------


def _provider_user(request: Request, user: User | None) -> User:
    me = portal_user(request, user, TenantKind.PROVIDER)
    require_page(Action.VIEW_BILLING_PERIODS, me)
    return me


def _render_periods(
    request: Request,
    session: Session,
    me: User,
    now: Any,
    *,
    error: DomainError | None = None,
    result: services.CloseResult | None = None,
    month: str = "",
) -> Response:
    last_ended = services.shift_month(services.month_of(now), -1)
    return render(
        request,
        "provider/billing.html",
        {
            "portal": "provider",
            "me": me,
            "periods": services.list_periods(session),
            "error": error,
            "result": result,
            "month": month or last_ended,
            "month_label": services.month_label,
        },
        status=error.status if error is not None else 200,
    )


@router.get("/provider/billing")
def periods_page(
    request: Request, user: OptionalUser, session: SessionDep, now: NowDep
) -> Response:
    me = _provider_user(request, user)
    return _render_periods(request, session, me, now)


@router.post("/provider/billing/close")
def periods_close(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    month: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Close a month from the console (the same two transactions as the CLI and the API)."""
    me = _provider_user(request, user)
    require_page(Action.CLOSE_BILLING_PERIOD, me)
    check_csrf(request, csrf_token)
    try:
        result = close_month(session, month=month, now=now, actor=identity.actor_for(me), info=info)
    except DomainError as exc:
        session.rollback()
        return _render_periods(request, session, me, now, error=exc, month=month)
    return _render_periods(request, session, me, now, result=result, month=month)
