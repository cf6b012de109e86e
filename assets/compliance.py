"""Compliance assets (month-partitioned): expected reports, report status (+ history) and
reporting rates. Logic: `kolab_pipeline/compliance.py`; checks: `data_quality/compliance_checks.py`;
the job that runs them after a cut-off: `kolab_pipeline/orchestration/jobs.py`."""

from typing import Any

import dagster as dg
import duckdb

from kolab_pipeline import compliance
from kolab_pipeline.orchestration.metadata import md_table, period_metadata
from kolab_pipeline.orchestration.partitions import periods_of
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse
from kolab_pipeline.orchestration.specs import (
    build_months,
    monthly_asset,
    monthly_multi_asset,
    table_spec,
)

STATUS_COUNTS_SQL = """
    SELECT period, status, count(*) AS n, count(*) FILTER (WHERE overdue) AS overdue,
           count(*) FILTER (WHERE received_after_cutoff) AS received_after_cutoff
      FROM compliance.report_status WHERE list_contains($periods, period)
     GROUP BY ALL ORDER BY 1, 2
"""
KABKOTA_RATES_SQL = """
    SELECT unit_code AS kabkota, period, period_type, expected, received, on_time,
           round(completeness_pct, 1) AS completeness_pct,
           round(timeliness_pct, 1) AS timeliness_pct
      FROM compliance.reporting_rate
     WHERE list_contains($periods, period) AND unit_level = 'kabkota' AND form = 'semua'
       AND jenis_faskes = 'semua'
     ORDER BY 1, 2, 3
"""


def _status_counts(con: duckdb.DuckDBPyConnection, periods: list[str]) -> dict[str, Any]:
    df = con.execute(STATUS_COUNTS_SQL, {"periods": periods}).df()
    counts = df.groupby("status")["n"].sum().to_dict() if len(df) else {}
    meta: dict[str, Any] = {"status_counts": md_table(df, empty="_(no rows)_")}
    for status in compliance.STATUSES:
        meta[f"n_{status}"] = dg.MetadataValue.int(int(counts.get(status, 0)))
    return meta


@monthly_asset(
    "compliance.expected_report",
    "Reports each facility must send per month and form: registry × form-assignment history, "
    "honouring opening/closing dates (reporting.expected_rule), with the local due date and "
    "cut-off.",
    deps=[["reference", "facility"], ["reference", "form_assignment"]],
)
def expected_report(context: dg.AssetExecutionContext, kolab: KolabHome,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    return build_months(context, kolab, warehouse, compliance.build_expected_reports,
                        "compliance.expected_report", what="expected reports")


@monthly_multi_asset([
    table_spec("compliance.report_status",
               "Status of every expected report (on_time, late, missing, pending + overdue) and "
               "unexpected arrivals, from the first valid version's local received date, as of "
               "reporting.as_of.",
               deps=[["compliance", "expected_report"], ["clean", "submission"],
                     ["reference", "facility"]]),
    table_spec("compliance.report_status_history",
               "Append-only log of status changes (e.g. missing, later received late), stamped "
               "with the as_of they were first seen.",
               deps=[["compliance", "expected_report"], ["clean", "submission"]]),
])
def report_status(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    periods = periods_of(context)
    with warehouse.connection() as con:
        n = compliance.build_report_status(con, kolab.settings(), periods)
        context.log.info(f"{n} report statuses for {', '.join(periods)}")
        yield dg.MaterializeResult(
            asset_key=["compliance", "report_status"],
            metadata={**period_metadata(con, "compliance.report_status", periods),
                      **_status_counts(con, periods)})
        yield dg.MaterializeResult(
            asset_key=["compliance", "report_status_history"],
            metadata=period_metadata(con, "compliance.report_status_history", periods))


@monthly_asset(
    "compliance.reporting_rate",
    "Completeness and timeliness (DHIS2 REPORTING_RATE / REPORTING_RATE_ON_TIME, ratio of sums, "
    "unexpected arrivals excluded) per facility, puskesmas network, kecamatan, kab/kota and "
    "provinsi × month and year-to-date, per form and facility type.",
    deps=[["compliance", "report_status"]],
)
def reporting_rate(context: dg.AssetExecutionContext, kolab: KolabHome,
                   warehouse: Warehouse) -> dg.MaterializeResult:
    periods = periods_of(context)
    with warehouse.connection() as con:
        compliance.build_reporting_rates(con, kolab.settings(), periods)
        kab = con.execute(KABKOTA_RATES_SQL, {"periods": periods}).df()
        return dg.MaterializeResult(metadata={
            **period_metadata(con, "compliance.reporting_rate", periods),
            "kabkota_rates": md_table(kab, empty="_(no rows)_"),
        })


COMPLIANCE_ASSETS = [expected_report, report_status, reporting_rate]
