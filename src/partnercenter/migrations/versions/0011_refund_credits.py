"""charges: several approved refund credits per line and month

The unique (line, charge type, month) constraint becomes a partial unique index that leaves
out ``customerCredit`` charges: purchase, cycle and cancellation charges stay one per line and
month, while a second partial refund of a line in the same month is allowed.

Revision ID: 0011_refund_credits
Revises: 0010_billing_line_keys
Create Date: 2026-11-24 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_refund_credits"
down_revision: str | None = "0010_billing_line_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("charge_type <> 'customerCredit'")


def upgrade() -> None:
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_constraint(
            "uq_charges_order_line_id_charge_type_billing_month", type_="unique"
        )
    op.create_index(
        "uq_charges_line_type_month",
        "charges",
        ["order_line_id", "charge_type", "billing_month"],
        unique=True,
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("uq_charges_line_type_month", table_name="charges")
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_charges_order_line_id_charge_type_billing_month",
            ["order_line_id", "charge_type", "billing_month"],
        )
