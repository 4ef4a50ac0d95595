"""background jobs: scheduled runs, low-stock warnings, mail retry columns

``scheduled_runs`` records each run of a scheduled job once (the month close of a month);
``low_stock_alerts`` holds the open low-stock warnings; the mail outbox gains
``next_attempt_at`` (retry back-off) and ``failed_at`` (gave up, shown to the provider).
procrastinate's own tables (PostgreSQL only) are created by ``partnercenter db upgrade`` from
the library's schema, not here.

Revision ID: 0019_jobs
Revises: 0018_available_keys_index
Create Date: 2026-11-29 13:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from partnercenter.db import UTCDateTime

revision: str = "0019_jobs"
down_revision: str | None = "0018_available_keys_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("run_key", sa.String(length=60), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job", "run_key", name=op.f("pk_scheduled_runs")),
    )
    op.create_table(
        "low_stock_alerts",
        sa.Column("product_id", sa.String(length=60), nullable=False),
        sa.Column("sku_id", sa.String(length=60), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("alerted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "product_id", "sku_id", "version", name=op.f("pk_low_stock_alerts")
        ),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("failed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_column("failed_at")
        batch_op.drop_column("next_attempt_at")
    op.drop_table("low_stock_alerts")
    op.drop_table("scheduled_runs")
