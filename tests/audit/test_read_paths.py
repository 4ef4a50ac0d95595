"""The fast read paths give what the plain ones give: company names, and the COPY export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

import pydantic_core
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.audit import services as audit
from partnercenter.audit.api import (
    _batched_stream,
    _copy_stream,
    page_items,
    partner_resolver,
    record_json,
    resolve_query,
)
from partnercenter.audit.services import (
    ActivityQuery,
    FilterField,
    ScopeKind,
    Visibility,
    make_filter,
)
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.envelopes import collection
from partnercenter.identity.models import User
from tests.audit.helpers import CANCEL, KEY, ORDER, log
from tests.factories import Factory


def _ids(session: Session, visibility: Visibility, query: ActivityQuery) -> list[str]:
    return [str(e.id) for e in audit.read_page(session, visibility=visibility, query=query).entries]


def test_company_name_finds_the_records_of_the_customers_it_names(
    session: Session, clock: FrozenClock, factory: Factory, backend: str
) -> None:
    partner, other = factory.partner(), factory.partner()
    contoso = factory.customer(partner, name="Contoso Ltd")
    pharma = factory.customer(partner, name="Contoso Pharma")
    fabrikam = factory.customer(partner, name="Fabrikam 100% Inc")
    quoted = factory.customer(partner, name="O'Brien \\ Sons_ Ltd")
    theirs = factory.customer(other, name="Contoso Elsewhere")
    for customer in (contoso, pharma, fabrikam, contoso, pharma, quoted):
        log(session, clock, tenant=partner, customer=customer)
    log(session, clock, tenant=other, customer=theirs)
    log(session, clock, tenant=partner, kind=ORDER)  # no customer
    visibility = Visibility(ScopeKind.PARTNER, partner.id)
    window = (clock.now() - timedelta(days=1), clock.now() + timedelta(days=1))
    cases = {
        ("substring", "contoso"): 4,
        ("starts_with", "CONTOSO P"): 2,
        ("equals", "contoso ltd"): 2,
        ("substring", "100%"): 1,  # a LIKE wildcard is matched as text
        ("equals", "o'brien \\ sons_ ltd"): 1,  # quotes, backslash and _ written as text
        ("starts_with", "O'BRIEN \\"): 1,
        ("substring", "_"): 1,
        ("substring", "nobody"): 0,
    }
    for (op, value), expected in cases.items():
        query = ActivityQuery(*window, (make_filter(FilterField.COMPANY_NAME, op, value),))
        found = _ids(session, visibility, query)
        assert len(found) == expected, (op, value)
    # The provider reads every partner's customers.
    provider = Visibility(ScopeKind.PROVIDER, partner.id)
    query = ActivityQuery(*window, (make_filter(FilterField.COMPANY_NAME, "substring", "contoso"),))
    assert len(_ids(session, provider, query)) == 5


def test_a_name_naming_many_customers_finds_all_their_records(
    session: Session, clock: FrozenClock, factory: Factory
) -> None:
    partner = factory.partner()
    for n in range(30):
        log(
            session, clock, tenant=partner, customer=factory.customer(partner, name=f"Shop {n} Ltd")
        )
    visibility = Visibility(ScopeKind.PARTNER, partner.id)
    query = ActivityQuery(
        clock.now() - timedelta(days=1),
        clock.now(),
        (make_filter(FilterField.COMPANY_NAME, "substring", "ltd"),),
    )
    assert len(_ids(session, visibility, query)) == 30


def test_company_name_pages_read_by_the_customer_id_equal_the_one_statement_form(
    session: Session, clock: FrozenClock, factory: Factory
) -> None:
    """A name naming one customer is read by its id, page by page; the rows and their order
    are those of the one-statement form (the customers as a subquery)."""
    partner = factory.partner()
    shops = [factory.customer(partner, name=f"Shop {n} Ltd") for n in range(12)]
    for _ in range(3):
        for shop in shops:  # twelve records to a timestamp: the id breaks the ties
            log(session, clock, tenant=partner, customer=shop, advance=0)
        clock.advance(seconds=1)
    visibility = Visibility(ScopeKind.PARTNER, partner.id)
    window = (clock.now() - timedelta(days=1), clock.now() + timedelta(days=1))
    cases = {
        ("equals", "shop 3 ltd"): 3,  # one customer: by its id
        ("substring", "shop 11"): 3,
        ("substring", "shop 1"): 9,  # Shop 1, 10 and 11: the subquery
        ("starts_with", "shop"): 36,
        ("substring", "nobody"): 0,  # no customer: no second statement
    }
    for (op, value), expected in cases.items():
        query = ActivityQuery(*window, (make_filter(FilterField.COMPANY_NAME, op, value),))
        paged: list[object] = []
        cursor = None
        while True:
            page = audit.read_page(
                session, visibility=visibility, query=query, size=4, cursor=cursor
            )
            paged += [e.id for e in page.entries]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        whole = session.execute(audit.select_page(visibility, query, limit=100)).all()
        assert paged == [row.id for row in whole], (op, value)
        assert len(paged) == expected, (op, value)
        if page.previous_cursor is not None:  # and back from the last page
            last_start = len(paged) - len(page.entries)
            back = audit.read_page(
                session, visibility=visibility, query=query, size=4, cursor=page.previous_cursor
            )
            assert [e.id for e in back.entries] == paged[last_start - 4 : last_start]


def _rows(chunks: list[str | bytes]) -> list[list[str]]:
    text_ = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    assert text_.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text_[1:])))


def test_postgresql_copy_export_matches_the_row_by_row_export_cell_for_cell(
    session: Session,
    session_factory: sessionmaker[Session],
    clock: FrozenClock,
    factory: Factory,
    backend: str,
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner, name='-Minus, "Quoted" Ltd')
    user = factory.user(partner)
    log(session, clock, tenant=partner, upn="=cmd|'/C calc'!A0", details={}, advance=0.123456)
    log(
        session,
        clock,
        tenant=partner,
        user=user,
        customer=customer,
        kind=KEY,
        details={
            "orderId": "+1",
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "none": None,
            "nested": {"b": [1, "é"], "a": "x"},
            "line": "two\nlines",
            "tab": "\tstart",
        },
    )
    log(
        session,
        clock,
        tenant=partner,
        customer=customer,
        details={"@at": "\uff1dwide", "café": "ünï"},
        advance=0,
    )
    visibility = Visibility(ScopeKind.PARTNER, partner.id)
    query = ActivityQuery(clock.now() - timedelta(days=1), clock.now() + timedelta(days=1))
    session.commit()  # the exports read in sessions of their own, as requests do
    plain = _rows(
        list(_batched_stream(session_factory(), visibility=visibility, query=query, batch=2))
    )
    assert len(plain) == 4
    assert plain[1][8].startswith("'@at=")
    assert plain[2][8].startswith("orderId=+1; count=3; ratio=0.5; ok=true; none=None; nested=")
    assert plain[3][1].startswith("'=cmd")
    if backend != "postgresql":
        return
    copied = _rows(list(_copy_stream(session_factory(), visibility=visibility, query=query)))
    assert copied == plain
    # The customer's own view (its key records in its partner's log: an IN list of
    # operations) and a CompanyName filter (the customers as a subquery) export alike.
    views = [
        (Visibility(ScopeKind.CUSTOMER, customer.id, partner.id), query, 2),
        (
            visibility,
            ActivityQuery(
                query.start,
                query.end,
                (make_filter(FilterField.COMPANY_NAME, "substring", '"quoted"'),),
            ),
            2,
        ),
    ]
    for reader, selection, records in views:
        plain = _rows(
            list(_batched_stream(session_factory(), visibility=reader, query=selection, batch=2))
        )
        copied = _rows(list(_copy_stream(session_factory(), visibility=reader, query=selection)))
        assert len(plain) == records + 1
        assert copied == plain


def test_api_page_is_byte_for_byte_the_json_of_record_json(
    client: TestClient,
    session: Session,
    settings: Settings,
    clock: FrozenClock,
    factory: Factory,
    auth_headers: Callable[[User], dict[str, str]],
) -> None:
    """The page built by ``page_items`` (ids as UUIDs, instants as datetimes, written by
    pydantic-core) is the same bytes as the page of ``record_json`` strings, for nulls,
    unicode, whole and fractional instants, nested customizedData, and every kind of
    partnerId (a partner's, a customer's partner, none for the provider or a missing tenant).
    """
    headers = auth_headers(factory.provider_admin())
    partner = factory.partner(name="Partner «Ünïcode» 北京")
    customer = factory.customer(partner, name='Café "Zürich" \\ Ltd 🙂')
    user = factory.user(partner, email="agent.ünï@example.com")
    start = clock.now()
    log(
        session,
        clock,
        tenant=partner,
        user=user,
        customer=customer,
        kind=ORDER,
        details={
            "orderId": "o-é\u2028\x01\"'<>&",
            "count": 3,
            "big": 2**70,
            "ratio": 0.1,
            "ok": True,
            "none": None,
            "empty": "",
            "nested": {"b": [1, "é", None, 2.5], "a": {"z": False}},
            "list": ["x", 1],
            "resourceNewValue": {"status": "active", "quantity": 2},
            "applicationId": 42,
        },
        advance=0.123456,
    )
    log(session, clock, tenant=partner, upn="=ünï@example.com", details={}, advance=0.5)
    log(session, clock, tenant=customer, customer=customer, kind=KEY, advance=1.5)
    log(session, clock, tenant=factory.provider(), kind=CANCEL, details={"applicationId": "app"})
    audit.record(
        session,
        at=clock.now(),
        resource_type="sign_in",
        operation_type="sign_in_failed",
        tenant_id=None,
        user_principal_name="nobody@example.com",
        status="failed",
        details={"resourceNewValue": "text", "reason": None},
    )
    session.flush()
    end = clock.now() + timedelta(seconds=1)
    visibility = Visibility(ScopeKind.PROVIDER, factory.provider().id)
    for size in ("3", "500"):  # a page with links.next and its token, and the whole log
        uri = (
            f"/v1/auditrecords?startDate={start.isoformat().replace('+00:00', 'Z')}"
            f"&endDate={end.isoformat().replace('+00:00', 'Z')}&size={size}"
        )
        response = client.get(uri, headers=headers)
        assert response.status_code == 200, response.text
        query, _ = resolve_query(
            settings=settings,
            now=clock.now(),
            visibility=visibility,
            start_date=start.isoformat(),
            end_date=end.isoformat(),
            filter_text=None,
            token=None,
        )
        page = audit.read_page(session, visibility=visibility, query=query, size=int(size))
        assert len(page.entries) >= min(int(size), 5)  # and the sign-in of the headers
        partners = partner_resolver(session, visibility, page.entries)
        assert {partners.get(e.tenant_id) for e in page.entries if e.tenant_id} >= {partner.id}
        token = (
            audit.encode_token(
                settings.signing_secret,
                visibility=visibility,
                query=query,
                cursor=page.next_cursor,
            )
            if page.next_cursor
            else None
        )
        assert (token is None) == (size == "500")
        reference = [
            record_json(e, partners.get(e.tenant_id) if e.tenant_id else None) for e in page.entries
        ]
        expected = pydantic_core.to_json(collection(reference, continuation=token, next_uri=uri))
        assert response.content == expected
        fast = collection(page_items(page.entries, partners), continuation=token, next_uri=uri)
        assert pydantic_core.to_json(fast) == expected
