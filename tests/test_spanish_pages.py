"""Every page each role can reach, in Spanish, with demo-like data: no English left, no codes.

The demo tenants, users and catalog are loaded as ``partnercenter demo`` loads them; then,
through the real app, a partner buys every kind of product for a customer, gets a key and a
download link, cancels a purchase, files a refund request that provider support approves,
and the provider closes a month, so every page has rows to show. Each demo user then walks
every page its portal offers (and the error pages of those it may not open) with
``Accept-Language: es-ES``.

Two checks on the visible text of each page (text nodes plus titles, placeholders and
labels; ``<code>``, e-mail addresses, numbers and the data's own names left out):

- no English word: the vocabulary is every word of the catalogue's English messages plus
  common English words, less every word the Spanish catalogue uses;
- no internal code: no snake_case identifier and no ISO 8601 duration (``P1Y``) or raw
  timestamp (``2026-11-29T12:15:49Z``) or raw amount (``1799.13``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter import demo
from partnercenter.catalog.models import Product
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity.models import Tenant, User
from tests.web import csrf_of, sign_in

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "src/partnercenter/locale/es/LC_MESSAGES/messages.po"
SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}

# Common English words that may slip into a page outside the catalogue's messages.
COMMON_ENGLISH = set(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "available",
        "back",
        "be",
        "been",
        "before",
        "being",
        "but",
        "by",
        "can",
        "cannot",
        "cancel",
        "cancelled",
        "change",
        "choose",
        "click",
        "close",
        "closed",
        "could",
        "customer",
        "customers",
        "date",
        "day",
        "days",
        "details",
        "did",
        "do",
        "does",
        "done",
        "download",
        "edit",
        "email",
        "enter",
        "error",
        "failed",
        "file",
        "files",
        "find",
        "first",
        "for",
        "found",
        "from",
        "get",
        "give",
        "go",
        "has",
        "have",
        "here",
        "how",
        "id",
        "if",
        "in",
        "input",
        "invalid",
        "is",
        "it",
        "its",
        "key",
        "keys",
        "last",
        "later",
        "line",
        "lines",
        "list",
        "make",
        "may",
        "month",
        "more",
        "must",
        "name",
        "new",
        "next",
        "no",
        "none",
        "not",
        "nothing",
        "now",
        "of",
        "on",
        "one",
        "only",
        "open",
        "or",
        "order",
        "orders",
        "other",
        "our",
        "out",
        "page",
        "partner",
        "password",
        "please",
        "price",
        "product",
        "products",
        "quantity",
        "request",
        "required",
        "see",
        "select",
        "send",
        "show",
        "sign",
        "so",
        "some",
        "status",
        "submit",
        "succeeded",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "to",
        "too",
        "try",
        "type",
        "unknown",
        "up",
        "update",
        "use",
        "user",
        "users",
        "valid",
        "value",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "without",
        "yes",
        "you",
        "your",
    ]
)

# Words the two languages share, or that stay as they are in Spanish UI text.
SHARED = set(
    [
        "a",
        "no",
        "me",
        "sin",
        "con",
        "de",
        "en",
        "la",
        "las",
        "los",
        "el",
        "un",
        "una",
        "del",
        "al",
        "es",
        "son",
        "se",
        "su",
        "sus",
        "le",
        "les",
        "lo",
        "y",
        "o",
        "u",
        "e",
        "ni",
        "total",
        "general",
        "real",
        "error",
        "normal",
        "final",
        "hotel",
        "plan",
        "id",
        "ok",
        "pdf",
        "csv",
        "yaml",
        "json",
        "url",
        "api",
        "sku",
        "skus",
        "iva",
    ]
)

SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
ISO_DURATION = re.compile(r"\bP\d+[YMWD]\b")
RAW_TIMESTAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
RAW_AMOUNT = re.compile(r"(?<![\d.,])\d{4,}\.\d{2}(?!\d)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
FILE_NAME = re.compile(r"[\w.-]*\.(?:iso|zip|exe|msi|img|bin|pdf|csv|png|jpe?g|txt|log|yaml)\b")
WORD = re.compile(r"[A-Za-zÀ-ÿ]+(?:'[a-z]+)?")


class _Text(HTMLParser):
    """The words a person reads: text nodes and person-facing attributes, not code."""

    SKIP = {"script", "style", "code", "pre", "textarea", "svg"}
    # Texts the script shows: a confirmation's question, toasts, the dialog's buttons.
    ATTRS = {
        "title",
        "placeholder",
        "aria-label",
        "alt",
        "label",
        "data-confirm",
        "data-confirm-title",
        "data-cancel",
        "data-copied",
        "data-link-copied",
        "data-copy-failed",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping.append(tag)
        if self.skipping:
            return
        for name, value in attrs:
            if name in self.ATTRS and value:
                self.parts.append(value)
            if (
                tag == "input"
                and name == "value"
                and value
                and dict(attrs).get("type")
                in (
                    "submit",
                    "button",
                )
            ):
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(p.strip() for p in parser.parts if p.strip())


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def _vocabularies() -> tuple[set[str], set[str]]:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="es_ES")
    english: set[str] = set(COMMON_ENGLISH)
    spanish: set[str] = set(SHARED)
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strs = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in ids:
            english |= _words(re.sub(r"%\(\w+\)[sd]", " ", text))
        for text in strs:
            spanish |= _words(re.sub(r"%\(\w+\)[sd]", " ", text or ""))
    return english - spanish, spanish


ENGLISH, _SPANISH_WORDS = _vocabularies()


def problems_of(html: str, data_names: list[str]) -> list[str]:
    """English words and internal codes in a page's visible text (data names left out)."""
    text = visible_text(html)
    text = UUID.sub(" ", FILE_NAME.sub(" ", EMAIL.sub(" ", text)))
    for name in data_names:
        if name:
            text = text.replace(name, " ")
    found = []
    english = sorted({w for w in _words(text) if w in ENGLISH and len(w) > 1})
    if english:
        found.append(f"English words {english}")
    for pattern, what in (
        (SNAKE, "internal code"),
        (ISO_DURATION, "ISO duration"),
        (RAW_TIMESTAMP, "raw timestamp"),
        (RAW_AMOUNT, "unformatted amount"),
    ):
        hits = sorted(set(pattern.findall(text)))
        if hits:
            found.append(f"{what} {hits[:8]}")
    return found


