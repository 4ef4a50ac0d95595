"""Checkout beside django-oscar's: both served on this machine, measured the same way, in turn.

    .venv/bin/python -m bench.oscar_checkout [--orders 60] [--clients 8] [--runs 3]
    .venv/bin/python -m bench.oscar_checkout --oscar-threads 1    # gunicorn sync workers

The first run makes a virtualenv with django-oscar and its server from PyPI (``OSCAR_PACKAGES``
below, pinned) under ``var/bench/oscar-venv`` (``$PARTNERCENTER_BENCH_CACHE/oscar-venv`` when
that is set; ``var/`` is not committed) and reuses it while the pins are unchanged. It is
installed with ``uv`` (on ``PATH`` or ``.venv/uv/bin/uv``), else ``python -m venv`` and pip.

Two throwaway PostgreSQL databases (``scratch_database()`` of ``bench.checkout``), one each:

1. **ours**: the demo catalog and one partner seeded as ``bench.checkout`` does,
   ``partnercenter serve`` as it starts by default (granian, one worker per core). Per round,
   ``--orders`` 2-line carts are made over the API (untimed), then ``--clients`` threads check
   them out with ``POST .../checkout`` (timed): ``bench.checkout.http_rate`` as is.
2. **django-oscar**: a Django project written at run time in a temporary folder, configured as
   oscar's "Building your own shop" and sandbox settings say (oscar's ``INSTALLED_APPS``,
   ``BasketMiddleware``, the EmailBackend for sign-in, Haystack's simple backend,
   ``ATOMIC_REQUESTS``), with what its deployment notes ask for in production: ``DEBUG`` off,
   the cached template loader (Django's default without ``DEBUG``), persistent database
   connections (``CONN_MAX_AGE``), no debug toolbar, no blocking mail (Django's dummy
   backend: the confirmation is rendered and stored, not sent). Migrated, then seeded with
   two products that need no shipping, priced in USD: a "software licence" whose class tracks
   stock (one stock record of 1,000,000) and a "cloud reservation" whose class does not;
   one user per order of a round, each with a signed-in session. The checkout app is forked
   the documented way (``how_to_integrate_payment``) so that ``handle_payment`` records what
   a real shop records: a payment source debited with the total, its debit transaction and a
   "Settled" payment event over the lines. Served by gunicorn with one worker process per
   core, ``gthread`` workers of ``--oscar-threads`` threads (default 4, so that 8 clients'
   requests can all be in flight on 2 cores, as they can in our server's thread pool;
   keep-alive), or ``sync`` workers with ``--oscar-threads 1`` (gunicorn's default: one
   request at a time per process, no keep-alive; under load it did worse for oscar).

   Oscar's checkout is a web flow, so it is driven over HTTP as a browser does it, each
   client with its session cookie and the CSRF token read from the form it posts. Per round,
   untimed, for each order (one user each): open the software's page, add it (quantity 1)
   and the reservation (quantity 2) to the basket, walk ``/checkout/`` (shipping is skipped:
   nothing needs shipping) to the payment page, open the preview. Then timed, the same
   ``--clients`` threads: "Place order" (``POST /checkout/preview/``, ``action=place_order``),
   each answered by the 302 to the thank-you page, which is not fetched. The place-order POST
   is what corresponds to our checkout POST: a prepared basket (our cart) becomes an order
   in one transaction.

What the two timed requests do, for honesty about what is compared:

- Both: authenticate the caller (our bearer token; oscar's session row and user), lock or
  freeze the cart/basket, price 2 lines, write an order with 2 lines, take stock for the
  first line, record what is charged (ours: a charge row per line; oscar's: a payment
  source, its transaction, a payment event and its line quantities), mark the cart/basket
  done, commit once.
- Only ours: the stock taken is a distinct product key reserved from inventory (``FOR UPDATE
  SKIP LOCKED``) with an entitlement made for it; an activity record appended to the
  partner's hash chain (its head locked and moved, so our orders serialise per partner); an
  idempotency row for ``MS-RequestId``; the order's JSON in the 201 response.
- Only oscar's: the basket re-validated and its offers and vouchers evaluated, the stock
  taken is a counter on the stock record, analytics counters (each product's purchases, the
  user's orders; the product rows are shared by every order, as our chain head is), the
  order-placed confirmation rendered from templates and stored as an ``Email`` row for the
  user, the checkout session flushed and the session row saved.

Both stacks write to the same PostgreSQL; its own CPU is counted for neither. CPU per order is
the server's process group (user + system) over the timed phase, divided by the orders. Before
the rounds, each stack takes one untimed round of ``2 * --clients`` orders (templates
compiled, connections open in every worker). The two are measured in turn in every round
(which goes first alternates), ``--runs`` rounds; the ratios ours / oscar are taken within a
round and printed as min / median / max, with the load average before and after each round.
Each oscar round checks afterwards that oscar's database holds the orders, lines and payment
sources it should, and stops otherwise. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from bench import checkout as ours_bench
from bench.checkout import run_clients
from bench.common import (
    KEK,
    SECRET,
    free_port,
    group_cpu_seconds,
    load_average,
    scratch_database,
    seed,
    spread,
)
from bench.common import stop_group as stop
from partnercenter import migrate
from partnercenter.config import Settings
from partnercenter.db import make_engine
from partnercenter.serving import default_workers

REPO = Path(__file__).resolve().parent.parent
OSCAR_PACKAGES = (
    "django-oscar[sorl-thumbnail]==4.2.1",
    "Django==5.2.19",
    "sorl-thumbnail==12.11.0",
    "gunicorn==27.0.1",
    "psycopg[binary]==3.3.9",
)
OSCAR_STOCK = 1_000_000
OSCAR_PASSWORD = "bench-password-123"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def oscar_venv() -> Path:
    """The cached virtualenv with ``OSCAR_PACKAGES``, made (again) when missing or changed."""
    cache = Path(os.environ.get("PARTNERCENTER_BENCH_CACHE", REPO / "var" / "bench"))
    venv = cache / "oscar-venv"
    stamp = venv / "bench-packages.txt"
    wanted = "\n".join(OSCAR_PACKAGES) + "\n"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    print(f"making {venv} with {', '.join(OSCAR_PACKAGES)} ...", file=sys.stderr)
    local_uv = REPO / ".venv" / "uv" / "bin" / "uv"
    uv = shutil.which("uv") or (str(local_uv) if local_uv.exists() else None)
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(python), *OSCAR_PACKAGES],
            check=True,
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *OSCAR_PACKAGES], check=True
        )
    stamp.write_text(wanted)
    return venv


SETTINGS = """\
from oscar.defaults import *  # noqa: F403  (oscar's documented first line)

