"""Activity log at scale: each filter's first page (API vs bare SQL), CSV export vs COPY.

    .venv/bin/python -m bench.activity_log                     # quick: 200,000 records
    .venv/bin/python -m bench.activity_log --records 10000000  # the issue's scale (~10 min)
    ... --records 10000000 --keep        # keep the loaded database (its name is printed)
    ... --database pc_bench_audit_XXXX   # measure a kept database again; drop it yourself
    ... --runs 5 --repeat 15             # interleaved rounds, calls per case and round

Creates a throwaway PostgreSQL database, upgrades it to head (the activity log partitioned
by month), bulk-generates the records of one partner spread over two years (500 users, 5,000
customers) with one INSERT ... SELECT generate_series (indexes built after the load), then,
in ``--runs`` interleaved rounds, times each filter's first page four ways side by side: the
bare indexed SQL (hand-written, through psycopg; for CompanyName the same rows through the
customer index, the issue's baseline), the service (`audit.services.read_page`), the HTTP
API (`GET /v1/auditrecords` with a bearer token, over one kept-alive HTTP/1.1 connection to
``partnercenter serve`` as it starts by default: granian, one worker per core) and a trivial
authenticated GET (`/v1/users/me`, the fixed cost of any request, the same way). It prints,
per filter, min/median/max over the rounds of the bare and API times and of the API/bare,
service/bare and (API - trivial GET)/bare ratios, with the indexes EXPLAIN ANALYZE shows.
Then the CSV export (`audit.api.csv_stream`, what the export route streams) against
`COPY (SELECT the same rows) TO STDOUT (FORMAT csv)` read through psycopg, interleaved:
wall and client CPU, the speed ratio, and the peak traced Python memory of one export.
Load averages are printed beside each part. The database is dropped at the end.

Bulk rows carry well-formed placeholder hashes (the benchmark measures reads; `audit verify`
would report them). Foreign-key triggers are skipped during the load
(`session_replication_role = replica`): the generated ids come from the tenants and users
tables, so they hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/activity_log.py``: the project folder, not bench/, belongs on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import functools
import http.client
import json
import os
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg
from sqlalchemy import event, select, text

from bench import common
from bench.common import database_url, scratch_database, serve
from partnercenter import migrate
from partnercenter.audit import partitions
from partnercenter.audit import services as audit
from partnercenter.audit.api import csv_stream
from partnercenter.audit.services import ActivityQuery, FilterField, ScopeKind, Visibility
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import TenantKind

END = datetime(2026, 11, 24, tzinfo=UTC)
SPAN = timedelta(days=730)
PAGE = 100
COLUMNS = (
    "id, tenant_id, occurred_at, user_id, user_principal_name, customer_id, customer_name, "
    "resource_type, operation_type, status, client_address, user_agent, correlation_id, details"
)

# (resource_type, operation_type) by g % 20: keys, links and downloads dominate.
MIX = (
    [("software_key", "get_software_key")] * 6
    + [("software_download_link", "get_software_download_link")] * 3
    + [("software_download_link", "download_software")] * 3
    + [("order", "create_order")] * 4
    + [
        ("order", "cancel_order"),
        ("credit", "credit"),
        ("sign_in", "sign_in_succeeded"),
        ("sign_in", "sign_in_failed"),
    ]
)


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# This bench's columns are narrow: min/median/max joined by "/", the load average by spaces.
spread = functools.partial(common.spread, sep="/")
load_average = functools.partial(common.load_average, "{:.2f}", " ")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load(url: str, *, records: int, users: int, customers: int) -> None:
    """Tenants, users and records, then the indexes."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    partner_id = uuid.uuid4()
    with factory() as s:
        identity.create_tenant(
            s,
            kind=TenantKind.PARTNER,
            name="Bench Partner",
            country="US",
            now=END - SPAN,
            tenant_id=partner_id,
        )
        s.flush()  # the reader below belongs to the partner
        partner = s.get(Tenant, partner_id)
        assert partner is not None
        identity.create_user(
            s,
            tenant=partner,
            email="reader@bench.example",
            display_name="Reader",
            password="bench-password-1",
            roles=["global_admin"],
            now=END - SPAN,
        )
        s.commit()
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO tenants (id, kind, name, parent_id, domain, country, created_at) "
                "SELECT gen_random_uuid(), 'customer', 'Customer ' || lpad(g::text, 5, '0') || "
                "' Ltd', :p, 'cust' || g || '.onmicrosoft.com', 'US', :t "
                "FROM generate_series(1, :n) g"
            ),
            {"p": partner_id, "t": END - SPAN, "n": customers},
        )
        c.execute(
            text(
                "INSERT INTO users (id, tenant_id, email, display_name, password_hash, "
                "is_active, created_at) SELECT gen_random_uuid(), :p, 'agent' || g || "
                "'@reseller.example', 'Agent ' || g, 'x', true, :t "
                "FROM generate_series(1, :n) g"
            ),
            {"p": partner_id, "t": END - SPAN, "n": users},
        )
    with factory() as s:
        # One partition per month of the span (and three ahead), as the scheduled job makes.
        partitions.ensure_range(
            s,
            first=partitions.month_index(END - SPAN),
            last=partitions.month_index(END) + 3,
        )
        s.commit()
    raw = psycopg.connect(_psycopg_url(url), autocommit=True)
    # Build the indexes once after the load (much faster than maintaining them row by row).
    # A partitioned table's index definition reads "ON ONLY": built without it, it covers
    # every partition.
    defs = [
        r[0].replace(" ON ONLY ", " ON ")
        for r in raw.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_records' "
            "AND indexname <> 'pk_audit_records'"
        ).fetchall()
    ]
    names = [
        r[0]
        for r in raw.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_records' "
            "AND indexname <> 'pk_audit_records'"
        ).fetchall()
    ]
    for n in names:
        raw.execute(f'DROP INDEX "{n}"')
    raw.execute("ALTER TABLE audit_records DROP CONSTRAINT pk_audit_records")
    resources = ",".join(f"'{r}'" for r, _ in MIX)
    operations = ",".join(f"'{o}'" for _, o in MIX)
    step_us = int(SPAN.total_seconds() * 1_000_000 // records)
    t0 = time.perf_counter()
    log(f"generating {records:,} records ...")
    with raw.transaction():
        raw.execute("SET LOCAL session_replication_role = replica")
        raw.execute("SET LOCAL synchronous_commit = off")
        raw.execute(
            f"""
            WITH c AS (SELECT array_agg(id ORDER BY name) AS ids,
                              array_agg(name ORDER BY name) AS names
                       FROM tenants WHERE parent_id = %(p)s),
                 u AS (SELECT array_agg(id ORDER BY email) AS ids,
                              array_agg(email ORDER BY email) AS emails
                       FROM users WHERE tenant_id = %(p)s AND email LIKE 'agent%%'),
                 m AS (SELECT ARRAY[{resources}]::text[] AS res,
                              ARRAY[{operations}]::text[] AS ops)
            INSERT INTO audit_records (id, tenant_id, chain_key, seq, occurred_at, user_id,
                user_principal_name, customer_id, customer_name, resource_type, operation_type,
                status, client_address, user_agent, correlation_id, details, prev_hash, hash)
            SELECT gen_random_uuid(), %(p)s, %(chain)s, g,
                   %(start)s::timestamptz
                       + (g - 1)::bigint * %(step)s::bigint * interval '1 microsecond',
                   CASE WHEN k = 20 THEN NULL ELSE u.ids[ui] END, u.emails[ui],
                   CASE WHEN k >= 19 THEN NULL ELSE c.ids[ci] END,
                   CASE WHEN k >= 19 THEN NULL ELSE c.names[ci] END,
                   m.res[k], m.ops[k],
                   CASE WHEN k = 20 THEN 'failed' ELSE 'succeeded' END,
                   '10.' || (g %% 250) || '.' || (g %% 199) || '.' || (g %% 97),
                   'Mozilla/5.0 (X11; Linux x86_64) bench', gen_random_uuid()::text,
                   json_build_object('orderId', 'ord-' || (g / 3), 'product',
                       'Windows Server 2022 Standard', 'version', '2022',
                       'language', 'en-US', 'bitness', 'x64'),
                   CASE WHEN g = 1 THEN repeat('0', 64)
                        ELSE md5('h' || (g - 1)) || md5('x' || (g - 1)) END,
                   md5('h' || g) || md5('x' || g)
            FROM generate_series(1, %(n)s) AS g
            CROSS JOIN c CROSS JOIN u CROSS JOIN m
            CROSS JOIN LATERAL (SELECT 1 + (hashint4(g::int) & 2147483647) %% %(nc)s AS ci,
                                       1 + (hashint4(g::int + 7) & 2147483647) %% %(nu)s AS ui,
                                       1 + g %% 20 AS k) AS pick
            """,
            {
                "p": partner_id,
                "chain": str(partner_id),
                "start": END - SPAN,
                "step": step_us,
                "n": records,
                "nc": customers,
                "nu": users,
            },
        )
        raw.execute(
            "INSERT INTO audit_chain_heads (chain_key, seq, last_hash) "
            "VALUES (%s, %s, md5('h' || %s) || md5('x' || %s))",
            (str(partner_id), records, records, records),
        )
    log(f"loaded in {time.perf_counter() - t0:.0f} s; building indexes ...")
    t0 = time.perf_counter()
    raw.execute("SET maintenance_work_mem = '1GB'")
    raw.execute(
        "ALTER TABLE audit_records ADD CONSTRAINT pk_audit_records PRIMARY KEY (id, occurred_at)"
    )
    for d in defs:
        raw.execute(d)
    raw.execute("VACUUM ANALYZE audit_records")
    raw.execute("VACUUM ANALYZE tenants")
    raw.execute("VACUUM ANALYZE users")
    log(f"indexes and ANALYZE in {time.perf_counter() - t0:.0f} s")
    raw.close()
    engine.dispose()


def ids_of(url: str) -> dict[str, Any]:
    """The loaded partner, one of its customers and users, and a fresh bearer token."""
    raw = psycopg.connect(_psycopg_url(url), autocommit=True)
    (partner_id,) = raw.execute(
        "SELECT id FROM tenants WHERE kind = 'partner' AND name = 'Bench Partner'"
    ).fetchone()  # type: ignore[misc]
    customer_id, customer_name = raw.execute(
        "SELECT id, name FROM tenants WHERE parent_id = %s ORDER BY name OFFSET 1234 LIMIT 1",
        (partner_id,),
    ).fetchone()  # type: ignore[misc]
    user_id, email = raw.execute(
        "SELECT id, email FROM users WHERE tenant_id = %s AND email LIKE 'agent%%' "
        "ORDER BY email OFFSET 123 LIMIT 1",
        (partner_id,),
    ).fetchone()  # type: ignore[misc]
    size = raw.execute(
        "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits "
        "WHERE inhparent = 'audit_records'::regclass"
    ).fetchone()
    (records,) = raw.execute("SELECT max(seq) FROM audit_records").fetchone()  # type: ignore[misc]
    raw.close()
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        reader = s.execute(select(User).where(User.email == "reader@bench.example")).scalar_one()
        # Token lifetimes are real time (the server's security clock), not the data's END.
        secret, _ = identity.issue_token(
            s, user=reader, now=datetime.now(UTC), lifetime=timedelta(days=1)
        )
        s.commit()
    engine.dispose()
    return {
        "partner_id": partner_id,
        "customer_id": customer_id,
        "customer_name": customer_name,
        "user_id": user_id,
        "email": email,
        "token": secret,
        "size": size[0] if size else "?",
        "records": records,
    }


def timed_together(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median seconds of each function over ``repeat`` calls, interleaved call by call."""
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, times in zip(fns, out, strict=True):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return [statistics.median(times) for times in out]


def service_statement(engine: Any, call: Callable[[], object]) -> tuple[str, Any]:
    """The last statement (SQL and parameters, the driver's form) ``call`` sends on ``engine``."""
    sent: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    return sent[-1]


def plan_indexes(raw: psycopg.Connection[Any], sql: str, params: Any) -> str:
    """The indexes EXPLAIN ANALYZE shows (partition indexes by their parent's columns)."""
    rows = raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
    plan = "\n".join(r[0] for r in rows)
    if os.environ.get("BENCH_SHOW_PLANS"):
        print(plan)
    used: set[str] = set()
    for line in plan.splitlines():
        for word in line.split():
            if word.startswith("ix_"):
                used.add(word)
            elif word.startswith("audit_records_y") and word.endswith("_idx"):
                # audit_records_y2026m11_tenant_id_customer_id_occurred_at_idx
                used.add(word.split("_", 3)[3].removesuffix("_idx"))
    if "Seq Scan" in plan:
        used.add("SEQ SCAN")
    return ",".join(sorted(used)) or "(no index)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="records to generate")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument(
        "--runs", type=int, default=5, help="interleaved rounds; min/median/max over them"
    )
    parser.add_argument("--repeat", type=int, default=15, help="calls per case per round")
    parser.add_argument(
        "--export-records",
        type=int,
        default=0,
        help="records the CSV export case reads (default: min(1M, records/2))",
    )
    parser.add_argument("--export-runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--database", help="measure an already loaded database (kept) instead of loading one"
    )
    args = parser.parse_args()
    if args.database:
        return run(database_url(args.database), args, loaded=True)

    name = ""
    try:
        with scratch_database("pc_bench_audit", keep=args.keep) as url:
            name = url.rsplit("/", 1)[1]
            log(f"database {name}")
            return run(url, args)
    finally:
        if name and not args.keep:
            log(f"dropped {name}")


class KeptAlive:
    """GET requests over one kept-alive HTTP/1.1 connection (``http.client``), as a client."""

    def __init__(self, base: str) -> None:
        split = urlsplit(base)
        self.conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port)

    def get(
        self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """The status and the decoded JSON body of ``GET path?params``."""
        self.conn.request(
            "GET", path + ("?" + urlencode(params) if params else ""), headers=headers or {}
        )
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")


def run(url: str, args: argparse.Namespace, loaded: bool = False) -> int:
    if not loaded:
        load(url, records=args.records, users=args.users, customers=args.customers)
    ids = ids_of(url)
    args.records = ids["records"]
    engine = make_engine(url)
    factory = make_session_factory(engine)
    raw = psycopg.connect(_psycopg_url(url), autocommit=True)
    with tempfile.TemporaryDirectory() as data_dir, serve(url, Path(data_dir), []) as base:
        try:
            return _measure(url, args, ids, engine, factory, raw, KeptAlive(base))
        finally:
            raw.close()
            engine.dispose()


def _measure(
    url: str,
    args: argparse.Namespace,
    ids: dict[str, Any],
    engine: Any,
    factory: Any,
    raw: psycopg.Connection[Any],
    client: KeptAlive,
) -> int:
    partner_id = ids["partner_id"]
    visibility = Visibility(ScopeKind.PARTNER, partner_id)
    headers = {"Authorization": f"Bearer {ids['token']}"}
    # The service query runs where a request runs it: in the request's open transaction
    # (begun by authentication), so it costs one round trip, like the bare query.
    in_request = factory()
    in_request.execute(text("SELECT 1"))
    whole = (END - SPAN, END)
    week = (END - timedelta(days=7), END)
    name = ids["customer_name"]  # "Customer 01235 Ltd"

    def flt(field: FilterField, value: str, op: str = "equals") -> audit.Filter:
        return audit.make_filter(field, op, value)

    by_customer = " AND customer_id = %(v)s"
    # (label, range, filters, the bare query's extra condition, its value). The bare query
    # is the hand-written indexed SQL for the same rows: a company name's rows through the
    # customer index, as the issue's baseline.
    cases: list[tuple[str, tuple[datetime, datetime], list[audit.Filter], str, Any]] = [
        ("7-day range", week, [], "", None),
        (
            "CustomerId, 2 years",
            whole,
            [flt(FilterField.CUSTOMER_ID, str(ids["customer_id"]))],
            by_customer,
            ids["customer_id"],
        ),
        (
            "CompanyName =, 2 y",
            whole,
            [flt(FilterField.COMPANY_NAME, name)],
            by_customer,
            ids["customer_id"],
        ),
        (
            "CompanyName starts, 2 y",
            whole,
            [flt(FilterField.COMPANY_NAME, name[:14], "starts_with")],
            by_customer,
            ids["customer_id"],
        ),
        (
            "CompanyName substr, 2 y",
            whole,
            [flt(FilterField.COMPANY_NAME, name[9:].lower(), "substring")],
            by_customer,
            ids["customer_id"],
        ),
        (
            "UserId, 2 years",
            whole,
            [flt(FilterField.USER_ID, str(ids["user_id"]))],
            " AND user_id = %(v)s",
            ids["user_id"],
        ),
        (
            "UserPrincipalName, 2 y",
            whole,
            [flt(FilterField.USER_PRINCIPAL_NAME, ids["email"])],
            " AND user_principal_name = %(v)s",
            ids["email"],
        ),
        (
            "ResourceType, 2 years",
            whole,
            [flt(FilterField.RESOURCE_TYPE, "credit")],
            " AND resource_type = %(v)s",
            "credit",
        ),
        (
            "OperationType, 2 years",
            whole,
            [flt(FilterField.OPERATION_TYPE, "cancel_order")],
            " AND operation_type = %(v)s",
            "cancel_order",
        ),
        (
            "CustomerId, 7 days",
            week,
            [flt(FilterField.CUSTOMER_ID, str(ids["customer_id"]))],
            by_customer,
            ids["customer_id"],
        ),
    ]
    prepared = []
    for label, (start, end), filters, extra_sql, value in cases:
        query = ActivityQuery(start, end, audit.normalise_filters(filters))
        bare_sql = (
            f"SELECT {COLUMNS} FROM audit_records WHERE tenant_id = %(t)s "
            f"AND occurred_at >= %(s)s AND occurred_at < %(e)s{extra_sql} "
            f"ORDER BY occurred_at DESC, id DESC LIMIT {PAGE + 1}"
        )
        params = {"t": partner_id, "s": start, "e": end, "v": value}
        http_params = {
            "startDate": start.isoformat(),
            "endDate": (end - timedelta(microseconds=1)).isoformat(),
            "size": str(PAGE),
        }
        if filters:
            http_params["filter"] = json.dumps(
                [
                    {"Field": f.field.value, "Value": f.value, "Operator": f.operator}
                    for f in filters
                ]
            )
        rows = len(raw.execute(bare_sql, params).fetchall())
        status, page = client.get("/v1/auditrecords", params=http_params, headers=headers)
        assert status == 200, page
        assert len(page["items"]) == min(rows, PAGE), (label, rows)
        prepared.append((label, query, bare_sql, params, http_params, rows))

    def fns(item: Any) -> list[Callable[[], object]]:
        _label, query, bare_sql, params, http_params, _rows = item

        def bare_query() -> None:
            raw.execute(bare_sql, params).fetchall()

        def service() -> None:
            audit.read_page(in_request, visibility=visibility, query=query, size=PAGE)

        def api() -> None:
            status, body = client.get("/v1/auditrecords", params=http_params, headers=headers)
            assert status == 200, body

        def trivial() -> None:
            status, body = client.get("/v1/users/me", headers=headers)
            assert status == 200, body

        return [bare_query, service, api, trivial]

    for item in prepared:  # warm caches and statement caches
        for fn in fns(item):
            for _ in range(3):
                fn()
    load_before = load_average()
    # results[label] = list over rounds of (bare, service, api) medians
    results: dict[str, list[list[float]]] = {item[0]: [] for item in prepared}
    for _ in range(args.runs):
        for item in prepared:
            results[item[0]].append(timed_together(fns(item), args.repeat))

    print()
    print(
        f"{args.records:,} records of one partner over 2 years (monthly partitions), "
        f"{args.users} users, {args.customers:,} customers; audit_records {ids['size']}; "
        f"first page of {PAGE}; {args.runs} interleaved rounds x {args.repeat} calls, "
        "min/median/max over the rounds' medians"
    )
    header = (
        f"{'filter':<25}{'rows':>6}{'bare ms':>21}{'API ms':>21}{'API/bare':>21}"
        f"{'service/bare':>21}{'(API-me)/bare':>21}   index (bare query; service)"
    )
    print(header)
    print("-" * len(header))
    for label, query, bare_sql, params, _http, rows in prepared:
        rounds = results[label]
        bare = [r[0] * 1000 for r in rounds]
        api_ms = [r[2] * 1000 for r in rounds]
        api_ratio = [r[2] / r[0] for r in rounds]
        svc_ratio = [r[1] / r[0] for r in rounds]
        # The API's cost above a trivial authenticated GET (/v1/users/me) in the same round.
        own_ratio = [(r[2] - r[3]) / r[0] for r in rounds]
        used = plan_indexes(raw, bare_sql, params)
        # The plan of the page statement the service itself sends (a CompanyName filter's
        # customers are looked up first, then read by id): the last one it executes.
        sent = service_statement(
            engine,
            lambda query=query: audit.read_page(
                in_request, visibility=visibility, query=query, size=PAGE
            ),
        )
        svc_used = plan_indexes(raw, *sent)
        print(
            f"{label:<25}{min(rows, PAGE):>6}{spread(bare):>21}{spread(api_ms):>21}"
            f"{spread(api_ratio):>21}{spread(svc_ratio):>21}{spread(own_ratio):>21}   {used}"
            + ("" if svc_used == used else f"; {svc_used}")
        )

    # Provider view: every tenant, newest first (the time index); the service only.
    pv = Visibility(ScopeKind.PROVIDER, uuid.uuid4())
    q = ActivityQuery(END - timedelta(days=7), END)
    provider_sql = (
        f"SELECT {COLUMNS} FROM audit_records WHERE occurred_at >= %(s)s AND occurred_at < %(e)s "
        f"ORDER BY occurred_at DESC, id DESC LIMIT {PAGE + 1}"
    )
    pparams = {"s": q.start, "e": q.end}
    prov: list[list[float]] = []
    for _ in range(args.runs):
        prov.append(
            timed_together(
                [
                    lambda: raw.execute(provider_sql, pparams).fetchall(),
                    lambda: audit.read_page(in_request, visibility=pv, query=q, size=PAGE),
                ],
                args.repeat,
            )
        )
    print(
        f"{'provider, 7 days':<25}{PAGE:>6}{spread([r[0] * 1000 for r in prov]):>21}"
        f"{'-':>21}{'-':>21}{spread([r[1] / r[0] for r in prov]):>21}{'-':>21}   "
        f"{plan_indexes(raw, provider_sql, pparams)}"
    )
    me = [r[3] * 1000 for rounds in results.values() for r in rounds]
    print(
        f"a trivial authenticated GET /v1/users/me in the same rounds: {spread(me)} ms "
        "(the fixed cost of any API request)"
    )
    print(f"load average before / after the page cases: {load_before} / {load_average()}")

    # CSV export vs COPY of the same rows (about a million, or half the data when smaller).
    want = args.export_records or min(1_000_000, args.records // 2)
    days = SPAN.total_seconds() / 86400 * want / args.records
    eq = ActivityQuery(END - timedelta(days=days), END)
    copy_sql = (
        f"COPY (SELECT {COLUMNS} FROM audit_records WHERE tenant_id = %(t)s "
        "AND occurred_at >= %(s)s AND occurred_at < %(e)s "
        "ORDER BY occurred_at DESC, id DESC) TO STDOUT WITH (FORMAT csv, HEADER)"
    )
    copy_params = {"t": partner_id, "s": eq.start, "e": eq.end}

    def bare_copy() -> tuple[int, int]:
        size = 0
        with raw.cursor() as cur, cur.copy(copy_sql, copy_params) as copy:
            for data in copy:
                size += len(data)
        return 0, size

    def export() -> tuple[int, int]:
        size = lines = 0
        with factory() as s:
            for chunk in csv_stream(s, visibility=visibility, query=eq, batch=audit.EXPORT_BATCH):
                piece = chunk if isinstance(chunk, bytes) else chunk.encode()
                size += len(piece)
                lines += piece.count(b"\n")
        return lines - 1, size

    bare_copy()
    export()  # warm
    load_before = load_average()
    copy_s: list[float] = []
    export_s: list[float] = []
    copy_cpu: list[float] = []
    export_cpu: list[float] = []
    counts = set()
    for _ in range(args.export_runs):
        for fn, wall, cpu in ((bare_copy, copy_s, copy_cpu), (export, export_s, export_cpu)):
            c0, t0 = time.process_time(), time.perf_counter()
            n, _size = fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            counts.add(n)
    # Peak Python memory of one whole export (traced; not timed).
    tracemalloc.start()
    export()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    speed = [c / e for c, e in zip(copy_s, export_s, strict=True)]
    print()
    print(
        f"CSV export of {max(counts):,} records ({args.export_runs} interleaved runs, "
        "min/median/max):"
    )
    print(
        f"  COPY ... TO STDOUT (csv), the baseline: {spread(copy_s)} s wall, "
        f"{spread(copy_cpu)} s client CPU"
    )
    print(
        f"  export (csv_stream, as the API streams it): {spread(export_s)} s wall, "
        f"{spread(export_cpu)} s client CPU"
    )
    print(
        f"  export speed / COPY speed: {spread(speed)}; peak traced Python memory of one "
        f"export {peak / 1e6:.1f} MB"
    )
    print(f"  load average before / after: {load_before} / {load_average()}")
    client.conn.close()
    in_request.rollback()
    in_request.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
