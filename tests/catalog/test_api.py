"""The catalog over the API: country-scoped browsing, roles (403), foreign customers (404),
catalog import/export, tax rates, key import and artifact uploads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog.document import CatalogDoc
from partnercenter.permissions import Role
from tests.factories import Factory

Headers = Callable[..., dict[str, str]]
WS_STD = "DG7GMGF0D7FV:0001"


def test_partner_staff_browse_the_catalog_of_a_market(
    client: TestClient, factory: Factory, auth_headers: Headers, demo_catalog: CatalogDoc
) -> None:
    h = auth_headers(factory.user(factory.partner(), Role.SALES_AGENT))
    r = client.get("/v1/products?country=AD&targetView=AzureReservations", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["totalCount"] == 0
    r = client.get("/v1/products?country=us&targetView=AzureReservations", headers=h)
    assert [p["id"] for p in r.json()["items"]] == ["DZH318Z0BQ3Q"]
    assert r.json()["items"][0]["productType"]["targetView"] == "AzureReservations"
    r = client.get("/v1/products/DG7GMGF0D7FV/skus?country=AU", headers=h)
    assert [s["id"] for s in r.json()["items"]] == ["0001", "0002"]
    r = client.get("/v1/products/DG7GMGF0D7FV/skus/0001/availabilities?country=AU", headers=h)
    assert r.status_code == 200
    [item] = r.json()["items"]
    assert item["catalogItemId"] == f"{WS_STD}:AUD-PERP-OT"
    assert item["defaultCurrency"] == {"code": "AUD", "symbol": "A$", "name": "Australian Dollar"}
    assert item["terms"] == [
        {"duration": None, "description": "Perpetual", "billingCycle": "one_time"}
    ]
    assert item["price"] == {
        "net": "1635.57",
        "tax": "163.56",
        "gross": "1799.13",
        "currency": "AUD",
        "listPrice": "1799.13",
        "taxRate": "0.1",
        "taxInclusive": True,
    }


def test_a_direct_request_for_a_hidden_offer_gets_800070_naming_the_market(
    client: TestClient, factory: Factory, auth_headers: Headers, demo_catalog: CatalogDoc
) -> None:
    h = auth_headers(factory.user(factory.partner(), Role.ADMIN_AGENT))
    r = client.get("/v1/products/DZH318Z0BQ3Q?country=AD", headers=h)
    assert r.status_code == 400
    assert r.json()["code"] == 800070
    assert "Andorra (AD)" in r.json()["description"]
    r = client.get(
        "/v1/products/DZH318Z0BQ3Q/skus/00VQ/availabilities/EUR-P1Y-OT?country=VA", headers=h
    )
    assert r.json()["code"] == 800070
    assert "(VA)" in r.json()["description"]
    r = client.get("/v1/products/NOPE?country=US", headers=h)
    assert (r.status_code, r.json()["code"]) == (404, 400013)
    r = client.get("/v1/products/DG7GMGF0D7FV/skus/9/availabilities?country=US", headers=h)
    assert (r.status_code, r.json()["code"]) == (404, 400018)
    r = client.get("/v1/products?country=QQ", headers=h)
    assert (r.status_code, r.json()["code"]) == (400, 10010)


def test_roles_without_catalog_access_get_403(
    client: TestClient, factory: Factory, auth_headers: Headers, demo_catalog: CatalogDoc
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    for user in (
        factory.user(partner, Role.BILLING_ADMIN),
        factory.user(customer, Role.GLOBAL_ADMIN),
        factory.user(factory.provider(), Role.SUPPORT_AGENT),
    ):
        h = auth_headers(user)
        assert client.get("/v1/products?country=US", headers=h).status_code == 403
    partner_admin = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    for method, path in (
        ("get", "/v1/catalog/export"),
        ("post", "/v1/catalog/import"),
        ("put", "/v1/taxrates/GB"),
        ("post", f"/v1/products/{WS_STD.replace(':', '/skus/')}/keys/import"),
        ("get", "/v1/keyinventory"),
    ):
        r = client.request(method, path, headers=partner_admin, json={"percent": "1"})
        assert r.status_code == 403, (method, path, r.text)


def test_customer_products_follow_the_customers_market_and_foreign_customers_are_404(
    client: TestClient, factory: Factory, auth_headers: Headers, demo_catalog: CatalogDoc
) -> None:
    partner, other = factory.partner(), factory.partner()
    andorra = factory.customer(partner, country="AD")
    foreign = factory.customer(other, country="US")
    h = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    r = client.get(f"/v1/customers/{andorra.id}/products", headers=h)
    assert r.status_code == 200
    ids = {p["id"] for p in r.json()["items"]}
    assert "DZH318Z0BQ3Q" not in ids and "DG7GMGF0D7FV" in ids
    r = client.get(f"/v1/customers/{foreign.id}/products", headers=h)
    assert r.status_code == 404
    missing = client.get("/v1/customers/00000000-0000-0000-0000-000000000000/products", headers=h)
    assert missing.status_code == 404 and missing.json()["code"] == r.json()["code"]


def test_provider_imports_a_catalog_and_gets_every_error_or_the_changes(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    small_doc: dict[str, Any],
) -> None:
    h = auth_headers(factory.provider_admin())
    sku = {"id": "1", "title": "S", "maxQuantity": -1}
    bad = yaml.safe_dump(
        {"products": [{"id": "X", "title": "T", "productType": "nope", "skus": [sku]}]}
    )
    r = client.post(
        "/v1/catalog/import", content=bad, headers={**h, "Content-Type": "application/yaml"}
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 13003
    assert {e["path"] for e in body["data"]} == {
        "products[0].productType",
        "products[0].skus[0].maxQuantity",
    }
    r = client.post("/v1/catalog/import", json=small_doc, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 15
    r = client.post("/v1/catalog/import", json=small_doc, headers=h)
    assert r.json()["summary"] == "0 changed"
    r = client.get("/v1/catalog/export?format=yaml", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/yaml")
    exported = yaml.safe_load(r.text)
    assert [p["id"] for p in exported["products"]] == ["WINSRV", "AZRES"]
    r = client.post("/v1/catalog/import?dryRun=true", content=r.text, headers=h)
    assert r.json()["dryRun"] is True
    records = (
        session.execute(select(AuditRecord).where(AuditRecord.operation_type == "import_catalog"))
        .scalars()
        .all()
    )
    assert len(records) == 1  # only the import that changed something


def test_provider_sets_a_tax_rate_and_prices_follow(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    demo_catalog: CatalogDoc,
) -> None:
    h = auth_headers(factory.provider_admin())
    r = client.put("/v1/taxrates/us", json={"percent": "8.875"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["percent"] == "8.875"
    r = client.get(
        "/v1/products/DG7GMGF0D7FV/skus/0001/availabilities/USD-PERP-OT?country=US", headers=h
    )
    # 1069.00 x 8.875 % = 94.874 -> 94.87
    assert r.json()["price"]["tax"] == "94.87"
    assert r.json()["price"]["gross"] == "1163.87"
    assert client.put("/v1/taxrates/US", json={"percent": "101"}, headers=h).status_code == 400
    rates = client.get("/v1/taxrates", headers=h).json()["items"]
    ad = next(m for m in rates if m["country"] == "AD")
    assert (ad["currency"], ad["azureReservationsAvailable"]) == ("EUR", False)


def test_provider_imports_keys_over_the_api(
    client: TestClient, factory: Factory, auth_headers: Headers, small_catalog: None
) -> None:
    h = auth_headers(factory.provider_admin())
    url = "/v1/products/WINSRV/skus/0001/keys/import"
    ok = "version,key\n2022,VK7JG-NPHTM-C97JM-9MPGT-3V66T\n2019,W269N-WFGWX-YVC9B-4J6C9-T83GX\n"
    r = client.post(url, content=ok, headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 2, "byVersion": {"2022": 1, "2019": 1}}
    again = client.post(url, files={"file": ("keys.csv", ok, "text/csv")}, headers=h)
    assert again.status_code == 400
    assert [e["row"] for e in again.json()["data"]] == [2, 3]
    stock = client.get("/v1/keyinventory", headers=h).json()["items"]
    assert {(s["version"], s["available"]) for s in stock if s["productId"] == "WINSRV"} == {
        ("2022", 1),
        ("2019", 1),
    }


def test_provider_uploads_an_artifact_with_size_and_sha256(
    client: TestClient, factory: Factory, auth_headers: Headers, small_catalog: None
) -> None:
    h = auth_headers(factory.provider_admin())
    data = b"installer bits " * 1000
    r = client.post(
        "/v1/products/WINSRV/skus/0001/artifacts",
        data={"version": "2022", "language": "es-ES", "bitness": "x64"},
        files={"file": ("es-es windows 2022.iso", data, "application/octet-stream")},
        headers=h,
    )
    assert r.status_code == 201, r.text
    art = r.json()
    assert (art["size"], art["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert art["fileName"] == "es-es_windows_2022.iso"
    r = client.post(
        "/v1/products/WINSRV/skus/0001/artifacts",
        data={"version": "2030", "language": "es-ES", "bitness": "x64"},
        files={"file": ("f.iso", b"x", "application/octet-stream")},
        headers=h,
    )
    assert (r.status_code, r.json()["code"]) == (400, 13007)
    r = client.post(
        "/v1/products/AZRES/skus/D2S/artifacts",
        data={"version": "1", "language": "en-US", "bitness": "x64"},
        files={"file": ("f.iso", b"x", "application/octet-stream")},
        headers=h,
    )
    assert r.status_code == 400
    listed = client.get("/v1/products/WINSRV/skus/0001/artifacts", headers=h).json()
    assert [(a["version"], a["language"], a["bitness"]) for a in listed["items"]] == [
        ("2022", "es-ES", "x64")
    ]
