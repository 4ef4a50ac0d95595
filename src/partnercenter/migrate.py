"""Run Alembic from our own code: upgrade, and the check that models and migrations agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from partnercenter.models import Base


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("partnercenter") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision``; on PostgreSQL also create the job queue's tables once."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if conn.dialect.name == "postgresql":
            _apply_job_queue_schema(conn)


def _apply_job_queue_schema(conn: Connection) -> None:
    """Create procrastinate's tables and functions from the library's own schema, once.

    The library owns that schema (``procrastinate_*``); our migrations and drift check leave
    it alone. Upgrading procrastinate across a schema change means applying its migration
    files (``procrastinate schema --migrations-path``), as docs/dev/jobs.md says.
    """
    if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
        return
    from procrastinate.schema import SchemaManager

    conn.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


_AUDIT_PARTITION = re.compile(r"^audit_records_y\d{4}m\d{2}$")


def _ours(name: str | None, type_: str, _parent: Any) -> bool:
    """Whether a database object is ours to compare.

    The job queue's tables are the library's; the activity log's monthly partitions on
    PostgreSQL (``audit_records_y2026m11``) are parts of ``audit_records``, which is compared;
    the trigram index on tenant names is PostgreSQL's alone (migration 0021), not the model's.
    """
    if type_ == "index" and name == "ix_tenants_name_trgm":
        return False
    if type_ != "table" or name is None:
        return True
    return not (name.startswith("procrastinate_") or _AUDIT_PARTITION.match(name))


def revision(engine: Engine, message: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


def drift(engine: Engine) -> list[Any]:
    """Differences between the migrated database and the models; empty when they agree."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "render_as_batch": conn.dialect.name == "sqlite",
                "include_name": _ours,
            },
        )
        diffs: list[Any] = compare_metadata(ctx, Base.metadata)
    return diffs


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands against the migrations shipped with this code.

    ``current``: the revision recorded in the database (Alembic's ``alembic_version``), None
    when no migration was ever applied (a new, empty database, or one that is not ours);
    ``head``: the newest revision this code ships.
    """

    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        """One sentence for the console: where the database is and what to run."""
        if self.current is None:
            return (
                "No migrations applied yet (the schema has not been created): "
                "run `partnercenter db upgrade`."
            )
        if self.at_head:
            return f"Up to date: at revision {self.current}, the newest."
        return (
            f"At revision {self.current}; the newest is {self.head}: "
            "run `partnercenter db upgrade`."
        )


def head_revision() -> str:
    """The newest revision among this code's migrations."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return head


def schema_state(engine: Engine) -> SchemaState:
    """Read the database's recorded revision (no change is made) beside the newest one."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaState(current=current, head=head_revision())
