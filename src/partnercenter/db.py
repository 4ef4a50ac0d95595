"""Declarative base, column types, engine and the unit of work."""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: use the injected clock")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_cls: type[Any], name: str) -> SAEnum:
    """A status column of a ``StrEnum``, stored by value as a string (no database enum type)."""
    return SAEnum(
        enum_cls,
        name=name,
        native_enum=False,
        values_callable=lambda e: [m.value for m in e],
        length=40,
        create_constraint=False,
    )


class Base(DeclarativeBase):
    """Base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UnstorableText(ValueError):
    """A text value no database can store: a NUL character or an unpaired surrogate.

    Raised before the statement reaches the database; the error handler answers 400.
    """


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _refuse_unstorable_text(
    _conn: Any,
    _cursor: Any,
    _statement: str,
    parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    # The last line of defence behind the edge checks (partnercenter.edge): PostgreSQL refuses
    # NUL in text and neither driver can encode a lone surrogate, which would otherwise be a 500.
    pending: list[Any] = [parameters]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise UnstorableText("Text may not contain NUL characters or lone surrogates.")
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int = 30000) -> None:
    # Let SQLAlchemy, not the driver, issue BEGIN, so SAVEPOINTs and rollbacks behave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # A writer waits this long for the write lock, then the request answers 503 (errors.py).
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # WAL must be switched on outside a transaction: here, before SQLAlchemy's BEGIN.
    # (In-memory databases answer "memory" and stay as they are.)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
    # SQL's sha256 for the activity log's chain (PostgreSQL has its own): the hash of a
    # record is worked out in the statement that appends it (audit/services.py).
    dbapi_connection.create_function("pc_sha256_hex", 1, _sha256_hex, deterministic=True)


def _sha256_hex(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: two writers queue (busy_timeout) instead of
    # failing when a read transaction later tries to write.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, sqlite_busy_timeout_ms: int = 30000, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout.

    SQL parameters are left out of error messages unless ``hide_parameters=False`` is given
    (they can hold password hashes and token hashes). Text parameters with NUL characters or
    lone surrogates raise :class:`UnstorableText` before reaching the database.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:"):
            for pool_option in ("pool_size", "max_overflow", "pool_timeout"):
                kwargs.pop(pool_option, None)
        engine = create_engine(url, **kwargs)
        pragmas = functools.partial(_sqlite_pragmas, busy_timeout_ms=sqlite_busy_timeout_ms)
        event.listen(engine, "connect", pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        # No pre-ping by default: it is a round trip before every request's first statement.
        # A connection the database dropped fails once (503, errors.py); SQLAlchemy then
        # replaces every connection of the pool.
        kwargs.setdefault("pool_pre_ping", False)
        engine = create_engine(url, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_unstorable_text)
    return engine


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True, **kwargs)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that rolls back unless the caller commits it."""
    session = factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
