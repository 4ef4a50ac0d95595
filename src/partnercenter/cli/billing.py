"""`partnercenter billing close YYYY-MM | verify`: the month close and its check."""

from __future__ import annotations

from datetime import datetime, timedelta

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

billing_app = typer.Typer(help="Monthly invoices: close a month, verify the invoices.")

console = Console()
err = Console(stderr=True)

STEPS = {
    "charges": "Monthly charges",
    "lines": "Invoice lines",
    "invoices": "Invoices",
}


def _now(session: Session) -> datetime:
    """The time every rule reads: the sandbox clock's when the deployment is in sandbox mode."""
    from partnercenter.cli.main import _now as system_now
    from partnercenter.cli.main import _settings
    from partnercenter.identity.models import SandboxClockState

    now = system_now()
    if _settings().sandbox:
        state = session.get(SandboxClockState, 1)
        if state is not None:
            now += timedelta(seconds=state.offset_seconds)
    return now


@billing_app.command("close")
def close(month: str = typer.Argument(..., help="The month to close, YYYY-MM.")) -> None:
    """Issue every invoice of a month (safe to rerun: a closed month is left as it is)."""
    from partnercenter.billing import services
    from partnercenter.cli.main import _session_factory, _settings
    from partnercenter.db import unit_of_work
    from partnercenter.errors import DomainError

    with unit_of_work(_session_factory(_settings())) as session:
        now = _now(session)
        with Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            tasks = {
                step: bar.add_task(label, total=None, start=False) for step, label in STEPS.items()
            }

            def progress(step: str, done: int, total: int) -> None:
                task = tasks[step]
                bar.start_task(task)
                bar.update(task, completed=done, total=max(total, 1))
                if done >= total:
                    bar.update(task, completed=max(total, 1))

            try:
                services.start_close(session, month=month, now=now)
                session.commit()
                result = services.close_period(session, month=month, now=now, progress=progress)
                session.commit()
            except DomainError as exc:
                err.print(f"[red]{exc.description}[/red]")
                raise typer.Exit(1) from exc
    if result.already_closed:
        console.print(f"{month} was already closed: nothing was issued again.")
    else:
        console.print(
            f"{month} closed: {result.invoices_issued} invoice(s) "
            f"({result.credit_notes} credit note(s)), {result.lines_billed} line(s), "
            f"{result.cycle_charges_created} monthly charge(s) recorded."
        )
    if result.first_number:
        console.print(f"Numbers {result.first_number} to {result.last_number}.")
    table = Table("currency", "invoices", "net", "tax", "total")
    for total in sorted(result.totals.values(), key=lambda t: t.currency):
        table.add_row(
            total.currency, str(total.invoices), str(total.net), str(total.tax), str(total.gross)
        )
    if result.totals:
        console.print(table)


@billing_app.command("verify")
def verify() -> None:
    """Check that every closed month's invoices equal the charges and credits recorded for it."""
    from partnercenter.billing import services
    from partnercenter.cli.main import _session_factory, _settings
    from partnercenter.db import unit_of_work

    with unit_of_work(_session_factory(_settings())) as session:
        report = services.verify(session, now=_now(session))
    for stuck in report.stuck:
        err.print(stuck.describe(), style="red", markup=False, highlight=False)
    if report.ok:
        console.print(
            f"OK: {len(report.months)} closed month(s), {report.groups_checked} invoice(s) "
            "by partner and currency match their charges and credits."
        )
        return
    if not report.mismatches:
        raise typer.Exit(1)
    err.print(f"[red]{len(report.mismatches)} mismatch(es):[/red]")
    for m in report.mismatches[:200]:
        err.print(
            f"  {m.month} partner {m.partner_id} {m.currency}: {m.kind} {m.detail} "
            f"expected {m.expected} found {m.found}",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(1)
