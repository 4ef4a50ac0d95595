"""support requests: the contact's language, in which their mail is written

Revision ID: 0022_support_contact_language
Revises: 0021_audit_partitions
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_support_contact_language"
# Chained after 0020 here; 0021 comes from another branch and is re-chained at merge.
down_revision: str | None = "0021_audit_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Requests filed before this column were mailed in English and Spanish; English from now.
    with op.batch_alter_table("support_requests") as batch:
        batch.add_column(
            sa.Column("contact_language", sa.String(length=8), server_default="en", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("support_requests") as batch:
        batch.drop_column("contact_language")
