"""Every unit price a reader sees multiplies, by the quantity in its row, to an amount in that row.

Property-based: list prices, quantities, tax rates and credit shares drawn across markets whose
prices exclude tax (US, JP in JPY, KW in KWD with three decimals, DE) and include it (AU, BR),
through the reconciliation CSV and the API's line items alike.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from partnercenter.billing import services as billing
from partnercenter.billing.credits import credit_of
from partnercenter.billing.models import DocumentType, Invoice, InvoiceLine
from partnercenter.money import from_minor, line_price, minor_units, tax_inclusive

MARKETS = [("US", "USD"), ("JP", "JPY"), ("KW", "KWD"), ("DE", "EUR"), ("AU", "AUD"), ("BR", "BRL")]
BOUGHT = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def _line(country: str, currency: str, quantity: int, net: int, tax: int, kind: str) -> InvoiceLine:
    return InvoiceLine(
        charge_id=uuid.uuid4(),
        partner_id=uuid.uuid4(),
        invoice_month="2026-03",
        currency=currency,
        charge_month="2026-03",
        charge_type=kind,
        credit_reason_code="customer_cancellation" if kind == "cancel" else None,
        reverses_charge_id=uuid.uuid4() if kind == "cancel" else None,
        customer_id=uuid.uuid4(),
        customer_name="Contoso",
        customer_domain="contoso.example",
        customer_country=country,
        order_id=uuid.uuid4(),
        order_date=BOUGHT,
        order_line_id=uuid.uuid4(),
        line_number=0,
        product_id="CFQ7TTC0TERM",
        sku_id="0001",
        availability_id="P3YA",
        product_name="Windows Server 2025",
        sku_name="16 core pack",
        term_duration="P3Y",
        billing_cycle="annual",
        quantity=quantity,
        unit_price_minor=0,
        net_minor=net,
        tax_minor=tax,
        gross_minor=net + tax,
        charged_at=BOUGHT,
    )


def _invoice(currency: str) -> Invoice:
    return Invoice(
        id=uuid.uuid4(),
        number="G000000001",
        partner_id=uuid.uuid4(),
        billing_month="2026-03",
        currency=currency,
        document_type=DocumentType.INVOICE,
        net_minor=0,
        tax_minor=0,
        gross_minor=0,
        line_count=0,
        partner_name="Fabrikam",
        partner_country="US",
        issued_at=BOUGHT,
    )


@settings(max_examples=300, deadline=None)
@given(
    market=st.sampled_from(MARKETS),
    price_minor=st.integers(min_value=1, max_value=50_000_000),
    quantity=st.integers(min_value=1, max_value=1000),
    rate=st.decimals(min_value=0, max_value=30, places=2),
    share=st.fractions(min_value=0, max_value=1, max_denominator=1096),
)
def test_every_unit_price_shown_multiplies_to_its_rows_amount(
    market: tuple[str, str], price_minor: int, quantity: int, rate: Decimal, share: object
) -> None:
    country, currency = market
    inclusive = tax_inclusive(country)
    unit = from_minor(price_minor, currency)
    price = line_price(unit, quantity, currency, rate / 100, inclusive)
    net, tax, _gross = price.minor()
    fraction = Decimal(share.numerator) / Decimal(share.denominator)  # type: ignore[attr-defined]
    credit = credit_of(price, fraction, None)
    c_net, c_tax, _ = credit.minor()
    lines = [
        _line(country, currency, quantity, net, tax, "new"),
        _line(country, currency, quantity, -c_net, -c_tax, "cancel"),
    ]

    # The purchase always shows the unit as priced: net where prices exclude tax, with tax
    # where they include it.
    units = billing.unit_prices(lines[0])
    if inclusive:
        assert units.gross == price_minor
    else:
        assert units.net == price_minor

    text = billing.lineitems_csv(_invoice(currency), lines)
    rows = list(csv.DictReader(io.StringIO(text)))
    api = [billing.line_item_json(li) for li in lines]
    assert len(rows) == 2
    places = Decimal(1).scaleb(-minor_units(currency))
    for row, item in zip(rows, api, strict=True):
        q = Decimal(row["Quantity"])
        assert q == quantity  # a credit's quantity is real, never 0
        for unit_col, amount_col in (
            ("UnitPrice", "Subtotal"),
            ("UnitPriceInclTax", "TotalForCustomer"),
        ):
            shown = row[unit_col]
            api_unit = item[unit_col[0].lower() + unit_col[1:]]
            assert (shown or None) == api_unit
            if shown:
                assert Decimal(shown) == Decimal(shown).quantize(places)
                assert Decimal(shown) * q == Decimal(row[amount_col]), (unit_col, row)
        assert Decimal(row["Subtotal"]) + Decimal(row["TaxTotal"]) == Decimal(
            row["TotalForCustomer"]
        )
