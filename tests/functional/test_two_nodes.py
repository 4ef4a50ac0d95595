"""A simulated quarter on a real deployment: two app nodes and one worker (each its own
process) on one PostgreSQL database and one S3 store (moto server), a real SMTP server
(aiosmtpd) and a webhook receiver that is not ours (it checks signatures with its own code,
written from docs/dev/webhooks.md).

The sandbox clock walks through three months. Each month partners buy, get keys, cancel and
file support requests, spread over both nodes at once; the worker closes each month by itself
on the configured day and hour (not an hour before). In the second month one node, chosen at
random, is killed (SIGKILL) at a random moment of the buying; clients retry on the other node
with the same MS-RequestId, as a load balancer would. Sign-in throttling, web sessions and
MS-RequestId work whichever node a request reaches. Afterwards `partnercenter billing verify`
and `partnercenter audit verify` must pass, and every record is counted by hand: orders,
keys, cancellations, invoices against charges, each mail once, each webhook once and signed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.audit.models import AuditRecord
from partnercenter.billing import services as billing
from partnercenter.billing.models import BillingPeriod, Invoice, PeriodState
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.jobs import tasks
from partnercenter.jobs.models import ScheduledRun
from partnercenter.orders.models import Charge, Order
from partnercenter.permissions import Role
from partnercenter.support.models import MailOutbox
from partnercenter.webhooks.models import WebhookDelivery
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE
from tests.factories import PASSWORD
from tests.jobs.live import file_request, wait_for
from tests.licensing.conftest import s3_endpoint  # noqa: F401 - fixture
from tests.live import KEK, committed_postgres
from tests.orders import catalog_data
from tests.seed import AGENT, partner_world
from tests.support.conftest import Mailbox, free_port

pytestmark = pytest.mark.postgres_only
SECRET = "two-nodes-secret-" + "s" * 40
MONTHS = 3
PURCHASES_PER_MONTH = 4
PURCHASES = MONTHS * PURCHASES_PER_MONTH
LOCKED = "locked@fabrikam.example"  # the account the sign-in throttle test hammers
MAX_FAILURES = 5
CLOSE_DAY, CLOSE_HOUR = 1, 2
EVENTS = [
    "order-created",
    "order-cancelled",
    "product-key-revealed",
    "invoice-ready",
    "support-request-created",
]


# --- a webhook receiver that is not ours ---------------------------------------------------


class SignedReceiver:
    """An HTTP server that accepts a webhook only with a valid signature, as documented:
    ``X-PartnerCenter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``,
    compared in constant time, ``t`` at most five minutes from its own clock."""

    def __init__(self) -> None:
        self.secret = b""
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # (delivery id, body)
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = receiver.verify(self.headers.get("X-PartnerCenter-Signature", ""), body)
                with receiver._lock:
                    if ok:
                        delivery = self.headers.get("X-PartnerCenter-Delivery", "")
                        receiver.accepted.append((delivery, json.loads(body)))
                    else:
                        receiver.refused += 1
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def verify(self, header: str, body: bytes) -> bool:
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        if not self.secret or not parts.get("t", "").isdigit() or "v1" not in parts:
            return False
        if abs(time.time() - int(parts["t"])) > 300:
            return False
        expected = hmac.new(self.secret, parts["t"].encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(expected.hexdigest(), parts["v1"])


@pytest.fixture
def hooks() -> Iterator[SignedReceiver]:
    receiver = SignedReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


# --- the deployment ------------------------------------------------------------------------


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "partnercenter.cli.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a node and its server workers die together
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Deployment:
    """Two nodes, a worker, their database, mailbox and logs; requests that fail over."""

    def __init__(self, url: str, env: dict[str, str], folder: Path, box: Mailbox) -> None:
        self.url = url
        self.env = env
        self.folder = folder
        self.mailbox = box
        self.bases: list[str] = []
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.alive = [True, True]
        self.engine = make_engine(url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.folder.glob("*.log"))
        )

    def kill(self, node: int) -> None:
        """SIGKILL a node and its server workers: no shutdown, no goodbye."""
        self.alive[node] = False
        os.killpg(self.nodes[node].pid, signal.SIGKILL)
        self.nodes[node].wait(timeout=10)

    def call(self, node: int, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send to ``node``; if it is dead or dies mid-request, to the other one."""
        order = [node % 2, (node + 1) % 2]
        last: Exception | None = None
        for n in order:
            if not self.alive[n]:
                continue
            try:
                return httpx.request(method, f"{self.bases[n]}{path}", timeout=60, **kw)
            except httpx.TransportError as exc:  # the node died under us
                last = exc
        raise AssertionError(f"no node answered {method} {path}: {last}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "partnercenter.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def count(self, model: Any, *where: Any) -> int:
        with self.sessions() as s:
            return int(
                s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
            )


@pytest.fixture
def deployment(tmp_path: Path, s3_endpoint: str) -> Iterator[Deployment]:  # noqa: F811
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    box = Mailbox()
    smtp_port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    bucket = f"pc-nodes-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with committed_postgres() as url:
            settings = Settings(
                data_dir=tmp_path, database_url=url, secret_key=SECRET, key_encryption_key=KEK
            )
            with make_session_factory(engine := make_engine(url))() as session:
                partner_world(
                    session,
                    settings=settings,
                    now=datetime.now(UTC),
                    keys=PURCHASES + 1,  # the last purchase leaves one key: a low-stock warning
                    domain="contoso-nodes.onmicrosoft.com",
                    provider_people=[("admin@provider.example", Role.PROVIDER_ADMIN)],
                    partner_people=[(AGENT, Role.ADMIN_AGENT), (LOCKED, Role.ADMIN_AGENT)],
                )
            engine.dispose()
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "PARTNERCENTER_DATA_DIR": str(tmp_path),
                "PARTNERCENTER_SECRET_KEY": SECRET,
                "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
                "PARTNERCENTER_SANDBOX": "true",
                "PARTNERCENTER_JOBS": "worker",
                "PARTNERCENTER_JOBS_SCHEDULE_SECONDS": "2",
                "PARTNERCENTER_STORAGE_URL": f"s3://{bucket}/files",
                "PARTNERCENTER_S3_ENDPOINT_URL": s3_endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
                "PARTNERCENTER_SMTP_HOST": "127.0.0.1",
                "PARTNERCENTER_SMTP_PORT": str(smtp_port),
                "PARTNERCENTER_MONTH_CLOSE_DAY": str(CLOSE_DAY),
                "PARTNERCENTER_MONTH_CLOSE_HOUR": str(CLOSE_HOUR),
                "PARTNERCENTER_SIGN_IN_MAX_FAILURES_PER_ACCOUNT": str(MAX_FAILURES),
            }
            d = Deployment(url, env, tmp_path, box)
            ports = [free_port(), free_port()]
            processes = [
                _spawn(["serve", "--port", str(p), "--workers", "1"], env, tmp_path / f"{p}.log")
                for p in ports
            ]
            processes.append(_spawn(["worker"], env, tmp_path / "worker.log"))
            d.nodes = processes[:2]
            d.bases = [f"http://127.0.0.1:{p}" for p in ports]
            try:
                for base in d.bases:
                    assert wait_for(lambda b=base: _ready(b), seconds=240), d.logs()
                yield d
            finally:
                for p in processes:
                    _stop(p)
                d.engine.dispose()
    finally:
        for p in processes:
            _stop(p)
        controller.stop()