# --- the data --------------------------------------------------------------------------------


class World:
    """The demo plus a month of activity, and the names its pages show as data."""

    def __init__(self, app: FastAPI, session: Session, settings: Settings, clock: FrozenClock):
        self.app = app
        self.session = session
        self.settings = settings
        self.clock = clock
        self.ids: dict[str, str] = {}
        self.names: list[str] = []

    def client(self, email: str) -> TestClient:
        c = TestClient(self.app, base_url="http://testserver", headers=SPANISH)
        r = sign_in(c, email, demo.DEMO_PASSWORD, **SPANISH)
        assert r.status_code == 303, (email, r.status_code)
        return c

    def bearer(self, email: str) -> dict[str, str]:
        with TestClient(self.app) as c:
            grant = c.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": email, "password": demo.DEMO_PASSWORD},
            )
        assert grant.status_code == 200, grant.text
        return {"Authorization": f"Bearer {grant.json()['access_token']}"}


def _tenant(session: Session, name: str) -> Tenant:
    return session.execute(select(Tenant).where(Tenant.name == name)).scalar_one()


def _post_form(c: TestClient, page: str, action: str, data: dict[str, Any], **kw: Any) -> Any:
    token = csrf_of(c.get(page).text)
    return c.post(action, data={"csrf_token": token, **data}, follow_redirects=False, **kw)


