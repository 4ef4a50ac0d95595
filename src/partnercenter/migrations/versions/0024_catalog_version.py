"""catalog version: a stamp every write of what pricing reads changes, for checkout's cache

``catalog_version`` holds one row (``id`` 1) with a random ``stamp``. Triggers give it a new
stamp in the writing transaction on every insert, update or delete (and, on PostgreSQL,
truncate) of ``catalog_products``, ``catalog_skus``, ``catalog_availabilities``,
``catalog_availability_markets`` and ``catalog_tax_rates``, whoever writes. On PostgreSQL they
are statement triggers that run *before* the statement, so catalog writers queue on the one
row before they lock any catalog row (no deadlock between two of them); on SQLite (row
triggers; its writers are serialised anyway) one per table and operation. Product keys and
artifacts are not priced and do not change it.

Revision ID: 0024_catalog_version
Revises: 0023_mail_handover
Create Date: 2026-11-29 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_catalog_version"
down_revision: str | None = "0023_mail_handover"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "catalog_products",
    "catalog_skus",
    "catalog_availabilities",
    "catalog_availability_markets",
    "catalog_tax_rates",
)
OPERATIONS = ("insert", "update", "delete")
PG_FUNCTION = """
CREATE FUNCTION catalog_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_version SET stamp = md5(random()::text || clock_timestamp()::text)
    WHERE id = 1;
    RETURN NULL;
END
$$
"""
PG_NEW_STAMP = "md5(random()::text || clock_timestamp()::text)"
SQLITE_NEW_STAMP = "lower(hex(randomblob(16)))"


def upgrade() -> None:
    op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stamp", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_version")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    new_stamp = PG_NEW_STAMP if postgresql else SQLITE_NEW_STAMP
    op.execute(f"INSERT INTO catalog_version (id, stamp) VALUES (1, {new_stamp})")  # noqa: S608
    if postgresql:
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_version BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump()"
            )
        return
    for table in TABLES:
        for operation in OPERATIONS:
            bump = f"UPDATE catalog_version SET stamp = {SQLITE_NEW_STAMP} WHERE id = 1"  # noqa: S608
            op.execute(
                f"CREATE TRIGGER {table}_version_{operation} AFTER {operation.upper()} "
                f"ON {table} BEGIN {bump}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version ON {table}")
        op.execute("DROP FUNCTION IF EXISTS catalog_version_bump()")
    else:
        for table in TABLES:
            for operation in OPERATIONS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_version_{operation}")
    op.drop_table("catalog_version")
