"""Upgrade an empty SQLite and an empty PostgreSQL database, then check for drift.

``python -m partnercenter.cli.check_migrations``; PostgreSQL is required when CI=true.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid

from sqlalchemy import create_engine, text

from partnercenter import migrate
from partnercenter.db import make_engine


def _check(url: str, label: str) -> bool:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        diffs = migrate.drift(engine)
    finally:
        engine.dispose()
    if diffs:
        print(f"{label}: the models differ from the migrations:")
        for d in diffs:
            print(f"  {d}")
        return False
    print(f"{label}: upgrade head on an empty database, then autogenerate: no drift.")
    return True


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        ok &= _check(f"sqlite:///{tmp}/check.db", "SQLite")
    admin_url = os.environ.get(
        "PARTNERCENTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    required = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    name = f"pc_check_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        print(f"PostgreSQL unreachable at {admin_url}: {exc}")
        return 1 if required else (0 if ok else 1)
    try:
        ok &= _check(admin_url.rsplit("/", 1)[0] + f"/{name}", "PostgreSQL")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
