"""mail handed to SMTP is never sent twice; scheduled runs record their error

``mail_outbox`` gains ``attempt_id`` (the sender's claim: only that sender may mark the row)
and ``handed_over_at`` (real time the message was handed to the SMTP server's DATA command:
a row left so by a dead sender may have been delivered, and is not sent again without the
provider's word). ``scheduled_runs`` gains ``error`` (the last run failed with it).

Revision ID: 0023_mail_handover
Revises: 0022_support_contact_language
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from partnercenter.db import UTCDateTime

revision: str = "0023_mail_handover"
down_revision: str | None = "0022_support_contact_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("handed_over_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("scheduled_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduled_runs", schema=None) as batch_op:
        batch_op.drop_column("error")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_column("handed_over_at")
        batch_op.drop_column("attempt_id")
