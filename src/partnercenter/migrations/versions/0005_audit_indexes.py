"""activity log: indexes for the user-by-principal-name filter and the provider's all-tenant view

Revision ID: 0005_audit_indexes
Revises: 0004_orders
Create Date: 2026-11-24 19:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_audit_indexes"
down_revision: str | None = "0004_orders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_records_tenant_upn_time",
            ["tenant_id", "user_principal_name", "occurred_at"],
            unique=False,
        )
        batch_op.create_index("ix_audit_records_time", ["occurred_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_records_time")
        batch_op.drop_index("ix_audit_records_tenant_upn_time")
