"""Copied download links: who made them, for which file of which purchase, until when."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from partnercenter.db import Base, UTCDateTime, new_id


class DownloadLink(Base):
    """A signed link to one file of one software purchase; works without signing in.

    The token handed out carries the link id and expiry, signed (``licensing/links.py``);
    this row says what it opens and lets a cancellation revoke it at once.
    """

    __tablename__ = "download_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    entitlement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT"), index=True
    )
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    version: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(16))
    bitness: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_by_email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KeyReveal(Base):
    """A product key just revealed by Get Key, waiting to be shown once to that browser.

    Get Key is POST → redirect → GET: the POST checks, audits ("Get key") and writes this row;
    the GET it redirects to deletes the row and shows the key, so reloading the page (or
    replaying the URL in another browser) shows nothing and writes no second audit record.
    No key text is stored here: the key stays encrypted in the inventory. ``created_at`` is
    real time (a security lifetime, not business time).
    """

    __tablename__ = "key_reveals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    web_session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("web_sessions.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(64))
    product_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_product_keys.id", ondelete="CASCADE")
    )
    version: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
