"""Mail is never sent twice, even when its sender is killed (SIGKILL) mid-send.

A real sender process (`partnercenter support send-mail`) talks to a real SMTP server
(aiosmtpd) whose handler kills the sender at a chosen point of the SMTP conversation:

- after the server took the whole message (DATA) and before the sender heard the answer: the
  mail may have been delivered, so it is marked unconfirmed and not sent again by itself;
  the provider's retry sends it again with the same Message-ID;
- after RCPT TO, before DATA: nothing was handed over, so the next sender sends it, once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.support import mail
from partnercenter.support.models import MailOutbox
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE, START
from tests.live import committed_database
from tests.support.conftest import Mailbox, free_port

KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="
SECRET = "mail-once-secret-" + "s" * 40


class KillingMailbox(Mailbox):
    """An SMTP handler that kills the sender at one point of the conversation."""

    def __init__(self, kill_at: str) -> None:
        super().__init__()
        self.kill_at = kill_at  # "RCPT" or "DATA"
        self.sender_pid = 0
        self.sender_known = threading.Event()
        self.killed = threading.Event()

    def _kill(self) -> None:
        self.sender_known.wait(30)
        os.kill(self.sender_pid, signal.SIGKILL)
        self.killed.set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        envelope.rcpt_tos.append(address)
        if self.kill_at == "RCPT" and not self.killed.is_set():
            self._kill()
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if self.kill_at == "DATA" and not self.killed.is_set():
            self._kill()  # the message is in: the sender dies before it hears "250"
        return answer


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql" and not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_database(request.param, tmp_path) as url:
        yield url


def _settings(url: str, data_dir: Path, port: int) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key=SECRET,
        key_encryption_key=KEK,
        log_json=False,
        smtp_host="127.0.0.1",
        smtp_port=port,
    )


def _sender_killed_by(box: KillingMailbox, url: str, data_dir: Path, port: int) -> int:
    """Run `partnercenter support send-mail` until the SMTP handler kills it; its exit code."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PARTNERCENTER_DATA_DIR": str(data_dir),
        "PARTNERCENTER_SECRET_KEY": SECRET,
        "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
        "PARTNERCENTER_SMTP_HOST": "127.0.0.1",
        "PARTNERCENTER_SMTP_PORT": str(port),
    }
    sender = subprocess.Popen(
        [sys.executable, "-m", "partnercenter.cli.main", "support", "send-mail"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    box.sender_pid = sender.pid
    box.sender_known.set()
    output, _ = sender.communicate(timeout=120)
    assert box.killed.is_set(), output.decode()
    return sender.returncode


def _two_minutes_later(url: str) -> None:
    """Let the dead sender's claim run out, as two minutes of waiting would."""
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        session.execute(
            update(MailOutbox).values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    engine.dispose()


def _run(kill_at: str, url: str, data_dir: Path) -> tuple[KillingMailbox, Settings, Any]:
    box = KillingMailbox(kill_at)
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        row = mail.enqueue_to(
            session, recipient="ops@provider.example", subject="Once", body="Hi", now=START
        )
        session.commit()
        mail_id = row.id
    try:
        assert _sender_killed_by(box, url, data_dir, port) == -signal.SIGKILL
        _two_minutes_later(url)
        settings = _settings(url, data_dir, port)
        # Two senders come after the dead one.
        mail.deliver_pending(sessions, settings, now=START + timedelta(minutes=5))
        mail.deliver_pending(sessions, settings, now=START + timedelta(minutes=10))
        with sessions() as session:
            row = session.get(MailOutbox, mail_id)
            assert row is not None
            session.expunge(row)
        return box, settings, (controller, engine, sessions, row)
    except BaseException:
        controller.stop()
        engine.dispose()
        raise


def test_a_sender_killed_after_the_server_took_the_message_never_sends_it_again(
    database: str, tmp_path: Path
) -> None:
    box, settings, (controller, engine, sessions, row) = _run("DATA", database, tmp_path)
    try:
        assert len(box.to("ops@provider.example")) == 1  # delivered once, by the dead sender
        assert row.sent_at is None and row.handed_over_at is not None
        assert mail.status_of(row) == "unconfirmed"
        assert row.last_error is not None and row.last_error.startswith("unconfirmed")
        with sessions() as session:
            assert [r.id for r in mail.unsent(session)] == [row.id]  # the provider sees it

            # The provider decides to send it again: a second copy, the same Message-ID.
            assert mail.retry(session, mail_id=row.id) is not None
            session.commit()
        assert mail.deliver_pending(sessions, settings, now=START + timedelta(minutes=15)) == 1
        copies = box.to("ops@provider.example")
        assert len(copies) == 2 and copies[0]["Message-ID"] == copies[1]["Message-ID"]
        assert copies[0]["Message-ID"] == f"<{row.id}@partnercenter>"
    finally:
        controller.stop()
        engine.dispose()


def test_a_sender_killed_before_handing_the_message_over_is_replaced_and_sends_it_once(
    database: str, tmp_path: Path
) -> None:
    box, _settings_used, (controller, engine, _sessions, row) = _run("RCPT", database, tmp_path)
    try:
        assert row.sent_at is not None and row.failed_at is None
        assert len(box.to("ops@provider.example")) == 1
        assert box.to("ops@provider.example")[0]["Message-ID"] == f"<{row.id}@partnercenter>"
    finally:
        controller.stop()
        engine.dispose()
