"""MS-RequestId: a write repeated with the same request id returns the stored first response.

The row is written in the same transaction as the write it protects, so either both exist or
neither does. The unique (tenant_id, request_id) constraint decides races: the loser's insert
waits for the winner's commit, fails, and the loser answers with the winner's stored response.
The same request id with a different method, path or body is a conflict (409).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from partnercenter.db import Base, UTCDateTime, new_id
from partnercenter.errors import Conflict, InvalidInput
from partnercenter.i18n import N_

MAX_REQUEST_ID = 100


class IdempotencyKey(Base):
    """The stored first response to a write that carried an MS-RequestId."""

    __tablename__ = "idempotency_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(MAX_REQUEST_ID))
    method_path: Mapped[str] = mapped_column(String(400))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (UniqueConstraint("tenant_id", "request_id"),)


class RequestIdReused(Conflict):
    code = 12101
    name = "request_id_reused"
    default_description = N_(
        "This MS-RequestId was already used for a different request; use a new request id."
    )


class InvalidRequestId(InvalidInput):
    code = 12102
    name = "invalid_request_id"
    default_description = N_("The MS-RequestId header must be 1 to 100 printable characters.")


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


@dataclass(frozen=True)
class RequestKey:
    """Who sent which request: what the stored response is keyed and checked on."""

    tenant_id: uuid.UUID
    request_id: str
    method_path: str
    body_hash: str


def body_hash(raw: bytes) -> str:
    """SHA-256 of the body; JSON bodies are hashed in canonical form (key order, spacing)."""
    if not raw.strip():  # no body (a checkout): not JSON, hashed as sent
        return hashlib.sha256(raw).hexdigest()
    try:
        canonical = json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def request_key(
    *, tenant_id: uuid.UUID, request_id: str | None, method: str, path: str, raw_body: bytes
) -> RequestKey | None:
    """The key of this request, or None when it carries no MS-RequestId."""
    if request_id is None:
        return None
    value = request_id.strip()
    if not value or len(value) > MAX_REQUEST_ID or not value.isprintable():
        raise InvalidRequestId(source="MS-RequestId")
    return RequestKey(tenant_id, value, f"{method.upper()} {path}", body_hash(raw_body))


def lookup(session: Session, key: RequestKey) -> StoredResponse | None:
    """The stored response for this request id, or None; a different request is a 409."""
    row = session.execute(
        select(IdempotencyKey)
        .where(
            IdempotencyKey.tenant_id == key.tenant_id,
            IdempotencyKey.request_id == key.request_id,
        )
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.method_path != key.method_path or row.body_hash != key.body_hash:
        raise RequestIdReused()
    return StoredResponse(row.status_code, row.response_body)


_REMEMBER_STATEMENTS: dict[str, Any] = {}


def _remember_statement(dialect: str) -> Any:
    """The insert that remembers a response, built once per database (a Core statement on
    the table: no unit of work or autoflush runs for it).

    ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: when a racing request with the same
    id committed first, PostgreSQL waits for it and then inserts nothing (SQLite's writers
    are already serialised). Parameters: every column of ``idempotency_keys`` by name.
    Built once and kept: building it with the values costs more CPU than running it.
    """
    stmt = _REMEMBER_STATEMENTS.get(dialect)
    if stmt is None:
        table = cast(Table, IdempotencyKey.__table__)
        stmt = (
            (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
            .values({c.name: bindparam(c.name, type_=c.type) for c in table.columns})
            .on_conflict_do_nothing()
            .returning(table.c.id)
        )
        _REMEMBER_STATEMENTS[dialect] = stmt
    return stmt


def remember(
    session: Session, key: RequestKey, *, status_code: int, body: Any, now: datetime
) -> StoredResponse:
    """Store the response in the caller's transaction; returns the response to send.

    When another request with the same id committed first, the caller's transaction is rolled
    back (its writes are dropped) and that request's stored response is returned instead.
    """
    values = {
        "id": uuid.uuid4(),
        "tenant_id": key.tenant_id,
        "request_id": key.request_id,
        "method_path": key.method_path,
        "body_hash": key.body_hash,
        "status_code": status_code,
        "response_body": body,
        "created_at": now,
    }
    inserted = session.execute(_remember_statement(session.get_bind().dialect.name), values).first()
    if inserted is None:
        session.rollback()
        stored = lookup(session, key)
        if stored is None:  # pragma: no cover - the conflicting row was committed
            raise RequestIdReused()
        return stored
    return StoredResponse(status_code, body)


def delete_older_than(session: Session, *, before: datetime) -> int:
    """Delete stored responses created before ``before`` (UTC); returns how many.

    A client retrying with the same MS-RequestId after that is treated as a new request.
    """
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
