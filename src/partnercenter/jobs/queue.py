"""The job queue on PostgreSQL: procrastinate's tasks, its worker, and deferring from requests.

Jobs live in procrastinate's tables (``procrastinate_jobs``), so they survive restarts; each
worker takes a job with ``SELECT ... FOR UPDATE SKIP LOCKED``, so several workers on several
machines share them and none runs a job twice. The minute's scheduled work is a periodic
task: procrastinate defers it once per minute however many workers run the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from sqlalchemy.engine import make_url

from partnercenter.jobs import tasks
from partnercenter.jobs.tasks import JobEnv

log = logging.getLogger("partnercenter.jobs")

SEND_MAIL = "partnercenter.send_mail"
SCHEDULED = "partnercenter.scheduled"
DELIVER_WEBHOOKS = "partnercenter.deliver_webhooks"
RETRY_STALLED = "partnercenter.retry_stalled_jobs"

# A failing job (the database away, say) is retried with exponential back-off: 2, 4, 8 ... s.
RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)

_env: JobEnv | None = None


def conninfo(database_url: str) -> str:
    """libpq connection string of a SQLAlchemy ``postgresql+psycopg://`` URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _current_env() -> JobEnv:
    if _env is None:  # pragma: no cover - the worker sets it before taking jobs
        raise RuntimeError("the job environment is not set: start jobs with `worker`")
    return _env


def schedule_cron(seconds: int) -> str:
    """The cron line (with procrastinate's seconds field) of a run every ``seconds`` (<= 60)."""
    return "* * * * *" if seconds >= 60 else f"* * * * * */{seconds}"


def make_app(
    database_url: str, *, for_worker: bool, schedule_seconds: int = 60
) -> procrastinate.App:
    """A procrastinate app with our tasks; the worker's is asynchronous, a web node's sync.

    ``schedule_seconds`` is how often the scheduled work is deferred (the setting
    ``jobs_schedule_seconds``); procrastinate defers it once per tick across all workers.
    """
    connector: Any
    if for_worker:
        connector = procrastinate.PsycopgConnector(conninfo=conninfo(database_url))
    else:
        connector = procrastinate.SyncPsycopgConnector(
            conninfo=conninfo(database_url), min_size=0, max_size=2
        )
    app = procrastinate.App(connector=connector)

    @app.task(name=SEND_MAIL, queue="mail", queueing_lock=SEND_MAIL, retry=RETRY)
    def send_mail() -> None:
        tasks.send_mail(_current_env())

    # Webhook events come from any change's activity record: swept every five seconds.
    @app.periodic(cron="* * * * * */5", periodic_id="five-seconds")
    @app.task(name=DELIVER_WEBHOOKS, queue="webhooks", queueing_lock=DELIVER_WEBHOOKS, retry=RETRY)
    def deliver_webhooks(timestamp: int | None = None) -> None:
        tasks.deliver_webhooks(_current_env())

    @app.periodic(cron=schedule_cron(schedule_seconds), periodic_id="minute")
    @app.task(name=SCHEDULED, queue="scheduled", queueing_lock=SCHEDULED, retry=RETRY)
    def scheduled(timestamp: int) -> None:
        tasks.run_scheduled(_current_env())

    @app.periodic(cron="*/5 * * * *", periodic_id="stalled")
    @app.task(name=RETRY_STALLED, queue="scheduled", pass_context=True)
    async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
        # A job whose worker died (no heartbeat) goes back to the queue: its work is
        # idempotent, so running it again finishes what the dead worker started.
        manager = context.app.job_manager
        for job in await manager.get_stalled_jobs():
            log.warning("retrying a stalled job", extra={"job": job.id, "task": job.task_name})
            assert job.id is not None
            await manager.retry_job_by_id_async(job.id, retry_at=datetime.now(UTC))

    return app


def run_worker(env: JobEnv, *, concurrency: int = 2) -> None:
    """Run a procrastinate worker in the foreground until SIGINT/SIGTERM."""
    global _env
    _env = env
    app = make_app(
        env.settings.resolved_database_url,
        for_worker=True,
        schedule_seconds=env.settings.jobs_schedule_seconds,
    )

    async def main() -> None:
        async with app.open_async():
            await app.run_worker_async(concurrency=concurrency, install_signal_handlers=True)

    asyncio.run(main())


class QueueKicker:
    """Defers jobs from a web node (PostgreSQL): a send-mail job after mail was committed."""

    def __init__(self, database_url: str) -> None:
        self._app = make_app(database_url, for_worker=False)
        self._lock = threading.Lock()
        self._open = False

    def _opened(self) -> procrastinate.App:
        with self._lock:
            if not self._open:
                self._app.open()
                self._open = True
        return self._app

    def mail_written(self) -> bool:
        """Queue a send-mail job (one waiting is enough); False if the queue is unreachable."""
        return self._defer(SEND_MAIL)

    def webhooks_written(self) -> bool:
        """Queue a webhook delivery job; False if the queue is unreachable."""
        return self._defer(DELIVER_WEBHOOKS)

    def _defer(self, task: str) -> bool:
        try:
            self._opened().configure_task(task).defer()
        except procrastinate_errors.AlreadyEnqueued:
            pass  # the waiting job will do this work too
        except Exception:
            log.exception("could not queue a job", extra={"task": task})
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._app.close()
                self._open = False
