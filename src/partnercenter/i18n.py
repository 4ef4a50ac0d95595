"""English and Spanish (es-ES) text through Babel message catalogs."""

from __future__ import annotations

import gettext
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from io import BytesIO

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SUPPORTED = ("en", "es")
DEFAULT = "en"
LOCALE_COOKIE = "pc_lang"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """Load the catalog for ``lang`` from its .po file (compiled in memory, no build step)."""
    if lang == DEFAULT:
        return NullTranslations()
    po = resources.files("partnercenter").joinpath(f"locale/{lang}/LC_MESSAGES/messages.po")
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The language from the page switch (cookie), else the browser's preference."""
    if cookie in SUPPORTED:
        return cookie
    if accept_language:
        prefs = []
        for part in accept_language.split(","):
            tag = part.split(";")[0].strip().replace("-", "_")
            if tag:
                prefs.append(tag)
        found = negotiate_locale(prefs, list(SUPPORTED), sep="_")
        if found is None:
            found = negotiate_locale([p.split("_")[0] for p in prefs], list(SUPPORTED))
        if found:
            return found
    return DEFAULT


def babel_locale(lang: str) -> Locale:
    return Locale.parse("es_ES" if lang == "es" else "en_US")


def N_(message: str, **params: object) -> str:
    """Mark a message for extraction without translating it here (it is translated on display).

    With keyword values it returns a :class:`Message`: English as a ``str``, translatable with
    its values later (``%(name)s`` placeholders).
    """
    if params:
        return Message(message, params)
    return message


class Message(str):
    """A message whose text is English now and can be translated later, with its values.

    ``N_("The quantity %(quantity)s is outside %(low)s to %(high)s.", quantity=9, ...)``
    returns one: as a ``str`` it is the English sentence (what the API's ``description``
    carries); :meth:`localize` gives it in another language, each value formatted for that
    language too (numbers by Babel, nested messages and :class:`Country` names translated).
    """

    msgid: str
    params: dict[str, object]

    def __new__(cls, msgid: str, params: dict[str, object]) -> Message:
        text = msgid % {k: localize_value(v, DEFAULT) for k, v in params.items()}
        obj = super().__new__(cls, text)
        obj.msgid = msgid
        obj.params = params
        return obj

    def localize(self, lang: str) -> str:
        """The sentence in ``lang`` (``en`` or ``es``), its values formatted for it."""
        text: str = translations(lang).gettext(self.msgid)
        return text % {k: localize_value(v, lang) for k, v in self.params.items()}


class Country(str):
    """An ISO 3166-1 alpha-2 code shown to people as the country's name in their language."""

    def localize(self, lang: str) -> str:
        return country_name(str(self), lang)


class Market(Country):
    """A market as errors name it: the country's name in the reader's language and its code."""

    def localize(self, lang: str) -> str:
        code = str(self).upper()
        if lang == DEFAULT:  # the API's English descriptions keep the ISO 3166 names
            from partnercenter.markets import market_label

            return market_label(code)
        return f"{country_name(code, lang)} ({code})"


def country_name(code: str, lang: str) -> str:
    """The country's name from Babel's (CLDR) locale data; ``XK`` is Kosovo; unknown: the code."""
    if not code:
        return ""
    name = babel_locale(lang).territories.get(code.upper())
    return str(name) if name else code


def localize_value(value: object, lang: str) -> str:
    """One value of a message, formatted for ``lang``: numbers by Babel, labels translated."""
    localize_method = getattr(value, "localize", None)
    if callable(localize_method):
        return str(localize_method(lang))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, Decimal)):
        return format_number(value, lang)
    if isinstance(value, str):
        return value
    return str(value)


def localize(message: str, lang: str) -> str:
    """Translate a message (a plain msgid or a :class:`Message` with values) into ``lang``."""
    localize_method = getattr(message, "localize", None)
    if callable(localize_method):
        return str(localize_method(lang))
    text: str = translations(lang).gettext(message)
    return text


