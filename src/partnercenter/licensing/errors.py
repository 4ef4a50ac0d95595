"""Errors of the software area (16xxx); the link-token errors live beside the tokens."""

from __future__ import annotations

from partnercenter.errors import DomainError, NotFound
from partnercenter.i18n import N_
from partnercenter.licensing.links import InvalidLinkLifetime, LinkExpired, LinkInvalid

__all__ = [
    "InvalidLinkLifetime",
    "LinkExpired",
    "LinkInvalid",
    "LinkRevoked",
    "NoProductKey",
    "PurchaseCancelled",
    "SoftwareItemNotFound",
]


class SoftwareItemNotFound(NotFound):
    code = 16020
    name = "software_item_not_found"
    default_description = N_("The software purchase was not found.")


class PurchaseCancelled(DomainError):
    code = 16021
    name = "software_purchase_cancelled"
    status = 410
    default_description = N_(
        "This purchase was cancelled: its product keys and downloads are no longer available."
    )


class LinkRevoked(DomainError):
    code = 16022
    name = "download_link_revoked"
    status = 410
    default_description = N_(
        "This download link no longer works because the purchase was cancelled."
    )


class NoProductKey(DomainError):
    code = 16023
    name = "software_has_no_key"
    status = 409
    default_description = N_("This software needs no product key.")
