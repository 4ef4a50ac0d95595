"""`partnercenter support send-mail`: send the support mail still waiting in the outbox."""

from __future__ import annotations

import typer
from rich.console import Console

support_app = typer.Typer(help="Customer support requests.", no_args_is_help=True)

console = Console()


@support_app.command("send-mail")
def send_mail(limit: int = typer.Option(500, help="Send at most this many mails.")) -> None:
    """Send unsent notices to support contacts (each is retried up to 10 times)."""
    from partnercenter.cli.main import _console_logs, _now, _session_factory, _settings
    from partnercenter.support import mail

    settings = _settings()
    _console_logs(settings)  # each mail not sent is logged with its reason
    sessions = _session_factory(settings)
    sent = mail.deliver_pending(sessions, settings, now=_now(), limit=limit)
    console.print(f"{sent} mail(s) sent through {settings.smtp_host}:{settings.smtp_port}.")
    with sessions() as session:
        waiting = mail.unsent(session, limit=limit)
        if waiting:
            last = next((m.last_error for m in waiting if m.last_error), None)
            console.print(
                f"[yellow]{len(waiting)} mail(s) not sent yet[/yellow]"
                + (f"; one error: {last}" if last else "")
                + ". The provider's Jobs page lists them; the warnings above say why."
            )
