"""Catalog fixtures: the shipped demo catalog, and a small document to break on purpose."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
from sqlalchemy.orm import Session

from partnercenter.catalog import demo, document
from partnercenter.catalog.document import CatalogDoc
from partnercenter.clock import FrozenClock


@cache
def _demo_doc() -> CatalogDoc:
    parsed = document.parse(demo.catalog_text(), filename="demo-catalog.yaml")
    return document.validate(parsed.data, lines=parsed.lines)


@pytest.fixture
def demo_catalog(session: Session, clock: FrozenClock) -> CatalogDoc:
    """The demo catalog's products, prices and tax rates (no files or keys)."""
    doc = _demo_doc()
    document.apply(session, doc=doc, now=clock.now(), actor=None)
    session.flush()
    return doc


SMALL: dict[str, Any] = {
    "taxRates": {"GB": "20", "AU": "10", "BR": "14.25", "JP": "10", "DE": "19"},
    "products": [
        {
            "id": "WINSRV",
            "title": "Windows Server 2022",
            "productType": "perpetual_software",
            "publisher": "Microsoft Corporation",
            "skus": [
                {
                    "id": "0001",
                    "title": "Standard - 16 Core",
                    "minQuantity": 1,
                    "maxQuantity": 10,
                    "keySource": "inventory",
                    "versions": ["2022", "2019"],
                    "availabilities": [
                        {
                            "id": "USD",
                            "markets": ["currency:USD"],
                            "currency": "USD",
                            "billingCycle": "one_time",
                            "price": "1069.00",
                        },
                        {
                            "id": "EUR",
                            "markets": ["currency:EUR"],
                            "currency": "EUR",
                            "billingCycle": "one_time",
                            "price": "983.48",
                        },
                        {
                            "id": "AU",
                            "markets": ["AU"],
                            "currency": "AUD",
                            "billingCycle": "one_time",
                            "price": "1799.19",
                        },
                        {
                            "id": "JP",
                            "markets": ["JP"],
                            "currency": "JPY",
                            "billingCycle": "one_time",
                            "price": "160350",
                        },
                    ],
                }
            ],
        },
        {
            "id": "AZRES",
            "title": "Reserved VM Instances",
            "productType": "azure_reservation",
            "skus": [
                {
                    "id": "D2S",
                    "title": "Standard_D2s_v5",
                    "maxQuantity": 100,
                    "availabilities": [
                        {
                            "id": "P1Y",
                            "markets": ["currency:USD"],
                            "currency": "USD",
                            "term": "P1Y",
                            "billingCycle": "one_time",
                            "price": "603.00",
                        },
                        {
                            "id": "P1YEUR",
                            "markets": ["currency:EUR"],
                            "currency": "EUR",
                            "term": "P1Y",
                            "billingCycle": "monthly",
                            "price": "46.23",
                        },
                    ],
                }
            ],
        },
    ],
}


@pytest.fixture
def small_doc() -> dict[str, Any]:
    return copy.deepcopy(SMALL)


@pytest.fixture
def small_catalog(session: Session, clock: FrozenClock, small_doc: dict[str, Any]) -> None:
    document.apply(session, doc=document.validate(small_doc), now=clock.now(), actor=None)
    session.flush()