# --- the quarter ---------------------------------------------------------------------------


def _token(d: Deployment, node: int, email: str) -> dict[str, str]:
    r = d.call(
        node,
        "POST",
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _months_from(now: datetime) -> list[str]:
    first = billing.month_of(now)
    return [billing.shift_month(first, i) for i in range(MONTHS + 1)]


def _close_moment(month: str, hour: int, minute: int = 0) -> str:
    """The ISO moment of the close day of the month after ``month`` at ``hour``:``minute``."""
    return f"{billing.shift_month(month, 1)}-{CLOSE_DAY:02d}T{hour:02d}:{minute:02d}:00Z"


def _scheduled_runs_done(d: Deployment) -> int:
    """How many scheduled-work jobs the worker has finished (procrastinate's own table)."""
    with d.sessions() as s:
        return int(
            s.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs "
                    "WHERE task_name = 'partnercenter.scheduled' AND status = 'succeeded'"
                )
            ).scalar_one()
        )


def _closed(d: Deployment, month: str) -> bool:
    with d.sessions() as s:
        period = billing.get_period(s, month)
        return period is not None and period.state == PeriodState.CLOSED


def _closed_months(d: Deployment) -> set[str]:
    with d.sessions() as s:
        periods = s.execute(select(BillingPeriod)).scalars()
        return {p.month for p in periods if p.state == PeriodState.CLOSED}


def _sign_in_throttle_spans_both_nodes(d: Deployment) -> None:
    """Failures alternate between the nodes; the limit holds at the configured count."""
    answers = []
    for attempt in range(MAX_FAILURES + 2):
        r = d.call(
            attempt % 2,
            "POST",
            "/v1/auth/token",
            data={"grant_type": "password", "username": LOCKED, "password": "wrong-password"},
        )
        answers.append(r.status_code)
    assert 429 not in answers[:MAX_FAILURES], answers
    assert answers[MAX_FAILURES:] == [429, 429], answers  # on node 1, then node 0
    right = d.call(
        1,
        "POST",
        "/v1/auth/token",
        data={"grant_type": "password", "username": LOCKED, "password": PASSWORD},
    )
    assert right.status_code == 429  # locked on every node, even with the right password


