"""GET /v1/auditrecords: keyset paging, filters, who sees what, and precise 400 errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.audit.schemas import AuditRecordOut, AuditRecordPage
from partnercenter.clock import FrozenClock
from partnercenter.permissions import ROLES_BY_KIND, Action, Role, TenantKind, allowed
from tests.audit.helpers import CANCEL, DOWNLOAD, KEY, LINK, ORDER, log
from tests.factories import Factory

Headers = Callable[..., dict[str, str]]
SIGN_IN = "sign_in"


def _get(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/v1/auditrecords", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _all_pages(
    client: TestClient,
    headers: dict[str, str],
    between: Callable[[], None] | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Follow links.next with its MS-ContinuationToken header until the last page."""
    items: list[dict[str, Any]] = []
    body = _get(client, headers, **params)
    items += body["items"]
    while "next" in body["links"]:
        nxt = body["links"]["next"]
        token = {h["key"]: h["value"] for h in nxt["headers"]}["MS-ContinuationToken"]
        if between:
            between()
        r = client.get("/v1" + nxt["uri"], headers={**headers, "MS-ContinuationToken": token})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
    return items


def _not_sign_ins(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in items if i["resourceType"] != SIGN_IN]


def test_record_has_partner_center_fields_and_the_envelope_validates(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner, name="Contoso Ltd")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN), **{"MS-CorrelationId": "c-1"})
    rec = log(
        session,
        clock,
        tenant=partner,
        user=agent,
        customer=customer,
        details={"orderId": "ord-9", "version": "2022", "language": "en-US", "bitness": "x64"},
    )
    body = _get(client, h, filter=json.dumps({"Field": "ResourceType", "Value": "software_key"}))
    AuditRecordPage.model_validate(body)
    assert body["totalCount"] == 1 and body["attributes"]["objectType"] == "Collection"
    item = body["items"][0]
    AuditRecordOut.model_validate(item)
    assert item["id"] == str(rec.id)
    assert item["partnerId"] == str(partner.id)
    assert item["customerId"] == str(customer.id) and item["customerName"] == "Contoso Ltd"
    assert item["userPrincipalName"] == agent.email and item["userId"] == str(agent.id)
    assert (item["resourceType"], item["operationType"]) == KEY
    assert item["operationStatus"] == "succeeded"
    assert item["operationDate"] == rec.occurred_at.isoformat().replace("+00:00", "Z")
    assert {d["key"]: d["value"] for d in item["customizedData"]} == {
        "orderId": "ord-9",
        "version": "2022",
        "language": "en-US",
        "bitness": "x64",
    }


