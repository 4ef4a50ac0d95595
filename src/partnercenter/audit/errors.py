"""Errors of the activity log: every bad query parameter says exactly what is wrong.

They share Partner Center's invalid-input code (10010); ``errorName`` and ``source`` (the
parameter at fault) tell them apart. See ``docs/dev/errors.md``.
"""

from __future__ import annotations

from partnercenter.errors import InvalidInput
from partnercenter.i18n import N_


class InvalidDate(InvalidInput):
    name = "invalid_date"
    default_description = N_(
        "The date is malformed: use YYYY-MM-DD or an ISO 8601 date-time such as "
        "2026-11-01T00:00:00Z."
    )


class DateRangeReversed(InvalidInput):
    name = "date_range_reversed"
    default_description = N_("startDate is after endDate.")


class InvalidFilter(InvalidInput):
    name = "invalid_filter"
    default_description = N_("The filter is not valid.")


class InvalidPageSize(InvalidInput):
    name = "invalid_page_size"
    default_description = N_("size must be a whole number from 1 to 500.")


class InvalidContinuationToken(InvalidInput):
    name = "invalid_continuation_token"
    default_description = N_("The continuation token is not valid for this query.")
