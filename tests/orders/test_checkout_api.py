"""Buying on behalf of a customer over the API: carts, checkout, orders, bad input, roles."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog.models import KeyStatus, ProductKey
from partnercenter.clock import FrozenClock
from partnercenter.idempotency import IdempotencyKey
from partnercenter.orders.models import Cart, Charge, Entitlement, Order, OrderLine
from partnercenter.permissions import Role
from tests.factories import Factory
from tests.orders.catalog_data import AZURE, SUSE_AU, WINDOWS, WINDOWS_AU, WINDOWS_BR
from tests.orders.conftest import Shop

Headers = Callable[..., dict[str, str]]


def line(item: str, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {"catalogItemId": item, "quantity": quantity, **extra}


def new_cart(client: TestClient, shop: Shop, customer_id: Any, *lines: dict[str, Any]) -> str:
    r = client.post(
        f"/v1/customers/{customer_id}/carts", json={"lineItems": list(lines)}, headers=shop.headers
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def checkout(client: TestClient, shop: Shop, customer_id: Any, cart_id: str, **headers: str) -> Any:
    return client.post(
        f"/v1/customers/{customer_id}/carts/{cart_id}/checkout",
        headers={**shop.headers, **headers},
    )


def counts(session: Session) -> dict[str, int]:
    session.expire_all()
    return {
        model.__name__: int(session.execute(select(func.count()).select_from(model)).scalar_one())
        for model in (Cart, Order, OrderLine, Charge, Entitlement, IdempotencyKey)
    } | {
        "reserved_keys": int(
            session.execute(
                select(func.count())
                .select_from(ProductKey)
                .where(ProductKey.status == KeyStatus.RESERVED)
            ).scalar_one()
        ),
        "order_records": int(
            session.execute(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.operation_type == "create_order")
            ).scalar_one()
        ),
    }


def test_admin_agent_buys_two_products_for_a_us_customer(
    client: TestClient, shop: Shop, session: Session
) -> None:
    cart_id = new_cart(client, shop, shop.us.id, line(WINDOWS, 2), line(AZURE, 3))
    cart = client.get(f"/v1/customers/{shop.us.id}/carts/{cart_id}", headers=shop.headers).json()
    assert cart["status"] == "Active"
    assert cart["expirationTimestamp"] == "2026-11-09T10:00:00Z"
    assert [x["pricing"]["gross"] for x in cart["lineItems"]] == ["1945.00", "3703.68"]
    assert cart["totals"] == {
        "currency": "USD",
        "net": "5648.68",
        "tax": "0.00",
        "gross": "5648.68",
    }

    r = checkout(client, shop, shop.us.id, cart_id)
    assert r.status_code == 201, r.text
    result = r.json()
    assert result["orderErrors"] == []
    [order] = result["orders"]
    assert order["status"] == "completed" and order["currencyCode"] == "USD"
    assert order["creationDate"] == "2026-11-02T10:00:00Z"
    assert order["referenceCustomerId"] == str(shop.us.id)
    first, second = order["lineItems"]
    assert (first["lineItemNumber"], first["offerId"], first["quantity"]) == (0, WINDOWS, 2)
    assert first["pricing"] == {
        "currency": "USD",
        "taxIncluded": False,
        "unitNet": "972.50",
        "unitTax": "0.00",
        "unitGross": "972.50",
        "net": "1945.00",
        "tax": "0.00",
        "gross": "1945.00",
    }
    assert (second["offerId"], second["termDuration"], second["billingCycle"]) == (
        AZURE,
        "P1Y",
        "one_time",
    )

    listed = client.get(f"/v1/customers/{shop.us.id}/orders", headers=shop.headers).json()
    assert [o["id"] for o in listed["items"]] == [order["id"]]
    one = client.get(f"/v1/customers/{shop.us.id}/orders/{order['id']}", headers=shop.headers)
    assert one.json() == order

    c = counts(session)
    assert (c["Order"], c["OrderLine"], c["Charge"], c["Entitlement"]) == (1, 2, 2, 1)
    assert c["reserved_keys"] == 1 and c["order_records"] == 1
    charges = session.execute(select(Charge).order_by(Charge.gross_minor)).scalars().all()
    assert [(ch.gross_minor, ch.billing_month, ch.charge_type.value) for ch in charges] == [
        (194_500, "2026-11", "new"),
        (370_368, "2026-11", "new"),
    ]
    ent = session.execute(select(Entitlement)).scalar_one()
    key = session.get(ProductKey, ent.product_key_id)
    assert key is not None and key.status == KeyStatus.RESERVED
    software_line = session.execute(
        select(OrderLine).where(OrderLine.product_id == "DG7GMGF0D3SJ")
    ).scalar_one()
    assert key.order_line_ref == str(software_line.id)
    assert software_line.cancellation_policy["windowDays"] == 30
    rec = session.execute(
        select(AuditRecord).where(AuditRecord.operation_type == "create_order")
    ).scalar_one()
    assert rec.resource_type == "order" and rec.customer_id == shop.us.id
    assert rec.details["orderId"] == order["id"]
    assert [x["offerId"] for x in rec.details["lines"]] == [WINDOWS, AZURE]


def test_prices_include_tax_in_australia_and_brazil(client: TestClient, shop: Shop) -> None:
    au_cart = new_cart(client, shop, shop.au.id, line(WINDOWS_AU), line(SUSE_AU, 2))
    # One order per billing cycle (Partner Center's rule): the one-time licence, the plan.
    one_time, annual = checkout(client, shop, shop.au.id, au_cart).json()["orders"]
    assert (one_time["billingCycle"], annual["billingCycle"]) == ("one_time", "annual")
    assert one_time["currencyCode"] == annual["currencyCode"] == "AUD"
    [windows] = (x["pricing"] for x in one_time["lineItems"])
    [suse] = (x["pricing"] for x in annual["lineItems"])
    assert windows["taxIncluded"] is True
    assert (windows["net"], windows["tax"], windows["gross"]) == ("1000.00", "100.00", "1100.00")
    # 2 x 1200.01 = 2400.02 gross, of which 10/110 is tax: 218.18.
    assert (suse["unitGross"], suse["gross"], suse["tax"], suse["net"]) == (
        "1200.01",
        "2400.02",
        "218.18",
        "2181.84",
    )
    assert one_time["totals"]["gross"] == "1100.00" and one_time["totals"]["tax"] == "100.00"
    assert annual["totals"]["gross"] == "2400.02" and annual["totals"]["tax"] == "218.18"
    br_cart = new_cart(client, shop, shop.br.id, line(WINDOWS_BR))
    [br] = checkout(client, shop, shop.br.id, br_cart).json()["orders"]
    p = br["lineItems"][0]["pricing"]
    assert (p["currency"], p["gross"], p["tax"], p["net"]) == (
        "BRL",
        "5000.00",
        "726.50",
        "4273.50",
    )
    assert br["totals"] == {
        "currency": "BRL",
        "net": "4273.50",
        "tax": "726.50",
        "gross": "5000.00",
    }


def test_same_request_id_replays_the_first_response_and_another_body_is_409(
    client: TestClient, shop: Shop, session: Session
) -> None:
    rid = str(uuid.uuid4())
    url = f"/v1/customers/{shop.us.id}/carts"
    body = {"lineItems": [line(WINDOWS)]}
    first = client.post(url, json=body, headers={**shop.headers, "MS-RequestId": rid})
    again = client.post(url, json=body, headers={**shop.headers, "MS-RequestId": rid})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert counts(session)["Cart"] == 1
    other = client.post(
        url, json={"lineItems": [line(WINDOWS, 2)]}, headers={**shop.headers, "MS-RequestId": rid}
    )
    assert other.status_code == 409 and other.json()["code"] == 12101
    cart_id = first.json()["id"]
    rid2 = str(uuid.uuid4())
    one = checkout(client, shop, shop.us.id, cart_id, **{"MS-RequestId": rid2})
    two = checkout(client, shop, shop.us.id, cart_id, **{"MS-RequestId": rid2})
    three = checkout(client, shop, shop.us.id, cart_id)  # no request id: the cart's result
    assert one.status_code == two.status_code == three.status_code == 201
    assert one.json() == two.json() == three.json()
    c = counts(session)
    assert (c["Order"], c["reserved_keys"], c["order_records"], c["Charge"]) == (1, 1, 1, 1)
    r = client.put(f"{url}/{cart_id}", json=body, headers=shop.headers)
    assert r.status_code == 409 and r.json()["code"] == 800065


def test_checkout_without_enough_keys_sells_nothing(
    client: TestClient, shop: Shop, session: Session
) -> None:
    before = counts(session)
    cart_id = new_cart(client, shop, shop.us.id, *[line(WINDOWS, id=i) for i in range(4)])
    r = checkout(client, shop, shop.us.id, cart_id)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == 13005 and "No product key is left" in r.json()["description"]
    after = counts(session)
    assert after == before | {"Cart": before["Cart"] + 1}
    cart = client.get(f"/v1/customers/{shop.us.id}/carts/{cart_id}", headers=shop.headers)
    assert cart.json()["status"] == "Active"
    smaller = client.put(
        f"/v1/customers/{shop.us.id}/carts/{cart_id}",
        json={"lineItems": [line(WINDOWS, id=i) for i in range(3)]},
        headers=shop.headers,
    )
    assert smaller.status_code == 200, smaller.text
    assert checkout(client, shop, shop.us.id, cart_id).status_code == 201
    assert counts(session)["reserved_keys"] == 3


def test_bad_input_gets_the_error_code_and_writes_nothing(
    client: TestClient, shop: Shop, session: Session, factory: Factory
) -> None:
    before = counts(session)
    foreign = factory.customer(factory.partner(), country="US")
    cases: list[tuple[Any, list[dict[str, Any]], int, int]] = [
        (shop.us.id, [line("NOPE:0001:US01")], 404, 400013),
        (shop.us.id, [line("DG7GMGF0D3SJ:9999:US01")], 404, 400018),
        (shop.us.id, [line("DG7GMGF0D3SJ:0001:XX99")], 404, 400019),
        (shop.us.id, [line("not-an-id")], 400, 13002),
        (shop.us.id, [line(WINDOWS, 0)], 400, 10010),
        (shop.us.id, [line(WINDOWS, 11)], 400, 10010),
        (shop.us.id, [line(WINDOWS, -3)], 400, 10010),
        (shop.us.id, [line(WINDOWS, currencyCode="EUR")], 400, 12113),
        (shop.us.id, [line(AZURE, termDuration="P3Y")], 400, 13001),
        (shop.us.id, [line(WINDOWS_AU)], 400, 800070),
        (shop.ad.id, [line(AZURE)], 400, 800070),
        (shop.us.id, [line(WINDOWS, id=1), line(AZURE, id=1)], 400, 12115),
        (foreign.id, [line(WINDOWS)], 404, 12001),
        (uuid.uuid4(), [line(WINDOWS)], 404, 12001),
        (shop.us.id, [], 400, 10010),
    ]
    for customer_id, lines, status, code in cases:
        r = client.post(
            f"/v1/customers/{customer_id}/carts", json={"lineItems": lines}, headers=shop.headers
        )
        assert (r.status_code, r.json()["code"]) == (status, code), (lines, r.text)
        assert set(r.json()) >= {"code", "description", "data", "source"}
    azure_ad = client.post(
        f"/v1/customers/{shop.ad.id}/carts",
        json={"lineItems": [line(AZURE)]},
        headers=shop.headers,
    ).json()
    assert "Andorra (AD)" in azure_ad["description"]
    assert azure_ad["source"].startswith("lineItems[0]")
    malformed = client.post(
        f"/v1/customers/{shop.us.id}/carts",
        content=b'{"lineItems": [',
        headers={**shop.headers, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == 10010
    assert counts(session) == before


def test_checkout_checks_market_and_price_again(
    client: TestClient, shop: Shop, session: Session
) -> None:
    from partnercenter.catalog.models import Availability

    cart_id = new_cart(client, shop, shop.us.id, line(WINDOWS))
    avail = session.execute(
        select(Availability).where(Availability.availability_id == "US01")
    ).scalar_one()
    avail.list_price_minor = 99_900  # the provider raised the price after the cart was made
    session.commit()
    [order] = checkout(client, shop, shop.us.id, cart_id).json()["orders"]
    assert order["lineItems"][0]["pricing"]["gross"] == "999.00"

    cart2 = new_cart(client, shop, shop.us.id, line(WINDOWS))
    avail.is_active = False  # withdrawn from sale
    session.commit()
    before = counts(session)
    r = checkout(client, shop, shop.us.id, cart2)
    assert r.status_code == 404 and r.json()["code"] == 400019
    assert counts(session) == before


def test_an_expired_cart_cannot_be_checked_out(
    client: TestClient, shop: Shop, session: Session, clock: FrozenClock, auth_headers: Headers
) -> None:
    cart_id = new_cart(client, shop, shop.us.id, line(WINDOWS))
    clock.advance(days=7)
    shop.headers = auth_headers(shop.agent)  # the first sign-in's token has expired too
    got = client.get(f"/v1/customers/{shop.us.id}/carts/{cart_id}", headers=shop.headers)
    assert got.json()["status"] == "Expired"
    before = counts(session)
    r = checkout(client, shop, shop.us.id, cart_id)
    assert r.status_code == 410 and r.json()["code"] == 12112
    assert counts(session) == before


def test_a_foreign_cart_or_order_answers_404(
    client: TestClient, shop: Shop, factory: Factory, auth_headers: Headers
) -> None:
    cart_id = new_cart(client, shop, shop.us.id, line(WINDOWS))
    [order] = checkout(client, shop, shop.us.id, cart_id).json()["orders"]
    other_partner = factory.partner()
    other = auth_headers(factory.user(other_partner, Role.ADMIN_AGENT))
    for path in (
        f"/v1/customers/{shop.us.id}/carts/{cart_id}",
        f"/v1/customers/{shop.us.id}/orders",
        f"/v1/customers/{shop.us.id}/orders/{order['id']}",
    ):
        assert client.get(path, headers=other).status_code == 404
    r = client.post(f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout", headers=other)
    assert r.status_code == 404
    # The cart of one customer is not reachable under another customer of the same partner.
    assert (
        client.get(f"/v1/customers/{shop.au.id}/carts/{cart_id}", headers=shop.headers).status_code
        == 404
    )
    assert (
        client.get(
            f"/v1/customers/{shop.au.id}/orders/{order['id']}", headers=shop.headers
        ).status_code
        == 404
    )


def test_only_admin_agents_and_global_admins_buy(
    client: TestClient, shop: Shop, factory: Factory, auth_headers: Headers
) -> None:
    cart_id = new_cart(client, shop, shop.us.id, line(WINDOWS))
    body = {"lineItems": [line(WINDOWS)]}
    for role in (Role.SALES_AGENT, Role.HELPDESK_AGENT, Role.BILLING_ADMIN, Role.ACCOUNT_ADMIN):
        h = auth_headers(factory.user(shop.partner, role))
        assert (
            client.post(f"/v1/customers/{shop.us.id}/carts", json=body, headers=h).status_code
            == 403
        )
        r = client.post(f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout", headers=h)
        assert r.status_code == 403
    helpdesk = auth_headers(factory.user(shop.partner, Role.HELPDESK_AGENT))
    assert client.get(f"/v1/customers/{shop.us.id}/orders", headers=helpdesk).status_code == 200
    ga = auth_headers(factory.user(shop.partner, Role.GLOBAL_ADMIN))
    assert (
        client.post(f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout", headers=ga).status_code
        == 201
    )


def test_a_cart_line_no_longer_on_sale_shows_its_error_until_removed(
    client: TestClient, shop: Shop, session: Session
) -> None:
    from partnercenter.catalog.models import Availability

    cart_id = new_cart(client, shop, shop.us.id, line(WINDOWS), line(AZURE))
    avail = session.execute(
        select(Availability).where(Availability.availability_id == "P1Y")
    ).scalar_one()
    avail.is_active = False
    session.commit()
    r = client.get(f"/v1/customers/{shop.us.id}/carts/{cart_id}", headers=shop.headers)
    assert r.status_code == 200, r.text
    windows, azure = r.json()["lineItems"]
    assert windows["pricing"]["gross"] == "972.50" and windows.get("error") is None
    assert azure["pricing"] is None and azure["error"]["code"] == 400019
    assert r.json()["totals"]["gross"] == "972.50"
    assert checkout(client, shop, shop.us.id, cart_id).json()["code"] == 400019


def test_buying_answers_are_the_bytes_a_json_response_writes_and_replays_repeat_them(
    client: TestClient, shop: Shop
) -> None:
    """The buying routes write their JSON with pydantic-core: byte for byte what Starlette's
    JSONResponse writes (compact, UTF-8), first answers and replays alike."""
    from fastapi.responses import JSONResponse

    def same_bytes(r: Any) -> bytes:
        assert r.headers["content-type"] == "application/json"
        assert r.content == JSONResponse(r.json()).body
        return bytes(r.content)

    url = f"/v1/customers/{shop.us.id}/carts"
    body = {"lineItems": [line(WINDOWS), line(AZURE, 2)]}
    rid = str(uuid.uuid4())
    created = client.post(url, json=body, headers={**shop.headers, "MS-RequestId": rid})
    assert created.status_code == 201, created.text
    again = client.post(url, json=body, headers={**shop.headers, "MS-RequestId": rid})
    assert same_bytes(created) == same_bytes(again)
    cart_id = created.json()["id"]
    changed = client.put(f"{url}/{cart_id}", json=body, headers=shop.headers)
    assert changed.status_code == 200, changed.text
    same_bytes(changed)
    rid = str(uuid.uuid4())
    first = checkout(client, shop, shop.us.id, cart_id, **{"MS-RequestId": rid})
    assert first.status_code == 201, first.text
    replayed = checkout(client, shop, shop.us.id, cart_id, **{"MS-RequestId": rid})
    from_cart = checkout(client, shop, shop.us.id, cart_id)
    assert replayed.status_code == from_cart.status_code == 201
    assert same_bytes(first) == same_bytes(replayed) == same_bytes(from_cart)
    assert first.json()["orders"][0]["currencySymbol"] == "$"
    order = client.post(
        f"/v1/customers/{shop.us.id}/orders",
        json={"billingCycle": "one_time", "lineItems": [{"offerId": WINDOWS, "quantity": 1}]},
        headers=shop.headers,
    )
    assert order.status_code == 201, order.text
    same_bytes(order)
