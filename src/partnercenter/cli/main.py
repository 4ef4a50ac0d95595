"""The `partnercenter` command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.cli import billing as billing_cli
from partnercenter.cli import catalog as catalog_cli
from partnercenter.cli import support as support_cli
from partnercenter.config import Settings

if TYPE_CHECKING:
    from partnercenter import migrate

app = typer.Typer(
    help="Partner Center for selling software through a reseller channel.", no_args_is_help=True
)
db_app = typer.Typer(help="Create, migrate and check the database.", no_args_is_help=True)
users_app = typer.Typer(help="List and manage users.", no_args_is_help=True)
audit_app = typer.Typer(help="The activity log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(catalog_cli.catalog_app, name="catalog")
app.add_typer(catalog_cli.keys_app, name="keys")
app.add_typer(catalog_cli.artifacts_app, name="artifacts")
app.add_typer(catalog_cli.tax_app, name="tax")
app.add_typer(billing_cli.billing_app, name="billing")
app.add_typer(support_cli.support_app, name="support")

console = Console()


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # a bad setting is the operator's to fix: say which
        console.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


def _engine(settings: Settings) -> Engine:
    from partnercenter.db import make_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.resolved_database_url)


def _console_logs(settings: Settings) -> None:
    """Our log handler for a command that runs jobs, as ``create_app`` sets it for the server.

    Without it a job's warnings reach the console through Python's last-resort handler as
    bare messages: no time, no ids, no extras, and no redaction of secrets.
    """
    from partnercenter import logs

    logs.configure(json_lines=settings.log_json, secrets=settings.configured_secrets)


def _where(engine: Engine) -> str:
    """The database's URL as the console shows it (the password hidden)."""
    return engine.url.render_as_string(hide_password=True)


def _require_schema(engine: Engine) -> None:
    """Stop (exit 2) with what to run when no migration was ever applied to the database;
    warn, and go on, when it is behind the newest revision."""
    from partnercenter import migrate

    state = migrate.schema_state(engine)
    if state.current is None:
        console.print(f"[red]Database at {_where(engine)}:[/red] {state.describe()}")
        raise typer.Exit(2)
    if not state.at_head:
        console.print(f"[yellow]Database at {_where(engine)}:[/yellow] {state.describe()}")


