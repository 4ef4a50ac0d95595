"""Money: minor units per currency, half-up rounding, net + tax = gross, AU/BR inclusive."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnercenter.money import (
    MoneyError,
    Price,
    from_minor,
    line_price,
    minor_units,
    parse_amount,
    price_from_list,
    quantize,
    tax_inclusive,
    to_minor,
)

D = Decimal


@pytest.mark.parametrize(
    ("currency", "places"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("AUD", 2), ("BRL", 2), ("JPY", 0), ("KWD", 3)],
)
def test_minor_units_come_from_babel(currency: str, places: int) -> None:
    assert minor_units(currency) == places


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.345", "USD", 1235),  # half-up, not banker's rounding
        ("12.335", "USD", 1234),
        ("0.125", "EUR", 13),
        ("0.005", "USD", 1),
        ("1500.5", "JPY", 1501),
        ("1499.4", "JPY", 1499),
        ("2.5", "JPY", 3),
        ("1.0005", "KWD", 1001),
        ("1.0004", "KWD", 1000),
        ("-0.125", "USD", -13),  # half away from zero
        ("0", "KWD", 0),
    ],
)
def test_to_minor_rounds_half_up(amount: str, currency: str, minor: int) -> None:
    assert to_minor(D(amount), currency) == minor


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [(1235, "USD", "12.35"), (1500, "JPY", "1500"), (1001, "KWD", "1.001"), (5, "USD", "0.05")],
)
def test_from_minor_keeps_the_currency_exponent(minor: int, currency: str, amount: str) -> None:
    value = from_minor(minor, currency)
    assert value == D(amount)
    assert str(value) == amount


@pytest.mark.parametrize(
    ("amount", "currency", "rate", "inclusive", "net", "tax", "gross"),
    [
        # Exclusive markets: the list price is the net.
        ("100.00", "USD", "0", False, "100.00", "0.00", "100.00"),
        ("100.00", "GBP", "0.20", False, "100.00", "20.00", "120.00"),
        ("983.48", "EUR", "0.19", False, "983.48", "186.86", "1170.34"),
        ("19.99", "EUR", "0.21", False, "19.99", "4.20", "24.19"),  # 4.1979 -> 4.20
        ("160350", "JPY", "0.10", False, "160350", "16035", "176385"),
        ("1069", "JPY", "0.10", False, "1069", "107", "1176"),  # 106.9 -> 107
        ("12.345", "KWD", "0.05", False, "12.345", "0.617", "12.962"),  # 0.61725 -> 0.617
        # Inclusive markets (AU, BR): the list price is the gross.
        ("110.00", "AUD", "0.10", True, "100.00", "10.00", "110.00"),
        ("1799.19", "AUD", "0.10", True, "1635.63", "163.56", "1799.19"),  # 163.5627...
        ("100.00", "BRL", "0.1425", True, "87.53", "12.47", "100.00"),  # 12.4726...
        ("6595.43", "BRL", "0.1425", True, "5772.81", "822.62", "6595.43"),  # 822.6247...
    ],
)
def test_price_from_list(
    amount: str, currency: str, rate: str, inclusive: bool, net: str, tax: str, gross: str
) -> None:
    price = price_from_list(D(amount), currency, D(rate), inclusive)
    assert (price.net, price.tax, price.gross) == (D(net), D(tax), D(gross))
    assert price.currency == currency


def test_only_australia_and_brazil_include_tax() -> None:
    assert tax_inclusive("AU") and tax_inclusive("br")
    assert not any(tax_inclusive(c) for c in ("US", "GB", "JP", "DE", "NZ", "KW", "AD"))


def test_price_renders_strings_in_json() -> None:
    price = price_from_list(D("100"), "gbp", D("0.2"), False)
    assert price.to_json() == {
        "net": "100.00",
        "tax": "20.00",
        "gross": "120.00",
        "currency": "GBP",
    }
    assert Price.from_minor_parts(*price.minor(), "GBP") == price


def test_price_refuses_parts_that_do_not_add_up_or_too_many_decimals() -> None:
    with pytest.raises(MoneyError):
        Price(D("1.00"), D("0.10"), D("1.11"), "USD")
    with pytest.raises(MoneyError):
        Price(D("1.5"), D("0"), D("1.5"), "JPY")


def test_floats_are_refused() -> None:
    with pytest.raises(MoneyError):
        parse_amount(0.1)
    with pytest.raises(MoneyError):
        quantize(0.1, "USD")  # type: ignore[arg-type]
    assert parse_amount("0.10") == D("0.10")


def test_a_line_is_rounded_once_not_per_unit() -> None:
    # Tax on the line: 3 x 33.33 = 99.99 at 20 % -> 20.00 (per unit it would be 3 x 6.67).
    line = line_price(D("33.33"), 3, "EUR", D("0.2"), False)
    assert (line.net, line.tax, line.gross) == (D("99.99"), D("20.00"), D("119.99"))


CURRENCIES = st.sampled_from(["USD", "EUR", "GBP", "AUD", "BRL", "JPY", "KWD"])
RATES = st.decimals(min_value=0, max_value=D("0.5"), places=4)


def _amounts(currency: str) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=0, max_value=D("10000000"), places=minor_units(currency), allow_nan=False
    )


@given(data=st.data(), currency=CURRENCIES, rate=RATES, inclusive=st.booleans())
def test_net_plus_tax_is_gross(
    data: st.DataObject, currency: str, rate: Decimal, inclusive: bool
) -> None:
    amount = data.draw(_amounts(currency))
    price = price_from_list(amount, currency, rate, inclusive)
    assert price.net + price.tax == price.gross
    assert price.tax >= 0 and price.net >= 0
    for part in (price.net, price.tax, price.gross):
        assert quantize(part, currency) == part
        assert from_minor(to_minor(part, currency), currency) == part
    # The list amount is the gross where prices include tax, the net elsewhere.
    assert (price.gross if inclusive else price.net) == amount


@given(data=st.data(), currency=CURRENCIES, rate=RATES)
def test_inclusive_and_exclusive_round_trip(
    data: st.DataObject, currency: str, rate: Decimal
) -> None:
    net = data.draw(_amounts(currency))
    unit = D(1).scaleb(-minor_units(currency))
    exclusive = price_from_list(net, currency, rate, False)
    inclusive = price_from_list(exclusive.gross, currency, rate, True)
    assert inclusive.gross == exclusive.gross
    # Rounding the tax twice may move one minor unit between net and tax, never more.
    assert abs(inclusive.net - exclusive.net) <= unit
    assert abs(inclusive.tax - exclusive.tax) <= unit
    back = price_from_list(inclusive.net, currency, rate, False)
    assert abs(back.gross - inclusive.gross) <= unit


@given(currency=CURRENCIES, units=st.integers(min_value=-(10**12), max_value=10**12))
def test_minor_units_round_trip(currency: str, units: int) -> None:
    assert to_minor(from_minor(units, currency), currency) == units
