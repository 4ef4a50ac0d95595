"""Tables of the background jobs: scheduled runs and open low-stock warnings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from partnercenter.db import Base, UTCDateTime


class ScheduledRun(Base):
    """One run of a scheduled job for one key (``month_close`` / ``2026-11``), recorded once.

    The primary key makes the run happen once however many schedulers fire: the one whose
    insert succeeds does the work, the others find the row.
    """

    __tablename__ = "scheduled_runs"

    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    run_key: Mapped[str] = mapped_column(String(60), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(Text)
    # The last run failed with this error (cleared by the next run that succeeds).
    error: Mapped[str | None] = mapped_column(Text)


class LowStockAlert(Base):
    """An open low-stock warning for one SKU version: the provider was mailed once.

    The row exists while the available keys are at or below the SKU's threshold; it is
    removed when stock rises above it, so the next crossing warns again.
    """

    __tablename__ = "low_stock_alerts"

    product_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    sku_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    available: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    alerted_at: Mapped[datetime] = mapped_column(UTCDateTime())
