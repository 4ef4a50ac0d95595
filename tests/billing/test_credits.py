"""Cancellation credits: table-driven over the days of the window, month ends, leap years,
JPY and a tax-inclusive AU market."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from partnercenter.billing.credits import (
    Refusal,
    Rules,
    add_months,
    assess,
    billing_period,
    cap_credit,
    cycle_months,
    days_remaining,
    monthly_period,
    period_count,
)
from partnercenter.catalog.models import CreditRule
from partnercenter.money import Price, line_price

D = Decimal
SOFTWARE = Rules(window_days=30, credit_rule=CreditRule.FULL)
SUBSCRIPTION = Rules(window_days=30, credit_rule=CreditRule.PRORATED)
PLAN = Rules(window_days=None, credit_rule=CreditRule.NONE)
AZURE = Rules(
    window_days=None,
    credit_rule=CreditRule.PRORATED_LESS_FEE,
    full_credit_days=5,
    fee_percent=D(12),
)
BOUGHT = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def usd(net: str, tax: str) -> Price:
    return Price(D(net), D(tax), D(net) + D(tax), "USD")


@pytest.mark.parametrize(
    ("after", "cancellable", "days_left"),
    [
        (timedelta(0), True, 30),
        (timedelta(days=1), True, 29),
        (timedelta(days=29), True, 1),
        (timedelta(days=30) - timedelta(seconds=1), True, 1),
        (timedelta(days=30), False, 0),
        (timedelta(days=30, seconds=1), False, 0),
        (timedelta(days=31), False, 0),
    ],
)
def test_perpetual_software_is_fully_credited_inside_the_30_day_window(
    after: timedelta, cancellable: bool, days_left: int
) -> None:
    charged = usd("1000.00", "82.50")
    result = assess(
        rules=SOFTWARE,
        purchased_at=BOUGHT,
        now=BOUGHT + after,
        billing_cycle="one_time",
        term_duration=None,
        charged=charged,
    )
    assert result.cancellable is cancellable
    assert result.days_remaining == days_left
    assert result.deadline == BOUGHT + timedelta(days=30)
    if cancellable:
        assert result.credit == charged
    else:
        assert result.refusal == Refusal.WINDOW_PASSED
        assert result.credit.gross == 0


@pytest.mark.parametrize(
    ("day", "expected_net", "expected_tax"),
    [
        # 1-year term from 2026-03-10: 365 days. Credit = charged x (365 - used) / 365.
        (0, "3650.00", "365.00"),
        (1, "3640.00", "364.00"),
        (29, "3360.00", "336.00"),
    ],
)
def test_upfront_subscription_credit_is_prorated_over_the_term(
    day: int, expected_net: str, expected_tax: str
) -> None:
    result = assess(
        rules=SUBSCRIPTION,
        purchased_at=BOUGHT,
        now=BOUGHT + timedelta(days=day, hours=3),
        billing_cycle="annual",
        term_duration="P1Y",
        charged=usd("3650.00", "365.00"),
    )
    assert result.cancellable
    assert result.credit == usd(expected_net, expected_tax)


def test_monthly_subscription_credits_the_unused_days_of_the_current_month_across_month_end() -> (
    None
):
    bought = datetime(2026, 1, 20, 9, 0, tzinfo=UTC)
    # Day 25 is 2026-02-14, inside the first monthly period 01-20 .. 02-20 (31 days).
    now = bought + timedelta(days=25)
    start, end = monthly_period(bought, now)
    assert (start, end) == (bought, datetime(2026, 2, 20, 9, 0, tzinfo=UTC))
    result = assess(
        rules=SUBSCRIPTION,
        purchased_at=bought,
        now=now,
        billing_cycle="monthly",
        term_duration="P1Y",
        charged=usd("310.00", "31.00"),
    )
    # 31-day period, 25 days used: 6/31 of the month's charge.
    assert result.credit == usd("60.00", "6.00")


def test_february_of_a_leap_year_has_29_days() -> None:
    bought = datetime(2028, 2, 1, 0, 0, tzinfo=UTC)
    start, end = monthly_period(bought, bought + timedelta(days=10))
    assert (end - start).days == 29
    result = assess(
        rules=SUBSCRIPTION,
        purchased_at=bought,
        now=bought + timedelta(days=10),
        billing_cycle="monthly",
        term_duration="P1M",
        charged=usd("29.00", "0.00"),
    )
    assert result.credit == usd("19.00", "0.00")
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1).day == 29
    assert add_months(datetime(2027, 1, 31, tzinfo=UTC), 1).day == 28


def test_jpy_credits_round_once_to_whole_yen() -> None:
    charged = Price(D(10000), D(1000), D(11000), "JPY")
    result = assess(
        rules=SUBSCRIPTION,
        purchased_at=BOUGHT,
        now=BOUGHT + timedelta(days=7),
        billing_cycle="annual",
        term_duration="P1Y",
        charged=charged,
    )
    # 358/365 of 10000 = 9808.219... -> 9808; of 1000 = 980.82 -> 981.
    assert result.credit == Price(D(9808), D(981), D(10789), "JPY")


def test_au_tax_inclusive_line_is_credited_net_tax_and_gross_alike() -> None:
    charged = line_price(D("1100.00"), 1, "AUD", D("0.10"), tax_inclusive=True)
    assert charged == Price(D("1000.00"), D("100.00"), D("1100.00"), "AUD")
    result = assess(
        rules=SOFTWARE,
        purchased_at=BOUGHT,
        now=BOUGHT + timedelta(days=3),
        billing_cycle="one_time",
        term_duration=None,
        charged=charged,
    )
    assert result.credit == charged


def test_software_plans_can_never_be_cancelled() -> None:
    result = assess(
        rules=PLAN,
        purchased_at=BOUGHT,
        now=BOUGHT,
        billing_cycle="monthly",
        term_duration="P1Y",
        charged=usd("10.00", "0.00"),
    )
    assert not result.cancellable and result.refusal == Refusal.NOT_CANCELLABLE


def test_azure_reservation_full_within_5_days_then_prorated_less_12_percent() -> None:
    charged = usd("3650.00", "0.00")
    early = assess(
        rules=AZURE,
        purchased_at=BOUGHT,
        now=BOUGHT + timedelta(days=4, hours=23),
        billing_cycle="one_time",
        term_duration="P1Y",
        charged=charged,
    )
    assert early.credit == charged
    later = assess(
        rules=AZURE,
        purchased_at=BOUGHT,
        now=BOUGHT + timedelta(days=65),
        billing_cycle="one_time",
        term_duration="P1Y",
        charged=charged,
    )
    # 300/365 of 3650 = 3000, less 12 % = 2640.
    assert later.credit == usd("2640.00", "0.00")


def test_a_credit_never_exceeds_what_is_left_after_earlier_credits() -> None:
    charged = usd("100.00", "10.00")
    result = assess(
        rules=SOFTWARE,
        purchased_at=BOUGHT,
        now=BOUGHT,
        billing_cycle="one_time",
        term_duration=None,
        charged=charged,
        already_credited=usd("70.00", "7.00"),
    )
    assert result.credit == usd("30.00", "3.00")
    nothing = assess(
        rules=SOFTWARE,
        purchased_at=BOUGHT,
        now=BOUGHT,
        billing_cycle="one_time",
        term_duration=None,
        charged=charged,
        already_credited=charged,
    )
    assert not nothing.cancellable and nothing.refusal == Refusal.NOTHING_LEFT


def test_refund_cap_keeps_the_tax_share() -> None:
    capped = cap_credit(usd("1000.00", "100.00"), D("550.00"))
    assert capped == usd("500.00", "50.00")
    assert cap_credit(usd("10.00", "1.00"), None) == usd("10.00", "1.00")


def test_days_remaining_rounds_a_part_day_up() -> None:
    deadline = BOUGHT + timedelta(days=30)
    assert days_remaining(deadline, deadline - timedelta(hours=1)) == 1
    assert days_remaining(deadline, deadline) == 0
    assert days_remaining(None, BOUGHT) == 0


def test_a_three_year_term_billed_annually_credits_only_the_year_in_progress() -> None:
    bought = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
    # Day 10 of the first year (365 days): 355/365 of the first year's 2 x 57.85.
    first_year = assess(
        rules=SUBSCRIPTION,
        purchased_at=bought,
        now=bought + timedelta(days=10),
        billing_cycle="annual",
        term_duration="P3Y",
        charged=usd("115.70", "11.57"),
    )
    assert first_year.credit == usd("112.53", "11.25")
    # 19 May 2027 is day 60 of the second year, 20 Mar 2027 - 20 Mar 2028 (366 days, it holds
    # 29 Feb 2028): 306/366 of that year's charge, not of the three years'.
    now = datetime(2027, 5, 19, 9, 0, tzinfo=UTC)
    start, end = billing_period(bought, now, cycle_months("annual", "P3Y") or 0, periods=3)
    assert (start.date().isoformat(), end.date().isoformat()) == ("2027-03-20", "2028-03-20")
    second_year = assess(
        rules=Rules(window_days=None, credit_rule=CreditRule.PRORATED),
        purchased_at=bought,
        now=now,
        billing_cycle="annual",
        term_duration="P3Y",
        charged=usd("115.70", "11.57"),
    )
    assert second_year.credit == usd("96.73", "9.67")
    # Upfront (one-time) billing of the same term prorates over all three years (1,096 days).
    upfront = assess(
        rules=SUBSCRIPTION,
        purchased_at=bought,
        now=bought + timedelta(days=10),
        billing_cycle="one_time",
        term_duration="P3Y",
        charged=usd("347.10", "34.71"),
    )
    # 347.10 x 1086/1096 = 343.933 -> 343.93; 34.71 x 1086/1096 = 34.393 -> 34.39
    assert upfront.credit == usd("343.93", "34.39")


def test_periods_per_term_and_cycle() -> None:
    assert [
        (term, cycle, cycle_months(cycle, term), period_count(cycle, term))
        for term, cycle in [
            ("P1M", "monthly"),
            ("P1Y", "monthly"),
            ("P1Y", "annual"),
            ("P1Y", "one_time"),
            ("P3Y", "monthly"),
            ("P3Y", "annual"),
            ("P3Y", "one_time"),
            (None, "one_time"),
        ]
    ] == [
        ("P1M", "monthly", 1, 1),
        ("P1Y", "monthly", 1, 12),
        ("P1Y", "annual", 12, 1),
        ("P1Y", "one_time", 12, 1),
        ("P3Y", "monthly", 1, 36),
        ("P3Y", "annual", 12, 3),
        ("P3Y", "one_time", 36, 1),
        (None, "one_time", None, 1),
    ]
