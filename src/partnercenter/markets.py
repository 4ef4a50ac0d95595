"""Markets: every ISO 3166-1 country (pycountry) plus Kosovo (XK)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pycountry

from partnercenter.errors import InvalidInput
from partnercenter.i18n import N_

# Kosovo has a user-assigned code and is not in ISO 3166-1.
_EXTRA = {"XK": "Kosovo"}


@dataclass(frozen=True)
class Country:
    code: str
    name: str


@cache
def all_countries() -> dict[str, Country]:
    countries = {c.alpha_2: Country(c.alpha_2, c.name) for c in pycountry.countries}
    for code, name in _EXTRA.items():
        countries[code] = Country(code, name)
    return dict(sorted(countries.items()))


def normalise_country(code: str) -> str:
    """Return the upper-case alpha-2 code, or raise InvalidInput naming the value."""
    value = code.strip().upper()
    if value not in all_countries():
        raise InvalidInput(
            N_("'%(code)s' is not an ISO 3166-1 alpha-2 country code.", code=code),
            source="country",
        )
    return value


# Currencies the provider bills in. A market whose own (Babel/CLDR) currency is one of these
# is billed in it; every other market is billed in US dollars, as Partner Center bills many
# smaller markets in USD. Kuwait stays in KWD, whose three decimals the money rules cover.
BILLING_CURRENCIES = frozenset(
    {
        "AUD", "BRL", "CAD", "CHF", "DKK", "EUR", "GBP", "INR", "JPY", "KRW", "KWD", "MXN",
        "NOK", "NZD", "SEK", "TWD", "USD", "ZAR",
    }
)  # fmt: skip
FALLBACK_CURRENCY = "USD"


@cache
def market_currency(code: str) -> str:
    """The currency a market is priced and billed in (see :data:`BILLING_CURRENCIES`)."""
    from datetime import date

    from babel.numbers import get_territory_currencies

    country = normalise_country(code)
    # A fixed date keeps the mapping stable; CLDR knows the legal tender per territory.
    for currency in get_territory_currencies(country, date(2026, 1, 1), tender=True):
        if currency in BILLING_CURRENCIES:
            return str(currency)
    return FALLBACK_CURRENCY


@cache
def azure_reservations_unavailable() -> dict[str, str]:
    """Markets where Azure reservations are never offered: code -> the seed's market names."""
    import csv
    import io
    from importlib import resources

    text = (
        resources.files("partnercenter")
        .joinpath("data/azure-reservations-unavailable-markets.csv")
        .read_text(encoding="utf-8")
    )
    names: dict[str, list[str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        names.setdefault(row["country_code"].strip().upper(), []).append(row["market_name"].strip())
    return {code: ", ".join(values) for code, values in sorted(names.items())}


def market_label(code: str) -> str:
    """'Andorra (AD)': the market's name and code, as errors and pages show it."""
    country = all_countries().get(code.upper())
    return f"{country.name if country else code} ({code.upper()})"


def _collation_key(name: str) -> tuple[str, str]:
    """Sort key for names: accents and case ignored first ("Åland" beside "Aland")."""
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return plain.casefold(), name


@cache
def country_options(lang: str) -> tuple[tuple[str, str], ...]:
    """Every market as ``(code, name in lang)``, sorted by that name: the one country list
    every form shows. Names come from CLDR through Babel; pycountry's English name where
    CLDR has none."""
    from partnercenter.i18n import babel_locale

    territories = babel_locale(lang).territories
    pairs = [(code, territories.get(code, c.name)) for code, c in all_countries().items()]
    return tuple(sorted(pairs, key=lambda pair: _collation_key(pair[1])))


def country_name(code: str | None, lang: str) -> str:
    """The market's name in ``lang`` (CLDR via Babel), or the code itself when unknown."""
    if not code:
        return ""
    return _country_names(lang).get(code.upper(), code)


@cache
def _country_names(lang: str) -> dict[str, str]:
    return dict(country_options(lang))
