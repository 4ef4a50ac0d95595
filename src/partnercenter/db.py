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

from psycopg.pq import TransactionStatus
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


_PG_IDLE = TransactionStatus.IDLE


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
        event.listen(engine, "before_cursor_execute", _begin_before_first_write)
    event.listen(engine, "before_cursor_execute", _refuse_unstorable_text)
    return engine


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True, **kwargs)


# --- transactions that begin at the first write (PostgreSQL) --------------------------------

LAZY_BEGIN = "partnercenter_lazy_begin"
"""Execution option: this connection runs plain reads outside a transaction (see below)."""

ALONE = "partnercenter_alone"
"""Execution option of one statement that may commit on its own when no transaction is open."""

# What may run outside a transaction: a SELECT that takes no lock, sets nothing and calls no
# function with an effect. Anything else (INSERT, UPDATE, DELETE, a data-modifying or any
# other WITH, SAVEPOINT, SET, a row lock, an advisory lock, set_config, a sequence, NOTIFY)
# opens the transaction first. A false positive only costs the BEGIN a read would have had.
_READ = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_EFFECT = re.compile(
    r"\bFOR\s+(?:UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b|advisory|set_config|nextval"
    r"|setval|notify|txid_current|pg_current_xact_id",
    re.IGNORECASE,
)


def is_plain_read(statement: str) -> bool:
    """True when ``statement`` is a SELECT with no lock and no side effect (see ``_EFFECT``)."""
    return _READ.match(statement) is not None and _EFFECT.search(statement) is None


def _begin_before_first_write(
    conn: Any,
    cursor: Any,
    statement: str,
    _parameters: Any,
    context: Any,
    _executemany: bool,
) -> None:
    # A lazy connection is in the driver's autocommit mode: reads run alone, each on its own
    # snapshot (what READ COMMITTED gives every statement anyway), and the first statement
    # that writes or locks opens the transaction, which the session's commit or rollback
    # then ends. Every write of a unit of work is still in one transaction.
    options = context.execution_options if context is not None else conn.get_execution_options()
    if not options.get(LAZY_BEGIN) or options.get(ALONE):
        return
    if cursor.connection.info.transaction_status != _PG_IDLE or is_plain_read(statement):
        return
    cursor.execute("BEGIN")


def lazy_transactions(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions like ``factory``'s whose transaction begins at the first write (PostgreSQL).

    A web request that only reads then costs no ``BEGIN`` and no ``ROLLBACK`` (two round
    trips of three, for a one-statement read), and ends without any I/O. Writes are as
    before: the first statement that writes or takes a lock (``is_plain_read`` is false)
    sends ``BEGIN`` first, and every later statement runs in that transaction until the
    session commits or rolls back. Reads that came before the first write ran each on its
    own snapshot, which under READ COMMITTED (PostgreSQL's default, which we use) every
    statement has anyway; what needs a row to stay as read locks it (``FOR UPDATE``), and
    a locking read opens the transaction.

    A factory bound to anything but a PostgreSQL :class:`Engine` (SQLite, whose
    ``BEGIN IMMEDIATE`` serializes writers from the first statement on; a test's
    connection) is returned as it is.
    """
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return factory
    lazy = bind.execution_options(isolation_level="AUTOCOMMIT", **{LAZY_BEGIN: True})
    return sessionmaker(**{**factory.kw, "bind": lazy})


def holds_transaction(session: Session) -> bool:
    """True when ending ``session`` needs a round trip (the database has a transaction open).

    Without I/O: the ORM's view, then for a lazy PostgreSQL connection the driver's status.
    A failed or dropped transaction counts as open: its rollback cleans the session up.
    """
    transaction = session.get_transaction()
    if transaction is None:
        return False
    if not transaction.is_active:  # a statement failed: the session must be rolled back
        return True
    # The connections the transaction holds, without asking for one (which could wait on
    # the pool, on the event loop). SQLAlchemy keeps them in ``_connections``; should that
    # ever go, every open transaction counts as holding one (the rollback is then a hop).
    held = getattr(transaction, "_connections", None)
    if held is None:
        return True
    for connection, *_rest in held.values():
        if connection.invalidated or not connection.get_execution_options().get(LAZY_BEGIN):
            return True
        dbapi = connection.connection.dbapi_connection
        if dbapi is None or dbapi.info.transaction_status != _PG_IDLE:
            return True
    return False


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that rolls back unless the caller commits it."""
    session = factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
