"""English and Spanish: every message has a Spanish entry; language from browser or switch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from partnercenter import i18n
from partnercenter.permissions import ROLE_LABELS, Role
from tests.factories import PASSWORD, Factory
from tests.web import page_csrf, sign_in

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "src/partnercenter/locale/es/LC_MESSAGES/messages.po"
# babel.cfg names the extractor by its entry point; resolve it to Jinja2's own extractor.
EXTRACTORS = {"jinja2": "jinja2.ext:babel_extract"}
SENTENCE = re.compile(r"^[A-Z][^{}]*[.?]$")


def _spanish_catalog():  # type: ignore[no-untyped-def]
    with PO.open("rb") as f:
        return read_po(f, locale="es_ES", abort_invalid=True)


def error_keywords() -> dict[str, Any]:
    """Every DomainError class as an extraction keyword: ``OutOfKeys("No key is left.")``
    holds a message a page shows (``_(error.description)``), so it needs a Spanish entry."""
    import importlib
    import pkgutil

    import partnercenter
    from partnercenter.errors import DomainError

    for module in pkgutil.walk_packages(partnercenter.__path__, "partnercenter."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found: set[str] = set()
    todo = [DomainError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return {name: None for name in found}


def _extracted_msgids() -> dict[str, str]:
    """Every msgid in templates (_(), gettext, trans blocks) and code (_(), N_(), the first
    argument of an error class), with a place."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    method_map = [(pattern, EXTRACTORS.get(method, method)) for pattern, method in method_map]
    found: dict[str, str] = {}
    for keywords in (DEFAULT_KEYWORDS, error_keywords()):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            if keywords is not DEFAULT_KEYWORDS and not SENTENCE.match(msgid or ""):
                continue  # an error's first argument that is a field name, not its message
            if msgid:
                found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def test_extraction_finds_template_and_code_messages() -> None:
    found = _extracted_msgids()
    assert found["Sign in"].startswith("src/partnercenter/templates/")
    assert "Welcome, %(name)s." in found
    assert "The email or password is incorrect." in found  # N_() in identity/errors.py


def test_every_message_has_a_spanish_translation() -> None:
    catalog = _spanish_catalog()
    wanted = _extracted_msgids()
    for label in ROLE_LABELS.values():  # shown through _(ROLE_LABELS[role])
        wanted.setdefault(label, "permissions.ROLE_LABELS")
    missing = []
    for msgid, where in sorted(wanted.items()):
        message = catalog.get(msgid)
        if message is None or not message.string or message.fuzzy:
            missing.append(f"{where}: {msgid!r}")
    assert not missing, (
        "Messages without a Spanish (es-ES) translation in "
        "src/partnercenter/locale/es/LC_MESSAGES/messages.po:\n" + "\n".join(missing)
    )


def test_spanish_catalog_is_valid_and_keeps_placeholders() -> None:
    catalog = _spanish_catalog()
    problems = [
        f"{message.id!r}: {'; '.join(str(e) for e in errors)}"
        for message, errors in catalog.check()
    ]
    assert not problems, problems
    es = i18n.translations("es")
    assert es.gettext("Welcome, %(name)s.") % {"name": "Ana"} == "Te damos la bienvenida, Ana."


def test_accept_language_chooses_spanish_english_or_the_default(client: TestClient) -> None:
    es = client.get("/signin", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.8"})
    assert '<html lang="es-ES">' in es.text and "Iniciar sesión" in es.text
    latam = client.get("/signin", headers={"Accept-Language": "es-MX"})
    assert "Iniciar sesión" in latam.text
    en = client.get("/signin", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in en.text and "Sign in" in en.text
    other = client.get("/signin", headers={"Accept-Language": "fr-FR,de;q=0.5"})
    assert "Sign in" in other.text and "Iniciar sesión" not in other.text


def test_language_switch_wins_over_the_browser_and_switches_back(client: TestClient) -> None:
    english_browser = {"Accept-Language": "en-US"}
    token = page_csrf(client)
    r = client.post(
        "/language",
        data={"lang": "es", "csrf_token": token, "next": "/signin"},
        headers=english_browser,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    assert client.cookies.get(i18n.LOCALE_COOKIE) == "es"
    assert "Iniciar sesión" in client.get("/signin", headers=english_browser).text
    token = page_csrf(client)
    client.post("/language", data={"lang": "en", "csrf_token": token, "next": "/signin"})
    spanish_browser = {"Accept-Language": "es-ES"}
    assert "Sign in" in client.get("/signin", headers=spanish_browser).text


def test_language_switch_needs_the_form_token(client: TestClient) -> None:
    page_csrf(client)
    r = client.post("/language", data={"lang": "es", "csrf_token": "forged", "next": "/"})
    assert r.status_code == 403
    assert client.cookies.get(i18n.LOCALE_COOKIE) is None


def test_portal_pages_are_translated_with_names_and_roles(
    client: TestClient, factory: Factory
) -> None:
    partner = factory.partner("Fabrikam")
    user = factory.user(partner, Role.ADMIN_AGENT, email="ana@fabrikam.example")
    user.display_name = "Ana <b>García</b>"
    factory.session.commit()
    spanish = {"Accept-Language": "es-ES"}
    assert sign_in(client, user.email, PASSWORD, **spanish).status_code == 303
    page = client.get("/partner", headers=spanish)
    assert page.status_code == 200
    assert "Te damos la bienvenida, Ana &lt;b&gt;García&lt;/b&gt;." in page.text
    assert "Agente administrador" in page.text and "Centro de partners" in page.text
    assert "Cerrar sesión" in page.text
    english = client.get("/partner", headers={"Accept-Language": "en"})
    assert "Welcome, Ana &lt;b&gt;García&lt;/b&gt;." in english.text
