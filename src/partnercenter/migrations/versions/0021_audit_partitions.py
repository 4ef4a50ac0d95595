"""activity log: monthly partitions on PostgreSQL, and the manifest of archived months

Revision ID: 0021_audit_partitions
Revises: 0020_webhooks
Create Date: 2026-11-29 17:00:00

On PostgreSQL the populated ``audit_records`` table is converted in this one transaction: it
is renamed aside, a table partitioned by month on ``occurred_at`` takes its name, a partition
is created for every month that holds records (and for this month and the next three), every
row is copied unchanged (ids, sequence numbers and hashes, so the hash chains stay as they
were), the counts are compared, and only then is the old table dropped. Either all of it
happens or none. SQLite keeps its plain table; both get ``audit_archives``. PostgreSQL also
gets a pg_trgm index on the lower-cased tenant names (when the extension is available), which
the CompanyName filter uses to find the customers a name names.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from partnercenter.db import UTCDateTime

revision: str = "0021_audit_partitions"
down_revision: str | None = "0020_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "id, tenant_id, chain_key, seq, occurred_at, user_id, user_principal_name, customer_id, "
    "customer_name, resource_type, operation_type, status, client_address, user_agent, "
    "correlation_id, details, prev_hash, hash"
)
INDEXES = (
    "CREATE UNIQUE INDEX ix_audit_records_chain_key_seq "
    "ON audit_records (chain_key, seq, occurred_at)",
    "CREATE INDEX ix_audit_records_tenant_customer_time "
    "ON audit_records (tenant_id, customer_id, occurred_at)",
    "CREATE INDEX ix_audit_records_tenant_time ON audit_records (tenant_id, occurred_at, id)",
    "CREATE INDEX ix_audit_records_tenant_upn_time "
    "ON audit_records (tenant_id, user_principal_name, occurred_at)",
    "CREATE INDEX ix_audit_records_tenant_user_time "
    "ON audit_records (tenant_id, user_id, occurred_at)",
    "CREATE INDEX ix_audit_records_time ON audit_records (occurred_at, id)",
)
OLD_NAMES = (
    "pk_audit_records",
    "ix_audit_records_chain_key_seq",
    "ix_audit_records_tenant_customer_time",
    "ix_audit_records_tenant_time",
    "ix_audit_records_tenant_upn_time",
    "ix_audit_records_tenant_user_time",
    "ix_audit_records_time",
)


def _month_index(at: datetime) -> int:
    return at.year * 12 + at.month - 1


def _month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _create_partition(index: int) -> None:
    start, end = _month_start(index), _month_start(index + 1)
    name = f"audit_records_y{start:%Y}m{start:%m}"
    op.execute(
        f"CREATE TABLE {name} PARTITION OF audit_records "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )
    op.execute(
        f"CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON {name} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()"
    )


def _archives_table() -> None:
    op.create_table(
        "audit_archives",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("anchors", sa.JSON(), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_archives")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_audit_archives_storage_key")),
    )
    with op.batch_alter_table("audit_archives", schema=None) as batch_op:
        batch_op.create_index("ix_audit_archives_period", ["period_start"], unique=False)


def upgrade() -> None:
    _archives_table()
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("audit_records", schema=None) as batch_op:
            batch_op.drop_index("ix_audit_records_chain_key_seq")
            batch_op.create_index(
                "ix_audit_records_chain_key_seq", ["chain_key", "seq", "occurred_at"], unique=True
            )
        return
    bind = op.get_bind()
    # The activity log's CompanyName filter first finds the customers a name names: a
    # trigram index answers substring, prefix and equality matches of lower(name) at once.
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if available:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_tenants_name_trgm ON tenants USING gin (lower(name) gin_trgm_ops)"
        )
    # The manifest is append-only too: an archived month's record is never rewritten.
    op.execute(
        """
        CREATE FUNCTION audit_archives_append_only() RETURNS trigger AS $$
        BEGIN
          RAISE EXCEPTION 'audit_archives is append-only: % is refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives "
        "FOR EACH ROW EXECUTE FUNCTION audit_archives_append_only()"
    )
    op.execute("ALTER TABLE audit_records RENAME TO audit_records_unpartitioned")
    for name in OLD_NAMES:
        kind = "CONSTRAINT" if name.startswith("pk_") else "INDEX"
        if kind == "INDEX":
            op.execute(f"ALTER INDEX {name} RENAME TO {name}_unpartitioned")
        else:
            op.execute(
                f"ALTER TABLE audit_records_unpartitioned RENAME CONSTRAINT {name} "
                f"TO {name}_unpartitioned"
            )
    op.execute(
        """
        CREATE TABLE audit_records (
            id UUID NOT NULL,
            tenant_id UUID,
            chain_key VARCHAR(40) NOT NULL,
            seq BIGINT NOT NULL,
            occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
            user_id UUID,
            user_principal_name VARCHAR(320),
            customer_id UUID,
            customer_name VARCHAR(200),
            resource_type VARCHAR(60) NOT NULL,
            operation_type VARCHAR(60) NOT NULL,
            status VARCHAR(20) NOT NULL,
            client_address VARCHAR(64),
            user_agent VARCHAR(500),
            correlation_id VARCHAR(100),
            details JSON NOT NULL,
            prev_hash VARCHAR(64) NOT NULL,
            hash VARCHAR(64) NOT NULL,
            CONSTRAINT pk_audit_records PRIMARY KEY (id, occurred_at)
        ) PARTITION BY RANGE (occurred_at)
        """
    )
    now = datetime.now(UTC)
    first, last = bind.execute(
        sa.text("SELECT min(occurred_at), max(occurred_at) FROM audit_records_unpartitioned")
    ).one()
    lo = _month_index(first) if first is not None else _month_index(now)
    hi = max(_month_index(last) if last is not None else lo, _month_index(now) + 3)
    for index in range(lo, hi + 1):
        _create_partition(index)
    op.execute(
        f"INSERT INTO audit_records ({COLUMNS}) SELECT {COLUMNS} FROM audit_records_unpartitioned"  # noqa: S608 - constants
    )
    old = bind.execute(sa.text("SELECT count(*) FROM audit_records_unpartitioned")).scalar()
    new = bind.execute(sa.text("SELECT count(*) FROM audit_records")).scalar()
    if old != new:  # pragma: no cover - the copy above is one statement
        raise RuntimeError(f"audit_records: copied {new} of {old} rows; nothing was changed")
    # Keys and triggers after the copy: each row is checked once, not per insert.
    for stmt in INDEXES:
        op.execute(stmt)
    for column, target in (("customer_id", "tenants"), ("tenant_id", "tenants")):
        op.execute(
            f"ALTER TABLE audit_records ADD CONSTRAINT fk_audit_records_{column}_{target} "
            f"FOREIGN KEY ({column}) REFERENCES {target} (id) ON DELETE RESTRICT"
        )
    op.execute(
        "ALTER TABLE audit_records ADD CONSTRAINT fk_audit_records_user_id_users "
        "FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT"
    )
    op.execute(
        "CREATE TRIGGER audit_records_no_change BEFORE UPDATE OR DELETE ON audit_records "
        "FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()"
    )
    # The old table's own triggers refuse TRUNCATE; DROP is what retires it.
    op.execute("DROP TABLE audit_records_unpartitioned")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("audit_records", schema=None) as batch_op:
            batch_op.drop_index("ix_audit_records_chain_key_seq")
            batch_op.create_index(
                "ix_audit_records_chain_key_seq", ["chain_key", "seq"], unique=True
            )
    else:
        op.execute("ALTER TABLE audit_records RENAME TO audit_records_partitioned")
        op.execute(
            "ALTER TABLE audit_records_partitioned RENAME CONSTRAINT pk_audit_records TO pk_audit_records_partitioned"
        )
        for name in OLD_NAMES[1:]:
            op.execute(f"ALTER INDEX {name} RENAME TO {name}_partitioned")
        op.execute(
            f"CREATE TABLE audit_records AS SELECT {COLUMNS} FROM audit_records_partitioned"  # noqa: S608
        )
        op.execute("ALTER TABLE audit_records ADD CONSTRAINT pk_audit_records PRIMARY KEY (id)")
        for column in (
            "chain_key",
            "seq",
            "occurred_at",
            "resource_type",
            "operation_type",
            "status",
            "details",
            "prev_hash",
            "hash",
        ):
            op.execute(f"ALTER TABLE audit_records ALTER COLUMN {column} SET NOT NULL")
        op.execute(
            "CREATE UNIQUE INDEX ix_audit_records_chain_key_seq ON audit_records (chain_key, seq)"
        )
        for stmt in INDEXES[1:]:
            op.execute(stmt)
        for column, target in (
            ("customer_id", "tenants"),
            ("tenant_id", "tenants"),
            ("user_id", "users"),
        ):
            op.execute(
                f"ALTER TABLE audit_records ADD CONSTRAINT fk_audit_records_{column}_{target} "
                f"FOREIGN KEY ({column}) REFERENCES {target} (id) ON DELETE RESTRICT"
            )
        op.execute(
            "CREATE TRIGGER audit_records_no_change BEFORE UPDATE OR DELETE ON audit_records "
            "FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()"
        )
        op.execute("DROP TABLE audit_records_partitioned CASCADE")
        op.execute("DROP TRIGGER IF EXISTS audit_archives_no_change ON audit_archives")
        op.execute("DROP FUNCTION IF EXISTS audit_archives_append_only()")
        op.execute("DROP INDEX IF EXISTS ix_tenants_name_trgm")
    with op.batch_alter_table("audit_archives", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_archives_period")
    op.drop_table("audit_archives")
