"""Browsing and pricing per market: US, AU, BR, JP, and every market without Azure
reservations; catalog item resolution errors and quotes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.document import CatalogDoc
from partnercenter.catalog.errors import (
    AvailabilityNotFound,
    InvalidCatalogItemId,
    InvalidQuantity,
    InvalidTerm,
    MarketUnavailable,
    ProductNotFound,
    SkuNotFound,
)
from partnercenter.catalog.models import CreditRule, ProductType
from partnercenter.markets import all_countries, azure_reservations_unavailable, market_currency

D = Decimal
WS_STD = "DG7GMGF0D7FV:0001"  # Windows Server 2022 Standard, perpetual
AZURE_D2S = "DZH318Z0BQ3Q:00VQ"  # Reserved VM instance, Standard_D2s_v5
ALL_PRODUCTS = {
    "DG7GMGF0D7FV", "DG7GMGF0FKZV", "DG7GMGF0FLR2", "DZH318Z0BQ3Q", "DZH318Z0BQ4P",
    "DZH318Z0BQ5R",
}  # fmt: skip
PRICED = {"USD", "EUR", "GBP", "AUD", "BRL", "JPY", "KWD"}


def _ids(session: Session, country: str, view: str | None = None) -> set[str]:
    return {p.id for p in catalog.list_products(session, country=country, target_view=view)}


def test_the_blocked_market_list_is_the_seeds_109_names_on_106_codes() -> None:
    blocked = azure_reservations_unavailable()
    assert len(blocked) == 106
    assert blocked["BQ"] == "Bonaire, Saba, Sint Eustatius"
    assert blocked["SJ"] == "Jan Mayen, Svalbard"
    assert {"XK", "AD", "CN", "VA", "YE", "UM", "SH"} <= set(blocked)
    assert not {"US", "AU", "BR", "JP", "GB", "DE"} & set(blocked)
    assert set(blocked) <= set(all_countries())


@pytest.mark.parametrize(
    ("country", "currency"),
    [("US", "USD"), ("AU", "AUD"), ("BR", "BRL"), ("JP", "JPY"), ("KW", "KWD"), ("AD", "EUR"),
     ("XK", "EUR"), ("GB", "GBP"), ("BJ", "USD"), ("AQ", "USD"), ("HM", "AUD")],
)  # fmt: skip
def test_every_market_has_a_currency(country: str, currency: str) -> None:
    assert market_currency(country) == currency


def test_every_country_and_kosovo_is_a_market() -> None:
    countries = all_countries()
    assert "XK" in countries and len(countries) >= 250
    assert all(market_currency(c) for c in countries)


@pytest.mark.parametrize("country", ["US", "AU", "BR", "JP", "GB", "DE"])
def test_markets_with_azure_reservations_see_every_product(
    session: Session, demo_catalog: CatalogDoc, country: str
) -> None:
    assert _ids(session, country) == ALL_PRODUCTS
    assert _ids(session, country, "AzureReservations") == {"DZH318Z0BQ3Q"}
    assert _ids(session, country, "SoftwarePerpetual") == {"DG7GMGF0D7FV"}
    assert _ids(session, country, "SoftwareSubscriptions") == {"DG7GMGF0FKZV", "DG7GMGF0FLR2"}
    assert _ids(session, country, "SoftwareSUSELinux") == {"DZH318Z0BQ4P", "DZH318Z0BQ5R"}
    assert "DZH318Z0BQ3Q" not in _ids(session, country, "Software")


def test_every_unavailable_market_hides_azure_reservations_and_refuses_them_by_name(
    session: Session, demo_catalog: CatalogDoc
) -> None:
    blocked = azure_reservations_unavailable()
    for country in blocked:
        ids = _ids(session, country)
        assert "DZH318Z0BQ3Q" not in ids, country
        assert _ids(session, country, "AzureReservations") == set(), country
        if market_currency(country) in PRICED:
            # Software is still sold there, in the market's currency.
            assert ids == ALL_PRODUCTS - {"DZH318Z0BQ3Q"}, country
        for item in (f"{AZURE_D2S}:USD-P1Y-OT", f"{AZURE_D2S}:EUR-P1Y-MO"):
            with pytest.raises(MarketUnavailable) as caught:
                catalog.resolve_availability(session, catalog_item_id=item, country=country)
            assert caught.value.code == 800070
            label = f"({country})"
            assert label in caught.value.description, caught.value.description
            assert all_countries()[country].name in caught.value.description
        with pytest.raises(MarketUnavailable):
            catalog.list_skus(session, product_id="DZH318Z0BQ3Q", country=country)
    assert len(blocked) == 106  # every one was tried


def test_andorra_error_names_the_market(session: Session, demo_catalog: CatalogDoc) -> None:
    with pytest.raises(MarketUnavailable) as caught:
        catalog.resolve_availability(
            session, catalog_item_id=f"{AZURE_D2S}:EUR-P1Y-OT", country="AD"
        )
    assert "not available in market Andorra (AD)" in caught.value.description


def _price(session: Session, item: str, country: str) -> tuple[str, str, str, str]:
    p = catalog.resolve_availability(session, catalog_item_id=item, country=country).unit_price
    return (str(p.net), str(p.tax), str(p.gross), p.currency)


@pytest.mark.parametrize(
    ("country", "avail", "expected"),
    [
        # US: tax excluded, 0 % in the demo table.
        ("US", "USD-PERP-OT", ("1069.00", "0.00", "1069.00", "USD")),
        # GB: 20 % added on top.
        ("GB", "GBP-PERP-OT", ("844.51", "168.90", "1013.41", "GBP")),
        # DE: 19 % added on top.
        ("DE", "EUR-PERP-OT", ("983.48", "186.86", "1170.34", "EUR")),
        # AU: 1799.13 includes 10 % GST: tax = 1799.13 x 0.1 / 1.1 = 163.557 -> 163.56.
        ("AU", "AUD-PERP-OT", ("1635.57", "163.56", "1799.13", "AUD")),
        # BR: 6595.20 includes 14.25 %: tax = 6595.20 x 0.1425 / 1.1425 = 822.596 -> 822.60.
        ("BR", "BRL-PERP-OT", ("5772.60", "822.60", "6595.20", "BRL")),
        # JP: no decimals; 10 % of 160350.
        ("JP", "JPY-PERP-OT", ("160350", "16035", "176385", "JPY")),
        # KW: three decimals; no tax row.
        ("KW", "KWD-PERP-OT", ("328.183", "0.000", "328.183", "KWD")),
    ],
)
def test_prices_by_hand(
    session: Session,
    demo_catalog: CatalogDoc,
    country: str,
    avail: str,
    expected: tuple[str, str, str, str],
) -> None:
    assert _price(session, f"{WS_STD}:{avail}", country) == expected


def test_an_offer_in_another_currency_is_not_sold_in_the_market(
    session: Session, demo_catalog: CatalogDoc
) -> None:
    with pytest.raises(MarketUnavailable) as caught:
        catalog.resolve_availability(session, catalog_item_id=f"{WS_STD}:USD-PERP-OT", country="JP")
    assert "Japan (JP)" in caught.value.description
    offered = catalog.list_availabilities(
        session, product_id="DG7GMGF0D7FV", sku_id="0001", country="JP"
    )
    assert [i.catalog_item_id for i in offered] == [f"{WS_STD}:JPY-PERP-OT"]


@pytest.mark.parametrize(
    ("item", "error", "code"),
    [
        ("NOPE:0001:USD-PERP-OT", ProductNotFound, 400013),
        ("DG7GMGF0D7FV:9999:USD-PERP-OT", SkuNotFound, 400018),
        ("DG7GMGF0D7FV:0001:NOPE", AvailabilityNotFound, 400019),
        ("DG7GMGF0D7FV:0001", InvalidCatalogItemId, 13002),
    ],
)
def test_unknown_ids_get_partner_center_codes(
    session: Session, demo_catalog: CatalogDoc, item: str, error: type[Exception], code: int
) -> None:
    with pytest.raises(error) as caught:
        catalog.resolve_availability(session, catalog_item_id=item, country="US")
    assert caught.value.code == code  # type: ignore[attr-defined]


def test_quote_checks_quantity_term_and_billing_cycle(
    session: Session, demo_catalog: CatalogDoc
) -> None:
    item = "DG7GMGF0FKZV:0001:GBP-P3Y-AN"  # Windows Server subscription, 1-500 packs
    for quantity in (0, 501, -1):
        with pytest.raises(InvalidQuantity) as caught:
            catalog.quote(session, catalog_item_id=item, country="GB", quantity=quantity)
        assert caught.value.code == 10010
        assert "1 to 500" in caught.value.description
    with pytest.raises(InvalidTerm):
        catalog.quote(session, catalog_item_id=item, country="GB", quantity=1, term_duration="P1Y")
    with pytest.raises(InvalidTerm):
        catalog.quote(
            session, catalog_item_id=item, country="GB", quantity=1, billing_cycle="monthly"
        )
    q = catalog.quote(
        session,
        catalog_item_id=item,
        country="GB",
        quantity=16,
        term_duration="P3Y",
        billing_cycle="Annual",  # Partner Center's spelling is accepted
    )
    # 57.85 USD x 0.79 = 45.70 GBP per pack per year; 16 packs = 731.20, 20 % = 146.24.
    assert q.unit_price.net == D("45.70")
    assert (q.line_price.net, q.line_price.tax, q.line_price.gross) == (
        D("731.20"), D("146.24"), D("877.44"),
    )  # fmt: skip
    assert q.to_json()["linePrice"] == {
        "net": "731.20", "tax": "146.24", "gross": "877.44", "currency": "GBP",
    }  # fmt: skip


def test_cancellation_policies_default_to_the_seed_and_partner_center_rules(
    session: Session, demo_catalog: CatalogDoc
) -> None:
    perpetual = catalog.cancellation_policy_for(session, product_id="DG7GMGF0D7FV")
    assert (perpetual.window_days, perpetual.credit_rule) == (30, CreditRule.FULL)
    subscription = catalog.cancellation_policy_for(session, product_id="DG7GMGF0FKZV")
    assert (subscription.window_days, subscription.credit_rule) == (30, CreditRule.PRORATED)
    plan = catalog.cancellation_policy_for(session, product_id="DZH318Z0BQ4P")
    assert not plan.cancellable
    azure = catalog.cancellation_policy_for(session, product_id="DZH318Z0BQ3Q")
    assert azure.credit_rule == CreditRule.PRORATED_LESS_FEE
    assert (azure.full_credit_days, azure.fee_percent) == (5, D("12"))
    assert (azure.cap_amount, azure.cap_currency, azure.cap_period_days) == (
        D("50000.00"), "USD", 365,
    )  # fmt: skip
    product = catalog.get_product(session, product_id="DZH318Z0BQ3Q")
    assert product.product_type == ProductType.AZURE_RESERVATION
