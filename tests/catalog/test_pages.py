"""Provider console pages: browse per market, import errors, tax rates, key stock; and the
partner's catalog page."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.document import CatalogDoc
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory
from tests.web import csrf_of, sign_in


def _provider(client: TestClient, factory: Factory, session: Session) -> None:
    admin = factory.provider_admin()
    session.commit()
    assert sign_in(client, admin.email, PASSWORD).status_code == 303


def test_provider_browses_the_catalog_per_market(
    client: TestClient, factory: Factory, session: Session, demo_catalog: CatalogDoc
) -> None:
    _provider(client, factory, session)
    r = client.get("/provider/catalog?country=AU")
    assert r.status_code == 200
    assert "Prices include tax in this market." in r.text
    assert "DZH318Z0BQ3Q:00VQ:AUD-P1Y-OT" in r.text
    assert "1,799.13 AUD" in r.text  # formatted for the reader (Babel)
    r = client.get("/provider/catalog?country=AD")
    assert 'data-testid="azure-unavailable"' in r.text
    assert "DZH318Z0BQ3Q" not in r.text
    assert "DG7GMGF0D7FV:0001:EUR-PERP-OT" in r.text
    r = client.get("/provider/catalog/products/DZH318Z0BQ3Q")
    assert r.status_code == 200 and "Early termination fee: 12 %" in r.text
    r = client.get("/provider/catalog?country=ES", headers={"Accept-Language": "es-ES"})
    assert "En este mercado los precios no incluyen impuestos." in r.text


def test_import_page_lists_every_error_and_changes_nothing(
    client: TestClient, factory: Factory, session: Session, demo_catalog: CatalogDoc
) -> None:
    _provider(client, factory, session)
    token = csrf_of(client.get("/provider/catalog/import").text)
    bad = "products:\n  - id: X\n    title: T\n    productType: perpetual_software\n" \
          "    skus:\n      - id: '1'\n        title: S\n        versions: ['1']\n" \
          "        availabilities:\n          - {id: A, markets: [JP], currency: JPY,\n" \
          "             billingCycle: one_time, price: '10.5'}\n"  # fmt: skip
    r = client.post(
        "/provider/catalog/import",
        data={"csrf_token": token, "text": bad, "action": "import"},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert r.status_code == 400
    assert "products[0].skus[0].availabilities[0].price" in r.text
    assert "JPY has no decimals" in r.text
    session.expire_all()
    assert catalog.list_products(session, country="JP", target_view=None)[0].id != "X"
    # Editing starts from the current catalog, as YAML in the form.
    r = client.get("/provider/catalog/import?edit=1")
    assert "DG7GMGF0D7FV" in r.text and "currency:JPY" in r.text


def test_provider_edits_a_tax_rate_on_the_page(
    client: TestClient, factory: Factory, session: Session, demo_catalog: CatalogDoc
) -> None:
    _provider(client, factory, session)
    page = client.get("/provider/tax-rates")
    assert page.status_code == 200 and 'id="market-XK"' in page.text
    r = client.post(
        "/provider/tax-rates",
        data={"csrf_token": csrf_of(page.text), "country": "NZ", "percent": "15,5"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.expire_all()
    assert str(catalog.tax_rate(session, country="NZ")) == "0.155"
    r = client.post(
        "/provider/tax-rates",
        data={"csrf_token": csrf_of(page.text), "country": "NZ", "percent": "abc"},
    )
    assert r.status_code == 400 and "is not a number" in r.text
    r = client.post("/provider/tax-rates", data={"country": "NZ", "percent": "1"})
    assert r.status_code == 403  # no CSRF token


def test_key_page_shows_stock_warns_when_low_and_reports_bad_rows(
    client: TestClient, factory: Factory, session: Session, demo_catalog: CatalogDoc
) -> None:
    _provider(client, factory, session)
    page = client.get("/provider/keys")
    assert page.status_code == 200
    assert 'data-testid="low-stock"' in page.text  # nothing imported yet: every SKU is low
    csv_text = (
        "version,key\n2022,VK7JG-NPHTM-C97JM-9MPGT-3V66T\n2022,vk7jg-nphtm-c97jm-9mpgt-3v66t\n"
    )
    r = client.post(
        "/provider/keys/import",
        data={"csrf_token": csrf_of(page.text), "sku": "DG7GMGF0D7FV:0001"},
        files={"file": ("keys.csv", csv_text.encode(), "text/csv")},
    )
    assert r.status_code == 400
    assert "duplicate of row 2" in r.text
    r = client.post(
        "/provider/keys/import",
        data={"csrf_token": csrf_of(page.text), "sku": "DG7GMGF0D7FV:0001"},
        files={"file": ("keys.csv", csv_text.splitlines(True)[0] + csv_text.splitlines(True)[1],
                        "text/csv")},
    )  # fmt: skip
    assert r.status_code == 200 and "1 keys imported." in r.text


def test_partner_catalog_page_uses_the_partner_market_and_refuses_other_roles(
    client: TestClient, factory: Factory, session: Session, demo_catalog: CatalogDoc
) -> None:
    partner = factory.partner(country="JP")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    billing = factory.user(partner, Role.BILLING_ADMIN)
    session.commit()
    sign_in(client, agent.email, PASSWORD)
    r = client.get("/partner/catalog")
    assert r.status_code == 200
    assert "160,350" in r.text and ">Japan<" in r.text
    assert 'href="/partner/catalog"' in r.text
    client.cookies.clear()
    sign_in(client, billing.email, PASSWORD)
    assert client.get("/partner/catalog").status_code == 403
    assert client.get("/provider/catalog").status_code == 403
