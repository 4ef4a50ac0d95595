"""orders: one order per billing cycle of a cart

Partner Center makes one order per billing cycle when a cart mixes them, and an order carries
its ``billingCycle``. Orders get a ``billing_cycle`` column (existing orders take their first
line's cycle) and the unique cart becomes a unique (cart, billing cycle): a second checkout
still can never sell the cart twice.

Revision ID: 0015_order_billing_cycle
Revises: 0011_refund_credits
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_order_billing_cycle"
down_revision: str | None = "0011_refund_credits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_cycle", sa.String(length=20), nullable=True))
    op.execute(
        "UPDATE orders SET billing_cycle = COALESCE((SELECT l.billing_cycle FROM order_lines l "
        "WHERE l.order_id = orders.id ORDER BY l.line_number LIMIT 1), 'one_time')"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("billing_cycle", existing_type=sa.String(length=20), nullable=False)
        batch_op.drop_constraint("uq_orders_cart_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_orders_cart_id_billing_cycle", ["cart_id", "billing_cycle"]
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_orders_cart_id_billing_cycle", type_="unique")
        batch_op.create_unique_constraint("uq_orders_cart_id", ["cart_id"])
        batch_op.drop_column("billing_cycle")
