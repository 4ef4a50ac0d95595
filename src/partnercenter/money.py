"""Money: ``Decimal`` amounts rounded half-up to each currency's minor unit, and tax.

The database stores integer minor units (cents, yen, fils) beside a currency code; the domain
works in ``Decimal``; JSON carries amounts as strings. Prices exclude tax everywhere except in
the markets of :data:`TAX_INCLUSIVE_MARKETS` (Australia and Brazil), where the catalog price
already includes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel.numbers import get_currency_precision, get_currency_symbol

TAX_INCLUSIVE_MARKETS = frozenset({"AU", "BR"})
"""Markets whose catalog prices include tax (seed: "For Australia and Brazil, the price
includes tax")."""

ZERO = Decimal(0)


class MoneyError(ValueError):
    """An amount or currency that money arithmetic cannot accept."""


@cache
def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3), from Babel (CLDR)."""
    code = currency.upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"'{currency}' is not an ISO 4217 currency code.")
    return int(get_currency_precision(code))


def currency_symbol(currency: str, locale: str = "en_US") -> str:
    return str(get_currency_symbol(currency.upper(), locale=locale))


def _exponent(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round ``amount`` half-up to the currency's minor unit."""
    if not isinstance(amount, Decimal):
        raise MoneyError("amounts must be Decimal, never float")
    if not amount.is_finite():
        raise MoneyError(f"'{amount}' is not a finite amount.")
    return amount.quantize(_exponent(currency), rounding=ROUND_HALF_UP)


def is_exact(amount: Decimal, currency: str) -> bool:
    """Whether ``amount`` has no more decimals than the currency's minor unit allows."""
    return quantize(amount, currency) == amount


def to_minor(amount: Decimal, currency: str) -> int:
    """The amount in integer minor units (rounded half-up): USD 12.345 -> 1235."""
    return int(quantize(amount, currency).scaleb(minor_units(currency)))


def from_minor(units: int, currency: str) -> Decimal:
    """The ``Decimal`` amount of integer minor units: (1235, USD) -> 12.35, (1500, JPY) -> 1500."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise MoneyError("minor units must be an integer")
    return Decimal(units).scaleb(-minor_units(currency)).quantize(_exponent(currency))


def parse_amount(value: Any) -> Decimal:
    """A ``Decimal`` from a string or int (floats are refused: they are not exact)."""
    if isinstance(value, (bool, float)):
        raise MoneyError("amounts must be given as strings or integers, not floating point")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MoneyError(f"'{value}' is not a decimal amount.") from None
    if not amount.is_finite():
        raise MoneyError(f"'{value}' is not a finite amount.")
    return amount


def tax_inclusive(country: str) -> bool:
    """Whether catalog prices in this market include tax (AU and BR)."""
    return country.upper() in TAX_INCLUSIVE_MARKETS


@dataclass(frozen=True, slots=True)
class Price:
    """An amount with its net, tax and gross parts, each rounded to the currency's minor unit."""

    net: Decimal
    tax: Decimal
    gross: Decimal
    currency: str

    def __post_init__(self) -> None:
        if self.net + self.tax != self.gross:
            raise MoneyError(f"net {self.net} + tax {self.tax} != gross {self.gross}")
        for part in (self.net, self.tax, self.gross):
            if not is_exact(part, self.currency):
                raise MoneyError(f"{part} has more decimals than {self.currency} allows")

    @classmethod
    def zero(cls, currency: str) -> Price:
        z = quantize(ZERO, currency)
        return cls(z, z, z, currency.upper())

    def to_json(self) -> dict[str, str]:
        return {
            "net": str(self.net),
            "tax": str(self.tax),
            "gross": str(self.gross),
            "currency": self.currency,
        }

    def __add__(self, other: Price) -> Price:
        if other.currency != self.currency:
            raise MoneyError(f"cannot add {other.currency} to {self.currency}")
        return Price(
            self.net + other.net, self.tax + other.tax, self.gross + other.gross, self.currency
        )

    def minor(self) -> tuple[int, int, int]:
        """(net, tax, gross) in integer minor units, for storage."""
        return (
            to_minor(self.net, self.currency),
            to_minor(self.tax, self.currency),
            to_minor(self.gross, self.currency),
        )

    @classmethod
    def from_minor_parts(cls, net: int, tax: int, gross: int, currency: str) -> Price:
        return cls(
            from_minor(net, currency),
            from_minor(tax, currency),
            from_minor(gross, currency),
            currency.upper(),
        )


def price_from_list(
    list_amount: Decimal, currency: str, tax_rate: Decimal, tax_inclusive: bool
) -> Price:
    """Split a catalog (list) amount into net, tax and gross.

    ``tax_rate`` is a fraction (``Decimal("0.10")`` for 10 %). Exclusive markets: the list
    amount is the net, tax = round(net x rate), gross = net + tax. Inclusive markets (AU, BR):
    the list amount is the gross, tax = round(gross x rate / (1 + rate)), net = gross - tax.
    Either way net + tax == gross exactly, in the currency's minor unit.
    """
    currency = currency.upper()
    if tax_rate < 0:
        raise MoneyError("a tax rate cannot be negative")
    amount = quantize(list_amount, currency)
    if tax_inclusive:
        gross = amount
        tax = quantize(gross * tax_rate / (1 + tax_rate), currency)
        net = gross - tax
    else:
        net = amount
        tax = quantize(net * tax_rate, currency)
        gross = net + tax
    return Price(net=net, tax=tax, gross=gross, currency=currency)


def line_price(
    unit_list_amount: Decimal,
    quantity: int,
    currency: str,
    tax_rate: Decimal,
    tax_inclusive: bool,
) -> Price:
    """The price of ``quantity`` units: the list amount times quantity, taxed and rounded once."""
    return price_from_list(
        quantize(unit_list_amount, currency) * quantity, currency, tax_rate, tax_inclusive
    )
