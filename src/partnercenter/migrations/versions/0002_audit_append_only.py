"""activity log: refuse UPDATE, DELETE and TRUNCATE of audit records on PostgreSQL

Revision ID: 0002_audit_append_only
Revises: 0001_foundation
Create Date: 2026-11-24 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_audit_append_only"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION audit_records_append_only() RETURNS trigger AS $$
        BEGIN
          RAISE EXCEPTION 'audit_records is append-only: % is refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_records_no_change BEFORE UPDATE OR DELETE ON audit_records "
        "FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS audit_records_no_truncate ON audit_records")
    op.execute("DROP TRIGGER IF EXISTS audit_records_no_change ON audit_records")
    op.execute("DROP FUNCTION IF EXISTS audit_records_append_only()")
