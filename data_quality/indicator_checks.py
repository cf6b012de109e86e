"""Asset checks on each month of `indicators/indicator_value`.

- `totals_reconcile` (blocking): every network, kecamatan, kab/kota and provinsi numerator (and
  data-element denominator) equals the sum of its facilities' stored rows, month and YTD; a
  mismatch means the hierarchy or YTD logic is broken, so the evaluation must not use it.
- `coverage_above_100` (WARN): units whose coverage is above 100 %. Not an error (resident-based
  sasaran vs service-based reports, `docs/domain.md` §5), but the program holder must look at
  them.

Logic: `kolab_pipeline.indicators.reconcile_totals` / `coverage_above_100` (SQL).
"""

import dagster as dg
import pandas as pd

from kolab_pipeline import indicators
from kolab_pipeline.orchestration.metadata import md_table
from kolab_pipeline.orchestration.resources import Warehouse
from kolab_pipeline.orchestration.specs import monthly_check

INDICATOR_VALUE = dg.AssetKey(["indicators", "indicator_value"])
MAX_LISTED = 200


def _md(df: pd.DataFrame) -> dg.MetadataValue:
    return md_table(df, max_rows=MAX_LISTED)


def totals_result(warehouse: Warehouse, periods: list[str]) -> dg.AssetCheckResult:
    with warehouse.connection() as con:
        frames = [indicators.reconcile_totals(con, p).assign(period=p) for p in periods]
    bad = pd.concat(frames) if frames else pd.DataFrame()
    label = ", ".join(periods)
    return dg.AssetCheckResult(
        passed=bad.empty,
        description=(f"{len(bad)} unit row(s) of {label} do not equal the sum of their "
                     "facilities" if len(bad)
                     else f"every unit numerator of {label} equals the sum of its facilities"),
        metadata={"periods": label, "n_mismatches": len(bad), "mismatches": _md(bad)},
    )


def above_100_result(warehouse: Warehouse, periods: list[str]) -> dg.AssetCheckResult:
    with warehouse.connection() as con:
        frames = [indicators.coverage_above_100(con, p).assign(period=p) for p in periods]
    rows = pd.concat(frames) if frames else pd.DataFrame()
    label = ", ".join(periods)
    return dg.AssetCheckResult(
        passed=rows.empty, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(rows)} indicator row(s) of {label} above 100 % coverage (flagged, "
                     "not clipped)" if len(rows) else f"no coverage above 100 % in {label}"),
        metadata={"periods": label, "n_above_100": len(rows), "units": _md(rows)},
    )


totals_reconcile = monthly_check(
    INDICATOR_VALUE, "totals_reconcile",
    "Unit numerators = sum of their facilities' numerators (ratios of sums).",
    lambda res, periods: totals_result(res.warehouse, periods), blocking=True)

coverage_above_100 = monthly_check(
    INDICATOR_VALUE, "coverage_above_100", "Units with coverage above 100 % (listed; WARN).",
    lambda res, periods: above_100_result(res.warehouse, periods))
