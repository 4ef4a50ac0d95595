"""Activity log at scale: first pages through the service and the API vs the bare SQL query.

    .venv/bin/python bench/activity_log.py                     # quick: 200,000 records
    .venv/bin/python bench/activity_log.py --records 10000000  # the issue's scale (minutes)
    ... --records 10000000 --keep        # keep the loaded database (its name is printed)
    ... --database pc_bench_audit_XXXX   # measure a kept database again; drop it yourself

Creates a throwaway PostgreSQL database, upgrades it to head, bulk-generates the records of
one partner spread over two years (500 users, 5,000 customers) with one INSERT ... SELECT
generate_series, then times each case three ways in the same run: the bare indexed SQL
(hand-written, through psycopg), the real service query (`audit.services.read_page`) and the
HTTP API (`GET /v1/auditrecords` through TestClient, bearer token and all). It prints medians,
p95 and each as a ratio of the bare query, the index each plan uses (EXPLAIN ANALYZE), and
a CSV export's rate and peak Python memory. The database is dropped at the end.

Bulk rows carry well-formed placeholder hashes (the benchmark measures reads; `audit verify`
would report them). Foreign-key triggers are skipped during the load
(`session_replication_role = replica`): the generated ids come from the tenants and users
tables, so they hold.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.dialects import postgresql

from partnercenter import migrate
from partnercenter.app import create_app
from partnercenter.audit import services as audit
from partnercenter.audit.api import csv_stream
from partnercenter.audit.services import ActivityQuery, FilterField, ScopeKind, Visibility
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import TenantKind

ADMIN_URL = os.environ.get(
    "PARTNERCENTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
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


def _db_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


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
    raw = psycopg.connect(_psycopg_url(url), autocommit=True)
    # Build the indexes once after the load (much faster than maintaining them row by row).
    defs = [
        r[0]
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
    raw.execute("ALTER TABLE audit_records ADD CONSTRAINT pk_audit_records PRIMARY KEY (id)")
    for d in defs:
        raw.execute(d)
    raw.execute("VACUUM ANALYZE audit_records")
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
    size = raw.execute("SELECT pg_size_pretty(pg_total_relation_size('audit_records'))").fetchone()
    (records,) = raw.execute("SELECT max(seq) FROM audit_records").fetchone()  # type: ignore[misc]
    raw.close()
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        reader = s.execute(select(User).where(User.email == "reader@bench.example")).scalar_one()
        secret, _ = identity.issue_token(s, user=reader, now=END, lifetime=timedelta(days=1))
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


def timed_together(fns: list[Callable[[], object]], repeat: int) -> list[list[float]]:
    """Time each function ``repeat`` times, interleaved, so load from elsewhere hits all alike."""
    for fn in fns:
        for _ in range(3):
            fn()  # warm caches and statement caches
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, times in zip(fns, out, strict=True):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return out


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def plan_indexes(raw: psycopg.Connection[Any], sql: str, params: Any) -> tuple[str, float]:
    rows = raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
    plan = "\n".join(r[0] for r in rows)
    used = sorted({w for line in plan.splitlines() for w in line.split() if w.startswith("ix_")})
    ms = next(
        (float(line.split()[-2]) for line in plan.splitlines() if "Execution Time" in line), 0.0
    )
    if os.environ.get("BENCH_SHOW_PLANS"):
        print(plan)
    if "Seq Scan" in plan:
        used.append("SEQ SCAN")
    return ",".join(used) or "(no index)", ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument(
        "--export-records",
        type=int,
        default=0,
        help="records the CSV export case reads (default: min(1M, records/2))",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--database", help="measure an already loaded database (kept) instead of loading one"
    )
    args = parser.parse_args()
    if args.database:
        return run(_db_url(args.database), args, loaded=True)

    name = f"pc_bench_audit_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    log(f"database {name}")
    try:
        return run(_db_url(name), args)
    finally:
        if not args.keep:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            log(f"dropped {name}")
        admin.dispose()


def run(url: str, args: argparse.Namespace, loaded: bool = False) -> int:
    if not loaded:
        load(url, records=args.records, users=args.users, customers=args.customers)
    ids = ids_of(url)
    args.records = ids["records"]
    partner_id = ids["partner_id"]
    visibility = Visibility(ScopeKind.PARTNER, partner_id)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    raw = psycopg.connect(_psycopg_url(url), autocommit=True)
    settings = Settings(
        database_url=url, data_dir=tempfile.mkdtemp(), secret_key="b" * 48, log_json=True
    )
    app = create_app(settings, session_factory=factory, clock=FrozenClock(END))
    import logging

    logging.getLogger("partnercenter.http").setLevel(logging.WARNING)
    client = TestClient(app)
    client.__enter__()  # one event loop thread for every request, as a server has
    headers = {"Authorization": f"Bearer {ids['token']}"}
    # The service query runs where a request runs it: in the request's open transaction
    # (begun by authentication), so it costs one round trip, like the bare query.
    in_request = factory()
    in_request.execute(text("SELECT 1"))
    whole = (END - SPAN, END)
    week = (END - timedelta(days=7), END)

    def flt(field: FilterField, value: str, op: str = "equals") -> audit.Filter:
        return audit.make_filter(field, op, value)

    cases: list[tuple[str, tuple[datetime, datetime], list[audit.Filter], str]] = [
        ("7-day range", week, [], ""),
        (
            "customer, 2 years",
            whole,
            [flt(FilterField.CUSTOMER_ID, str(ids["customer_id"]))],
            " AND customer_id = %(v)s",
        ),
        (
            "user id, 2 years",
            whole,
            [flt(FilterField.USER_ID, str(ids["user_id"]))],
            " AND user_id = %(v)s",
        ),
        (
            "user email, 2 years",
            whole,
            [flt(FilterField.USER_PRINCIPAL_NAME, ids["email"])],
            " AND user_principal_name = %(v)s",
        ),
        (
            "customer, 7 days",
            week,
            [flt(FilterField.CUSTOMER_ID, str(ids["customer_id"]))],
            " AND customer_id = %(v)s",
        ),
    ]
    values = {
        "customer, 2 years": ids["customer_id"],
        "customer, 7 days": ids["customer_id"],
        "user id, 2 years": ids["user_id"],
        "user email, 2 years": ids["email"],
    }
    print()
    print(
        f"{args.records:,} records of one partner over 2 years, {args.users} users, "
        f"{args.customers:,} customers; audit_records {ids['size']}; first page of {PAGE}; "
        f"{args.repeat} runs each"
    )
    header = (
        f"{'case':<22}{'rows':>5}{'bare ms':>9}{'p95':>8}{'service':>9}{'p95':>8}{'ratio':>7}"
        f"{'p95 r':>7}{'API ms':>8}{'p95':>8}{'ratio':>7}   index (EXPLAIN ANALYZE)"
    )
    print(header)
    print("-" * len(header))
    for label, (start, end), filters, extra_sql in cases:
        query = ActivityQuery(start, end, audit.normalise_filters(filters))
        bare_sql = (
            f"SELECT {COLUMNS} FROM audit_records WHERE tenant_id = %(t)s "
            f"AND occurred_at >= %(s)s AND occurred_at < %(e)s{extra_sql} "
            f"ORDER BY occurred_at DESC, id DESC LIMIT {PAGE + 1}"
        )
        params = {"t": partner_id, "s": start, "e": end, "v": values.get(label)}
        rows = len(raw.execute(bare_sql, params).fetchall())

        def bare_query() -> None:
            raw.execute(bare_sql, params).fetchall()  # noqa: B023

        def service() -> None:
            audit.read_page(in_request, visibility=visibility, query=query, size=PAGE)  # noqa: B023

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

        def api() -> None:
            r = client.get("/v1/auditrecords", params=http_params, headers=headers)  # noqa: B023
            assert r.status_code == 200, r.text

        bare, svc, api_t = timed_together([bare_query, service, api], args.repeat)
        used, _ = plan_indexes(raw, bare_sql, params)
        compiled = audit.select_page(visibility, query, limit=PAGE + 1).compile(
            dialect=postgresql.dialect()  # type: ignore[no-untyped-call]
        )
        svc_used, _ = plan_indexes(raw, str(compiled), compiled.params)
        mb, ms_, ma = (statistics.median(x) * 1000 for x in (bare, svc, api_t))
        print(
            f"{label:<22}{rows - (rows > PAGE):>5}{mb:>9.2f}{p95(bare) * 1000:>8.2f}{ms_:>9.2f}"
            f"{p95(svc) * 1000:>8.2f}{ms_ / mb:>7.1f}{p95(svc) / p95(bare):>7.1f}{ma:>8.2f}"
            f"{p95(api_t) * 1000:>8.2f}{ma / mb:>7.1f}   {used}"
            + ("" if svc_used == used else f" (service: {svc_used})")
        )

    # Provider view: every tenant, newest first (ix_audit_records_time).
    pv = Visibility(ScopeKind.PROVIDER, uuid.uuid4())
    q = ActivityQuery(END - timedelta(days=7), END)
    bare_sql = (
        f"SELECT {COLUMNS} FROM audit_records WHERE occurred_at >= %(s)s AND occurred_at < %(e)s "
        f"ORDER BY occurred_at DESC, id DESC LIMIT {PAGE + 1}"
    )
    params = {"s": q.start, "e": q.end}

    def provider_bare() -> None:
        raw.execute(bare_sql, params).fetchall()

    def provider() -> None:
        audit.read_page(in_request, visibility=pv, query=q, size=PAGE)

    bare, svc = timed_together([provider_bare, provider], args.repeat)
    used, _ = plan_indexes(raw, bare_sql, params)
    mb, ms_ = statistics.median(bare) * 1000, statistics.median(svc) * 1000
    print(
        f"{'provider, 7 days':<22}{PAGE:>5}{mb:>9.2f}{p95(bare) * 1000:>8.2f}{ms_:>9.2f}"
        f"{p95(svc) * 1000:>8.2f}{ms_ / mb:>7.1f}{p95(svc) / p95(bare):>7.1f}{'-':>8}{'-':>8}"
        f"{'-':>7}   {used}"
    )

    # CSV export: a range holding about a million records (or half the data when smaller).
    want = args.export_records or min(1_000_000, args.records // 2)
    days = SPAN.total_seconds() / 86400 * want / args.records
    eq = ActivityQuery(END - timedelta(days=days), END)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    count = 0
    size = 0
    with factory() as s:
        for chunk in csv_stream(s, visibility=visibility, query=eq, batch=audit.EXPORT_BATCH):
            count += chunk.count("\n")
            size += len(chunk)
    took = time.perf_counter() - t
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    # Peak traced Python memory over a slice of the same export (tracing slows it down).
    tracemalloc.start()
    with factory() as s:
        for n, _chunk in enumerate(
            csv_stream(s, visibility=visibility, query=eq, batch=audit.EXPORT_BATCH)
        ):
            if n >= 400:  # 200,000 records
                break
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print()
    print(
        f"CSV export: {count - 1:,} records ({size / 1e6:.0f} MB of CSV) in {took:.1f} s "
        f"({(count - 1) / took:,.0f} records/s); peak RSS grew {grew / 1024:.1f} MB; "
        f"peak traced Python memory over 200,000 records {peak / 1e6:.1f} MB"
    )
    client.__exit__(None, None, None)
    in_request.rollback()
    in_request.close()
    raw.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
