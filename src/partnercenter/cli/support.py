"""`partnercenter support send-mail`: send the support mail still waiting in the outbox."""

from __future__ import annotations

import typer
from rich.console import Console

support_app = typer.Typer(help="Customer support requests.", no_args_is_help=True)

console = Console()


@support_app.command("send-mail")
def send_mail(limit: int = typer.Option(500, help="Send at most this many mails.")) -> None:
    """Send unsent notices to support contacts (each is retried up to 10 times)."""
    from partnercenter.cli.main import _now, _session_factory, _settings
    from partnercenter.support import mail

    settings = _settings()
    sent = mail.deliver_pending(_session_factory(settings), settings, now=_now(), limit=limit)
    console.print(f"{sent} mail(s) sent through {settings.smtp_host}:{settings.smtp_port}.")
