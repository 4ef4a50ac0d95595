"""Errors of the background jobs area."""

from __future__ import annotations

from partnercenter.errors import NotFound
from partnercenter.i18n import N_


class MailNotFound(NotFound):
    """No unsent mail with this id (unknown, or already sent)."""

    name = "mail_not_found"
    default_description = N_("There is no unsent mail with this id.")
