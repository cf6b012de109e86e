"""Months and the SQL text helpers the DQ steps share: month counters (`year × 12 + month`),
the months a run judges, year-to-date sums over month columns `m1..m12`."""

from __future__ import annotations

import re
from collections.abc import Sequence

PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
OUTLIER_WINDOW_MONTHS = 12
PRIOR_YEARS = 3

# The month of a month counter (`year × 12 + month`), as `YYYY-MM`.
PERIOD_OF_MONTH_NO = "printf('%04d-%02d', (month_no - 1) // 12, (month_no - 1) % 12 + 1)"


def month_no(period: str) -> int:
    """`YYYY-MM` → a month counter (consecutive months differ by 1): year × 12 + month."""
    return int(period[:4]) * 12 + int(period[5:7])


def period_of(month_no: int) -> str:
    """A month counter → `YYYY-MM`."""
    return f"{(month_no - 1) // 12:04d}-{(month_no - 1) % 12 + 1:02d}"


def judged_months(periods: Sequence[str]) -> list[int]:
    """Month counters whose outliers are judged for `periods`: every month Jan..P of each
    period P (the year-to-date summary counts the flags of every month of the year so far)."""
    months: set[int] = set()
    for p in periods:
        months.update(range(month_no(p) - int(p[5:7]) + 1, month_no(p) + 1))
    return sorted(months)


def ytd_sum(prefix: str, month: int) -> str:
    """SQL: the exact sum of `{prefix}1..{prefix}{month}` (NULL months count 0), as DOUBLE."""
    terms = " + ".join(f"coalesce({prefix}{m}, 0)" for m in range(1, month + 1))
    return f"CAST({terms} AS DOUBLE)"


def ytd_exists(prefix: str, month: int) -> str:
    """SQL: at least one of `{prefix}1..{prefix}{month}` was reported."""
    return f"coalesce({', '.join(f'{prefix}{m}' for m in range(1, month + 1))}) IS NOT NULL"


def months_as(source: str, prefix: str) -> str:
    """`source.m1 AS {prefix}1, …, source.m12 AS {prefix}12`."""
    return ", ".join(f"{source}.m{m} AS {prefix}{m}" for m in range(1, 13))


def year_month(period: str) -> tuple[int, int]:
    """`YYYY-MM` → (year, month)."""
    return int(period[:4]), int(period[5:7])
