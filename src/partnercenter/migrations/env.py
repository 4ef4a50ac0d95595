"""Alembic environment: runs against the connection or URL our CLI passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from partnercenter.db import make_engine
from partnercenter.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # procrastinate's tables belong to the library (see migrate._apply_job_queue_schema).
        include_name=lambda name, type_, _parent: (
            not (type_ == "table" and name is not None and name.startswith("procrastinate_"))
        ),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `partnercenter db upgrade`")
run_migrations_online()
