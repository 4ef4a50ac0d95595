"""Month close at scale: the real close beside the bare SQL aggregate-and-insert of the same rows.

    .venv/bin/python -m bench.billing_close                      # quick: 100,000 charges
    .venv/bin/python -m bench.billing_close --charges 1000000    # the issue's scale
    ... --runs 5                                                  # interleaved rounds (3)

Creates a throwaway PostgreSQL database, upgrades it to head and generates, with INSERT ...
SELECT generate_series, ``--partners`` partners with two customers each, orders of ten lines
and one charge per line in November 2026 (one order in five in EUR, the rest in USD), 2 % of
them cancellation credits reversing another charge. Then, in the same run:

* bare SQL: one transaction with one INSERT ... SELECT of every charge as an invoice line (same
  joins and columns) into a copy of ``invoice_lines`` and one INSERT ... SELECT ... GROUP BY of
  the invoice headers, numbered with row_number(), into a copy of ``invoices``;
* the real close: ``start_close`` and ``close_period`` as the CLI runs them (period lock,
  monthly charges, lines, gap-free numbers from the series row, audit record);

The loaded database is the template of one fresh copy per round (``CREATE DATABASE ...
TEMPLATE``), so every round closes the same month from the same rows; within a round the two
run one after the other on the copy, bare SQL first in odd rounds and the close first in even
ones (the second finds the charges in the cache). It prints each round's times and the load
average, then min / median / max of the bare time, the close time and their ratio; on the last
copy, a rerun of the close (already closed) and ``billing verify``. Foreign-key triggers are
skipped during the load only (``session_replication_role = replica``); the ids are generated
consistently. Every database is dropped at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/billing_close.py``: the project folder, not bench/, belongs on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import time
from datetime import UTC, datetime

from sqlalchemy import create_engine, text

from bench.common import load_average, scratch_database, spread
from partnercenter import migrate
from partnercenter.billing import services as billing
from partnercenter.db import make_engine, make_session_factory

MONTH = "2026-11"
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
LINES_PER_ORDER = 10


def _load(url: str, *, partners: int, charges: int) -> None:
    credits = charges // 50
    lines = charges - credits
    orders = (lines + LINES_PER_ORDER - 1) // LINES_PER_ORDER
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET session_replication_role = replica"))
        conn.execute(
            text(
                "INSERT INTO tenants (id, kind, name, country, created_at) VALUES "
                "('00000000-0000-0000-0000-000000000001', 'provider', 'Provider', 'US', now())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO tenants (id, kind, name, country, created_at) "
                "SELECT md5('p' || g)::uuid, 'partner', 'Partner ' || g, 'US', now() "
                "FROM generate_series(0, :n - 1) g"
            ),
            {"n": partners},
        )
        conn.execute(
            text(
                "INSERT INTO tenants (id, kind, name, parent_id, domain, country, created_at) "
                "SELECT md5('c' || g)::uuid, 'customer', 'Customer ' || g, "
                "md5('p' || (g % :n))::uuid, 'cust' || g || '.onmicrosoft.com', "
                "CASE WHEN g % 3 = 0 THEN 'DE' ELSE 'US' END, now() "
                "FROM generate_series(0, 2 * :n - 1) g"
            ),
            {"n": partners},
        )
        conn.execute(
            text(
                "INSERT INTO catalog_products (id, title, description, product_type, publisher, "
                "position, is_active, cancel_window_days, cancel_full_credit_days, "
                "cancel_credit_rule, cancel_fee_ppm, created_at, updated_at) VALUES "
                "('DG7GMGF0D3SJ', 'Windows Server 2022', '', 'perpetual_software', '', 0, true, "
                "30, 0, 'full', 0, now(), now())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO catalog_skus (id, product_id, sku_id, title, description, position, "
                "unit, min_quantity, max_quantity, key_source, low_stock_threshold, versions, "
                "is_active) VALUES ('00000000-0000-0000-0000-00000000000a', 'DG7GMGF0D3SJ', "
                "'0001', 'Standard', '', 0, '', 1, 10, 'none', 10, '[]', true)"
            )
        )
        # Order o belongs to customer o % (2 partners) and so to partner (o % 2n) % n.
        conn.execute(
            text(
                "INSERT INTO carts (id, partner_id, customer_id, status, line_items, created_at, "
                "updated_at, expires_at) SELECT md5('k' || o)::uuid, "
                "md5('p' || ((o % (2 * :n)) % :n))::uuid, md5('c' || (o % (2 * :n)))::uuid, "
                "'ordered', '[]', now(), now(), now() FROM generate_series(0, :orders - 1) o"
            ),
            {"n": partners, "orders": orders},
        )
        conn.execute(
            text(
                "INSERT INTO orders (id, partner_id, customer_id, cart_id, billing_cycle, status, "
                "currency, market, tax_included, net_minor, tax_minor, gross_minor, created_at) "
                "SELECT md5('o' || o)::uuid, md5('p' || ((o % (2 * :n)) % :n))::uuid, "
                "md5('c' || (o % (2 * :n)))::uuid, md5('k' || o)::uuid, 'one_time', 'completed', "
                "CASE WHEN o % 5 = 0 THEN 'EUR' ELSE 'USD' END, 'US', false, 0, 0, 0, "
                "timestamptz '2026-11-01' + (o % 29) * interval '1 day' "
                "FROM generate_series(0, :orders - 1) o"
            ),
            {"n": partners, "orders": orders},
        )
        conn.execute(
            text(
                "INSERT INTO order_lines (id, order_id, line_number, catalog_item_id, product_id, "
                "sku_id, availability_id, sku_pk, product_type, product_title, sku_title, "
                "quantity, term_duration, billing_cycle, currency, unit_net_minor, "
                "unit_tax_minor, unit_gross_minor, net_minor, tax_minor, gross_minor, status, "
                "purchased_at, cancellation_policy) "
                "SELECT md5('l' || g)::uuid, md5('o' || (g / :per))::uuid, g % :per, "
                "'DG7GMGF0D3SJ:0001:US01', 'DG7GMGF0D3SJ', '0001', 'US01', "
                "'00000000-0000-0000-0000-00000000000a', 'perpetual_software', "
                "'Windows Server 2022', 'Standard', 1 + g % 3, NULL, 'one_time', "
                "CASE WHEN (g / :per) % 5 = 0 THEN 'EUR' ELSE 'USD' END, "
                "1000 + g % 97, 100 + g % 9, 1100 + g % 97 + g % 9, "
                "(1 + g % 3) * (1000 + g % 97), (1 + g % 3) * (100 + g % 9), "
                "(1 + g % 3) * (1100 + g % 97 + g % 9), 'active', "
                "timestamptz '2026-11-01' + ((g / :per) % 29) * interval '1 day', '{}' "
                "FROM generate_series(0, :lines - 1) g"
            ),
            {"per": LINES_PER_ORDER, "lines": lines},
        )
        conn.execute(
            text(
                "INSERT INTO charges (id, partner_id, customer_id, order_id, order_line_id, "
                "charge_type, currency, net_minor, tax_minor, gross_minor, quantity, "
                "billing_month, created_at) "
                "SELECT md5('ch' || l.line_number || o.id)::uuid, o.partner_id, o.customer_id, "
                "o.id, l.id, 'new', o.currency, l.net_minor, l.tax_minor, l.gross_minor, "
                "l.quantity, :month, o.created_at "
                "FROM order_lines l JOIN orders o ON o.id = l.order_id"
            ),
            {"month": MONTH},
        )
        conn.execute(
            text(
                "INSERT INTO charges (id, partner_id, customer_id, order_id, order_line_id, "
                "charge_type, currency, net_minor, tax_minor, gross_minor, quantity, "
                "billing_month, created_at, reverses_charge_id, credit_reason_code) "
                "SELECT md5('cr' || c.id)::uuid, c.partner_id, c.customer_id, c.order_id, "
                "c.order_line_id, 'cancel', c.currency, -c.net_minor, -c.tax_minor, "
                "-c.gross_minor, c.quantity, :month, c.created_at + interval '1 day', c.id, "
                "'cancel_within_window' FROM charges c ORDER BY c.id LIMIT :credits"
            ),
            {"month": MONTH, "credits": credits},
        )
        conn.execute(
            text(
                "INSERT INTO billing_periods (month, state, created_at, invoice_count) "
                "VALUES (:month, 'open', now(), 0)"
            ),
            {"month": MONTH},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


BARE = """
INSERT INTO bare_invoice_lines
SELECT c.id, c.partner_id, CAST(:month AS varchar), c.currency, c.billing_month, c.charge_type,
       c.credit_reason_code, c.reverses_charge_id, c.customer_id, cu.name, cu.domain,
       cu.country, c.order_id, o.created_at, c.order_line_id, l.line_number, l.product_id,
       l.sku_id, l.availability_id, l.product_title, l.sku_title, l.term_duration,
       l.billing_cycle, c.quantity, l.unit_net_minor, c.net_minor, c.tax_minor, c.gross_minor,
       c.created_at
