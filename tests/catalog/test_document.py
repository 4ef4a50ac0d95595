"""The catalog document: every error with its path, nothing changed; idempotent re-import."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.catalog import document
from partnercenter.catalog import services as catalog
from partnercenter.catalog.errors import CatalogDocumentInvalid, ProductNotFound
from partnercenter.catalog.models import Availability, Product, TaxRate
from partnercenter.clock import FrozenClock


def _import(session: Session, clock: FrozenClock, text: str, filename: str = "c.yaml") -> Any:
    return document.import_text(session, text=text, filename=filename, now=clock.now(), actor=None)


def _errors(
    session: Session, clock: FrozenClock, text: str, filename: str = "c.yaml"
) -> list[dict[str, Any]]:
    with pytest.raises(CatalogDocumentInvalid) as caught:
        _import(session, clock, text, filename)
    return caught.value.errors


def _count(session: Session, model: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_broken_document_reports_every_error_with_its_path_and_changes_nothing(
    session: Session, clock: FrozenClock, small_catalog: None, small_doc: dict[str, Any]
) -> None:
    before = (_count(session, Product), _count(session, Availability), _count(session, TaxRate))
    ws = small_doc["products"][0]
    ws["title"] = "Renamed, but the file is broken so this must not be applied"
    avail = ws["skus"][0]["availabilities"]
    avail[0]["price"] = "12.345"  # USD has 2 decimals
    avail[1]["markets"] = ["DE", "US"]  # US is billed in USD, not EUR
    avail[3]["price"] = "1500.5"  # JPY has no decimals
    avail[2]["term"] = "P2Y"
    ws["skus"][0]["maxQuantity"] = 0
    azure = small_doc["products"][1]["skus"][0]["availabilities"]
    azure[0]["markets"] = ["AD"]
    azure[1]["price"] = ["not", "a", "price"]
    small_doc["products"][1]["productType"] = "azure_reservation"
    small_doc["products"].append({"id": "BAD:ID", "title": "", "productType": "gadget"})
    small_doc["products"].append({"id": "WINSRV", "title": "Twice", "productType": "gadget"})
    ws["skus"].append({"id": 1, "title": "Number id"})
    small_doc["taxRates"]["ZZ"] = "5"
    small_doc["taxRates"]["FR"] = "120"
    text = yaml.safe_dump(small_doc, sort_keys=False)

    errors = _errors(session, clock, text)

    found = {(e["path"], e["message"]) for e in errors}
    paths = {e["path"] for e in errors}
    assert ("products[0].skus[0].availabilities[0].price", "USD has 2 decimals") in found
    assert (
        "products[0].skus[0].availabilities[1].markets[1]",
        "United States (US) is billed in USD, not EUR",
    ) in found
    assert ("products[0].skus[0].availabilities[3].price", "JPY has no decimals") in found
    assert (
        "products[0].skus[0].availabilities[2].term",
        "'P2Y' is not one of 'P1M', 'P1Y', 'P3Y'",
    ) in found
    assert ("products[0].skus[0].maxQuantity", "must be at least minQuantity (1)") in found
    assert (
        "products[1].skus[0].availabilities[0].markets[0]",
        "Azure reservations are not available in market Andorra (AD)",
    ) in found
    assert (
        "products[1].skus[0].availabilities[1].price",
        'expected a decimal amount such as "12.50"',
    ) in found
    assert {"products[2].title", "products[2].productType"} <= paths
    assert ("products[3].id", "'WINSRV' is also 'products[0]'") in found
    assert (
        "products[0].skus[1].id",
        'Input should be a valid string (write it in quotes, e.g. "0001": '
        "YAML reads 0001 as the number 1)",
    ) in found
    assert ("taxRates.ZZ", "'ZZ' is not an ISO 3166-1 alpha-2 country code") in found
    assert ("taxRates.FR", "a percentage is at most 100") in found
    # Every error carries the line of the YAML it points at, in document order.
    assert all(isinstance(e["line"], int) for e in errors)
    assert [e["line"] for e in errors] == sorted(e["line"] for e in errors)
    line_of_jpy = next(i + 1 for i, line in enumerate(text.splitlines()) if "1500.5" in line)
    assert {"path": "products[0].skus[0].availabilities[3].price", "line": line_of_jpy,
            "message": "JPY has no decimals"} in errors  # fmt: skip
    # Nothing changed.
    session.expire_all()
    after = (_count(session, Product), _count(session, Availability), _count(session, TaxRate))
    assert after == before
    assert session.get(Product, "WINSRV").title == "Windows Server 2022"  # type: ignore[union-attr]


def test_syntax_errors_name_the_line(session: Session, clock: FrozenClock) -> None:
    errors = _errors(session, clock, "products:\n  - id: A\n    title: [unclosed\n")
    assert errors[0]["line"] is not None
    assert errors[0]["message"].startswith("invalid YAML")
    errors = _errors(session, clock, '{"products": [}', "c.json")
    assert errors[0]["message"] == "invalid JSON: Expecting value at line 1, column 15"
    assert (errors[0]["line"], errors[0]["column"]) == (1, 15)
    errors = _errors(session, clock, '{\n  "products": [\n    1,\n  }', "c.json")
    assert errors[0]["message"].endswith("at line 4, column 3")


def test_reimporting_the_same_file_changes_nothing(
    session: Session, clock: FrozenClock, small_doc: dict[str, Any]
) -> None:
    text = yaml.safe_dump(small_doc)
    first = _import(session, clock, text)
    assert first.created == 2 + 2 + 6  # products, SKUs, availabilities
    assert first.tax_rates == 5
    again = _import(session, clock, text)
    assert again.changed == 0
    assert again.to_json()["summary"] == "0 changed"


def test_export_imports_back_unchanged_as_yaml_and_json(
    session: Session, clock: FrozenClock, demo_catalog: Any
) -> None:
    exported = document.export(session)
    assert _import(session, clock, document.dump(exported, fmt="yaml")).changed == 0
    assert _import(session, clock, document.dump(exported, fmt="json"), "c.json").changed == 0
    assert (
        json.loads(document.dump(exported, fmt="json"))["products"][0]["skus"][0]["availabilities"][
            0
        ]["price"]
        == "1069.00"
    )


def test_changes_are_counted_and_missing_items_are_retired(
    session: Session, clock: FrozenClock, small_catalog: None, small_doc: dict[str, Any]
) -> None:
    small_doc["products"][0]["skus"][0]["availabilities"][0]["price"] = "999.00"
    small_doc["products"][0]["skus"][0]["availabilities"].pop()  # JP offer removed
    del small_doc["products"][1]  # Azure product removed
    small_doc["taxRates"]["GB"] = "17.5"
    report = _import(session, clock, yaml.safe_dump(small_doc))
    assert (report.created, report.updated, report.retired, report.tax_rates) == (0, 1, 2, 1)
    assert "availability WINSRV:0001:USD updated" in report.details
    assert "product AZRES retired" in report.details
    assert catalog.tax_rate(session, country="GB") == Decimal("0.175")
    with pytest.raises(ProductNotFound):
        catalog.get_product(session, product_id="AZRES")
    # What is left exports and imports back unchanged.
    small_doc2 = yaml.safe_dump(document.export(session))
    assert _import(session, clock, small_doc2).changed == 0


def test_the_shipped_demo_catalog_is_valid_and_covers_the_required_markets() -> None:
    from partnercenter.catalog import demo

    parsed = document.parse(demo.catalog_text(), filename="demo-catalog.yaml")
    doc = document.validate(parsed.data, lines=parsed.lines)
    assert doc.products is not None
    titles = {p.title for p in doc.products}
    assert {"Windows Server 2022", "SQL Server 2022", "Reserved Virtual Machine Instances",
            "SUSE Linux Enterprise Server", "Red Hat Enterprise Linux"} <= titles  # fmt: skip
    currencies = {a.currency for p in doc.products for s in p.skus for a in s.availabilities}
    assert {"USD", "EUR", "GBP", "AUD", "BRL", "JPY"} <= currencies
    terms = {(a.term, a.billingCycle.value) for p in doc.products for s in p.skus
             for a in s.availabilities}  # fmt: skip
    assert {(None, "one_time"), ("P1Y", "annual"), ("P3Y", "annual"), ("P1Y", "monthly"),
            ("P3Y", "one_time")} <= terms  # fmt: skip
