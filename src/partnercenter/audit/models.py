"""The activity log: append-only records, hash-chained per tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from partnercenter.db import Base, UTCDateTime, new_id


class AuditRecord(Base):
    """One thing that happened: who, which tenant and customer, what, from where."""

    __tablename__ = "audit_records"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The log the record belongs to: the partner for partner actions, the customer for
    # Admin Center actions, the provider for provider actions; NULL for unknown sign-ins.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT")
    )
    chain_key: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    user_principal_name: Mapped[str | None] = mapped_column(String(320))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT")
    )
    customer_name: Mapped[str | None] = mapped_column(String(200))
    resource_type: Mapped[str] = mapped_column(String(60))
    operation_type: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20))
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    correlation_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        # On PostgreSQL the table is partitioned by month on occurred_at (migration 0021), and
        # a unique index of a partitioned table must hold the partition key; the primary key
        # there is (id, occurred_at). The chain head's row lock is what hands out each seq
        # once; this index is the backstop, the same on both databases.
        Index("ix_audit_records_chain_key_seq", "chain_key", "seq", "occurred_at", unique=True),
        Index("ix_audit_records_tenant_time", "tenant_id", "occurred_at", "id"),
        Index("ix_audit_records_tenant_customer_time", "tenant_id", "customer_id", "occurred_at"),
        Index("ix_audit_records_tenant_user_time", "tenant_id", "user_id", "occurred_at"),
        # The user filter by principal name also finds failed sign-ins (no user id).
        Index(
            "ix_audit_records_tenant_upn_time", "tenant_id", "user_principal_name", "occurred_at"
        ),
        # Provider admins read every tenant's records, newest first.
        Index("ix_audit_records_time", "occurred_at", "id"),
    )


class AuditChainHead(Base):
    """The newest record of each chain; locking this row serialises appends to the chain."""

    __tablename__ = "audit_chain_heads"

    chain_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditArchive(Base):
    """One archived month of the activity log: where its file is, and its chain anchors.

    ``anchors`` maps each chain key found in the month to ``{"first_seq", "last_seq",
    "count", "prev_hash", "last_hash"}``: ``prev_hash`` is the hash of the record before the
    month's first one in that chain (the previous partition's last hash, or the genesis hash),
    so ``audit verify`` can join the archive to what comes before and after it.
    """

    __tablename__ = "audit_archives"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    storage_key: Mapped[str] = mapped_column(String(500), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the compressed file
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    record_count: Mapped[int] = mapped_column(BigInteger)
    anchors: Mapped[dict[str, Any]] = mapped_column(JSON)
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_audit_archives_period", "period_start"),)
