"""Helpers for cancellation tests: more products (subscriptions, JPY, a capped reservation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import BillingCycle, CreditRule, KeySource, Product, ProductType
from partnercenter.catalog.services import percent_to_ppm
from partnercenter.identity.models import Tenant
from tests.orders.catalog_data import Offer, add_product

SQL_ANNUAL = "CFQ7TTC0LH0R:0001:P1YA"  # server subscription, 1 year paid upfront, USD 3,650.00
SQL_MONTHLY = "CFQ7TTC0LH0R:0001:P1YM"  # the same billed monthly, USD 310.00 a month
SQL_MONTHLY_29 = "CFQ7TTC0LH0R:0001:P1YM29"  # billed monthly, USD 29.00 a month
SQL_JP = "CFQ7TTC0LH0R:0001:JPY1Y"  # 1 year upfront in Japan, JPY 10,000 + 10 % tax
RESERVATION = "DZH318Z0CAP1:E4S:P1Y"  # Azure reservation with Partner Center's rule, USD 3,650


def add_cancellation_catalog(session: Session, *, now: datetime) -> None:
    """Products beyond the orders tests' catalog, with their cancellation policies."""
    add_product(
        session,
        now=now,
        product_id="CFQ7TTC0LH0R",
        title="SQL Server 2022",
        product_type=ProductType.SERVER_SUBSCRIPTION,
        sku_id="0001",
        sku_title="Standard",
        key_source=KeySource.GENERATOR,
        versions=["2022"],
        credit_rule=CreditRule.PRORATED,
        offers=[
            Offer("P1YA", ("US",), "USD", 365_000, "P1Y", BillingCycle.ANNUAL),
            Offer("P1YM", ("US",), "USD", 31_000, "P1Y", BillingCycle.MONTHLY),
            Offer("P1YM29", ("US",), "USD", 2_900, "P1Y", BillingCycle.MONTHLY),
            Offer("JPY1Y", ("JP",), "JPY", 10_000, "P1Y", BillingCycle.ANNUAL),
        ],
    )
    product = add_product(
        session,
        now=now,
        product_id="DZH318Z0CAP1",
        title="Reserved VM Instance, E4s",
        product_type=ProductType.AZURE_RESERVATION,
        sku_id="E4S",
        sku_title="E4s v5 West Europe",
        key_source=KeySource.NONE,
        max_quantity=100,
        window_days=None,
        credit_rule=CreditRule.PRORATED_LESS_FEE,
        offers=[Offer("P1Y", ("US",), "USD", 365_000, "P1Y", BillingCycle.ONE_TIME)],
    )
    # Partner Center's own rule: 100 % within 5 days, then prorated less 12 %, at most
    # USD 50,000 per customer in a rolling 12 months.
    product.cancel_full_credit_days = 5
    product.cancel_fee_ppm = percent_to_ppm(Decimal(12))
    product.cancel_cap_minor = 5_000_000
    product.cancel_cap_currency = "USD"
    product.cancel_cap_period_days = 365
    catalog.set_tax_rate(session, country="JP", percent=Decimal(10), now=now, actor=None)
    session.flush()


def set_support_limit(session: Session, product_id: str, amount_minor: int, currency: str) -> None:
    """Cancellations crediting more than this need a customer support request."""
    product = session.get(Product, product_id)
    assert product is not None
    product.support_request_above_minor = amount_minor
    product.support_request_above_currency = currency
    session.flush()


@dataclass
class Buyer:
    """Buys through the API as the shop's Admin agent."""

    client: TestClient
    headers: dict[str, str]

    def buy(self, customer: Tenant, *lines: tuple[str, int]) -> dict[str, Any]:
        r = self.client.post(
            f"/v1/customers/{customer.id}/carts",
            json={"lineItems": [{"catalogItemId": i, "quantity": q} for i, q in lines]},
            headers=self.headers,
        )
        assert r.status_code == 201, r.text
        r = self.client.post(
            f"/v1/customers/{customer.id}/carts/{r.json()['id']}/checkout", headers=self.headers
        )
        assert r.status_code == 201, r.text
        order: dict[str, Any] = r.json()["orders"][0]
        return order

    def preview(self, customer: Tenant, order_id: str) -> Any:
        return self.client.get(
            f"/v1/customers/{customer.id}/orders/{order_id}/cancellation", headers=self.headers
        )

    def cancel(
        self,
        customer: Tenant,
        order_id: str,
        lines: list[int] | None = None,
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> Any:
        body: dict[str, Any] = {"status": "cancelled"}
        if lines is not None:
            body["lineItems"] = [{"lineItemNumber": n} for n in lines]
        return self.client.patch(
            f"/v1/customers/{customer.id}/orders/{order_id}",
            json=body,
            headers={**(headers or self.headers), **extra},
        )
