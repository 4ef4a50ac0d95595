"""Billing periods, invoice number series, issued invoices and their lines.

Invoices and their lines are written once, by the month close, and never changed: there is no
update path in the code, and the database refuses UPDATE and DELETE of them (migration
triggers). See ``docs/dev/billing.md``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from partnercenter.db import Base, UTCDateTime, new_id, str_enum


class PeriodState(StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class DocumentType(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "creditNote"


class BillingPeriod(Base):
    """A calendar month (UTC); its row is the lock that serialises closing and stamping."""

    __tablename__ = "billing_periods"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    state: Mapped[PeriodState] = mapped_column(str_enum(PeriodState, "period_state"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closing_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    invoice_count: Mapped[int] = mapped_column(Integer, default=0)


class NumberSeries(Base):
    """The next number of a document series; locked FOR UPDATE by the close that uses it."""

    __tablename__ = "billing_number_series"

    series: Mapped[str] = mapped_column(String(8), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger)


class Invoice(Base):
    """A partner's invoice (or credit note) for one month and one currency."""

    __tablename__ = "invoices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    billing_month: Mapped[str] = mapped_column(String(7), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    document_type: Mapped[DocumentType] = mapped_column(str_enum(DocumentType, "document_type"))
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    line_count: Mapped[int] = mapped_column(Integer)
    # Names as they were when issued, so the document never changes afterwards.
    partner_name: Mapped[str] = mapped_column(String(200))
    partner_country: Mapped[str | None] = mapped_column(String(2))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("partner_id", "billing_month", "currency"),
        Index("ix_invoices_partner_id_issued_at", "partner_id", "issued_at"),
    )


class InvoiceLine(Base):
    """One charge or credit on an invoice, copied from the charge and its order when issued.

    The charge id is the key: a charge is invoiced at most once, whoever closes the month.
    Lines name their invoice by (partner, month, currency), checked at commit, because the
    close writes the lines first (one statement) and the headers from their sums.
    """

    __tablename__ = "invoice_lines"

    # No foreign keys to charges or tenants: the close writes a million lines in one statement
    # and a per-row key check (which also locks each charge row) costs more than the insert.
    # Charges are append-only, the partner is checked through the invoice's key below, and
    # ``billing verify`` checks every line against its charge.
    charge_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column()
    invoice_month: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    charge_month: Mapped[str] = mapped_column(String(7))
    charge_type: Mapped[str] = mapped_column(String(20))
    credit_reason_code: Mapped[str | None] = mapped_column(String(40))
    reverses_charge_id: Mapped[uuid.UUID | None] = mapped_column()
    customer_id: Mapped[uuid.UUID] = mapped_column()
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_domain: Mapped[str | None] = mapped_column(String(253))
    customer_country: Mapped[str | None] = mapped_column(String(2))
    order_id: Mapped[uuid.UUID] = mapped_column()
    order_date: Mapped[datetime] = mapped_column(UTCDateTime())
    order_line_id: Mapped[uuid.UUID] = mapped_column()
    line_number: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[str] = mapped_column(String(40))
    sku_id: Mapped[str] = mapped_column(String(40))
    availability_id: Mapped[str] = mapped_column(String(40))
    product_name: Mapped[str] = mapped_column(String(200))
    sku_name: Mapped[str] = mapped_column(String(200))
    term_duration: Mapped[str | None] = mapped_column(String(8))
    billing_cycle: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    charged_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        ForeignKeyConstraint(
            ["partner_id", "invoice_month", "currency"],
            ["invoices.partner_id", "invoices.billing_month", "invoices.currency"],
            ondelete="RESTRICT",
            deferrable=True,
            initially="DEFERRED",
        ),
        Index("ix_invoice_lines_invoice", "partner_id", "invoice_month", "currency"),
    )
