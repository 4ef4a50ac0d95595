"""key_reveals: Get Key shows a revealed key once, after a redirect

Revision ID: 0016_key_reveals
Revises: 0015_order_billing_cycle
Create Date: 2026-11-29 13:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import partnercenter.db

revision: str = "0016_key_reveals"
down_revision: str | None = "0015_order_billing_cycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_reveals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("web_session_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("product_key_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("created_at", partnercenter.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["tenants.id"],
            name=op.f("fk_key_reveals_customer_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_key_id"],
            ["catalog_product_keys.id"],
            name=op.f("fk_key_reveals_product_key_id_catalog_product_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["web_session_id"],
            ["web_sessions.id"],
            name=op.f("fk_key_reveals_web_session_id_web_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_reveals")),
    )
    op.create_index(
        op.f("ix_key_reveals_web_session_id"), "key_reveals", ["web_session_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_key_reveals_web_session_id"), table_name="key_reveals")
    op.drop_table("key_reveals")