class Lines(str):
    """Several messages joined by ``sep``, each translated on display."""

    parts: list[str]
    sep: str

    def __new__(cls, parts: list[str], sep: str) -> Lines:
        obj = super().__new__(cls, sep.join(str(p) for p in parts))
        obj.parts = list(parts)
        obj.sep = sep
        return obj

    def localize(self, lang: str) -> str:
        return self.sep.join(localize(p, lang) for p in self.parts)


class Verbatim(str):
    """Text people wrote (a note, a reason): shown as it is in every language."""

    def localize(self, lang: str) -> str:
        return str(self)


def bilingual(message: str, sep: str) -> str:
    """``message`` in English, then ``sep``, then in Spanish (for mail to people whose
    language is not known); one language when both read the same."""
    english, spanish = localize(message, DEFAULT), localize(message, "es")
    return english if english == spanish else english + sep + spanish


class Moment(str):
    """An instant shown in UTC, labelled, as the reader's language writes it."""

    at: datetime

    def __new__(cls, at: datetime) -> Moment:
        obj = super().__new__(cls, format_datetime(at, DEFAULT))
        obj.at = at
        return obj

    def localize(self, lang: str) -> str:
        return format_datetime(self.at, lang)


MONEY_PATTERN = "#,##0.00 ¤¤"


class Money(str):
    """An amount in a currency, shown as ``1,799.13 USD`` (English) or ``1.799,13 USD``."""

    amount: Decimal
    currency: str

    def __new__(cls, amount: Decimal, currency: str) -> Money:
        obj = super().__new__(cls, format_money(amount, currency, DEFAULT))
        obj.amount = amount
        obj.currency = currency
        return obj

    def localize(self, lang: str) -> str:
        return format_money(self.amount, self.currency, lang)


def format_number(value: object, lang: str) -> str:
    """A number with the locale's grouping and decimal signs (Babel); keeps its decimals."""
    from babel.numbers import format_decimal

    if value is None or value == "":
        return ""
    number = value if isinstance(value, (int, Decimal)) else Decimal(str(value))
    return str(format_decimal(number, locale=babel_locale(lang), decimal_quantization=False))


def format_money(amount: object, currency: str, lang: str) -> str:
    """``amount`` (Decimal or its string) with the currency's decimals and its ISO code."""
    from babel.numbers import format_currency

    if amount is None or amount == "":
        return ""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if not currency:
        return format_number(value, lang)
    return str(format_currency(value, currency, format=MONEY_PATTERN, locale=babel_locale(lang)))


def _as_datetime(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def format_date(value: object, lang: str) -> str:
    """A day as the locale writes it: ``Nov 29, 2026`` / ``29 nov 2026`` (UTC day)."""
    from babel.dates import format_date as babel_format_date

    if isinstance(value, date) and not isinstance(value, datetime):
        return str(babel_format_date(value, "medium", locale=babel_locale(lang)))
    moment = _as_datetime(value)
    if moment is None:
        return ""
    return str(babel_format_date(moment.astimezone(UTC), "medium", locale=babel_locale(lang)))


def format_datetime(value: object, lang: str, *, seconds: bool = False) -> str:
    """A moment in UTC, labelled: ``Nov 29, 2026, 12:15 PM UTC`` / ``29 nov 2026, 12:15 UTC``."""
    from babel.dates import format_date as babel_format_date
    from babel.dates import format_time

    moment = _as_datetime(value)
    if moment is None:
        return ""
    moment = moment.astimezone(UTC)
    loc = babel_locale(lang)
    day = babel_format_date(moment, "medium", locale=loc)
    time = format_time(moment, "medium" if seconds else "short", tzinfo=UTC, locale=loc)
    return f"{day}, {time} UTC"


def format_month(value: object, lang: str, *, short: bool = False) -> str:
    """A billing month (``2026-11`` or a date) as ``November 2026`` / ``noviembre 2026``."""
    from babel.dates import format_date as babel_format_date

    if isinstance(value, date):
        day = value
    else:
        text = str(value or "")
        try:
            day = date(int(text[:4]), int(text[5:7]), 1)
        except ValueError:
            return text
    return str(babel_format_date(day, "LLL y" if short else "LLLL y", locale=babel_locale(lang)))