SECRET_KEY = {secret!r}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchshop.urls"
WSGI_APPLICATION = "benchshop.wsgi.application"
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": {name!r},
        "USER": {user!r},
        "PASSWORD": {password!r},
        "HOST": {host!r},
        "PORT": {port!r},
        "ATOMIC_REQUESTS": True,
        "CONN_MAX_AGE": 600,
    }}
}}
CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
SITE_ID = 1
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = {media!r}
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
LOGGING = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{
        "django.request": {{"handlers": ["console"], "level": "ERROR"}},
        "oscar": {{"handlers": ["console"], "level": "WARNING"}},
    }},
}}
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "benchshop.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks",
    "haystack",
    "treebeard",
    "sorl.thumbnail",
    "django_tables2",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.common.CommonMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
]
TEMPLATES = [
    {{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {{
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.media",
                "django.template.context_processors.static",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        }},
    }}
]
AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)
HAYSTACK_CONNECTIONS = {{
    "default": {{"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
}}
OSCAR_DEFAULT_CURRENCY = "USD"
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_INITIAL_LINE_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {{
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Complete", "Cancelled"),
    "Cancelled": (),
    "Complete": (),
}}
"""

URLS = """\
from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
"""

WSGI = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchshop.settings")
application = get_wsgi_application()
"""

CHECKOUT_APPS = """\
import oscar.apps.checkout.apps as apps


class CheckoutConfig(apps.CheckoutConfig):
    name = "benchshop.checkout"
"""

# oscar's how_to_integrate_payment: a one-phase payment, settled at once.
CHECKOUT_VIEWS = """\
from oscar.apps.checkout import views
from oscar.apps.payment.models import Source, SourceType, Transaction


class PaymentDetailsView(views.PaymentDetailsView):
    def handle_payment(self, order_number, total, **kwargs):
        source_type, _ = SourceType.objects.get_or_create(name="Bench account")
        source = Source(
            source_type=source_type,
            currency=total.currency,
            amount_debited=total.incl_tax,
            reference=order_number,
        )
        source.create_deferred_transaction(Transaction.DEBIT, total.incl_tax, order_number)
        self.add_payment_source(source)
        self.add_payment_event("Settled", total.incl_tax, reference=order_number)
"""

SEED = """\
import json
import sys
from decimal import Decimal

import django

django.setup()

from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model,
)
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from oscar.core.loading import get_model  # noqa: E402

ProductClass = get_model("catalogue", "ProductClass")
Product = get_model("catalogue", "Product")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")
users, stock, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

partner = Partner.objects.create(name="Bench Distributor")
software_class = ProductClass.objects.create(
    name="Software licence", requires_shipping=False, track_stock=True
)
cloud_class = ProductClass.objects.create(
    name="Cloud reservation", requires_shipping=False, track_stock=False
)
software = Product.objects.create(
    product_class=software_class, title="Windows Server 2022 Standard", upc="DG7GMGF0D7FV-0001"
)
cloud = Product.objects.create(
    product_class=cloud_class, title="Azure reservation", upc="DZH318Z0BQ3Q-00VQ"
)
StockRecord.objects.create(
    product=software, partner=partner, partner_sku="DG7GMGF0D7FV-0001",
    price_currency="USD", price=Decimal("1069.00"), num_in_stock=stock,
)
StockRecord.objects.create(
    product=cloud, partner=partner, partner_sku="DZH318Z0BQ3Q-00VQ",
    price_currency="USD", price=Decimal("603.00"),
)
# The products' analytics rows, as a shop whose products have been seen has them: oscar
# creates one on a product's first view, and first views at the same time collide on it.
ProductRecord = get_model("analytics", "ProductRecord")
ProductRecord.objects.bulk_create([ProductRecord(product=software), ProductRecord(product=cloud)])
User = get_user_model()
hashed = make_password(password)  # hashed once, shared: sign-in is not what is measured
people = User.objects.bulk_create(
    [User(username=f"buyer{i}", email=f"buyer{i}@bench.example", password=hashed)
     for i in range(users)]
)
sessions = []
for person in people:
    # What django.contrib.auth.login stores, without a sign-in request per user.
    store = SessionStore()
    store[SESSION_KEY] = str(person.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = person.get_session_auth_hash()
    store.create()
    sessions.append(store.session_key)
print(json.dumps({
    "product_page": software.get_absolute_url(),
    "lines": [[software.pk, 1], [cloud.pk, 2]],
    "sessions": sessions,
}))
"""


def write_project(root: Path, url: str) -> Path:
    """The Django project (settings, URLs, WSGI, the forked checkout app, the seed script)."""
    db = make_url(url)
    package = root / "benchshop"
    (package / "checkout").mkdir(parents=True)
    (root / "media").mkdir()
    files = {
        package / "__init__.py": "",
        package / "settings.py": SETTINGS.format(
            secret="bench-oscar-" + "y" * 40,
            name=db.database,
            user=db.username or "",
            password=db.password or "",
            host=db.host or "",
            port=str(db.port or ""),
            media=str(root / "media"),
        ),
        package / "urls.py": URLS,
        package / "wsgi.py": WSGI,
        package / "checkout" / "__init__.py": "",
        package / "checkout" / "apps.py": CHECKOUT_APPS,
        package / "checkout" / "views.py": CHECKOUT_VIEWS,
        root / "seed_bench.py": SEED,
    }
    for path, body in files.items():
        path.write_text(body)
    return root


def oscar_env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchshop.settings",
        "PYTHONPATH": str(project),
    }


def prepare_oscar(venv: Path, project: Path, users: int) -> dict[str, Any]:
    """Migrate oscar's database and seed it; returns the product page, lines and sessions."""
    python = str(venv / "bin" / "python")
    env = oscar_env(project)
    subprocess.run(
        [python, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=project, env=env, check=True,
    )  # fmt: skip
    out = subprocess.run(
        [python, "seed_bench.py", str(users), str(OSCAR_STOCK), OSCAR_PASSWORD],
        cwd=project, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@contextlib.contextmanager
def gunicorn(venv: Path, project: Path, workers: int, threads: int) -> Iterator[tuple[str, int]]:
    """Oscar under gunicorn on a free port until the block ends: (base URL, process group)."""
    port = free_port()
    worker_class = ["--worker-class", "sync"] if threads <= 1 else [
        "--worker-class", "gthread", "--threads", str(threads)
    ]  # fmt: skip
    log_path = project / f"gunicorn-{port}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "benchshop.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *worker_class,
         "--no-control-socket"],
        cwd=project, env=oscar_env(project), stdout=subprocess.DEVNULL, stderr=log,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/basket/", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("oscar did not start")
            time.sleep(0.3)
        yield base, proc.pid
    except BaseException:
        log.flush()
        sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        stop(proc)
        log.close()


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on the page."""
    found = CSRF_FIELD.search(html)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def fill_basket(client: httpx.Client, seeded: dict[str, Any]) -> str:
    """A browser's way to the preview page with the 2 lines; returns the place-order token."""
    page = client.get(seeded["product_page"])
    page.raise_for_status()
    token = csrf_token(page.text)
    for product, quantity in seeded["lines"]:
        added = client.post(
            f"/basket/add/{product}/",
            data={"csrfmiddlewaretoken": token, "quantity": quantity},
        )
        if added.status_code != 302:
            raise RuntimeError(f"basket add: {added.status_code}")
    walk = client.get("/checkout/", follow_redirects=True)
    if walk.status_code != 200 or not walk.url.path.startswith("/checkout/payment-details/"):
        raise RuntimeError(f"checkout walk ended at {walk.url} ({walk.status_code})")
    preview = client.get("/checkout/preview/")
    if preview.status_code != 200 or "place_order_form" not in preview.text:
        raise RuntimeError(f"preview: {preview.status_code}")
    return csrf_token(preview.text[preview.text.index("place_order_form") :])


def oscar_rate(
    base: str, pgid: int, seeded: dict[str, Any], clients: int, db_url: str, placed: int
) -> tuple[float, float]:
    """Orders/s and server CPU ms per order of the timed place-order POSTs of one round."""
    sessions: list[httpx.Client] = [
        httpx.Client(base_url=base, timeout=60, cookies={"sessionid": key})
        for key in seeded["sessions"]
    ]
    try:
        prepared: list[tuple[httpx.Client, str]] = []

        def prepare(share: list[httpx.Client]) -> None:
            for client in share:
                prepared.append((client, fill_basket(client, seeded)))

        run_clients(clients, sessions, prepare)

        def place(share: list[tuple[httpx.Client, str]]) -> None:
            for client, token in share:
                r = client.post(
                    "/checkout/preview/",
                    data={"csrfmiddlewaretoken": token, "action": "place_order"},
                )
                if r.status_code != 302 or not r.headers["location"].endswith("/thank-you/"):
                    raise RuntimeError(f"place order: {r.status_code} {r.text[-2000:]}")

        orders = len(prepared)
        before = group_cpu_seconds(pgid)
        rate = orders / run_clients(clients, prepared, place)
        cpu_ms = (group_cpu_seconds(pgid) - before) * 1000 / orders
    finally:
        for client in sessions:
            client.close()
    check_oscar_orders(db_url, placed + orders)
    return rate, cpu_ms


def check_oscar_orders(url: str, expected: int) -> None:
    """Stop unless oscar's database holds ``expected`` orders of 2 lines, 3 items, paid."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            orders, lines, items, sources = conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM order_order), (SELECT count(*) FROM order_line),"
                    " (SELECT coalesce(sum(quantity), 0) FROM order_line),"
                    " (SELECT count(*) FROM payment_source)"
                )
            ).one()
    finally:
        engine.dispose()
    if (orders, lines, items, sources) != (expected, 2 * expected, 3 * expected, expected):
        raise RuntimeError(
            f"oscar's database: {orders} orders, {lines} lines, {items} items, {sources} "
            f"payment sources; {expected} orders were placed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--oscar-threads", type=int, default=4,
        help="gunicorn threads per worker: 1 runs sync workers, more runs gthread",
    )  # fmt: skip
    args = parser.parse_args()
    venv = oscar_venv()
    workers = default_workers()
    oscar_server = (
        f"gunicorn sync, {workers} workers"
        if args.oscar_threads <= 1
        else f"gunicorn gthread, {workers} workers x {args.oscar_threads} threads"
    )
    ours_name = f"ours: partnercenter serve (granian, {workers} workers), POST checkout"
    oscar_name = f"django-oscar 4.2.1: {oscar_server}, POST place order"
    rates: dict[str, list[float]] = {ours_name: [], oscar_name: []}
    cpu: dict[str, list[float]] = {ours_name: [], oscar_name: []}
    loads: list[str] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database() as ours_url,
        scratch_database() as oscar_url,
    ):
        engine = make_engine(ours_url, pool_size=4)
        migrate.upgrade(engine)
        settings = Settings(
            data_dir=Path(tmp), database_url=ours_url, secret_key=SECRET, key_encryption_key=KEK
        )
        ids = seed(engine, settings, keys=(args.runs + 1) * args.orders + 10)
        engine.dispose()
        project = write_project(Path(tmp) / "oscar", oscar_url)
        seeded = prepare_oscar(venv, project, users=args.orders)
        with (
            ours_bench.serve(ours_url, Path(tmp), []) as ours_base,
            gunicorn(venv, project, workers, args.oscar_threads) as (oscar_base, pgid),
        ):
            # One untimed round of a few orders each first: templates compiled, connections
            # open, in every worker.
            warm = min(args.orders, 2 * args.clients)
            ours_bench.http_rate(ours_base, ids, warm, args.clients)
            oscar_rate(
                oscar_base, pgid, {**seeded, "sessions": seeded["sessions"][:warm]},
                args.clients, oscar_url, 0,
            )  # fmt: skip
            placed = warm
            loads = [load_average()]
            for round_no in range(args.runs):
                # Which stack goes first alternates, so neither always runs on a warmer machine.
                for name in [ours_name, oscar_name][:: 1 if round_no % 2 == 0 else -1]:
                    if name == ours_name:
                        rate = ours_bench.http_rate(ours_base, ids, args.orders, args.clients)
                        cpu_ms = ours_bench.CPU_MS_PER_ORDER[-1]
                    else:
                        rate, cpu_ms = oscar_rate(
                            oscar_base, pgid, seeded, args.clients, oscar_url, placed
                        )
                        placed += args.orders
                    rates[name].append(rate)
                    cpu[name].append(cpu_ms)
                loads.append(load_average())
    print(
        f"\n{args.orders} orders per stack per round, 2 lines (3 items), {args.clients} "
        f"clients, {args.runs} interleaved rounds; load average (1/5/15 min) before and after "
        f"each round: {'; '.join(loads)}\n"
    )
    print("| stack, timed request | orders/s min / median / max | server CPU ms per order "
          "min / median / max |")  # fmt: skip
    print("|---|---|---|")
    for name in (ours_name, oscar_name):
        print(f"| {name} | {spread(rates[name])} | {spread(cpu[name])} |")
    speed = [a / b for a, b in zip(rates[ours_name], rates[oscar_name], strict=True)]
    cost = [a / b for a, b in zip(cpu[ours_name], cpu[oscar_name], strict=True)]
    print(f"\nours / oscar, same round: orders/s {spread(speed)}; CPU per order {spread(cost)}")
    print("(orders/s above 1 and CPU below 1 favour ours. PostgreSQL's own CPU is in neither.)")


if __name__ == "__main__":
    main()
