"""Markets: every ISO 3166-1 country (pycountry) plus Kosovo (XK)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pycountry

from partnercenter.errors import InvalidInput

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
        raise InvalidInput(f"'{code}' is not an ISO 3166-1 alpha-2 country code.", source="country")
    return value
