"""Errors of the orders area: Partner Center's codes where it has them, ours (121xx) else."""

from __future__ import annotations

from partnercenter.errors import Conflict, DomainError, InvalidInput, NotFound
from partnercenter.i18n import N_


class CartNotFound(NotFound):
    code = 12110
    name = "cart_not_found"
    default_description = N_("The cart was not found.")


class OrderNotFound(NotFound):
    code = 12111
    name = "order_not_found"
    default_description = N_("The order was not found.")


class CartExpired(DomainError):
    code = 12112
    name = "cart_expired"
    status = 410
    default_description = N_("The cart has expired (carts live 7 days); create a new cart.")


class CartBeingProcessed(Conflict):
    """Partner Center's 800064: another request holds the cart."""

    code = 800064
    name = "cart_being_processed"
    default_description = N_("The cart is being processed by another request; retry shortly.")


class CartAlreadySubmitted(Conflict):
    """Partner Center's 800065: the cart was checked out; it cannot be changed."""

    code = 800065
    name = "cart_already_submitted"
    default_description = N_("The cart has already been submitted and cannot be changed.")


class CurrencyMismatch(InvalidInput):
    code = 12113
    name = "currency_mismatch"
    default_description = N_("The currency does not match the offer's currency in this market.")


class MixedCurrencies(InvalidInput):
    code = 12114
    name = "mixed_currencies"
    default_description = N_("All items of one cart must be priced in the same currency.")


class DuplicateLineId(InvalidInput):
    code = 12115
    name = "duplicate_line_id"
    default_description = N_("Two line items of the cart have the same id.")


class CustomerHasNoMarket(InvalidInput):
    code = 12116
    name = "customer_without_market"
    default_description = N_("The customer has no market; set its country first.")
