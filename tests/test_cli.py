"""The command line: init and demo are idempotent, every command explains itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from partnercenter import demo
from partnercenter.cli.main import app
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import Role, TenantKind, render_markdown


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliRunner, dict[str, str], str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"DATABASE_URL": url, "PARTNERCENTER_DATA_DIR": str(tmp_path / "data")}
    return CliRunner(), env, url


def _counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s:
            providers = s.execute(
                select(func.count()).select_from(Tenant).where(Tenant.kind == TenantKind.PROVIDER)
            ).scalar_one()
            tenants = s.execute(select(func.count()).select_from(Tenant)).scalar_one()
            users = s.execute(select(func.count()).select_from(User)).scalar_one()
            return providers, tenants, users
    finally:
        engine.dispose()


def _invoke(cli: tuple[CliRunner, dict[str, str], str], *args: str) -> Any:
    runner, env, _url = cli
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def test_init_creates_the_provider_and_its_admin_once(
    cli: tuple[CliRunner, dict[str, str], str],
) -> None:
    args = ("init", "--email", "Owner@Vendor.example", "--password", "steady-lantern-41")
    first = _invoke(cli, *args)
    assert first.exit_code == 0, first.output
    assert "Provider admin: owner@vendor.example" in first.output
    again = _invoke(cli, *args)
    assert again.exit_code == 0 and "owner@vendor.example" in again.output
    assert _counts(cli[2]) == (1, 1, 1)
    engine = make_engine(cli[2])
    with make_session_factory(engine)() as s:
        owner = s.execute(select(User)).scalar_one()
        assert owner.roles == [Role.PROVIDER_ADMIN] and owner.tenant.kind == TenantKind.PROVIDER
        assert owner.password_hash.startswith("$argon2id$")
    engine.dispose()


def test_init_refuses_a_weak_password(cli: tuple[CliRunner, dict[str, str], str]) -> None:
    r = _invoke(cli, "init", "--email", "owner@vendor.example", "--password", "short")
    assert r.exit_code == 2 and "at least 10 characters" in r.output
    assert _counts(cli[2])[2] == 0


def test_demo_is_idempotent_and_prints_every_sign_in(
    cli: tuple[CliRunner, dict[str, str], str],
) -> None:
    assert _invoke(cli, "db", "upgrade").exit_code == 0
    first = _invoke(cli, "demo")
    assert first.exit_code == 0, first.output
    counts = _counts(cli[2])
    again = _invoke(cli, "demo")
    assert again.exit_code == 0
    assert _counts(cli[2]) == counts
    expected_users = sum(len(t.users) for t in demo.TENANTS)
    assert counts[0] == 1 and counts[2] >= expected_users
    for tenant in demo.TENANTS:
        for _role, email in tenant.users:
            assert email in first.output  # printed whole, never cut short
    assert demo.DEMO_PASSWORD in first.output
    for portal in ("/partner", "/admin", "/provider"):
        assert portal in first.output


def test_demo_is_refused_in_production(cli: tuple[CliRunner, dict[str, str], str]) -> None:
    runner, env, _url = cli
    production = {
        **env,
        "PARTNERCENTER_ENV": "production",
        "PARTNERCENTER_SECRET_KEY": "s" * 48,
        "PARTNERCENTER_KEY_ENCRYPTION_KEY": "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM=",
    }
    r = runner.invoke(app, ["demo"], env=production)
    assert r.exit_code == 2 and "refused in production" in r.output


def test_users_commands_create_change_and_list(
    cli: tuple[CliRunner, dict[str, str], str],
) -> None:
    assert _invoke(cli, "db", "upgrade").exit_code == 0
    assert _invoke(cli, "demo").exit_code == 0
    created = _invoke(
        cli,
        "users",
        "create",
        "--email",
        "new.agent@fabrikam.example",
        "--tenant",
        "Fabrikam Cloud Reseller",
        "--role",
        "sales_agent",
        "--password",
        "agent-password-1",
        "--name",
        "New Agent",
    )
    assert created.exit_code == 0, created.output
    changed = _invoke(
        cli,
        "users",
        "set-roles",
        "--email",
        "new.agent@fabrikam.example",
        "--role",
        "admin_agent",
        "--role",
        "sales_agent",
    )
    assert changed.exit_code == 0
    assert "admin_agent" in changed.output and "sales_agent" in changed.output
    listed = _invoke(cli, "users", "list", "--tenant", "Fabrikam Cloud Reseller")
    assert "new.agent@fabrikam.example" in listed.output
    wrong = _invoke(
        cli,
        "users",
        "create",
        "--email",
        "x@fabrikam.example",
        "--tenant",
        "Fabrikam Cloud Reseller",
        "--role",
        "provider_admin",
        "--password",
        "agent-password-1",
    )
    assert wrong.exit_code == 2
    assert _invoke(cli, "audit", "verify").output.strip() == "The activity log is intact."


def test_permissions_markdown_is_the_table(cli: tuple[CliRunner, dict[str, str], str]) -> None:
    r = _invoke(cli, "permissions", "--markdown")
    assert r.exit_code == 0 and r.output == render_markdown()


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group, as the words typed to reach it."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


def test_every_command_has_help(cli: tuple[CliRunner, dict[str, str], str]) -> None:
    root = typer.main.get_command(app)
    paths = _command_paths(root)
    names = {" ".join(p) for p in paths}
    for required in ("serve", "init", "db upgrade", "demo", "users list", "users create"):
        assert required in names
    for path in paths:
        r = _invoke(cli, *path, "--help")
        assert r.exit_code == 0, (path, r.output)
        assert "Usage:" in r.output, path
        if path:
            assert len(r.output.strip().splitlines()) > 3, path  # says what it does
