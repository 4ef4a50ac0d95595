"""Which Partner Center operation each route mirrors, shown in ``/docs``.

Every ``/v1`` operation in the OpenAPI document gets ``x-partner-center``: the name of the
operation in Partner Center's REST reference (learn.microsoft.com, partner-center/developer)
it mirrors, or ``null`` for our extensions (keys, downloads, the provider's tools). Its
description starts with the same, so Swagger UI shows it. docs/dev/compatibility.md lists
the deliberate differences; ``tests/compat`` proves the rest.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

REFERENCE = "https://learn.microsoft.com/en-us/partner-center/developer/"

# (method, path) -> Partner Center operation; None: an extension Partner Center does not have.
MIRRORS: dict[tuple[str, str], str | None] = {
    ("POST", "/v1/auth/token"): "Partner Center authentication (App+User token)",
    ("GET", "/v1/users/me"): None,
    ("GET", "/v1/users/me/tokens"): None,
    ("POST", "/v1/users/me/tokens"): None,
    ("DELETE", "/v1/users/me/tokens/{token_id}"): None,
    ("GET", "/v1/sandbox/clock"): None,
    ("POST", "/v1/sandbox/clock"): None,
    ("GET", "/v1/partners"): None,
    ("POST", "/v1/partners"): None,
    ("GET", "/v1/partners/{partner_id}"): None,
    ("POST", "/v1/partners/{partner_id}/users"): None,
    ("GET", "/v1/partners/{partner_id}/users"): None,
    ("GET", "/v1/partners/{partner_id}/users/{user_id}"): None,
    ("PATCH", "/v1/partners/{partner_id}/users/{user_id}"): None,
    ("DELETE", "/v1/partners/{partner_id}/users/{user_id}"): None,
    ("POST", "/v1/customers"): "Create a customer",
    ("GET", "/v1/customers"): "Get a list of customers (filtered by a search field)",
    ("GET", "/v1/customers/{customer_id}"): "Get a customer by ID",
    ("POST", "/v1/customers/{customer_id}/users"): "Create user accounts for a customer",
    ("GET", "/v1/customers/{customer_id}/users"): "Get all user accounts for a customer",
    ("GET", "/v1/customers/{customer_id}/users/{user_id}"): "Get a user account by ID",
    ("GET", "/v1/customers/{customer_id}/users/{user_id}/directoryroles"): (
        "Get a user's directory roles"
    ),
    ("POST", "/v1/customers/{customer_id}/users/{user_id}/directoryroles"): (
        "Set user roles for a customer"
    ),
    ("DELETE", "/v1/customers/{customer_id}/users/{user_id}/directoryroles/{role_id}"): (
        "Remove a customer user from a role"
    ),
    ("GET", "/v1/products"): "Get a list of products (by country)",
    ("GET", "/v1/customers/{customer_id}/products"): "Get a list of products (by customer)",
    ("GET", "/v1/products/{product_id}"): "Get a product by ID",
    ("GET", "/v1/products/{product_id}/skus"): "Get a list of SKUs for a product",
    ("GET", "/v1/products/{product_id}/skus/{sku_id}"): "Get a SKU by ID",
    ("GET", "/v1/products/{product_id}/skus/{sku_id}/availabilities"): (
        "Get a list of availabilities for a SKU"
    ),
    ("GET", "/v1/products/{product_id}/skus/{sku_id}/availabilities/{availability_id}"): (
        "Get an availability by ID"
    ),
    ("POST", "/v1/catalog/import"): None,
    ("POST", "/v1/catalog/validate"): None,
    ("GET", "/v1/catalog/export"): None,
    ("GET", "/v1/taxrates"): None,
    ("PUT", "/v1/taxrates/{country}"): None,
    ("POST", "/v1/products/{product_id}/skus/{sku_id}/keys/import"): None,
    ("GET", "/v1/keyinventory"): None,
    ("POST", "/v1/products/{product_id}/skus/{sku_id}/artifacts"): None,
    ("GET", "/v1/products/{product_id}/skus/{sku_id}/artifacts"): None,
    ("GET", "/v1/offers"): "Get a list of offers for a market",
    ("GET", "/v1/offers/{offer_id}"): "Get an offer by ID",
    ("GET", "/v1/customers/{customer_id}/offers"): "Get offers for a customer",
    ("POST", "/v1/customers/{customer_id}/carts"): "Create a cart",
    ("GET", "/v1/customers/{customer_id}/carts/{cart_id}"): "Get a cart by ID",
    ("PUT", "/v1/customers/{customer_id}/carts/{cart_id}"): "Update a cart",
    ("POST", "/v1/customers/{customer_id}/carts/{cart_id}/checkout"): "Checkout a cart",
    ("GET", "/v1/customers/{customer_id}/orders"): "Get all of a customer's orders",
    ("POST", "/v1/customers/{customer_id}/orders"): "Create an order for a customer",
    ("GET", "/v1/customers/{customer_id}/orders/{order_id}"): "Get an order by ID",
    ("PATCH", "/v1/customers/{customer_id}/orders/{order_id}"): (
        "Cancel an order (software purchases)"
    ),
    ("GET", "/v1/customers/{customer_id}/orders/{order_id}/provisioningstatus"): (
        "Get order provisioning status"
    ),
    ("GET", "/v1/customers/{customer_id}/orders/{order_id}/cancellation"): None,
    ("POST", "/v1/customers/{customer_id}/orders:cancel"): None,
    ("GET", "/v1/auditrecords"): "Get a partner's activity log (audit records)",
    ("GET", "/v1/auditrecords/export"): None,
    ("GET", "/v1/invoices"): "Get a collection of invoices",
    ("GET", "/v1/invoices/unbilled/lineitems"): "Get invoice unbilled reconciliation line items",
    ("GET", "/v1/invoices/{invoice_id}"): "Get invoice by ID",
    ("GET", "/v1/invoices/{invoice_id}/lineitems"): "Get invoice line items",
    ("GET", "/v1/invoices/{invoice_id}/lineitems/{provider}/{invoice_line_item_type}"): (
        "Get invoice billed reconciliation line items"
    ),
    ("GET", "/v1/invoices/{invoice_id}/lineitems.csv"): None,
    ("GET", "/v1/invoices/{invoice_id}/documents/statement"): "Get an invoice statement",
    ("GET", "/v1/billing/periods"): None,
    ("POST", "/v1/billing/periods/{month}/close"): None,
    ("GET", "/v1/customers/{customer_id}/software"): None,
    ("GET", "/v1/customers/{customer_id}/entitlements"): "Get a collection of entitlements",
    ("GET", "/v1/customers/{customer_id}/subscriptions"): (
        "Get all of a customer's subscriptions (and by order)"
    ),
    ("GET", "/v1/customers/{customer_id}/subscriptions/{subscription_id}"): (
        "Get a subscription by ID"
    ),
    ("PATCH", "/v1/customers/{customer_id}/subscriptions/{subscription_id}"): (
        "Suspend a subscription (cancels the software purchase)"
    ),
    ("POST", "/v1/customers/{customer_id}/software/{item_id}/key"): None,
    ("POST", "/v1/customers/{customer_id}/software/{item_id}/downloadlink"): None,
    ("GET", "/v1/customers/{customer_id}/software/{item_id}/download"): None,
    ("GET", "/v1/servicerequests/supporttopics"): "Get support topics",
    ("POST", "/v1/servicerequests"): "Create a service request (locale taken as en-US)",
    ("GET", "/v1/servicerequests"): "Get all service requests for a partner",
    ("POST", "/v1/servicerequests/{agent_locale}"): "Create a service request",
    ("GET", "/v1/servicerequests/{request_id}"): "Get a service request by ID",
    ("PATCH", "/v1/servicerequests/{request_id}"): "Update a service request",
    ("POST", "/v1/servicerequests/{request_id}/attachments"): None,
    ("GET", "/v1/servicerequests/{request_id}/attachments/{attachment_id}"): None,
    ("GET", "/v1/customers/{customer_id}/servicerequests"): (
        "Get all service requests for a customer"
    ),
    ("GET", "/v1/customers/{customer_id}/servicerequests/{request_id}"): (
        "Get a service request by ID (customer)"
    ),
    ("PATCH", "/v1/customers/{customer_id}/servicerequests/{request_id}"): (
        "Update a service request (customer)"
    ),
}

EXTENSION = "Extension: Partner Center has no such operation."


def annotate(spec: dict[str, Any]) -> dict[str, Any]:
    """Add ``x-partner-center`` (and a first line of description) to every /v1 operation."""
    for path, operations in spec.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            mirrors = MIRRORS.get((method.upper(), path), ...)
            if mirrors is ...:
                continue  # a route added later: tests/compat/test_docs.py names it
            operation["x-partner-center"] = mirrors
            head = f"Partner Center: {mirrors}." if mirrors else EXTENSION
            rest = operation.get("description", "")
            operation["description"] = f"**{head}**\n\n{rest}".strip()
    return spec


def install(app: FastAPI) -> None:
    """Serve the OpenAPI document with each operation's Partner Center counterpart."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = annotate(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
