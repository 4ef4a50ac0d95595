"""Every code has a label in both languages; values are formatted for the reader; the
language switch keeps the page and its query string."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from partnercenter import i18n, labels
from partnercenter.billing.credits import Refusal
from partnercenter.billing.models import DocumentType, PeriodState
from partnercenter.catalog.models import BillingCycle, CreditRule, KeySource, KeyStatus, ProductType
from partnercenter.catalog.services import TARGET_VIEWS
from partnercenter.orders.models import ChargeType, EntitlementStatus, LineStatus, OrderStatus
from partnercenter.support.models import NoteAuthor, RefundStatus, RequestStatus, Severity
from tests.web import page_csrf

SRC = Path(__file__).resolve().parents[1] / "src/partnercenter"

ENUMS: list[tuple[str, type[StrEnum]]] = [
    ("product_type", ProductType),
    ("cycle", BillingCycle),
    ("credit_rule", CreditRule),
    ("key_source", KeySource),
    ("key_status", KeyStatus),
    ("order_status", OrderStatus),
    ("line_status", LineStatus),
    ("line_status", EntitlementStatus),
    ("charge_type", ChargeType),
    ("period_state", PeriodState),
    ("document_type", DocumentType),
    ("request_status", RequestStatus),
    ("severity", Severity),
    ("refund_status", RefundStatus),
    ("note_author", NoteAuthor),
    ("refusal", Refusal),
]


def _recorded(kind: str) -> set[str]:
    """Every literal ``operation_type=``/``resource_type=`` the services write."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found |= set(re.findall(rf'{kind}="([a-z_]+)"', path.read_text()))
    found |= set(re.findall(r'^RESOURCE = "([a-z_]+)"', path.read_text(), re.M))
    return found


@pytest.mark.parametrize(("kind", "enum"), ENUMS, ids=[e.__name__ for _, e in ENUMS])
def test_every_enum_member_has_a_label_in_both_languages(kind: str, enum: type[StrEnum]) -> None:
    with (SRC / "locale/es/LC_MESSAGES/messages.po").open("rb") as f:
        catalog = read_po(f, locale="es_ES")
    for member in enum:
        english = labels.label(kind, member)
        assert english != labels.UNKNOWN, (kind, member)
        entry = catalog.get(english)
        assert entry is not None and entry.string, (kind, member, english)


def test_every_recorded_action_and_resource_type_has_a_label() -> None:
    for operation in _recorded("operation_type"):
        assert operation in labels.OPERATION, operation
    for resource in _recorded("resource_type") | {"support_request"}:
        assert resource in labels.RESOURCE_TYPE, resource
    for view in TARGET_VIEWS:
        assert view in labels.TARGET_VIEW, view


def test_terms_read_the_same_everywhere_in_both_languages() -> None:
    assert labels.label("term", "P1Y") == "1 year"
    assert i18n.localize(labels.label("term", "P1Y"), "es") == "1 año"
    assert i18n.localize(labels.label("term", None), "es") == "Perpetuo"
    assert labels.label("term", "P9Q") == labels.UNKNOWN  # never the code itself


def test_details_sentences_have_no_ids_or_json() -> None:
    sentence = labels.activity_details(
        "create_order",
        {
            "orderId": "0b6f1c8e-0000-4000-8000-000000000001",
            "currency": "EUR",
            "total": "1799.13",
            "lines": [{"lineItemNumber": 0, "offerId": "X:Y:Z", "product": "SQL Server 2022"}],
        },
    )
    assert str(sentence) == "Order of SQL Server 2022, total 1,799.13 EUR."
    assert i18n.localize(sentence, "es") == "Pedido de SQL Server 2022, total 1.799,13 EUR."
    assert labels.line_number(0) == 1


def test_values_are_formatted_for_the_reader() -> None:
    assert i18n.format_money(Decimal("1799.13"), "USD", "en") == "1,799.13 USD"
    assert i18n.format_money("1799.13", "USD", "es") == "1.799,13 USD"
    assert i18n.format_money(Decimal("160350"), "JPY", "es") == "160.350 JPY"
    moment = "2026-11-29T12:15:49.827077Z"
    assert i18n.format_datetime(moment, "en") == "Nov 29, 2026, 12:15\u202fPM UTC"  # CLDR
    assert i18n.format_datetime(moment, "es") == "29 nov 2026, 12:15 UTC"
    assert i18n.format_date(datetime(2026, 11, 29, tzinfo=UTC), "es") == "29 nov 2026"
    assert i18n.format_month("2026-11", "es") == "noviembre 2026"
    assert i18n.country_name("US", "es") == "Estados Unidos"
    message = i18n.N_("The quantity %(quantity)s is too many.", quantity=12000)
    assert str(message) == "The quantity 12,000 is too many."


def test_language_switch_keeps_the_page_and_its_query_string(client: TestClient) -> None:
    page = client.get("/signin?next=/partner/activity-log%3Faction%3Dcreate_order")
    assert 'name="next" value="/signin?next=/partner/activity-log%3Faction%3Dcreate_order"' in (
        page.text
    )
    token = page_csrf(client)
    back = "/partner/activity-log?from=2026-10-01&to=2026-11-30&action=create_customer"
    r = client.post(
        "/language",
        data={"lang": "es", "csrf_token": token, "next": back},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == back


@pytest.mark.parametrize(
    ("charge_type", "cycle", "english", "spanish"),
    [
        ("cycleCharge", "monthly", "Monthly charge", "Cargo mensual"),
        ("cycleCharge", BillingCycle.MONTHLY, "Monthly charge", "Cargo mensual"),
        ("cycleCharge", "annual", "Annual charge", "Cargo anual"),
        (ChargeType.CYCLE_CHARGE, BillingCycle.ANNUAL, "Annual charge", "Cargo anual"),
        ("cycleCharge", None, "Recurring charge", "Cargo periódico"),
        ("new", "annual", "Purchase", "Compra"),
        ("cancel", "monthly", "Cancellation credit", "Crédito por cancelación"),
    ],
)
def test_a_charge_is_named_by_its_billing_cycle(
    charge_type: object, cycle: object, english: str, spanish: str
) -> None:
    assert labels.charge_label(charge_type, cycle) == english
    assert i18n.localize(labels.charge_label(charge_type, cycle), "es") == spanish