def test_pages_stay_exact_while_new_records_arrive_between_pages(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner = factory.partner()
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    start = clock.now() - timedelta(days=1)
    original = [log(session, clock, tenant=partner, kind=ORDER) for _ in range(57)]
    end = clock.now() + timedelta(days=10)  # the range stays open: arrivals fall inside it

    def arrive() -> None:
        for _ in range(4):
            log(session, clock, tenant=partner, kind=CANCEL)

    items = _all_pages(
        client,
        h,
        between=arrive,
        startDate=start.isoformat(),
        endDate=end.isoformat(),
        size="10",
        filter=json.dumps({"Field": "OperationType", "Value": "create_order"}),
    )
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == 57  # no duplicates, no gaps
    assert ids == [str(r.id) for r in reversed(original)]  # newest first

    # Without a filter the arrivals newer than the first page are simply not repeated.
    items = _all_pages(
        client, h, between=arrive, startDate=start.isoformat(), endDate=end.isoformat(), size="25"
    )
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids))
    assert {str(r.id) for r in original} <= set(ids)
    keys = [(i["operationDate"], i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)


def test_records_sharing_one_timestamp_are_paged_without_loss(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner = factory.partner()
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    clock.advance(minutes=5)
    same = [log(session, clock, tenant=partner, kind=DOWNLOAD, advance=0) for _ in range(23)]
    clock.advance(seconds=1)
    items = _all_pages(
        client,
        h,
        size="4",
        filter='{"Field":"OperationType","Value":"download_software","Operator":"equals"}',
    )
    assert sorted(i["id"] for i in items) == sorted(str(r.id) for r in same)
    assert len(items) == 23
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)


def test_default_range_is_the_last_30_days_and_any_range_works(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner = factory.partner()
    old = log(session, clock, tenant=partner, kind=ORDER)
    clock.advance(days=400)
    recent = log(session, clock, tenant=partner, kind=ORDER)
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    ids = {i["id"] for i in _get(client, h)["items"]}
    assert str(recent.id) in ids and str(old.id) not in ids
    body = _get(client, h, startDate=(clock.now() - timedelta(days=500)).date().isoformat())
    assert {str(old.id), str(recent.id)} <= {i["id"] for i in body["items"]}
    day = old.occurred_at.date().isoformat()
    body = _get(client, h, startDate=day, endDate=day)  # a bare end date includes its whole day
    assert [i["id"] for i in body["items"]] == [str(old.id)]


def test_filters_customer_company_name_resource_operation_and_user(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner = factory.partner()
    contoso = factory.customer(partner, name="Contoso Ltd")
    fabrikam = factory.customer(partner, name="Fabrikam Inc")
    ann = factory.user(partner, Role.ADMIN_AGENT, email="ann@reseller.example")
    bob = factory.user(partner, Role.ADMIN_AGENT, email="bob@reseller.example")
    r1 = log(session, clock, tenant=partner, user=ann, customer=contoso, kind=KEY)
    r2 = log(session, clock, tenant=partner, user=bob, customer=contoso, kind=LINK)
    r3 = log(session, clock, tenant=partner, user=ann, customer=fabrikam, kind=ORDER)
    r4 = log(session, clock, tenant=partner, user=bob, customer=fabrikam, kind=KEY)
    failed = log(
        session,
        clock,
        tenant=partner,
        upn="ann@reseller.example",
        kind=("sign_in", "sign_in_failed"),
    )
    h = auth_headers(factory.user(partner, Role.ACCOUNT_ADMIN))

    def ids(flt: Any) -> set[str]:
        items = _get(client, h, filter=json.dumps(flt))["items"]
        return {i["id"] for i in items}

    assert ids({"Field": "CustomerId", "Value": str(contoso.id), "Operator": "equals"}) == {
        str(r1.id),
        str(r2.id),
    }
    assert ids({"Field": "CompanyName", "Value": "BRIK", "Operator": "substring"}) == {
        str(r3.id),
        str(r4.id),
    }
    assert ids({"Field": "CompanyName", "Value": "con", "Operator": "starts_with"}) == {
        str(r1.id),
        str(r2.id),
    }
    assert ids({"Field": "ResourceType", "Value": "software_key", "Operator": "equals"}) == {
        str(r1.id),
        str(r4.id),
    }
    assert ids({"Field": "OperationType", "Value": "create_order", "Operator": "equals"}) == {
        str(r3.id)
    }
    assert ids({"Field": "UserId", "Value": str(bob.id), "Operator": "equals"}) == {
        str(r2.id),
        str(r4.id),
    }
    # The principal name also finds what was recorded without a signed-in user (failed sign-in).
    assert ids({"Field": "UserPrincipalName", "Value": "Ann@Reseller.example"}) == {
        str(r1.id),
        str(r3.id),
        str(failed.id),
    }
    both = [
        {"Field": "CustomerId", "Value": str(fabrikam.id), "Operator": "equals"},
        {"field": "resourcetype", "value": "software_key", "operator": "EQUALS"},
    ]
    assert ids(both) == {str(r4.id)}
    assert ids({"Field": "CompanyName", "Value": "100%", "Operator": "substring"}) == set()


def test_partner_reads_only_its_own_tenant(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    mine, other = factory.partner(), factory.partner()
    my_customer, their_customer = factory.customer(mine), factory.customer(other)
    ours = log(session, clock, tenant=mine, customer=my_customer)
    theirs = log(session, clock, tenant=other, customer=their_customer)
    admin_center = log(session, clock, tenant=my_customer, customer=my_customer)
    h = auth_headers(factory.user(mine, Role.GLOBAL_ADMIN))
    ids = {i["id"] for i in _all_pages(client, h)}
    assert str(ours.id) in ids
    assert str(theirs.id) not in ids and str(admin_center.id) not in ids
    # Asking for another partner's customer gives nothing rather than its records.
    flt = json.dumps({"Field": "CustomerId", "Value": str(their_customer.id)})
    assert _get(client, h, filter=flt)["items"] == []


def test_every_role_is_allowed_or_refused_as_the_permission_table_says(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    tenants = {
        TenantKind.PROVIDER: factory.provider(),
        TenantKind.PARTNER: partner,
        TenantKind.CUSTOMER: customer,
    }
    checked = 0
    for kind, roles in ROLES_BY_KIND.items():
        for role in roles:
            user = factory.user(tenants[kind], role)
            status = client.get("/v1/auditrecords", headers=auth_headers(user)).status_code
            may = any(
                allowed(kind, [role], a)
                for a in (
                    Action.READ_ACTIVITY_LOG,
                    Action.READ_OWN_ACTIVITY,
                    Action.READ_ALL_ACTIVITY,
                )
            )
            assert status == (200 if may else 403), (kind, role, status)
            checked += 1
    assert checked == sum(len(r) for r in ROLES_BY_KIND.values())


def test_admin_agent_is_refused_unless_it_also_holds_an_activity_log_role(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    agent = factory.user(partner, Role.ADMIN_AGENT)
    r = client.get("/v1/auditrecords", headers=auth_headers(agent))
    assert r.status_code == 403
    assert "activity log" in r.json()["description"]
    assert client.get("/v1/auditrecords/export", headers=auth_headers(agent)).status_code == 403
    for extra in (Role.ACCOUNT_ADMIN, Role.REFERRAL_ADMIN, Role.MARKETING_CONTENT_ADMIN):
        both = factory.user(partner, Role.ADMIN_AGENT, extra)
        assert client.get("/v1/auditrecords", headers=auth_headers(both)).status_code == 200
    assert client.get("/v1/auditrecords").status_code == 401


def test_customer_global_admin_sees_only_its_own_key_and_download_records(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner = factory.partner()
    me, neighbour = factory.customer(partner), factory.customer(partner)
    agent = factory.user(partner, Role.ADMIN_AGENT)
    my_admin = factory.user(me, Role.GLOBAL_ADMIN)
    key = log(session, clock, tenant=partner, user=agent, customer=me, kind=KEY)
    link = log(session, clock, tenant=partner, user=agent, customer=me, kind=LINK)
    via_link = log(
        session, clock, tenant=partner, upn="someone@me.example", customer=me, kind=DOWNLOAD
    )
    own_center = log(session, clock, tenant=me, user=my_admin, customer=me, kind=KEY)
    log(session, clock, tenant=partner, user=agent, customer=me, kind=ORDER)
    log(session, clock, tenant=partner, user=agent, customer=me, kind=CANCEL)
    log(session, clock, tenant=partner, user=agent, customer=neighbour, kind=KEY)
    log(session, clock, tenant=neighbour, customer=neighbour, kind=KEY)
    items = _all_pages(client, auth_headers(my_admin))
    assert {i["id"] for i in items} == {str(r.id) for r in (key, link, via_link, own_center)}
    assert {i["partnerId"] for i in items} == {str(partner.id)}
    for role in (Role.BILLING_ADMIN, Role.USER):
        user = factory.user(me, role)
        assert client.get("/v1/auditrecords", headers=auth_headers(user)).status_code == 403


def test_provider_admin_sees_every_tenant(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    a, b = factory.partner(), factory.partner()
    ca = factory.customer(a)
    ra = log(session, clock, tenant=a, customer=ca, kind=ORDER)
    rb = log(session, clock, tenant=b, kind=ORDER)
    rc = log(session, clock, tenant=ca, customer=ca, kind=KEY)
    items = _all_pages(client, auth_headers(factory.provider_admin()))
    by_id = {i["id"]: i for i in items}
    assert {str(ra.id), str(rb.id), str(rc.id)} <= set(by_id)
    assert by_id[str(ra.id)]["partnerId"] == str(a.id)
    assert by_id[str(rc.id)]["partnerId"] == str(a.id)  # the customer's partner
    assert by_id[str(rb.id)]["partnerId"] == str(b.id)


@pytest.mark.parametrize(
    ("params", "source", "words"),
    [
        ({"startDate": "2026-11-20", "endDate": "2026-11-01"}, "startDate", "is after endDate"),
        ({"startDate": "2026-13-01"}, "startDate", "is not a date"),
        ({"endDate": "yesterday"}, "endDate", "is not a date"),
        ({"filter": "{Field: CustomerId}"}, "filter", "not valid JSON"),
        ({"filter": '{"Field": "Colour", "Value": "x"}'}, "filter", "unknown Field 'Colour'"),
        (
            {"filter": '{"Field": "CustomerId", "Value": "x", "Operator": "substring"}'},
            "filter",
            "Operator 'substring' is not supported for CustomerId",
        ),
        ({"filter": '{"Field": "CustomerId", "Value": "nope"}'}, "filter", "must be a GUID"),
        ({"filter": '{"Field": "ResourceType", "Value": ""}'}, "filter", "non-empty"),
        (
            {"filter": '{"Field": "ResourceType", "Value": "a", "Extra": 1}'},
            "filter",
            "unknown key",
        ),
        ({"filter": '"text"'}, "filter", "must be an object"),
        # JSON escapes get past the edge's check of the query string; the filter refuses them.
        (
            {"filter": '{"Field": "CompanyName", "Value": "a\\u0000b", "Operator": "substring"}'},
            "filter",
            "NUL characters or lone surrogates",
        ),
        (
            {"filter": '{"Field": "CompanyName", "Value": "\\ud800x", "Operator": "equals"}'},
            "filter",
            "NUL characters or lone surrogates",
        ),
        (
            {"filter": '{"Field": "UserPrincipalName", "Value": "a\\u0000@example.com"}'},
            "filter",
            "NUL characters or lone surrogates",
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {"Field": "UserId", "Value": str(uuid.UUID(int=1))},
                        {"Field": "UserId", "Value": str(uuid.UUID(int=2))},
                    ]
                )
            },
            "filter",
            "more than once",
        ),
        ({"size": "0"}, "size", "from 1 to 500"),
        ({"size": "501"}, "size", "from 1 to 500"),
        ({"size": "ten"}, "size", "from 1 to 500"),
    ],
)
def test_bad_parameters_get_400_with_a_precise_description(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    params: dict[str, str],
    source: str,
    words: str,
) -> None:
    h = auth_headers(factory.user(factory.partner(), Role.GLOBAL_ADMIN))
    r = client.get("/v1/auditrecords", params=params, headers=h)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 10010
    assert body["source"] == source
    assert words in body["description"], body["description"]


def test_continuation_tokens_are_refused_when_altered_foreign_or_for_other_filters(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner, other = factory.partner(), factory.partner()
    for _ in range(3):
        log(session, clock, tenant=partner, kind=ORDER)
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    body = _get(client, h, size="1", filter='{"Field":"ResourceType","Value":"order"}')
    token = body["links"]["next"]["headers"][0]["value"]

    def status(tok: str, headers: dict[str, str] = h, **params: str) -> tuple[int, str]:
        r = client.get(
            "/v1/auditrecords", params=params, headers={**headers, "MS-ContinuationToken": tok}
        )
        return r.status_code, r.json().get("description", "")

    # The same query (or no parameters at all) continues.
    assert status(token, size="1", filter='{"Field":"ResourceType","Value":"order"}')[0] == 200
    assert status(token)[0] == 200
    code, text = status(token, filter='{"Field":"ResourceType","Value":"software_key"}')
    assert code == 400 and "different filter" in text
    code, text = status(token, startDate="2020-01-01")
    assert code == 400 and "different startDate" in text
    body_part, sig = token.split(".")
    forged = body_part[:-2] + ("AA" if body_part[-2:] != "AA" else "BB") + "." + sig
    code, text = status(forged)
    assert code == 400 and "not a token this service issued" in text
    assert status("garbage")[0] == 400
    foreign = auth_headers(factory.user(other, Role.GLOBAL_ADMIN))
    code, text = status(token, headers=foreign)
    assert code == 400 and "another reader" in text


def _csv_rows(text: str) -> list[dict[str, str]]:
    import csv
    import io

    # A UTF-8 byte-order mark first, so spreadsheets read accented names right.
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_csv_export_streams_the_whole_selection_with_the_same_filters(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    clock: FrozenClock,
) -> None:
    partner, other = factory.partner(), factory.partner()
    contoso = factory.customer(partner, name="Contoso Ltd")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    keys = [
        log(
            session,
            clock,
            tenant=partner,
            user=agent,
            customer=contoso,
            details={"orderId": f"o-{n}", "version": "2022", "bitness": "x64"},
        )
        for n in range(7)
    ]
    log(session, clock, tenant=partner, user=agent, customer=contoso, kind=ORDER)
    log(session, clock, tenant=other, kind=KEY)
    evil = log(session, clock, tenant=partner, upn='=HYPERLINK("http://x")', kind=KEY)
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    flt = json.dumps({"Field": "ResourceType", "Value": "software_key"})
    r = client.get("/v1/auditrecords/export", params={"filter": flt}, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = _csv_rows(r.text)
    assert [row["id"] for row in rows] == [str(evil.id)] + [str(k.id) for k in reversed(keys)]
    first_key = rows[-1]
    assert first_key["userPrincipalName"] == agent.email
    assert first_key["customerName"] == "Contoso Ltd"
    assert first_key["operationType"] == "get_software_key"
    assert first_key["customizedData"] == "orderId=o-0; version=2022; bitness=x64"
    assert rows[0]["userPrincipalName"].startswith("'=")  # not run as a formula
    assert next(iter(rows[0])) == "operationDate"
    assert (
        client.get("/v1/auditrecords/export", params={"startDate": "x"}, headers=h).status_code
        == 400
    )
