"""The Activity log pages: Partner Center, the customer's Admin Center and the provider."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.audit import services as audit
from partnercenter.audit.services import ActivityQuery, Visibility
from partnercenter.audit.views import one_month_before
from partnercenter.clock import FrozenClock
from partnercenter.permissions import Role
from tests.audit.helpers import KEY, ORDER, log
from tests.factories import PASSWORD, Factory
from tests.web import sign_in

ROW = re.compile(r'data-record-id="([0-9a-f-]+)"')


def _signed_in(client: TestClient, session: Session, email: str) -> None:
    session.commit()  # let the app's sessions see the user (savepoint release)
    r = sign_in(client, email, PASSWORD)
    assert r.status_code == 303, r.text


def _link(page: str, testid: str) -> str | None:
    found = re.search(rf'href="([^"]+)"[^>]*data-testid="{testid}"', page)
    return html.unescape(found.group(1)) if found else None


def test_partner_page_defaults_to_the_last_month_and_lists_newest_first(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner, name="Contoso Ltd")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    old = log(session, clock, tenant=partner, user=agent, customer=customer, kind=ORDER)
    clock.advance(days=40)
    first = log(session, clock, tenant=partner, user=agent, customer=customer, kind=ORDER)
    second = log(
        session,
        clock,
        tenant=partner,
        user=agent,
        customer=customer,
        details={"orderId": "ord-77", "version": "2022", "language": "en-US", "bitness": "x64"},
    )
    _signed_in(client, session, ga.email)
    r = client.get("/partner/activity-log")
    assert r.status_code == 200
    today = clock.now().date()
    assert f'name="from" value="{one_month_before(today).isoformat()}"' in r.text
    assert f'name="to" value="{today.isoformat()}"' in r.text
    ids = ROW.findall(r.text)
    assert ids.index(str(second.id)) < ids.index(str(first.id))  # newest first
    assert str(old.id) not in ids
    assert "Get key" in r.text and "Contoso Ltd" in r.text
    # The Details column is a sentence, not the record's ids and JSON.
    assert "Product key of —, version 2022." in r.text and "ord-77" not in r.text
    assert agent.email in r.text
    assert 'href="/partner/activity-log"' in r.text  # the navigation entry


def test_filters_paging_and_export_carry_the_same_selection(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    partner = factory.partner()
    contoso = factory.customer(partner, name="Contoso Ltd")
    fabrikam = factory.customer(partner, name="Fabrikam Inc")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    keys = [
        log(session, clock, tenant=partner, user=agent, customer=contoso, kind=KEY)
        for _ in range(60)
    ]
    log(session, clock, tenant=partner, user=agent, customer=contoso, kind=ORDER)
    log(session, clock, tenant=partner, user=agent, customer=fabrikam, kind=KEY)
    _signed_in(client, session, ga.email)
    params = {"customer": "contoso", "action": "get_software_key", "user": agent.email.upper()}
    r = client.get("/partner/activity-log", params=params)
    assert r.status_code == 200
    page1 = ROW.findall(r.text)
    assert page1 == [str(k.id) for k in reversed(keys)][:50]
    assert _link(r.text, "previous-page") is None
    next_url = _link(r.text, "next-page")
    assert next_url is not None
    r2 = client.get(next_url)
    assert ROW.findall(r2.text) == [str(k.id) for k in reversed(keys)][50:]
    assert _link(r2.text, "next-page") is None
    previous = _link(r2.text, "previous-page")
    assert previous is not None
    assert ROW.findall(client.get(previous).text) == page1

    export = _link(r.text, "export-csv")
    assert export is not None and export.startswith("/v1/auditrecords/export?")
    query = parse_qs(urlsplit(export).query)
    assert query["startDate"] == [one_month_before(clock.now().date()).isoformat()]
    assert query["endDate"] == [clock.now().date().isoformat()]
    fields = {f["Field"]: f["Value"] for f in json.loads(query["filter"][0])}
    assert fields == {
        "CompanyName": "contoso",
        "OperationType": "get_software_key",
        "UserPrincipalName": agent.email,
    }
    csv_response = client.get(export)
    assert csv_response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert [row["id"] for row in rows] == [str(k.id) for k in reversed(keys)]


def test_page_explains_a_reversed_range_and_a_changed_link(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    partner = factory.partner()
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    _signed_in(client, session, ga.email)
    r = client.get("/partner/activity-log", params={"from": "2026-11-20", "to": "2026-11-01"})
    assert r.status_code == 400
    assert "The From date must not be after the To date." in r.text
    r = client.get("/partner/activity-log", params={"from": "20/11/2026"})
    assert r.status_code == 400 and "YYYY-MM-DD" in r.text
    r = client.get("/partner/activity-log", params={"ct": "forged.token"})
    assert r.status_code == 400 and "no longer valid" in r.text


def test_admin_agent_gets_403_on_the_page(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    agent = factory.user(partner, Role.ADMIN_AGENT)
    _signed_in(client, session, agent.email)
    r = client.get("/partner/activity-log")
    assert r.status_code == 403
    assert 'href="/partner/activity-log"' not in client.get("/partner").text


def test_customer_global_admin_sees_its_key_records_in_the_admin_center(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    partner = factory.partner()
    me, neighbour = factory.customer(partner), factory.customer(partner)
    agent = factory.user(partner, Role.ADMIN_AGENT)
    admin = factory.user(me, Role.GLOBAL_ADMIN)
    mine = log(session, clock, tenant=partner, user=agent, customer=me, kind=KEY)
    order = log(session, clock, tenant=partner, user=agent, customer=me, kind=ORDER)
    theirs = log(session, clock, tenant=partner, user=agent, customer=neighbour, kind=KEY)
    _signed_in(client, session, admin.email)
    r = client.get("/admin/activity-log")
    assert r.status_code == 200
    ids = ROW.findall(r.text)
    assert ids == [str(mine.id)]
    assert str(order.id) not in ids and str(theirs.id) not in ids
    assert 'name="customer"' not in r.text  # only its own tenant: no customer filter
    assert client.get("/partner/activity-log").status_code == 403  # not its portal


def test_provider_page_lists_every_partner(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    a, b = factory.partner(), factory.partner()
    ra = log(session, clock, tenant=a, kind=ORDER)
    rb = log(session, clock, tenant=b, kind=KEY)
    admin = factory.provider_admin()
    _signed_in(client, session, admin.email)
    r = client.get("/provider/activity-log")
    assert r.status_code == 200
    assert {str(ra.id), str(rb.id)} <= set(ROW.findall(r.text))


def test_page_speaks_spanish(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    partner = factory.partner()
    log(session, clock, tenant=partner, kind=KEY)
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    _signed_in(client, session, ga.email)
    r = client.get("/partner/activity-log", headers={"Accept-Language": "es-ES"})
    assert r.status_code == 200
    assert "Registro de actividad" in r.text and "Exportar a CSV" in r.text
    assert "Obtener clave" in r.text


def test_export_reads_in_keyset_batches_without_repeating_rows(
    session: Session, factory: Factory, clock: FrozenClock
) -> None:
    partner = factory.partner()
    written = [log(session, clock, tenant=partner, kind=KEY, advance=0) for _ in range(11)]
    visibility = Visibility(audit.ScopeKind.PARTNER, partner.id)
    query = ActivityQuery(clock.now().replace(year=2020), clock.now().replace(year=2030))
    calls: list[int] = []
    got = list(
        audit.iterate(
            session,
            visibility=visibility,
            query=query,
            batch=4,
            between_batches=lambda: calls.append(1),
        )
    )
    assert sorted(e.id for e in got) == sorted(r.id for r in written)
    assert len(got) == 11 and len(calls) == 3  # 4 + 4 + 3


def test_one_month_before_keeps_the_day_or_the_month_end() -> None:
    assert one_month_before(date(2026, 11, 24)) == date(2026, 10, 24)
    assert one_month_before(date(2026, 3, 31)) == date(2026, 2, 28)
    assert one_month_before(date(2026, 1, 15)) == date(2025, 12, 15)