def _web_session_spans_both_nodes(d: Deployment) -> None:
    """Signed in on one node, the browser's session works on the other; signed out there,
    it is gone on the first."""
    csrf = re.compile(r'name="csrf_token" value="([^"]+)"')
    with httpx.Client(timeout=60, follow_redirects=False) as browser:
        page = browser.get(f"{d.bases[0]}/signin")
        token = csrf.search(page.text)
        assert token, page.text[:500]
        signed_in = browser.post(
            f"{d.bases[0]}/signin",
            data={"email": AGENT, "password": PASSWORD, "csrf_token": token.group(1), "next": ""},
        )
        assert signed_in.status_code == 303, signed_in.text[:500]
        home = browser.get(f"{d.bases[1]}/partner")
        assert home.status_code == 200, home.status_code
        token = csrf.search(home.text)
        assert token
        out = browser.post(f"{d.bases[1]}/signout", data={"csrf_token": token.group(1)})
        assert out.status_code in (302, 303)
        again = browser.get(f"{d.bases[0]}/partner")
        assert again.status_code in (302, 303) and "/signin" in again.headers["location"]


def test_a_quarter_on_two_nodes_and_a_worker_loses_and_doubles_nothing(
    deployment: Deployment, hooks: SignedReceiver
) -> None:
    d = deployment
    seed = int(os.environ.get("PARTNERCENTER_QUARTER_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    victim, kill_at = rng.randrange(2), rng.randrange(PURCHASES_PER_MONTH)
    print(f"seed {seed}: node {victim} is killed at the start of purchase {kill_at} of month 2")

    months = _months_from(datetime.now(UTC))
    # The worker's first tick closes the months before this one; wait for it so that every
    # invoice-ready event below belongs to a month of the quarter.
    already_due = tasks.month_due(datetime.now(UTC), day=CLOSE_DAY, hour=CLOSE_HOUR)
    assert wait_for(lambda: _closed(d, already_due), seconds=60), d.logs()

    _sign_in_throttle_spans_both_nodes(d)
    _web_session_spans_both_nodes(d)

    closed_before = _closed_months(d)
    agent = _token(d, 0, AGENT)  # a token from one node, used on both
    admin = _token(d, 1, "admin@provider.example")
    registered = d.call(
        1,
        "POST",
        "/v1/webhooks/registration",
        json={"WebhookUrl": hooks.url, "WebhookEvents": EVENTS},
        headers=agent,
    )
    assert registered.status_code == 201, registered.text
    hooks.secret = registered.json()["SigningSecret"].encode()
    customer = d.call(0, "GET", "/v1/customers", headers=agent).json()["items"][0]["id"]

    orders: list[str] = []
    keys: list[str] = []
    cancelled: list[str] = []
    requests_filed = 0

    def buy(month: int, i: int) -> tuple[str, str]:
        """Cart, checkout (repeated on the other node: the same order) and Get Keys."""
        if month == 1 and i == kill_at:
            d.kill(victim)
        node = i % 2
        cart = d.call(
            node,
            "POST",
            f"/v1/customers/{customer}/carts",
            json={"lineItems": [{"catalogItemId": catalog_data.WINDOWS, "quantity": 1}]},
            headers=agent,
        )
        assert cart.status_code == 201, cart.text
        request_id = {"MS-RequestId": f"checkout-{month}-{i}-{uuid.uuid4().hex[:8]}"}
        path = f"/v1/customers/{customer}/carts/{cart.json()['id']}/checkout"
        first = d.call(node, "POST", path, headers={**agent, **request_id})
        assert first.status_code == 201, first.text
        again = d.call(node + 1, "POST", path, headers={**agent, **request_id})
        assert again.status_code == 201 and again.json() == first.json()
        order = first.json()["orders"][0]
        item = next(
            s
            for s in d.call(
                node, "GET", f"/v1/customers/{customer}/software", headers=agent
            ).json()["items"]
            if s["orderId"] == order["id"]
        )
        key = d.call(
            node + 1,
            "POST",
            f"/v1/customers/{customer}/software/{item['id']}/key",
            json={"version": item["versions"][0]["version"]},
            headers=agent,
        )
        assert key.status_code == 200, key.text
        return str(order["id"]), str(key.json()["productKey"])

    for month_index, month in enumerate(months[:MONTHS]):
        with ThreadPoolExecutor(PURCHASES_PER_MONTH) as pool:
            bought = list(pool.map(lambda i, m=month_index: buy(m, i), range(PURCHASES_PER_MONTH)))
        orders += [o for o, _ in bought]
        keys += [k for _, k in bought]
        to_cancel = bought[0][0]
        r = d.call(
            month_index,
            "PATCH",
            f"/v1/customers/{customer}/orders/{to_cancel}",
            json={"status": "cancelled"},
            headers=agent,
        )
        assert r.status_code == 200, r.text
        cancelled.append(to_cancel)
        # Filing has no MS-RequestId: send it to a node known to be alive.
        node = month_index % 2 if d.alive[month_index % 2] else d.alive.index(True)
        with httpx.Client(base_url=d.bases[node], timeout=60) as c:
            file_request(c, agent, f"Quarter, month {month_index + 1}")
        requests_filed += 1

        if month_index == 0:
            # An hour before the configured close: two scheduled runs later, still open.
            before = _scheduled_runs_done(d)
            moved = d.call(
                0,
                "POST",
                "/v1/sandbox/clock",
                json={"now": _close_moment(month, CLOSE_HOUR - 1, 30)},
                headers=admin,
            )
            assert moved.status_code == 200, moved.text
            assert wait_for(lambda b=before: _scheduled_runs_done(d) >= b + 2, seconds=60)
            assert not _closed(d, month)
        moved = d.call(
            month_index + 1,
            "POST",
            "/v1/sandbox/clock",
            json={"now": _close_moment(month, CLOSE_HOUR)},
            headers=admin,
        )
        assert moved.status_code == 200, moved.text
        assert wait_for(lambda m=month: _closed(d, m), seconds=60), d.logs()
    assert not all(d.alive)  # one node died on the way

    # Everything the jobs owe is done: mail sent, webhooks delivered.
    def drained() -> bool:
        pending_mail = d.count(MailOutbox, MailOutbox.sent_at.is_(None))
        pending_hooks = d.count(WebhookDelivery, WebhookDelivery.delivered_at.is_(None))
        return pending_mail == 0 and pending_hooks == 0

    assert wait_for(drained, seconds=60), d.logs()

    # The product's own checks, as an operator runs them.
    for command in (["billing", "verify"], ["audit", "verify"]):
        result = d.cli(*command)
        assert result.returncode == 0, result.stdout + result.stderr

    # And by hand.
    assert len(set(orders)) == PURCHASES and len(set(keys)) == PURCHASES
    assert d.count(Order) == PURCHASES
    assert d.count(Order, Order.status == "cancelled") == len(cancelled) == MONTHS
    with d.sessions() as s:
        for month in months[:MONTHS]:
            assert _closed(d, month)
            invoiced = s.execute(
                select(func.count(), func.sum(Invoice.gross_minor)).where(
                    Invoice.billing_month == month
                )
            ).one()
            charged = s.execute(
                select(func.sum(Charge.gross_minor)).where(Charge.billing_month == month)
            ).scalar_one()
            assert tuple(invoiced) == (1, charged), (month, invoiced, charged)
            run = s.get(ScheduledRun, (tasks.MONTH_CLOSE, month))
            assert run is not None and run.error is None and run.outcome is not None
            assert run.outcome.startswith("closed")  # by the schedule, not by hand
        keys_shown = s.execute(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.operation_type == "get_software_key")
        ).scalar_one()

    # Each mail once: the support notices, and one low-stock warning per crossing: version
    # 2019 has no keys from the start, 2022 falls to its threshold with the last purchase.
    outbox = d.count(MailOutbox)
    received = d.mailbox.messages
    message_ids = [m["Message-ID"] for m in received]
    assert len(received) == outbox and len(set(message_ids)) == outbox
    assert len(d.mailbox.to("ana@fabrikam.example")) == requests_filed
    low_stock = Counter(
        version
        for m in d.mailbox.to("admin@provider.example")
        for version in ("2019", "2022")
        if str(m["Subject"]).startswith("Low stock") and f" {version} " in str(m["Subject"])
    )
    assert low_stock == Counter({"2019": 1, "2022": 1}), low_stock
    assert len(received) == requests_filed + 2  # nothing else, nothing twice

    # Each webhook once, signed, and as many as the changes that raise them.
    assert hooks.refused == 0
    deliveries = [delivery for delivery, _ in hooks.accepted]
    assert len(deliveries) == len(set(deliveries)) == d.count(WebhookDelivery)
    events = Counter(body["EventName"] for _, body in hooks.accepted)
    assert events == Counter(
        {
            "order-created": PURCHASES,
            "order-cancelled": MONTHS,
            "product-key-revealed": keys_shown,
            # Each month closed after the registration: the quarter's three (and, when the
            # test starts on a close day before the close hour, the month before it).
            "invoice-ready": len(_closed_months(d) - closed_before),
            "support-request-created": requests_filed,
        }
    ), events
