"""Errors of the webhooks area."""

from __future__ import annotations

from partnercenter.errors import NotFound
from partnercenter.i18n import N_


class NoRegistration(NotFound):
    """The partner has no webhook registration."""

    name = "webhook_registration_not_found"
    default_description = N_("There is no webhook registration: register a URL first.")


class DeliveryNotFound(NotFound):
    """No delivery (test event) with this id for the partner."""

    name = "webhook_delivery_not_found"
    default_description = N_("There is no webhook delivery with this id.")