def _session_factory(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the configured database, once its schema exists (:func:`_require_schema`)."""
    import partnercenter.models  # noqa: F401 - every table mapped, so relationships resolve
    from partnercenter.db import make_session_factory

    engine = _engine(settings)
    _require_schema(engine)
    return make_session_factory(engine)


def _now() -> datetime:
    from partnercenter.clock import SystemClock

    return SystemClock().now()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the database to the newest schema."""
    from alembic.util import CommandError

    from partnercenter import migrate

    settings = _settings()
    engine = _engine(settings)
    before = migrate.schema_state(engine).current
    try:
        migrate.upgrade(engine, revision)
    except CommandError as exc:  # an unknown revision, say: Alembic's own words
        console.print(f"[red]Database at {_where(engine)} not migrated:[/red] {exc}")
        raise typer.Exit(2) from exc
    after = migrate.schema_state(engine)
    console.print(f"Database at {_where(engine)}: {upgrade_summary(before, after)}")


def upgrade_summary(before: str | None, after: migrate.SchemaState) -> str:
    """What ``db upgrade`` did, from the revision before (None: never migrated) to after."""
    newest = "the newest" if after.at_head else f"the newest is {after.head}"
    if before is None and after.current is not None:
        return (
            f"no migrations had been applied; created the schema up to revision "
            f"{after.current} ({newest})."
        )
    if before == after.current:
        if after.current is None:
            return after.describe()
        if after.at_head:
            return f"already up to date at revision {after.current}, the newest; nothing to do."
        return f"already at revision {after.current}; nothing to do ({newest})."
    return f"migrated from revision {before} to {after.current} ({newest})."


@db_app.command("status")
def db_status() -> None:
    """Say which migration the database is at and whether it is the newest (exit 1 if not)."""
    from partnercenter import migrate

    engine = _engine(_settings())
    state = migrate.schema_state(engine)
    console.print(f"Database at {_where(engine)}: {state.describe()}")
    if not state.at_head:
        raise typer.Exit(1)


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree (run after `db upgrade`)."""
    from partnercenter import migrate

    engine = _engine(_settings())
    state = migrate.schema_state(engine)
    if not state.at_head:
        # Compared with an older schema every later migration would show as drift.
        console.print(f"[red]Database at {_where(engine)}:[/red] {state.describe()}")
        raise typer.Exit(1)
    diffs = migrate.drift(engine)
    if diffs:
        console.print("[red]The models differ from the migrations:[/red]")
        for d in diffs:
            console.print(f"  {d}")
        raise typer.Exit(1)
    console.print("No drift: the migrations match the models.")


@db_app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", help="What the migration does.")) -> None:
    """Write a new migration from the difference between models and database (developers)."""
    from partnercenter import migrate

    migrate.revision(_engine(_settings()), message)


@app.command()
def init(
    email: str = typer.Option(..., help="Email of the first Provider admin."),
    password: str = typer.Option(
        ..., help="Password (10 characters or more).", prompt=True, hide_input=True
    ),
) -> None:
    """Create the provider and its first Provider admin (idempotent; migrates the database)."""
    from partnercenter import demo, migrate
    from partnercenter.db import make_session_factory, unit_of_work
    from partnercenter.errors import DomainError

    engine = _engine(_settings())
    migrate.upgrade(engine)  # a fresh database works without a separate `db upgrade`
    with unit_of_work(make_session_factory(engine)) as session:
        try:
            user = demo.ensure_provider(session, email=email, password=password, now=_now())
        except DomainError as exc:
            console.print(f"[red]{exc.description}[/red]")
            raise typer.Exit(2) from exc
        session.commit()
        console.print(f"Provider admin: {user.email}")


@app.command("demo")
def demo_cmd() -> None:
    """Load the demo tenants and users (idempotent) and print the sign-ins."""
    from partnercenter import demo
    from partnercenter.db import unit_of_work

    settings = _settings()
    if settings.env == "production":
        console.print("[red]Demo data is refused in production.[/red]")
        raise typer.Exit(2)
    with unit_of_work(_session_factory(settings)) as session:
        demo.ensure_provider(
            session, email=demo.PROVIDER_ADMIN_EMAIL, password=demo.DEMO_PASSWORD, now=_now()
        )
        users = demo.load(session, now=_now())
        for loader in _extra_demo_loaders():
            loader(session, now=_now(), settings=settings)
        session.commit()
    table = Table(title=f"Demo sign-ins (password for all: {demo.DEMO_PASSWORD})")
    for col in ("portal", "organisation", "role", "email"):
        table.add_column(col)
    for u in users:
        table.add_row(u.portal, u.tenant, u.role.value, u.email)
    # Wide enough that no email is cut short, even when the output is not a terminal.
    Console(width=max(console.width, 120)).print(table)


def _extra_demo_loaders() -> list[Callable[..., Any]]:
    """Demo loaders of other areas (catalog, customers, ...), run after tenants and users."""
    from partnercenter.billing import demo as billing_demo
    from partnercenter.catalog import demo as catalog_demo
    from partnercenter.customers import demo as customers_demo

    return [catalog_demo.load, customers_demo.load, billing_demo.load]


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(0, help="Worker processes (0: one per core)."),
    server: str = typer.Option("granian", help="HTTP server: granian or uvicorn."),
) -> None:
    """Serve the web portals and the API."""
    import os

    from partnercenter import serving

    if server not in serving.SERVERS:
        raise typer.BadParameter(
            f"choose one of {', '.join(serving.SERVERS)}", param_hint="--server"
        )
    settings = _settings()  # refuse bad settings before the workers start
    engine = _engine(settings)
    try:
        _require_schema(engine)  # and a database no migration was ever applied to
    finally:
        engine.dispose()  # the server's workers open their own connections
    os.environ.setdefault("PARTNERCENTER_BASE_URL", f"http://{host}:{port}")
    # Background jobs run in the server unless workers are said to run them (docs/dev/jobs.md).
    os.environ.setdefault("PARTNERCENTER_JOBS", "in-process")
    n_workers = workers or serving.default_workers()
    # Each worker sizes its connection pool from the worker count (config.engine_options).
    os.environ["PARTNERCENTER_WORKERS"] = str(n_workers)
    console.print(f"Partner Center is at [bold]http://{host}:{port}/[/bold]  (API docs: /docs)")
    serving.run(
        server=server,
        host=host,
        port=port,
        workers=n_workers,
    )


@app.command()
def worker() -> None:
    """Run background jobs (support mail, month close, low-stock warnings, clean-up)."""
    from partnercenter.clock import SandboxClock, SystemClock
    from partnercenter.jobs import runtime

    settings = _settings()
    _console_logs(settings)
    clock = SandboxClock() if settings.sandbox else SystemClock()
    engine = _engine(settings)
    _require_schema(engine)
    console.print(f"Worker on {_where(engine)}")
    from partnercenter.db import make_session_factory

    runtime.run_worker(settings, make_session_factory(engine), clock)


@app.command()
def permissions(markdown: bool = typer.Option(False, help="Print as Markdown.")) -> None:
    """Print the role x action table the application enforces."""
    from partnercenter.permissions import render_markdown

    sys.stdout.write(render_markdown())


@users_app.command("list")
def users_list(
    tenant: str = typer.Option("", help="Only users of this organisation name."),
) -> None:
    """List users with their organisation and roles."""
    from sqlalchemy import select

    from partnercenter.db import unit_of_work
    from partnercenter.identity.models import Tenant, User

    with unit_of_work(_session_factory(_settings())) as session:
        stmt = select(User).join(Tenant).order_by(Tenant.name, User.email)
        if tenant:
            stmt = stmt.where(Tenant.name == tenant)
        table = Table()
        for col in ("email", "organisation", "kind", "roles", "active"):
            table.add_column(col)
        for u in session.execute(stmt).scalars():
            table.add_row(
                u.email,
                u.tenant.name,
                u.tenant.kind.value,
                ", ".join(r.value for r in u.roles),
                "yes" if u.is_active else "no",
            )
        Console(width=max(console.width, 140)).print(table)


@users_app.command("create")
def users_create(
    email: str = typer.Option(...),
    tenant: str = typer.Option(..., help="Organisation name."),
    role: list[str] = typer.Option(..., help="Role id; repeat for several."),
    password: str = typer.Option(..., prompt=True, hide_input=True),
    name: str = typer.Option("", help="Display name."),
) -> None:
    """Create a user in an organisation."""
    from sqlalchemy import select

    from partnercenter.db import unit_of_work
    from partnercenter.errors import DomainError
    from partnercenter.identity import services
    from partnercenter.identity.models import Tenant

    with unit_of_work(_session_factory(_settings())) as session:
        t = session.execute(select(Tenant).where(Tenant.name == tenant)).scalars().first()
        if t is None:
            console.print(f"[red]No organisation named {tenant!r}.[/red]")
            raise typer.Exit(2)
        try:
            u = services.create_user(
                session,
                tenant=t,
                email=email,
                display_name=name,
                password=password,
                roles=role,
                now=_now(),
            )
        except DomainError as exc:
            console.print(f"[red]{exc.description}[/red]")
            raise typer.Exit(2) from exc
        session.commit()
        console.print(f"Created {u.email} in {t.name} with roles {', '.join(role)}.")


@users_app.command("set-roles")
def users_set_roles(
    email: str = typer.Option(...),
    role: list[str] = typer.Option(..., help="Role id; repeat for several."),
) -> None:
    """Replace a user's roles."""
    from sqlalchemy import select

    from partnercenter.db import unit_of_work
    from partnercenter.errors import DomainError
    from partnercenter.identity import services
    from partnercenter.identity.models import User

    with unit_of_work(_session_factory(_settings())) as session:
        u = session.execute(select(User).where(User.email == email.lower())).scalar_one_or_none()
        if u is None:
            console.print(f"[red]No user {email!r}.[/red]")
            raise typer.Exit(2)
        try:
            services.update_user(
                session, user=u, actor=services.actor_for(u), now=_now(), roles=role
            )
        except DomainError as exc:
            console.print(f"[red]{exc.description}[/red]")
            raise typer.Exit(2) from exc
        session.commit()
        console.print(f"{u.email}: {', '.join(r.value for r in u.roles)}")


@users_app.command("unlock")
def users_unlock(email: str = typer.Option(..., help="The account's email address.")) -> None:
    """Forget an account's failed sign-ins, so its owner can sign in at once (audited)."""
    from sqlalchemy import select

    from partnercenter.audit import services as audit
    from partnercenter.db import unit_of_work
    from partnercenter.identity import services
    from partnercenter.identity.models import User

    with unit_of_work(_session_factory(_settings())) as session:
        cleared = services.clear_sign_in_failures(session, email=email)
        owner = session.execute(
            select(User).where(User.email == email.strip().lower())
        ).scalar_one_or_none()
        audit.record(
            session,
            at=_now(),
            resource_type="sign_in",
            operation_type="sign_in_unlocked",
            tenant_id=owner.tenant_id if owner else None,
            user_principal_name=email.strip().lower(),
            details={"channel": "cli", "failuresCleared": cleared},
        )
        session.commit()
    console.print(f"{email}: {cleared} failed sign-in(s) forgotten; the account can sign in.")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the activity log's hash chains, archived months included; report each break."""
    from partnercenter.audit import archive
    from partnercenter.db import unit_of_work
    from partnercenter.storage import get_storage

    settings = _settings()
    with unit_of_work(_session_factory(settings)) as session:
        broken = list(archive.verify(session, storage=get_storage(settings)))
    if not broken:
        console.print("The activity log is intact.")
        return
    for b in broken:
        if b.chain_key.startswith("archive"):
            console.print(f"[red]{b.chain_key}: {b.reason}[/red]")
        else:
            console.print(
                f"[red]Chain {b.chain_key}: record {b.seq} ({b.record_id}): {b.reason}[/red]"
            )
    raise typer.Exit(1)


@audit_app.command("archive")
def audit_archive() -> None:
    """Make partitions ahead; archive the months past PARTNERCENTER_AUDIT_RETENTION_MONTHS."""
    from partnercenter.clock import SandboxClock, SystemClock
    from partnercenter.jobs.tasks import JobEnv, maintain_activity_log

    settings = _settings()
    if settings.audit_retention_months is None:
        console.print(
            "PARTNERCENTER_AUDIT_RETENTION_MONTHS is not set: every month is kept; "
            "partitions ahead are made."
        )
    _console_logs(settings)
    clock = SandboxClock() if settings.sandbox else SystemClock()
    env = JobEnv(settings=settings, session_factory=_session_factory(settings), clock=clock)
    done = maintain_activity_log(env)
    console.print(f"Archived: {', '.join(done)}" if done else "No month was due for archiving.")


@audit_app.command("archives")
def audit_archives() -> None:
    """List the archived months (manifest) and, on PostgreSQL, the live monthly partitions."""
    from sqlalchemy import select

    from partnercenter.audit import partitions
    from partnercenter.audit.models import AuditArchive
    from partnercenter.db import unit_of_work

    with unit_of_work(_session_factory(_settings())) as session:
        table = Table("month", "records", "SHA-256", "file", "archived at")
        for a in session.execute(
            select(AuditArchive).order_by(AuditArchive.period_start)
        ).scalars():
            table.add_row(
                a.month,
                str(a.record_count),
                a.sha256[:16],
                a.storage_key,
                a.archived_at.isoformat(),
            )
        console.print(table)
        live = partitions.list_partitions(session)
    if live:
        console.print("Live partitions: " + ", ".join(p.label for p in live))


if __name__ == "__main__":
    app()