@pytest.fixture
def world(
    app: FastAPI, session: Session, settings: Settings, clock: FrozenClock
) -> Iterator[World]:
    from partnercenter.cli.main import _extra_demo_loaders

    clock.set(datetime(2026, 10, 5, 9, 30, tzinfo=UTC))
    demo.ensure_provider(
        session, email=demo.PROVIDER_ADMIN_EMAIL, password=demo.DEMO_PASSWORD, now=clock.now()
    )
    demo.load(session, now=clock.now())
    for loader in _extra_demo_loaders():
        loader(session, now=clock.now(), settings=settings)
    session.commit()
    w = World(app, session, settings, clock)
    contoso = _tenant(session, "Contoso Ltd")
    w.ids["customer"] = str(contoso.id)
    # A customer with nothing bought: the empty states of its pages.
    w.ids["empty_customer"] = str(_tenant(session, "Wingtip Toys Pty").id)
    for tenant in session.execute(select(Tenant)).scalars():
        w.names.append(tenant.name)
    w.names += [u.display_name for u in session.execute(select(User)).scalars()]
    for product in session.execute(select(Product)).scalars():
        w.names += [product.title, product.description or "", product.publisher or ""]
        w.names += [sku.title for sku in product.skus]
        w.names += [sku.description or "" for sku in product.skus]
    from partnercenter.support.models import SupportNote, SupportRequest
    from partnercenter.support.services import written_description

    for sr in session.execute(select(SupportRequest)).scalars():  # what people wrote
        # A refund's summary is written by the system and shown in the reader's language:
        # only what the person typed is left out of the word check.
        typed = written_description(sr)
        w.names += [sr.title, sr.description if typed is None else typed, sr.refund_reason or ""]
    w.names += [n.body for n in session.execute(select(SupportNote)).scalars()]
    w.names.sort(key=len, reverse=True)

    agent = w.bearer("admin.agent@fabrikam.example")
    customer_id = w.ids["customer"]
    # One offer of every product sold in Contoso's market (US).
    with TestClient(app) as api:
        page = w.client("admin.agent@fabrikam.example")
        offers = re.findall(
            r'name="catalog_item_id" value="([^"]+)"',
            page.get(f"/partner/customers/{customer_id}/add-products").text,
        )
        chosen: dict[str, str] = {}
        for item in offers:
            chosen.setdefault(item.split(":")[0], item)
        orders = []
        for item in chosen.values():
            r = api.post(
                f"/v1/customers/{customer_id}/carts",
                json={"lineItems": [{"catalogItemId": item, "quantity": 1}]},
                headers=agent,
            )
            if r.status_code != 201:
                continue
            r = api.post(
                f"/v1/customers/{customer_id}/carts/{r.json()['id']}/checkout", headers=agent
            )
            assert r.status_code == 201, r.text
            orders += r.json()["orders"]
        assert len(orders) >= 3
        w.ids["order"] = orders[0]["id"]
        w.ids["cancelled_order"] = orders[1]["id"]
        r = api.post(
            f"/v1/customers/{customer_id}/orders:cancel",
            json={"orderIds": [w.ids["cancelled_order"]]},
            headers=agent,
        )
        assert r.status_code in (200, 207), r.text
        # Keys, downloads and links, from the Admin Center and Partner Center.
        software = page.get(f"/partner/customers/{customer_id}/software").text
        items = re.findall(r'data-item="([^"]+)"', software)
        assert items
        w.ids["item"] = items[0]
        w.ids["software_query"] = f"item={items[0]}"
        r = api.post(
            f"/v1/customers/{customer_id}/software/{items[0]}/downloadlink",
            json={},
            headers=agent,
        )
        # A refund request, worked by provider support.
        sr = api.post(
            "/v1/servicerequests",
            json={
                "supportTopicId": "csp_refund",
                "severity": "critical",
                "title": "Reembolso de la edición equivocada",
                "description": "El cliente compró la edición equivocada.",
                "refund": {
                    "domain": "contoso.onmicrosoft.com",
                    "orderId": w.ids["order"],
                    "reason": "Edición equivocada.",
                    "amountRequested": "10.00",
                },
                "primaryContact": {
                    "firstName": "Ana",
                    "lastName": "García",
                    "email": "ana@fabrikam.example",
                    "phoneNumber": "+34 600 000 000",
                },
            },
            headers=agent,
        )
        assert sr.status_code == 201, sr.text
        w.ids["request"] = sr.json()["id"]
        w.names += ["Reembolso de la edición equivocada"]
        support = w.client("support@northwind.example")
        detail = f"/provider/support/{w.ids['request']}"
        r = _post_form(support, detail, detail, {"action": "approve", "amount_approved": "5"})
        assert r.status_code in (303, 200), r.text
        # The month closes; October's invoice is issued; November has unbilled charges.
        clock.set(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
        provider = w.bearer(demo.PROVIDER_ADMIN_EMAIL)
        r = api.post("/v1/billing/periods/2026-10/close", headers=provider)
        assert r.status_code == 200, r.text
        r = api.post(
            f"/v1/customers/{customer_id}/carts",
            json={"lineItems": [{"catalogItemId": next(iter(chosen.values())), "quantity": 2}]},
            headers=agent,
        )
        if r.status_code == 201:
            api.post(f"/v1/customers/{customer_id}/carts/{r.json()['id']}/checkout", headers=agent)
        invoices = w.client("global.admin@fabrikam.example").get("/partner/billing/invoices").text
        found = re.findall(r'href="/partner/billing/invoices/([0-9a-f-]{36})"', invoices)
        assert found, "no invoice was issued"
        w.ids["invoice"] = found[0]
        product_ids = re.findall(
            r'href="/provider/catalog/products/([^"]+)"',
            w.client(demo.PROVIDER_ADMIN_EMAIL).get("/provider/catalog").text,
        )
        w.ids["product"] = product_ids[0]
        w.ids["products"] = ",".join(dict.fromkeys(product_ids))
    _background_troubles(w)
    yield w


def _background_troubles(w: World) -> None:
    """What the Background jobs page lists: the world's mail (no SMTP server listens, so it
    waits), plus a failed mail, a failed month close, a clean-up run and a webhook that gave
    up. Mail subjects are data: bilingual by design, left out of the word check."""
    from partnercenter.jobs.models import ScheduledRun
    from partnercenter.support import mail
    from partnercenter.support.models import MailOutbox
    from partnercenter.webhooks.models import WebhookDelivery, WebhookRegistration

    now = w.clock.now()
    failed = mail.enqueue_to(
        w.session, recipient="ops@northwind.example", subject="Aviso", body="Hola", now=now
    )
    failed.attempts, failed.failed_at = mail.MAX_ATTEMPTS, now
    failed.last_error = "ConnectionRefusedError: [Errno 111] Connection refused"
    w.session.add(
        ScheduledRun(
            job="month_close",
            run_key="2026-09",
            started_at=now,
            finished_at=now,
            outcome="failed",
            error="OperationalError: server closed the connection",
        )
    )
    w.session.add(ScheduledRun(job="clean_up", run_key="latest", started_at=now, finished_at=now))
    fabrikam = _tenant(w.session, "Fabrikam Cloud Reseller")
    reg = WebhookRegistration(
        id=uuid.uuid4(),
        tenant_id=fabrikam.id,
        url="https://psa.fabrikam.example/hooks",
        event_names=["order-created"],
        secret_ciphertext=b"-",
        created_at=now,
        updated_at=now,
    )
    w.session.add(reg)
    w.session.flush()  # the delivery points at the registration
    w.session.add(
        WebhookDelivery(
            id=uuid.uuid4(),
            registration_id=reg.id,
            tenant_id=fabrikam.id,
            event_name="order-created",
            payload={},
            created_at=now,
            attempts=10,
            failed_at=now,
            last_status=503,
            last_error="HTTP 503",
        )
    )
    w.session.commit()
    w.names += [m.subject for m in w.session.execute(select(MailOutbox)).scalars()]
    w.names.sort(key=len, reverse=True)


# Every portal's home and a page that does not exist: each role also reads the error pages
# of the portals it may not open (403 or a redirect to its own portal) and a 404.
ERROR_PAGES = ["/partner", "/admin", "/provider", "/no-such-page", "/partner/no-such-page"]


def pages_of(w: World, portal: str) -> list[str]:
    return _portal_pages(w, portal) + [p for p in ERROR_PAGES if not p.startswith(portal + "/")]


def _portal_pages(w: World, portal: str) -> list[str]:
    c, i = w.ids["customer"], w.ids
    empty = i["empty_customer"]
    if portal == "/partner":
        return [
            "/partner",
            "/partner/customers",
            "/partner/customers?q=contoso",
            "/partner/customers?q=zzz-nobody",
            f"/partner/customers/{c}",
            f"/partner/customers/{c}/users",
            f"/partner/customers/{c}/orders",
            f"/partner/customers/{c}/software",
            f"/partner/customers/{c}/software?{i['software_query']}",
            f"/partner/customers/{c}/add-products",
            f"/partner/customers/{c}/cancel",
            f"/partner/customers/{c}/cancel?order={i['order']}",
            f"/partner/customers/{c}/cancel?order={i['cancelled_order']}",
            "/partner/catalog",
            "/partner/catalog?country=ES",
            "/partner/billing/invoices",
            f"/partner/billing/invoices/{i['invoice']}",
            "/partner/support",
            "/partner/support/new",
            f"/partner/support/{i['request']}",
            "/partner/activity-log",
            "/partner/activity-log?from=2026-10-01&to=2026-11-30&action=create_order",
            "/partner/activity-log?from=bad",
            "/partner/users",
            "/account/tokens",
            f"/partner/customers/{uuid.uuid4()}",
            # Empty states: a customer with nothing bought, lists filtered to nothing.
            f"/partner/customers/{empty}",
            f"/partner/customers/{empty}/users",
            f"/partner/customers/{empty}/orders",
            f"/partner/customers/{empty}/software",
            f"/partner/customers/{empty}/cancel",
            f"/partner/customers/{empty}/add-products?q=zzz-nothing",
            "/partner/support?status=closed",
            "/partner/activity-log?from=2030-01-01&to=2030-01-31",
            f"/partner/billing/invoices/{uuid.uuid4()}",
            f"/partner/support/{uuid.uuid4()}",
        ]
    if portal == "/admin":
        return [
            "/admin",
            "/admin/billing/products/software",
            f"/admin/billing/products/software?item={i['item']}",
            "/admin/activity-log",
            "/admin/activity-log?from=2030-01-01&to=2030-01-31",
            "/admin/users",
            "/account/tokens",
            f"/admin/billing/products/software?item={uuid.uuid4()}",
        ]
    return [
        "/provider",
        "/provider/partners",
        "/provider/catalog",
        f"/provider/catalog/products/{i['product']}",
        "/provider/catalog/import",
        "/provider/tax-rates",
        "/provider/keys",
        "/provider/support",
        f"/provider/support/{i['request']}",
        "/provider/billing",
        "/provider/jobs",
        "/provider/activity-log",
        "/provider/activity-log?from=2030-01-01&to=2030-01-31",
        "/provider/users",
        "/account/tokens",
        "/provider/support?status=closed",
        "/provider/catalog?view=Nada",
        f"/provider/catalog/products/{uuid.uuid4().hex[:12]}",
    ] + [f"/provider/catalog/products/{p}" for p in i["products"].split(",")]


def _walk(w: World, email: str, portal: str) -> dict[str, list[str]]:
    c = w.client(email)
    report: dict[str, list[str]] = {}
    for path in pages_of(w, portal):
        r = c.get(path)
        assert r.status_code < 500, (email, path, r.status_code)
        if "text/html" not in r.headers.get("content-type", ""):
            continue
        if r.status_code >= 400 and "<html lang" not in r.text:
            continue  # the unstyled last-resort error page (web.render_error_page's fallback)
        assert 'lang="es-ES"' in r.text, (email, path)
        found = problems_of(r.text, w.names)
        if found:
            report[f"{email} {path} ({r.status_code})"] = found
    # A form posted without its CSRF token: the error page, in the portal's layout.
    r = c.post(portal + "/users", data={"email": "x@example.com"}, follow_redirects=True)
    if "text/html" in r.headers.get("content-type", "") and "<html lang" in r.text:
        found = problems_of(r.text, w.names)
        if found:
            report[f"{email} POST {portal}/users without CSRF ({r.status_code})"] = found
    return report


def _key_dialog(w: World, email: str, software: str) -> dict[str, list[str]]:
    """Get Key: the page with the key in its modal dialog, then the page reloaded."""
    c = w.client(email)
    page = c.get(software)
    forms = re.findall(
        r'<form method="post" action="([^"]+/key)"[^>]*>(.*?)</form>', page.text, re.S
    )
    if not forms:
        return {}
    action, body = forms[0]
    data = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', body))
    r = c.post(action, data=data)
    report = {}
    for what, html in (("key dialog", r.text), ("reloaded", c.get(str(r.url)).text)):
        found = problems_of(html, w.names)
        if found:
            report[f"{email} {software} ({what})"] = found
    return report


def test_every_page_of_every_role_reads_in_spanish(world: World) -> None:
    users = demo.load(world.session, now=world.clock.now())
    report: dict[str, list[str]] = {}
    for u in users:
        report.update(_walk(world, u.email, u.portal))
    i = world.ids
    software = f"/partner/customers/{i['customer']}/software?{i['software_query']}"
    report.update(_key_dialog(world, "admin.agent@fabrikam.example", software))
    report.update(
        _key_dialog(
            world,
            "global.admin@contoso.example",
            f"/admin/billing/products/software?item={i['item']}",
        )
    )
    # Support requests name their type of problem, never its number or code.
    for email, path in (
        ("admin.agent@fabrikam.example", f"/partner/support/{i['request']}"),
        ("admin.agent@fabrikam.example", "/partner/support"),
        ("support@northwind.example", "/provider/support"),
    ):
        html = world.client(email).get(path).text
        assert "Compra/reembolso" in html and "32000001" not in html, path
    # The refund's summary in its description is the system's, so it reads in Spanish too.
    for email, path in (
        ("admin.agent@fabrikam.example", f"/partner/support/{i['request']}"),
        ("support@northwind.example", f"/provider/support/{i['request']}"),
    ):
        html = world.client(email).get(path).text
        summary = re.search(r'<p data-testid="refund-summary">(.*?)</p>', html, re.S)
        assert summary, path
        assert "Importe solicitado: 10,00 USD" in summary.group(1), path
        assert "Motivo del reembolso: Edición equivocada." in summary.group(1), path
        assert "Amount requested" not in html and "Customer:" not in html, path
    # The sign-in page and its error, signed out.
    anonymous = TestClient(world.app, base_url="http://testserver", headers=SPANISH)
    for html, what in (
        (anonymous.get("/signin").text, "GET /signin"),
        (sign_in(anonymous, "nobody@example.com", "wrong-password", **SPANISH).text, "bad sign-in"),
    ):
        found = problems_of(html, [])
        if found:
            report[what] = found
    assert not report, "\n".join(f"{page}: {'; '.join(found)}" for page, found in report.items())


def test_the_word_check_finds_english_and_codes() -> None:
    html = (
        "<p>El pedido <code>create_order</code> de Contoso</p>"
        "<p title='The order was placed'>P1Y · 1799.13 · 2026-11-29T12:15:49Z</p>"
    )
    found = problems_of(html, ["Contoso"])
    assert any("English words" in f and "placed" in f for f in found), found
    assert any("ISO duration" in f for f in found)
    assert any("raw timestamp" in f for f in found)
    assert any("unformatted amount" in f for f in found)
    assert problems_of("<p>El pedido <code>create_order</code></p>", []) == []


# A catalogue document with an error of every kind the import reports.
BAD_CATALOG = """
taxRates: {ZZ: "5", FR: "120", DE: "19.123456"}
products:
  - id: "BAD:ID"
    title: ""
    productType: gadget
    extra: true
  - id: WINSRV
    title: Windows Server
    productType: perpetual_software
    cancellationPolicy: {windowDays: -1, feePercent: "150", creditRule: none}
    skus:
      - id: 0001
        title: Standard
        minQuantity: 0
        maxQuantity: 200000
        versions: ["2022", "2022", "bad version!"]
        availabilities:
          - id: A1
            currency: USD
            price: "12.345"
            term: P2Y
            billingCycle: monthly
            markets: [US, US, DE, XX, "currency:EUR"]
          - id: A2
            currency: JPY
            price: "1500.5"
            billingCycle: one_time
            markets: [JP]
          - id: A2
            currency: XYZ
            price: [1]
            billingCycle: one_time
            markets: [JP]
  - id: AZ
    title: Azure
    productType: azure_reservation
    skus:
      - id: S
        title: S
        keySource: inventory
        availabilities:
          - {id: X, currency: EUR, price: "1", term: P1Y, billingCycle: annual, markets: [AD]}
"""


def test_form_errors_read_in_spanish(world: World) -> None:
    """Validation messages from the services, shown beside the form, are Spanish too."""
    agent = world.client("admin.agent@fabrikam.example")
    report: dict[str, list[str]] = {}
    posts = [
        (agent, "/partner/support/new", "/partner/support/new", {"topic": "", "severity": ""}),
        (
            agent,
            "/partner/support/new",
            "/partner/support/new",
            {"topic": "csp_refund", "severity": "critical", "amount": "abc", "email": "nope"},
        ),
        (agent, "/partner/customers", "/partner/customers", {"company_name": "", "country": ""}),
        (
            agent,
            "/partner/customers",
            "/partner/customers",
            {"company_name": "Otra", "domain": "contoso.onmicrosoft.com", "country": "ES"},
        ),
        (
            agent,
            f"/partner/customers/{world.ids['customer']}/add-products",
            f"/partner/customers/{world.ids['customer']}/add-products/lines",
            {"catalog_item_id": "NO:SUCH:ITEM", "quantity": "2", "cart_id": ""},
        ),
    ]
    c, i = world.ids["customer"], world.ids
    admin = world.client("global.admin@fabrikam.example")
    posts += [
        (
            agent,
            f"/partner/customers/{c}/users",
            f"/partner/customers/{c}/users",
            {"email": "not-an-address", "display_name": "", "password": "short"},
        ),
        (
            agent,
            f"/partner/customers/{c}/cancel?order={i['order']}",
            f"/partner/customers/{c}/cancel",
            {"order": i["order"]},
        ),
        (
            agent,
            f"/partner/support/{i['request']}",
            f"/partner/support/{i['request']}",
            {"note": ""},
        ),
        (agent, "/account/tokens", "/account/tokens", {"name": ""}),
        (admin, "/partner/users", "/partner/users", {"email": "bad", "password": "short"}),
        (
            admin,
            "/partner/users",
            "/partner/users",
            {"email": "new.person@fabrikam.example", "password": "password123"},
        ),
    ]
    provider = world.client(demo.PROVIDER_ADMIN_EMAIL)
    posts += [
        (provider, "/provider/catalog/import", "/provider/catalog/import", {"text": BAD_CATALOG}),
        (provider, "/provider/catalog/import", "/provider/catalog/import", {"text": "a: [b"}),
        (provider, "/provider/catalog/import", "/provider/catalog/import", {"text": '{"a": }'}),
        (provider, "/provider/keys", "/provider/keys/import", {"sku": "NO:SUCH"}),
        (provider, "/account/tokens", "/account/tokens", {"name": "x" * 101}),
        (
            provider,
            "/provider/tax-rates",
            "/provider/tax-rates",
            {"country": "ES", "percent": "doce"},
        ),
        (provider, "/provider/billing", "/provider/billing/close", {"month": "2099-01"}),
        (provider, "/provider/partners", "/provider/partners", {"company_name": "", "country": ""}),
    ]
    for client, page, action, data in posts:
        r = _post_form(client, page, action, data, headers=SPANISH)
        if r.status_code in (302, 303):
            r = client.get(r.headers["location"])
        assert r.status_code < 500, (action, r.status_code)
        assert 'lang="es-ES"' in r.text, action
        found = problems_of(r.text, world.names + list(data.values()))
        if found:
            report[f"POST {action} {data}"] = found
    assert not report, "\n".join(f"{page}: {'; '.join(found)}" for page, found in report.items())
