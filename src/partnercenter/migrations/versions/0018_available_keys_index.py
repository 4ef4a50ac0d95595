"""catalog_product_keys: partial index on available keys, in the order they are taken

Reserving a key takes the oldest available key of a SKU and version. With this index that is
one index probe whatever the stock (the index holds only available keys, in imported order),
instead of sorting every available key to take one.

Revision ID: 0018_available_keys_index
Revises: 0016_key_reveals
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_available_keys_index"
down_revision: str | None = "0016_key_reveals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("status = 'available'")


def upgrade() -> None:
    op.create_index(
        "ix_catalog_product_keys_available",
        "catalog_product_keys",
        ["sku_pk", "version", "imported_at", "id"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_catalog_product_keys_available", table_name="catalog_product_keys")
