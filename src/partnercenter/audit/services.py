"""Write and verify the activity log.

Records are appended in the caller's transaction, so an action and its record commit or roll
back together. Each record's hash covers its content and the previous record's hash in the
same chain (one chain per tenant), so a changed or removed row breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditChainHead, AuditRecord
from partnercenter.context import Actor, RequestInfo

GENESIS = "0" * 64
SYSTEM_CHAIN = "system"


def _canonical(record: AuditRecord) -> bytes:
    payload = {
        "id": str(record.id),
        "tenant_id": str(record.tenant_id) if record.tenant_id else None,
        "seq": record.seq,
        "occurred_at": record.occurred_at.isoformat(),
        "user_id": str(record.user_id) if record.user_id else None,
        "user_principal_name": record.user_principal_name,
        "customer_id": str(record.customer_id) if record.customer_id else None,
        "customer_name": record.customer_name,
        "resource_type": record.resource_type,
        "operation_type": record.operation_type,
        "status": record.status,
        "client_address": record.client_address,
        "user_agent": record.user_agent,
        "correlation_id": record.correlation_id,
        "details": record.details,
        "prev_hash": record.prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(record: AuditRecord) -> str:
    return hashlib.sha256(_canonical(record)).hexdigest()


def _lock_chain_head(session: Session, chain_key: str) -> AuditChainHead:
    """Return the chain head row locked for this transaction, creating it if needed."""
    dialect = session.get_bind().dialect.name
    values = {"chain_key": chain_key, "seq": 0, "last_hash": GENESIS}
    if dialect == "postgresql":
        session.execute(postgresql.insert(AuditChainHead).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite.insert(AuditChainHead).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - only the two supported databases
        if session.get(AuditChainHead, chain_key) is None:
            session.execute(insert(AuditChainHead).values(values))
    head = session.execute(
        select(AuditChainHead)
        .where(AuditChainHead.chain_key == chain_key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    return head


def record(
    session: Session,
    *,
    at: datetime,
    resource_type: str,
    operation_type: str,
    tenant_id: uuid.UUID | None,
    actor: Actor | None = None,
    request: RequestInfo | None = None,
    user_principal_name: str | None = None,
    customer_id: uuid.UUID | None = None,
    customer_name: str | None = None,
    status: str = "succeeded",
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record to the tenant's activity log in the caller's transaction."""
    request = request or RequestInfo()
    chain_key = str(tenant_id) if tenant_id else SYSTEM_CHAIN
    head = _lock_chain_head(session, chain_key)
    entry = AuditRecord(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        chain_key=chain_key,
        seq=head.seq + 1,
        occurred_at=at,
        user_id=actor.user_id if actor else None,
        user_principal_name=actor.email if actor else user_principal_name,
        customer_id=customer_id,
        customer_name=customer_name,
        resource_type=resource_type,
        operation_type=operation_type,
        status=status,
        client_address=request.client_address,
        user_agent=(request.user_agent or "")[:500] or None,
        correlation_id=request.correlation_id,
        details=details or {},
        prev_hash=head.last_hash,
    )
    entry.hash = compute_hash(entry)
    head.seq = entry.seq
    head.last_hash = entry.hash
    session.add(entry)
    return entry


@dataclass(frozen=True)
class BrokenLink:
    chain_key: str
    seq: int
    record_id: uuid.UUID | None
    reason: str


def verify(session: Session, *, batch: int = 5000) -> Iterator[BrokenLink]:
    """Walk every chain in order and yield the first broken link of each."""
    heads = session.execute(select(AuditChainHead)).scalars().all()
    for head in heads:
        expected_prev = GENESIS
        expected_seq = 1
        broken = False
        last_seq = 0
        while True:
            rows = (
                session.execute(
                    select(AuditRecord)
                    .where(AuditRecord.chain_key == head.chain_key, AuditRecord.seq > last_seq)
                    .order_by(AuditRecord.seq)
                    .limit(batch)
                )
                .scalars()
                .all()
            )
            if not rows:
                break
            for row in rows:
                reason = None
                if row.seq != expected_seq:
                    reason = f"record {expected_seq} is missing"
                elif row.prev_hash != expected_prev:
                    reason = "previous-hash does not match the record before it"
                elif compute_hash(row) != row.hash:
                    reason = "content does not match its hash"
                if reason:
                    yield BrokenLink(head.chain_key, row.seq, row.id, reason)
                    broken = True
                    break
                expected_prev = row.hash
                expected_seq += 1
                last_seq = row.seq
            if broken:
                break
            session.expunge_all()
        if not broken and (expected_seq - 1 != head.seq or expected_prev != head.last_hash):
            yield BrokenLink(head.chain_key, expected_seq, None, "the newest records are missing")
