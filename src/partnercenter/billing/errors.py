"""Errors of the billing area (our codes, 129xx)."""

from __future__ import annotations

from partnercenter.errors import Conflict, InvalidInput, NotFound
from partnercenter.i18n import N_


class InvalidBillingMonth(InvalidInput):
    code = 12901
    name = "invalid_billing_month"
    default_description = N_("The billing month must be written YYYY-MM, for example 2026-11.")


class MonthNotEnded(Conflict):
    code = 12902
    name = "billing_month_not_ended"
    default_description = N_("The month has not ended yet; it can be closed from its last day on.")


class EarlierPeriodOpen(Conflict):
    code = 12903
    name = "earlier_billing_period_open"
    default_description = N_(
        "An earlier month with charges is still open; close the earlier months first."
    )


class InvoiceNotFound(NotFound):
    code = 12904
    name = "invoice_not_found"
    default_description = N_("The invoice was not found.")


class NoOpenBillingMonth(Conflict):
    code = 12905
    name = "no_open_billing_month"
    default_description = N_("No open billing month was found within two years of now.")
