"""The reporting calendar: periods, due dates, cut-offs, the schedule day and the deadline runs.

One place for every date rule, so compliance (SQL), the monthly schedule and the deadline sensor
cannot disagree. Periods are `YYYY-MM` text; dates are *local* dates of the facility's kab/kota
(a deadline is the end of that local day).

- Due date of month M for a reporting level: day `reporting.due_day[level]` of month M+1
  (network facility → puskesmas: day 5; puskesmas → Dinkes: day 10, domain.md §3).
- Cut-off of month M: the last day of month M + `reporting.cutoff_months_after_period`; an
  expected report with nothing received by then is `missing`.
- The monthly job runs on `schedule_day`: the day after the later due day + grace, when every
  report of the previous month is due; the deadline sensor requests only what the schedule does
  not cover: a recompute of the month whose cut-off has just passed.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
from dataclasses import dataclass
from datetime import date

from kolab_pipeline.config import ReportingConfig, Settings

REPORTING_LEVELS = ("network_to_pkm", "pkm_to_dinkes")


# --- periods ------------------------------------------------------------------------------------

def validate_period(period: str) -> str:
    """`period` itself when it is `YYYY-MM` with a month 01–12; ValueError otherwise."""
    p = period
    if len(p) != 7 or p[4] != "-" or not (p[:4].isdigit() and p[5:].isdigit()) \
            or not 1 <= int(p[5:]) <= 12:
        raise ValueError(f"period {p!r}: expected YYYY-MM")
    return p


def validate_periods(periods: list[str]) -> list[str]:
    """The distinct periods, sorted; ValueError on any that is not `YYYY-MM`."""
    return [validate_period(p) for p in sorted(set(periods))]


def month_start(period: str) -> date:
    """`YYYY-MM` → first day of that month."""
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, 1)


def month_end(period: str) -> date:
    """`YYYY-MM` → last day of that month."""
    d = month_start(period)
    return date(d.year, d.month, _stdlib_calendar.monthrange(d.year, d.month)[1])


def add_months(period: str, n: int) -> str:
    """The period `n` months after (`n` < 0: before) `period`."""
    d = month_start(period)
    idx = d.year * 12 + d.month - 1 + n
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def period_of(day: date) -> str:
    """The period (`YYYY-MM`) a date falls in."""
    return f"{day.year:04d}-{day.month:02d}"


def year_start(period: str) -> str:
    """January of the period's year: the first month of its year-to-date."""
    return f"{period[:4]}-01"


def default_partition_start(today: date | None = None) -> date:
    """First day of the month two years before `today` (design: default two years back)."""
    today = today or date.today()
    return month_start(add_months(period_of(today), -24))


# --- deadlines ----------------------------------------------------------------------------------

def due_day(reporting: ReportingConfig, level: str) -> int:
    """Day of month M+1 on which a report of `level` for month M is due."""
    if level == "network_to_pkm":
        return reporting.due_day.network_to_pkm
    if level == "pkm_to_dinkes":
        return reporting.due_day.pkm_to_dinkes
    raise ValueError(f"reporting level {level!r}: expected one of {REPORTING_LEVELS}")


def due_date(reporting: ReportingConfig, period: str, level: str) -> date:
    """Due date of a `level` report for `period` (local date; grace days not included)."""
    nxt = month_start(add_months(period, 1))
    return nxt.replace(day=due_day(reporting, level))


def cutoff_date(reporting: ReportingConfig, period: str) -> date:
    """Cut-off of `period`: last day of the month `cutoff_months_after_period` months later."""
    return month_end(add_months(period, reporting.cutoff_months_after_period))


def due_date_sql(month_start_expr: str, level_expr: str, network_day: str, pkm_day: str) -> str:
    """SQL twin of `due_date` over columns: day `network_day`/`pkm_day` (SQL expressions holding
    the configured due days) of the month after the month starting at `month_start_expr`,
    chosen by the reporting level in `level_expr`. Arguments are SQL written by the caller, never
    user text."""
    nxt = f"({month_start_expr} + INTERVAL 1 MONTH)"
    return (f"make_date(year({nxt}), month({nxt}), "
            f"CASE {level_expr} WHEN 'network_to_pkm' THEN {network_day} ELSE {pkm_day} END)")


def cutoff_date_sql(month_start_expr: str, cutoff_months: str) -> str:
    """SQL twin of `cutoff_date` (`cutoff_months`: an SQL expression holding the setting)."""
    return f"last_day({month_start_expr} + to_months({cutoff_months}))"


def schedule_day(settings: Settings) -> int:
    """Day of the month the monthly job runs: the day after the later of the two due days plus
    the grace days (10 + 0 + 1 = 11 by default), capped at 28 so every month has the day."""
    rep = settings.config.reporting
    latest_due = max(rep.due_day.network_to_pkm, rep.due_day.pkm_to_dinkes)
    return min(latest_due + rep.grace_days + 1, 28)


@dataclass(frozen=True)
class DeadlineRequest:
    """A compliance recompute the deadline sensor asks for: `period` after its `phase` passed."""

    period: str
    phase: str  # "cutoff": the cut-off passed, unreceived reports become `missing`

    @property
    def run_key(self) -> str:
        return f"compliance:{self.period}:{self.phase}"


def deadline_requests(today: date, settings: Settings) -> list[DeadlineRequest]:
    """The compliance recomputes due as of local date `today` that the monthly schedule does not
    already make. The schedule runs the whole month (compliance included) on `schedule_day`, when
    every report of the previous month is due; what it does not cover is the cut-off, which falls
    later: the latest month whose cut-off (last day of M + cutoff_months) is before `today`.
    Only the latest month is returned: each month becomes the latest exactly once, so a sensor
    that ticks at least monthly requests every month once, without flooding on first start.
    """
    rep = settings.config.reporting
    cutoff_period = add_months(period_of(today), -(rep.cutoff_months_after_period + 1))
    return [DeadlineRequest(cutoff_period, "cutoff")]
