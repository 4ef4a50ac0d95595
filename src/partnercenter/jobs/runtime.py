"""How an app process runs or hands off its jobs, by the ``jobs`` setting.

- ``in-process`` (the default of `partnercenter serve` on SQLite): a thread of the server runs
  the job functions: the mail outbox at once after each commit that wrote mail and every
  ``jobs_poll_seconds``, the scheduled work every ``jobs_schedule_seconds`` (60).
- ``worker``: `partnercenter worker` processes run them. On PostgreSQL a web node defers a
  procrastinate job after a commit that wrote mail; on SQLite the worker polls the outbox.
- ``off``: nothing runs by itself; mail written by a request is sent after its response
  (tests and one-off commands).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from partnercenter.clock import Clock
from partnercenter.config import Settings
from partnercenter.jobs import tasks
from partnercenter.jobs.tasks import JobEnv

log = logging.getLogger("partnercenter.jobs")


class Jobs(Protocol):
    """What a web process tells the job runner."""

    def mail_written(self) -> bool:
        """Mail was committed; True when a runner will send it (else the caller sends it)."""
        ...

    def webhooks_written(self) -> bool:
        """Webhook deliveries were committed; True when a runner will deliver them."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class NoJobs:
    """``jobs=off``: nothing runs by itself."""

    def mail_written(self) -> bool:
        return False

    def webhooks_written(self) -> bool:
        return False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class WorkerPolls(NoJobs):
    """``jobs=worker`` on SQLite: the worker process polls the outbox every few seconds."""

    def mail_written(self) -> bool:
        return True

    def webhooks_written(self) -> bool:
        return True


class InProcessRunner:
    """A thread that runs the job functions: the outbox when kicked or polled, the schedule
    every ``jobs_schedule_seconds``. The same loop is `partnercenter worker` on SQLite, in the
    foreground.
    """

    def __init__(self, env: JobEnv, *, poll_seconds: float, schedule_seconds: float) -> None:
        self.env = env
        self.poll_seconds = poll_seconds
        self.schedule_seconds = schedule_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        env.on_mail_written = self.mail_written

    def mail_written(self) -> bool:
        self._wake.set()
        return True

    def webhooks_written(self) -> bool:
        self._wake.set()
        return True

    def run_forever(self) -> None:
        """Loop until :meth:`stop`; each failure is logged and the loop goes on."""
        next_schedule = time.monotonic()
        while not self._stopping.is_set():
            if time.monotonic() >= next_schedule:
                tasks.run_scheduled(self.env)
                next_schedule = time.monotonic() + self.schedule_seconds
            for job in (tasks.send_mail, tasks.deliver_webhooks):
                try:
                    job(self.env)
                except Exception:
                    log.exception("background job failed", extra={"job": job.__name__})
            timeout = min(self.poll_seconds, max(next_schedule - time.monotonic(), 0.0))
            self._wake.wait(timeout)
            self._wake.clear()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run_forever, name="partnercenter-jobs", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


class QueuedJobs:
    """``jobs=worker`` on PostgreSQL: defer procrastinate jobs for the workers."""

    def __init__(self, database_url: str) -> None:
        from partnercenter.jobs.queue import QueueKicker

        self._kicker = QueueKicker(database_url)

    def mail_written(self) -> bool:
        return self._kicker.mail_written()

    def webhooks_written(self) -> bool:
        return self._kicker.webhooks_written()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._kicker.close()


def for_app(settings: Settings, session_factory: sessionmaker[Session], clock: Clock) -> Jobs:
    """The job runner or hand-off of a web process, chosen by ``settings.jobs``."""
    if settings.jobs == "in-process":
        env = JobEnv(settings=settings, session_factory=session_factory, clock=clock)
        return InProcessRunner(
            env,
            poll_seconds=settings.jobs_poll_seconds,
            schedule_seconds=settings.jobs_schedule_seconds,
        )
    if settings.jobs == "worker":
        if settings.resolved_database_url.startswith("postgresql"):
            return QueuedJobs(settings.resolved_database_url)
        return WorkerPolls()
    return NoJobs()


def run_worker(settings: Settings, session_factory: sessionmaker[Session], clock: Clock) -> None:
    """`partnercenter worker`: procrastinate on PostgreSQL, the polling loop on SQLite."""
    env = JobEnv(settings=settings, session_factory=session_factory, clock=clock)
    if settings.resolved_database_url.startswith("postgresql"):
        from partnercenter.jobs import queue

        queue.run_worker(env)
        return
    runner = InProcessRunner(
        env,
        poll_seconds=settings.jobs_poll_seconds,
        schedule_seconds=settings.jobs_schedule_seconds,
    )
    with contextlib.suppress(KeyboardInterrupt):
        runner.run_forever()
