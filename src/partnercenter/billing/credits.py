"""Cancellation windows and credits: how much a cancelled line item gives back.

Pure functions over ``Decimal`` and aware UTC datetimes; the cancellation service reads the
line, its charges and earlier credits, calls :func:`assess`, and records the result. The
formula and worked examples are in ``docs/dev/cancellation.md``.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from partnercenter.catalog.models import CreditRule
from partnercenter.money import Price, quantize

DAY = timedelta(days=1)


class Refusal(StrEnum):
    """Why a line cannot be cancelled (stable names; API codes live in orders/errors.py)."""

    NOT_CANCELLABLE = "product_not_cancellable"
    WINDOW_PASSED = "cancellation_window_passed"
    NOTHING_LEFT = "nothing_left_to_credit"


@dataclass(frozen=True)
class Rules:
    """The part of a product's cancellation policy that decides the credit."""

    window_days: int | None
    credit_rule: CreditRule
    full_credit_days: int = 0
    fee_percent: Decimal = Decimal(0)


@dataclass(frozen=True)
class Assessment:
    """What cancelling now would do."""

    cancellable: bool
    refusal: Refusal | None
    deadline: datetime | None
    days_remaining: int
    fraction: Decimal
    credit: Price


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, the day clamped to the month's length."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def term_months(term_duration: str | None) -> int | None:
    """Months of an ISO 8601 term (``P1M``, ``P1Y``, ``P3Y``); None for perpetual."""
    if not term_duration:
        return None
    value = term_duration.upper()
    if value.startswith("P") and value.endswith("Y") and value[1:-1].isdigit():
        return int(value[1:-1]) * 12
    if value.startswith("P") and value.endswith("M") and value[1:-1].isdigit():
        return int(value[1:-1])
    raise ValueError(f"unsupported term duration {term_duration!r}")


def cycle_months(billing_cycle: str, term_duration: str | None) -> int | None:
    """Months one billing period covers: 1 monthly, 12 annual, the whole term otherwise.

    None for perpetual software (one charge, no period). An annual cycle on a term shorter
    than a year (the catalog does not offer one) covers the term.
    """
    term = term_months(term_duration)
    if term is None:
        return None
    if billing_cycle == "monthly":
        return 1
    if billing_cycle == "annual":
        return min(12, term)
    return term


def period_count(billing_cycle: str, term_duration: str | None) -> int:
    """How many periods a term is billed in: 36 for P3Y monthly, 3 for P3Y annual, else 1."""
    term = term_months(term_duration)
    months = cycle_months(billing_cycle, term_duration)
    if term is None or months is None:
        return 1
    return -(-term // months)


def billing_period(
    purchased_at: datetime, now: datetime, months: int = 1, *, periods: int | None = None
) -> tuple[datetime, datetime]:
    """The billing period of ``months`` months, anchored on the purchase, containing ``now``.

    Periods run purchase + k*months to purchase + (k+1)*months (20 Jan -> 20 Feb; 31 Jan ->
    28/29 Feb; a yearly period from 29 Feb 2028 ends 28 Feb 2029). Before the purchase, the
    first period; after the last of ``periods`` (when given), the last.
    """
    elapsed = (now.year - purchased_at.year) * 12 + now.month - purchased_at.month
    k = max(elapsed // months, 0)
    if k > 0 and add_months(purchased_at, k * months) > now:
        k -= 1
    while add_months(purchased_at, (k + 1) * months) <= now:
        k += 1
    if periods is not None:
        k = min(k, periods - 1)
    return add_months(purchased_at, k * months), add_months(purchased_at, (k + 1) * months)


def monthly_period(purchased_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The monthly billing period (anchored on the purchase date) that contains ``now``."""
    return billing_period(purchased_at, now, 1)


def unused_fraction(start: datetime, end: datetime, now: datetime) -> Decimal:
    """Unused whole days of [start, end) over its days; the day in progress counts as used."""
    total_days = max((end - start).days, 1)
    used_days = min(max(math.floor((now - start) / DAY), 0), total_days)
    return Decimal(total_days - used_days) / Decimal(total_days)


def deadline_for(purchased_at: datetime, rules: Rules) -> datetime | None:
    if rules.window_days is None:
        return None
    return purchased_at + timedelta(days=rules.window_days)


def days_remaining(deadline: datetime | None, now: datetime) -> int:
    """Whole days left to cancel, rounding a part day up; 0 once the deadline has passed."""
    if deadline is None or now >= deadline:
        return 0
    return math.ceil((deadline - now) / DAY)


def credit_of(charged: Price, fraction: Decimal, already_credited: Price | None) -> Price:
    """``charged`` times ``fraction``, rounded once per part, never above what is left."""
    currency = charged.currency
    already = already_credited or Price.zero(currency)
    left_net = charged.net - already.net
    left_tax = charged.tax - already.tax
    net = min(quantize(charged.net * fraction, currency), left_net)
    tax = min(quantize(charged.tax * fraction, currency), left_tax)
    floor = quantize(Decimal(0), currency)
    net, tax = max(net, floor), max(tax, floor)
    return Price(net, tax, net + tax, currency)


def assess(
    *,
    rules: Rules,
    purchased_at: datetime,
    now: datetime,
    billing_cycle: str,
    term_duration: str | None,
    charged: Price,
    already_credited: Price | None = None,
) -> Assessment:
    """Whether a line can be cancelled at ``now`` and the credit it gives.

    ``charged`` is what the line was charged for the period the credit refers to: the whole
    charge for one-time (upfront) billing, the current period's charge for monthly and annual
    billing (a 3-year term billed annually credits only the year in progress: the years after
    it are never billed once the line is cancelled).
    """
    deadline = deadline_for(purchased_at, rules)
    remaining = days_remaining(deadline, now)
    zero = Price.zero(charged.currency)

    def refuse(reason: Refusal) -> Assessment:
        return Assessment(False, reason, deadline, remaining, Decimal(0), zero)

    if rules.credit_rule == CreditRule.NONE or rules.window_days == 0:
        return refuse(Refusal.NOT_CANCELLABLE)
    if deadline is not None and now >= deadline:
        return refuse(Refusal.WINDOW_PASSED)

    in_full_credit = now < purchased_at + timedelta(days=rules.full_credit_days)
    if rules.credit_rule == CreditRule.FULL or in_full_credit:
        fraction = Decimal(1)
    else:
        months = cycle_months(billing_cycle, term_duration)
        if months is None:
            start, end = purchased_at, purchased_at  # perpetual: nothing to prorate over
        else:
            periods = period_count(billing_cycle, term_duration)
            start, end = billing_period(purchased_at, now, months, periods=periods)
        fraction = unused_fraction(start, end, now) if end > start else Decimal(1)
        if rules.credit_rule == CreditRule.PRORATED_LESS_FEE:
            fraction = fraction * (Decimal(100) - rules.fee_percent) / Decimal(100)

    credit = credit_of(charged, fraction, already_credited)
    if credit.gross <= 0 and charged.gross > 0:
        return refuse(Refusal.NOTHING_LEFT)
    return Assessment(True, None, deadline, remaining, fraction, credit)


def cap_credit(credit: Price, cap_left: Decimal | None) -> Price:
    """Limit a credit's gross to what a refund cap still allows, keeping the tax share."""
    if cap_left is None or credit.gross <= cap_left:
        return credit
    currency = credit.currency
    if cap_left <= 0:
        return Price.zero(currency)
    share = cap_left / credit.gross
    net = quantize(credit.net * share, currency)
    tax = quantize(credit.tax * share, currency)
    return Price(net, tax, net + tax, currency)
