"""The fast read paths give what the plain ones give: company names, and the COPY export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from partnercenter.audit import services as audit
from partnercenter.audit.api import _batched_stream, _copy_stream
from partnercenter.audit.services import (
    ActivityQuery,
    FilterField,
    ScopeKind,
    Visibility,
    make_filter,
)
from partnercenter.clock import FrozenClock
from tests.audit.helpers import KEY, ORDER, log
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
    theirs = factory.customer(other, name="Contoso Elsewhere")
    for customer in (contoso, pharma, fabrikam, contoso, pharma):
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
