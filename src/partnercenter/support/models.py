"""Support requests, their conversation, attachments, refund credits and the mail outbox.

Amounts are integer minor units beside a currency code. See ``docs/dev/support.md``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from partnercenter.db import Base, UTCDateTime, new_id, str_enum


class RequestStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    ATTENTION_NEEDED = "attention_needed"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Severity(StrEnum):
    CRITICAL = "critical"
    MODERATE = "moderate"
    MINIMAL = "minimal"


class RefundStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    PARTIALLY_APPROVED = "partially_approved"
    REJECTED = "rejected"


class NoteAuthor(StrEnum):
    PARTNER = "partner"
    PROVIDER = "provider"


class SupportRequest(Base):
    """A problem a partner reported; for refunds, the customer, order and amount asked for."""

    __tablename__ = "support_requests"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by_email: Mapped[str] = mapped_column(String(320))
    topic_id: Mapped[str] = mapped_column(String(40))
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, "support_severity"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, "support_status"))
    contact_first_name: Mapped[str] = mapped_column(String(100))
    contact_last_name: Mapped[str] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(320))
    contact_phone: Mapped[str] = mapped_column(String(40))
    # The language mail to the contact is written in (``en``/``es``): the language of the
    # person who filed the request (the portal's, or the API's agent locale).
    contact_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_to_email: Mapped[str | None] = mapped_column(String(320))
    # Refund requests only.
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT")
    )
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT")
    )
    refund_reason: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str | None] = mapped_column(String(3))
    amount_requested_minor: Mapped[int | None] = mapped_column(BigInteger)
    amount_approved_minor: Mapped[int | None] = mapped_column(BigInteger)
    refund_status: Mapped[RefundStatus | None] = mapped_column(
        str_enum(RefundStatus, "support_refund_status")
    )
    refund_decision_reason: Mapped[str | None] = mapped_column(Text)
    refund_decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    refund_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The purchase is cancelled when the refund is approved (the cancel dialog sent it here).
    cancel_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_charge_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    notes: Mapped[list[SupportNote]] = relationship(
        back_populates="request",
        order_by="(SupportNote.created_at, SupportNote.seq)",
        cascade="all, delete-orphan",
    )
    attachments: Mapped[list[SupportAttachment]] = relationship(
        back_populates="request",
        order_by="SupportAttachment.uploaded_at",
        cascade="all, delete-orphan",
    )

    __table_args__ = (
        Index("ix_support_requests_partner_id_created_at", "partner_id", "created_at"),
        Index("ix_support_requests_status_created_at", "status", "created_at"),
        Index("ix_support_requests_order_id", "order_id"),
    )


class SupportNote(Base):
    """One message of a request's conversation, from the partner or from provider support."""

    __tablename__ = "support_notes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("support_requests.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    author_side: Mapped[NoteAuthor] = mapped_column(str_enum(NoteAuthor, "support_note_author"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_email: Mapped[str] = mapped_column(String(320))
    author_name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # The status the request moved to with this note, if it moved.
    status_change: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    request: Mapped[SupportRequest] = relationship(back_populates="notes")

    __table_args__ = (Index("ix_support_notes_request_id_seq", "request_id", "seq", unique=True),)


class SupportAttachment(Base):
    """A file attached to a request, kept in the file store."""

    __tablename__ = "support_attachments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("support_requests.id", ondelete="CASCADE"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(1024))
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    uploaded_by_email: Mapped[str] = mapped_column(String(320))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    request: Mapped[SupportRequest] = relationship(back_populates="attachments")


class MailOutbox(Base):
    """An email written in the transaction of the change it tells of, sent after commit."""

    __tablename__ = "mail_outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("support_requests.id", ondelete="SET NULL")
    )
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A sender's claim (real time) and its id: only the claiming sender marks the outcome.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt_id: Mapped[uuid.UUID | None] = mapped_column()
    # Real time the message was handed to the SMTP server's DATA command. Left set by a
    # sender that died before it heard the answer: the mail may have been delivered, so it is
    # not sent again without the provider's word (docs/dev/jobs.md, "Never sent twice").
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Retries back off: no attempt before this time. Set when an attempt fails.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the last allowed attempt failed: the provider sees it on the mail page.
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_mail_outbox_sent_at_created_at", "sent_at", "created_at"),)
