"""The job runners for real: the in-process runner (the embedded default) and procrastinate
workers on PostgreSQL, sending support mail to a real SMTP server (aiosmtpd) within seconds."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import text

from partnercenter.app import create_app
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE, START
from tests.jobs.live import file_request, seed, token, wait_for
from tests.live import committed_database
from tests.support.conftest import Mailbox, free_port
from tests.webhooks.test_webhooks import Receiver, receiver  # noqa: F401 - fixture

KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def _settings(url: str, data_dir: Path, smtp_port: int, jobs: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key="jobs-secret-" + "s" * 40,
        key_encryption_key=KEK,
        log_json=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        jobs=jobs,  # type: ignore[arg-type]
        jobs_poll_seconds=0.5,
        month_close_auto=False,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_in_process_runner_sends_support_mail_and_webhooks_within_seconds(
    backend: str,
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    if backend == "postgresql" and not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    box, port = smtp
    with committed_database(backend, tmp_path) as url:
        engine = make_engine(url)
        seed(engine)
        settings = _settings(url, tmp_path, port, "in-process")
        app = create_app(
            settings, session_factory=make_session_factory(engine), clock=FrozenClock(START)
        )
        with TestClient(app) as client:
            headers = token(client)
            hook = {"WebhookUrl": receiver.url, "WebhookEvents": ["support-request-created"]}
            assert client.post("/v1/webhooks/registration", json=hook, headers=headers).is_success
            file_request(client, headers, "Mail by the runner")
            # No request-bound delivery: the runner thread sends both.
            assert wait_for(lambda: len(box.to("ana@fabrikam.example")) == 1, seconds=60)
            assert wait_for(lambda: len(receiver.received) == 1, seconds=60)
        assert receiver.bodies()[0]["EventName"] == "support-request-created"
        assert [_subject(m) for m in box.messages] == [_received("Mail by the runner")]
        engine.dispose()


def _worker(url: str, data_dir: Path, smtp_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PARTNERCENTER_DATA_DIR": str(data_dir),
        "PARTNERCENTER_SECRET_KEY": "jobs-secret-" + "s" * 40,
        "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
        "PARTNERCENTER_SMTP_HOST": "127.0.0.1",
        "PARTNERCENTER_SMTP_PORT": str(smtp_port),
        "PARTNERCENTER_MONTH_CLOSE_AUTO": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "partnercenter.cli.main", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.mark.postgres_only
def test_queued_mail_survives_without_a_worker_and_two_workers_send_each_mail_once(
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    box, port = smtp
    with committed_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        seed(engine)
        settings = _settings(url, tmp_path, port, "worker")
        app = create_app(
            settings, session_factory=make_session_factory(engine), clock=FrozenClock(START)
        )
        workers: list[subprocess.Popen[bytes]] = []
        try:
            with TestClient(app) as client:
                headers = token(client)
                hook = {"WebhookUrl": receiver.url, "WebhookEvents": ["support-request-created"]}
                assert client.post(
                    "/v1/webhooks/registration", json=hook, headers=headers
                ).is_success
                # No worker runs: the job waits in procrastinate's table, the mail in the outbox.
                file_request(client, headers, "Before any worker")
                with engine.connect() as conn:
                    queued = conn.execute(
                        text(
                            "SELECT count(*) FROM procrastinate_jobs "
                            "WHERE task_name = 'partnercenter.send_mail' AND status = 'todo'"
                        )
                    ).scalar_one()
                assert queued == 1
                assert box.messages == []

                workers = [_worker(url, tmp_path, port) for _ in range(2)]
                assert wait_for(lambda: len(box.messages) == 1, seconds=120)

                titles = [f"Request {i}" for i in range(12)]
                for title in titles[:6]:
                    file_request(client, headers, title)
                assert wait_for(lambda: len(box.messages) == 7, seconds=120)
                # One worker dies; the other takes the rest.
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait(timeout=10)
                for title in titles[6:]:
                    file_request(client, headers, title)
                file_request(client, headers, "After a worker died")
                assert wait_for(lambda: len(box.messages) == 14, seconds=120)
                assert wait_for(lambda: len(receiver.received) == 14, seconds=120)
        finally:
            for w in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.wait(timeout=15)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.pid, signal.SIGKILL)
            engine.dispose()
        subjects = sorted(_subject(m) for m in box.messages)
        expected = sorted(
            _received(t) for t in ["Before any worker", *titles, "After a worker died"]
        )
        assert subjects == expected  # each mail exactly once
        assert len({m["Message-ID"] for m in box.messages}) == 14
        # Every webhook event once as well, from whichever worker took it.
        delivery_ids = {h["x-partnercenter-delivery"] for h, _ in receiver.received}
        assert len(delivery_ids) == 14


def _subject(message: Any) -> str:
    """The Subject header unfolded (RFC 5322: a line break before white space is removed)."""
    return str(message["Subject"]).replace("\r\n", "").replace("\n", "")


def _received(title: str) -> str:
    """The support mail's subject, in the filer's language (English: no Accept-Language)."""
    return f"Support request received: {title}"
