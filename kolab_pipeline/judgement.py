"""The one judgement rule: does a value meet its threshold or target?

An increasing measure (completeness, timeliness, coverage) meets its threshold when
value ≥ threshold; a decreasing one (drop-out, deaths; catalogue `direction = decreasing`) when
value ≤ target. A value sitting exactly on the threshold meets it. Without a value or a
threshold nothing is judged (None / SQL NULL). Checks, scorecards, report colours and the Excel
workbooks all decide through this module, so they cannot disagree.
"""

from __future__ import annotations

DIRECTIONS = ("increasing", "decreasing")


def meets(value: float | None, threshold: float | None,
          direction: str = "increasing") -> bool | None:
    """True when `value` meets `threshold` in `direction`; None when either is missing."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: expected one of {DIRECTIONS}")
    if value is None or threshold is None or value != value or threshold != threshold:  # NaN
        return None
    return value <= threshold if direction == "decreasing" else value >= threshold


def meets_sql(value: str, threshold: str, direction: str = "'increasing'") -> str:
    """SQL twin of `meets` over expressions written by the caller (never user text): NULL when
    the value or the threshold is NULL."""
    return (f"(CASE WHEN ({value}) IS NULL OR ({threshold}) IS NULL THEN NULL "
            f"WHEN ({direction}) = 'decreasing' THEN ({value}) <= ({threshold}) "
            f"ELSE ({value}) >= ({threshold}) END)")
