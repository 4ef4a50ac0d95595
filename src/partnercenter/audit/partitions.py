"""Monthly partitions of the activity log on PostgreSQL (SQLite keeps one plain table).

``audit_records`` is partitioned by range on ``occurred_at``, one partition per calendar
month (UTC) named ``audit_records_y2026m11`` (migration 0021). Partitions are made ahead of
time by the scheduled job (:func:`ensure_ahead`: this month and the next
``settings.audit_partitions_ahead``, by business time and by real time), and on demand by
:func:`ensure_for` when a record arrives for a month that has none yet (a sandbox clock moved
far ahead, say). Both take one advisory lock, so several nodes never race to create the same
partition.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

# pg_advisory_xact_lock key of partition changes (creation and archiving): "auditpar".
PARTITION_LOCK = 0x6175646974706172
_NAME = re.compile(r"^audit_records_y(\d{4})m(\d{2})$")

_known: set[tuple[URL, int]] = set()
_known_lock = threading.Lock()
_probes: dict[URL, Engine] = {}


def month_index(at: datetime) -> int:
    """Months since year 0 of ``at`` (UTC): consecutive months have consecutive indexes."""
    at = at.astimezone(UTC)
    return at.year * 12 + at.month - 1


def month_start(index: int) -> datetime:
    """The first instant (UTC) of the month ``index``."""
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def month_label(index: int) -> str:
    """``YYYY-MM`` of the month ``index``."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def partition_name(index: int) -> str:
    """The table name of the month's partition, e.g. ``audit_records_y2026m11``."""
    return f"audit_records_y{index // 12:04d}m{index % 12 + 1:02d}"


@dataclass(frozen=True)
class Partition:
    """One month's partition: its table name and the month's index."""

    name: str
    month: int

    @property
    def label(self) -> str:
        return month_label(self.month)


def is_partitioned(conn: Connection | Session) -> bool:
    """Whether this database partitions the activity log (PostgreSQL after migration 0021)."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name == "postgresql"


def list_partitions(session: Session) -> list[Partition]:
    """The activity log's monthly partitions, oldest first (empty on SQLite)."""
    if not is_partitioned(session):
        return []
    names = session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_records'::regclass"
        )
    ).scalars()
    out = []
    for name in names:
        m = _NAME.match(name)
        if m:
            out.append(Partition(name, int(m.group(1)) * 12 + int(m.group(2)) - 1))
    return sorted(out, key=lambda p: p.month)


def _exists(session: Session, index: int) -> bool:
    found = session.execute(
        text("SELECT to_regclass(:n)"), {"n": partition_name(index)}
    ).scalar_one_or_none()
    return found is not None


def _create(session: Session, index: int) -> bool:
    """Create the month's partition unless it exists; the caller holds PARTITION_LOCK."""
    if _exists(session, index):
        return False
    name = partition_name(index)
    start, end = month_start(index), month_start(index + 1)
    session.execute(
        text(
            f"CREATE TABLE {name} PARTITION OF audit_records "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )
    # TRUNCATE of a partition does not fire the parent's statement trigger: give it its own.
    session.execute(
        text(
            f"CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON {name} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()"
        )
    )
    return True


def lock(session: Session) -> None:
    """Serialise partition changes across every node until the transaction ends."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITION_LOCK})


def ensure_ahead(session: Session, *, now: datetime, ahead: int) -> list[str]:
    """Create the partitions of ``now``'s month and the ``ahead`` months after it.

    Returns the names created (none on SQLite, or when they all exist). Runs in the caller's
    transaction; the caller commits.
    """
    first = month_index(now)
    return ensure_range(session, first=first, last=first + ahead)


def ensure_range(session: Session, *, first: int, last: int) -> list[str]:
    """Create the partitions of the months ``first`` to ``last`` (indexes) that are missing.

    Returns the names created (none on SQLite). Runs in the caller's transaction.
    """
    if not is_partitioned(session):
        return []
    wanted = [i for i in range(first, last + 1) if not _exists(session, i)]
    if not wanted:
        return []
    lock(session)
    return [partition_name(i) for i in wanted if _create(session, i)]


def _committed(url: URL, index: int) -> bool:
    """Whether the month's partition exists for everyone (committed), not only for us.

    Asked on a connection of its own (not pooled: this runs once per month and process,
    and must not wait for the application's pool), which sees only committed tables.
    """
    with _known_lock:
        engine = _probes.get(url)
        if engine is None:
            engine = _probes[url] = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT to_regclass(:n)"), {"n": partition_name(index)})
        return found.scalar_one_or_none() is not None


def ensure_for(session: Session, at: datetime) -> None:
    """Make sure a record dated ``at`` has a partition to go to (PostgreSQL only).

    Costs nothing once this process has seen the month's partition committed. A missing one
    (the scheduled job creates them ahead, so this is rare: a sandbox clock moved far ahead)
    is created in the caller's transaction under the partition lock; until that transaction
    commits, other writers of the activity log wait for it. Only a committed partition is
    remembered: one made by a transaction that may still roll back is asked about again.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    index = month_index(at)
    url = bind.engine.url
    if (url, index) in _known:
        return
    if _committed(url, index):
        with _known_lock:
            _known.add((url, index))
        return
    if _exists(session, index):  # made earlier in this transaction
        return
    lock(session)
    _create(session, index)


def forget(session: Session, index: int) -> None:
    """Drop the month from this process's memory of existing partitions (it was archived)."""
    key = (session.get_bind().engine.url, index)
    with _known_lock:
        _known.discard(key)
