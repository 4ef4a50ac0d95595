"""Errors of cancelling a purchase: Partner Center's codes where it has them, ours (1214x) else."""

from __future__ import annotations

from typing import Any

from partnercenter.errors import DomainError, InvalidInput
from partnercenter.i18n import N_


class CancellationWindowPassed(DomainError):
    """Partner Center's 900117; the number of days is the product's policy's."""

    code = 900117
    name = "cancellation_window_passed"
    status = 400
    default_description = N_("You have passed your cancellation window.")


class OrderNotCancellable(DomainError):
    """Partner Center's 800061: already cancelled, or nothing is left to credit."""

    code = 800061
    name = "order_not_cancellable"
    status = 400
    default_description = N_("The order can't be cancelled.")


class ProductNotCancellable(DomainError):
    """Partner Center's 800019: the product type can never be cancelled (software plans)."""

    code = 800019
    name = "product_not_cancellable"
    status = 400
    default_description = N_("This product type can't be cancelled.")


class SupportRequestRequired(DomainError):
    """The provider wants a customer support request for cancellations above an amount."""

    code = 12140
    name = "cancellation_needs_support_request"
    status = 400
    default_description = N_(
        "This cancellation needs more information: file a customer support request."
    )

    def __init__(
        self,
        description: str | None = None,
        *,
        support_request_uri: str,
        data: list[Any] | None = None,
        source: str = "",
    ) -> None:
        super().__init__(description, data=data, source=source)
        self.support_request_uri = support_request_uri

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["supportRequestUri"] = self.support_request_uri
        return body


class LineItemNotFound(InvalidInput):
    code = 12141
    name = "line_item_not_found"
    default_description = N_("The order has no line item with this number.")


class InvalidOrderStatus(InvalidInput):
    code = 12142
    name = "invalid_order_status"
    default_description = N_('Only "cancelled" can be set as an order\'s status.')
