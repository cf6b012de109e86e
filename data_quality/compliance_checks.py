"""Asset checks (WARN) on each month of `compliance/report_status`.

- `no_missing_reports_after_cutoff`: every expected report of the month arrived by its cut-off;
  lists the facilities still missing.
- `completeness_above_threshold` / `timeliness_above_threshold`: every kab/kota and puskesmas
  network meets `thresholds.completeness_pct` / `timeliness_pct` (WHO DQ Tool defaults
  90 % / 75 %) by the one judgement rule (`kolab_pipeline.judgement`: value ≥ threshold), so a
  unit exactly *at* the threshold meets it — as in the scorecard, the report and the Excel
  workbook. (The WHO tool's own flag is `≤ threshold`, `docs/data_quality_anchors.md` §0 item 5;
  one rule everywhere was chosen over it, README "Definitions pinned".)

WARN: late reporting by facilities is a finding for the dinkes, not a pipeline failure, so the
downstream assets still run. Logic: `kolab_pipeline.compliance` (SQL on the status table).
"""

import dagster as dg
import pandas as pd

from kolab_pipeline import compliance
from kolab_pipeline.orchestration.metadata import md_table
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse
from kolab_pipeline.orchestration.specs import monthly_check

REPORT_STATUS = dg.AssetKey(["compliance", "report_status"])
MAX_LISTED = 200
MISSING_COLUMNS = ["period", "kode_faskes", "nama_faskes", "form", "kode_jejaring",
                   "kode_kabkota", "cutoff_date"]


def _md(rows: list[tuple], columns: list[str]) -> dg.MetadataValue:
    return md_table(pd.DataFrame(rows, columns=columns), max_rows=MAX_LISTED)


def missing_check_result(warehouse: Warehouse, periods: list[str]) -> dg.AssetCheckResult:
    """WARN result listing the expected reports of `periods` still missing after their cut-off."""
    with warehouse.connection() as con:
        rows = [(p, *r) for p in periods for r in compliance.missing_after_cutoff(con, p)]
    label = ", ".join(periods)
    return dg.AssetCheckResult(
        passed=not rows, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(rows)} expected report(s) of {label} not received by the cut-off"
                     if rows else f"every expected report of {label} arrived by its cut-off "
                                  "(or is not due yet)"),
        metadata={"periods": label, "n_missing": len(rows),
                  "missing_reports": _md(rows, MISSING_COLUMNS)},
    )


def threshold_check_result(warehouse: Warehouse, kolab: KolabHome, periods: list[str],
                           metric: str) -> dg.AssetCheckResult:
    """WARN result listing kab/kota and networks whose `metric` is below its kolab.yaml
    threshold (does not meet it: `judgement.meets`)."""
    thresholds = kolab.settings().config.thresholds
    threshold = (thresholds.completeness_pct if metric == "completeness"
                 else thresholds.timeliness_pct)
    with warehouse.connection() as con:
        rows = [(p, *r) for p in periods
                for r in compliance.units_below_threshold(con, p, metric, threshold)]
    label = ", ".join(periods)
    columns = ["period", "unit_level", "unit_code", "expected", metric, "pct"]
    return dg.AssetCheckResult(
        passed=not rows, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(rows)} unit(s) with {metric} below {threshold:g} % in {label}"
                     if rows else f"every kab/kota and puskesmas network at or above "
                                  f"{threshold:g} % {metric} in {label}"),
        metadata={"periods": label, "threshold_pct": float(threshold),
                  "n_units_flagged": len(rows), "units_flagged": _md(rows, columns)},
    )


no_missing_reports_after_cutoff = monthly_check(
    REPORT_STATUS, "no_missing_reports_after_cutoff",
    "Expected reports still missing after the cut-off (facilities listed).",
    lambda res, periods: missing_check_result(res.warehouse, periods))



def _threshold_check(metric: str) -> dg.AssetChecksDefinition:
    return monthly_check(
        REPORT_STATUS, f"{metric}_above_threshold",
        f"Kab/kota and puskesmas networks with {metric} below thresholds.{metric}_pct "
        "(a unit exactly on the threshold meets it).",
        lambda res, periods: threshold_check_result(res.warehouse, res.kolab, periods, metric),
        resources=("kolab", "warehouse"))


completeness_above_threshold = _threshold_check("completeness")
timeliness_above_threshold = _threshold_check("timeliness")
