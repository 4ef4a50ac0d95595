"""billing: invoice lines without per-row foreign keys to charges and tenants

The month close inserts every line of a month in one statement; on PostgreSQL each of these
two keys ran a row lock on the charge or tenant per line (a million at the benchmark's scale).
The lines keep their primary key (one line per charge) and the deferred key to their invoice.

Revision ID: 0010_billing_line_keys
Revises: 0009_billing
Create Date: 2026-11-24 19:51:02.906498
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_billing_line_keys"
down_revision: str | None = "0009_billing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = (
    ("fk_invoice_lines_partner_id_tenants", "tenants", ["partner_id"]),
    ("fk_invoice_lines_charge_id_charges", "charges", ["charge_id"]),
)


def _sqlite_triggers() -> None:
    """SQLite rebuilds the table to change its keys, which drops its triggers: restore them."""
    for operation in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS invoice_lines_no_{operation.lower()}")
        op.execute(
            f"CREATE TRIGGER invoice_lines_no_{operation.lower()} BEFORE {operation} ON "
            f"invoice_lines BEGIN SELECT RAISE(ABORT, 'issued invoices are immutable: "
            f"{operation} on invoice_lines is refused'); END"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _table, _columns in DROPPED:
            op.drop_constraint(name, "invoice_lines", type_="foreignkey")
        return
    with op.batch_alter_table("invoice_lines", recreate="always") as batch_op:
        for name, _table, _columns in DROPPED:
            batch_op.drop_constraint(name, type_="foreignkey")
    _sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table, columns in DROPPED:
            op.create_foreign_key(
                name, "invoice_lines", table, columns, ["id"], ondelete="RESTRICT"
            )
        return
    with op.batch_alter_table("invoice_lines", recreate="always") as batch_op:
        for name, table, columns in DROPPED:
            batch_op.create_foreign_key(name, table, columns, ["id"], ondelete="RESTRICT")
    _sqlite_triggers()
