"""English and Spanish (es-ES) text through Babel message catalogs."""

from __future__ import annotations

import gettext
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


def N_(message: str) -> str:
    """Mark a message for extraction without translating it here (it is translated on display)."""
    return message
