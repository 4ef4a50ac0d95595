"""Errors of the catalog area: Partner Center's codes where it has them, ours (13xxx) else."""

from __future__ import annotations

from typing import Any

from partnercenter.errors import Conflict, DomainError, InvalidInput, NotFound
from partnercenter.i18n import N_


class ProductNotFound(NotFound):
    code = 400013
    name = "product_not_found"
    default_description = N_("The product was not found.")


class SkuNotFound(NotFound):
    code = 400018
    name = "sku_not_found"
    default_description = N_("The SKU was not found.")


class AvailabilityNotFound(NotFound):
    code = 400019
    name = "availability_not_found"
    default_description = N_("The availability was not found.")


class MarketUnavailable(DomainError):
    """Partner Center's 800070: the offer is not available in the customer's market."""

    code = 800070
    name = "market_unavailable"
    status = 400
    default_description = N_("The offer is not available in the customer's market.")


class InvalidQuantity(InvalidInput):
    code = 10010
    name = "invalid_quantity"
    default_description = N_("The quantity is outside what the SKU allows.")


class InvalidTerm(InvalidInput):
    code = 13001
    name = "invalid_term"
    default_description = N_("The term or billing cycle is not offered for this item.")


class InvalidCatalogItemId(InvalidInput):
    code = 13002
    name = "invalid_catalog_item_id"
    default_description = N_("A catalog item id has the form PRODUCT:SKU:AVAILABILITY.")


class CatalogDocumentInvalid(InvalidInput):
    """The catalog document has errors; ``data`` lists every one with its path."""

    code = 13003
    name = "catalog_document_invalid"
    default_description = N_("The catalog document is invalid; nothing was changed.")

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        first = errors[0] if errors else {"path": "", "message": ""}
        description = (
            f"The catalog document has {len(errors)} error(s); nothing was changed. "
            f"First: {first['path']}: {first['message']}"
        )
        super().__init__(description, data=errors, source="catalog")
        self.errors = errors


class KeyImportInvalid(InvalidInput):
    """The key file has bad rows; ``data`` lists every one with its row number."""

    code = 13004
    name = "key_import_invalid"
    default_description = N_("The key file has errors; no key was imported.")

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        first = errors[0] if errors else {"row": 0, "message": ""}
        description = (
            f"The key file has {len(errors)} bad row(s); no key was imported. "
            f"First: row {first['row']}: {first['message']}"
        )
        super().__init__(description, data=errors, source="keys")
        self.errors = errors


class OutOfKeys(Conflict):
    code = 13005
    name = "out_of_keys"
    default_description = N_("No product key is left in inventory for this SKU and version.")


class KeyNotFound(NotFound):
    code = 13006
    name = "product_key_not_found"
    default_description = N_("The product key was not found.")


class InvalidArtifact(InvalidInput):
    code = 13007
    name = "invalid_artifact"
    default_description = N_("The artifact's version, language, bitness or file is invalid.")


class ArtifactNotFound(NotFound):
    code = 13008
    name = "artifact_not_found"
    default_description = N_("No file exists for this version, language and bitness.")


class InvalidTaxRate(InvalidInput):
    code = 13009
    name = "invalid_tax_rate"
    default_description = N_("A tax rate is a percentage from 0 to 100.")


class KeyDecryptionFailed(DomainError):
    code = 13010
    name = "key_decryption_failed"
    status = 500
    default_description = N_(
        "A stored product key could not be decrypted: the key encryption key has changed."
    )