FROM charges c
JOIN order_lines l ON l.id = c.order_line_id
JOIN orders o ON o.id = c.order_id
JOIN tenants cu ON cu.id = c.customer_id
WHERE c.billing_month <= CAST(:month AS varchar)
"""

BARE_HEADERS = """
INSERT INTO bare_invoices (id, number, partner_id, billing_month, currency, document_type,
    net_minor, tax_minor, gross_minor, line_count, partner_name, partner_country, issued_at)
SELECT gen_random_uuid(),
       'G' || lpad((row_number() OVER (ORDER BY s.partner_id, s.currency))::text, 9, '0'),
       s.partner_id, CAST(:month AS varchar), s.currency,
       CASE WHEN s.gross < 0 THEN 'creditNote' ELSE 'invoice' END,
       s.net, s.tax, s.gross, s.n, p.name, p.country, now()
FROM (SELECT partner_id, currency, sum(net_minor) AS net, sum(tax_minor) AS tax,
             sum(gross_minor) AS gross, count(*) AS n
      FROM bare_invoice_lines GROUP BY partner_id, currency) s
JOIN tenants p ON p.id = s.partner_id
"""


def _bare(url: str) -> float:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bare_invoice_lines (LIKE invoice_lines INCLUDING ALL)"))
        conn.execute(text("CREATE TABLE bare_invoices (LIKE invoices INCLUDING ALL)"))
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(BARE), {"month": MONTH})
        conn.execute(text(BARE_HEADERS), {"month": MONTH})
    took = time.perf_counter() - started
    engine.dispose()
    return took


def _close(url: str) -> tuple[float, billing.CloseResult]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    with factory() as session:
        billing.start_close(session, month=MONTH, now=NOW)
        session.commit()
        result = billing.close_period(session, month=MONTH, now=NOW)
        session.commit()
    took = time.perf_counter() - started
    engine.dispose()
    return took, result


def _verify(url: str) -> tuple[float, billing.VerifyReport]:
    engine = make_engine(url)
    started = time.perf_counter()
    with make_session_factory(engine)() as session:
        report = billing.verify(session)
    took = time.perf_counter() - started
    engine.dispose()
    return took, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else "")
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    with scratch_database("pc_bench_billing") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        started = time.perf_counter()
        _load(url, partners=args.partners, charges=args.charges)
        print(
            f"loaded {args.charges:,} charges over {args.partners:,} partners "
            f"in {time.perf_counter() - started:.1f} s"
        )
        name = url.rsplit("/", 1)[1]
        admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        bares: list[float] = []
        closes: list[float] = []
        ok = True
        for round_no in range(1, args.runs + 1):
            copy = f"{name}_r{round_no}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"'))
            copy_url = f"{url.rsplit('/', 1)[0]}/{copy}"
            try:
                before = load_average()
                if round_no % 2:
                    bare = _bare(copy_url)
                    took, result = _close(copy_url)
                else:
                    took, result = _close(copy_url)
                    bare = _bare(copy_url)
                bares.append(bare)
                closes.append(took)
                print(
                    f"round {round_no}: bare SQL {bare:.2f} s, close {took:.2f} s "
                    f"({result.invoices_issued:,} invoices, {result.credit_notes} credit notes, "
                    f"{result.lines_billed:,} lines), ratio {took / bare:.2f}; "
                    f"load average {before} before, {load_average()} after"
                )
                ok = ok and result.lines_billed == args.charges
                if round_no == args.runs:
                    again, rerun = _close(copy_url)
                    print(
                        f"rerun (already closed): {again:.2f} s, "
                        f"already_closed={rerun.already_closed}"
                    )
                    checked, report = _verify(copy_url)
                    print(
                        f"billing verify: {checked:.2f} s, ok={report.ok}, "
                        f"{report.groups_checked:,} invoices checked"
                    )
                    ok = ok and report.ok
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        ratios = [c / b for c, b in zip(closes, bares, strict=True)]
        print(
            f"min / median / max over {args.runs} rounds: bare SQL {spread(bares)} s; "
            f"close {spread(closes)} s; close / bare {spread(ratios)}"
        )
        admin.dispose()
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
