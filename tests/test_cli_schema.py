"""The console tells the truth about the schema: a never-migrated database is said to have no
migrations, `db upgrade` says what it did, commands that need tables stop with what to run,
and `users list` works in a fresh process. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from partnercenter import migrate
from partnercenter.cli.main import app
from tests.conftest import (
    PG_ENABLED,
    PG_SKIP_MESSAGE,
    _pg_database_url,
    create_pg_database,
    drop_pg_database,
)

NOT_MIGRATED = (
    "No migrations applied yet (the schema has not been created): run `partnercenter db upgrade`."
)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database no migration was ever applied to."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if not PG_ENABLED:
        pytest.skip(PG_SKIP_MESSAGE)
    name, admin = create_pg_database()
    try:
        yield _pg_database_url(name)
    finally:
        drop_pg_database(name, admin)


def _run(url: str, tmp_path: Path, *args: str) -> Any:
    env = {"DATABASE_URL": url, "PARTNERCENTER_DATA_DIR": str(tmp_path / "data")}
    # Wide, so that a sentence is not wrapped across lines.
    return CliRunner().invoke(app, list(args), env={**env, "COLUMNS": "400"})


def _one_line(output: str) -> str:
    return " ".join(output.split())


def test_a_never_migrated_database_is_not_called_up_to_date(
    empty_database: str, tmp_path: Path
) -> None:
    status = _run(empty_database, tmp_path, "db", "status")
    assert status.exit_code == 1
    assert NOT_MIGRATED in _one_line(status.output)
    assert "up to date" not in status.output.lower()
    check = _run(empty_database, tmp_path, "db", "check")
    assert check.exit_code == 1 and NOT_MIGRATED in _one_line(check.output)
    assert "add_table" not in check.output  # no wall of "drift" for tables never created


@pytest.mark.parametrize("command", [("demo",), ("users", "list"), ("support", "send-mail")])
def test_commands_that_need_the_tables_stop_and_say_what_to_run(
    empty_database: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    r = _run(empty_database, tmp_path, *command)
    assert r.exit_code == 2, r.output
    assert NOT_MIGRATED in _one_line(r.output)
    assert "Traceback" not in r.output


def test_db_upgrade_says_what_it_did_from_nothing_part_way_and_at_the_newest(
    empty_database: str, tmp_path: Path
) -> None:
    head = migrate.head_revision()
    first = "0010_billing_line_keys"
    part = _run(empty_database, tmp_path, "db", "upgrade", first)
    assert part.exit_code == 0, part.output
    assert (
        f"no migrations had been applied; created the schema up to revision {first} "
        f"(the newest is {head})."
    ) in _one_line(part.output)
    behind = _run(empty_database, tmp_path, "db", "status")
    assert behind.exit_code == 1
    assert (
        f"At revision {first}; the newest is {head}: run `partnercenter db upgrade`."
        in _one_line(behind.output)
    )
    rest = _run(empty_database, tmp_path, "db", "upgrade")
    assert rest.exit_code == 0
    assert f"migrated from revision {first} to {head} (the newest)." in _one_line(rest.output)
    again = _run(empty_database, tmp_path, "db", "upgrade")
    assert f"already up to date at revision {head}, the newest; nothing to do." in _one_line(
        again.output
    )
    status = _run(empty_database, tmp_path, "db", "status")
    assert status.exit_code == 0
    assert f"Up to date: at revision {head}, the newest." in _one_line(status.output)
    assert _run(empty_database, tmp_path, "db", "check").exit_code == 0


def test_an_unknown_revision_is_a_message_not_a_traceback(
    empty_database: str, tmp_path: Path
) -> None:
    r = _run(empty_database, tmp_path, "db", "upgrade", "no_such_revision")
    assert r.exit_code == 2
    assert "Can't locate revision identified by 'no_such_revision'" in _one_line(r.output)
    assert NOT_MIGRATED in _one_line(_run(empty_database, tmp_path, "db", "status").output)


def test_users_list_works_in_a_fresh_process(empty_database: str, tmp_path: Path) -> None:
    """Every table is mapped before the first query, whichever command runs first."""
    assert _run(empty_database, tmp_path, "db", "upgrade").exit_code == 0
    env = {
        **os.environ,
        "DATABASE_URL": empty_database,
        "PARTNERCENTER_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "partnercenter.cli.main", "users", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "email" in done.stdout and "organisation" in done.stdout
