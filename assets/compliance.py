"""Compliance assets (month-partitioned): expected reports, report status (+ history), reporting
rates, and the evaluation follow-up list. Logic and the pinned definitions:
`kolab_pipeline/compliance.py`. `compliance_job` materialises all of them for one month; the
deadline sensor (`sensors/deadline.py`) targets it."""

from typing import Any

import dagster as dg
import duckdb

from kolab_pipeline import compliance
from kolab_pipeline.orchestration.metadata import (
    OWNERS,
    describe,
    md_table,
    spec_metadata,
    table_metadata,
)
from kolab_pipeline.orchestration.partitions import monthly_partitions, periods_of
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse

GROUP = "compliance"
_WHERE = "list_contains(?, period)"


def _status_counts(con: duckdb.DuckDBPyConnection, periods: list[str]) -> dict[str, Any]:
    df = con.execute("""
        SELECT period, status, count(*) AS n, count(*) FILTER (WHERE overdue) AS overdue,
               count(*) FILTER (WHERE received_after_cutoff) AS received_after_cutoff
          FROM compliance.report_status WHERE list_contains(?, period) GROUP BY ALL ORDER BY 1, 2""",
                     [periods]).df()
    counts = dict(con.execute("SELECT status, count(*) FROM compliance.report_status "
                              "WHERE list_contains(?, period) GROUP BY 1", [periods]).fetchall())
    meta: dict[str, Any] = {
        "status_counts": md_table(df, empty="_(no rows)_"),
    }
    for status in compliance.STATUSES:
        meta[f"n_{status}"] = dg.MetadataValue.int(int(counts.get(status, 0)))
    return meta


@dg.asset(
    key=["compliance", "expected_report"], group_name=GROUP, owners=OWNERS, kinds={"duckdb"},
    deps=[["reference", "facility"], ["reference", "form_assignment"]],
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer", metadata=spec_metadata("compliance.expected_report"),
    description=describe("compliance.expected_report",
                         "Reports each facility must send per month and form: registry × form-assignment "
                         "history, honouring opening/closing dates (reporting.expected_rule), with the "
                         "local due date and cut-off."),
)
def expected_report(context: dg.AssetExecutionContext, kolab: KolabHome,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    periods = periods_of(context)
    with warehouse.connection() as con:
        n = compliance.build_expected_reports(con, kolab.settings(), periods)
        context.log.info(f"{n} expected reports for {', '.join(periods)}")
        return dg.MaterializeResult(metadata=table_metadata(con, "compliance.expected_report", _WHERE, [periods]))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["compliance", "report_status"], group_name=GROUP, owners=OWNERS, kinds={"duckdb"},
                     deps=[["compliance", "expected_report"], ["clean", "submission"], ["reference", "facility"]],
                     metadata=spec_metadata("compliance.report_status"),
                     description=describe("compliance.report_status",
                                          "Status of every expected report (on_time, late, missing, pending "
                                          "+ overdue) and unexpected arrivals, from the first valid version's "
                                          "local received date, as of reporting.as_of.")),
        dg.AssetSpec(["compliance", "report_status_history"], group_name=GROUP, owners=OWNERS,
                     kinds={"duckdb"}, deps=[["compliance", "expected_report"], ["clean", "submission"]],
                     metadata=spec_metadata("compliance.report_status_history"),
                     description=describe("compliance.report_status_history",
                                          "Append-only log of status changes (e.g. missing, later received "
                                          "late), stamped with the as_of they were first seen.")),
    ],
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",
)
def report_status(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    periods = periods_of(context)
    with warehouse.connection() as con:
        n = compliance.build_report_status(con, kolab.settings(), periods)
        context.log.info(f"{n} report statuses for {', '.join(periods)}")
        yield dg.MaterializeResult(
            asset_key=["compliance", "report_status"],
            metadata={**table_metadata(con, "compliance.report_status", _WHERE, [periods]),
                      **_status_counts(con, periods)})
        yield dg.MaterializeResult(
            asset_key=["compliance", "report_status_history"],
            metadata=table_metadata(con, "compliance.report_status_history", _WHERE, [periods]))


@dg.asset(
    key=["compliance", "reporting_rate"], group_name=GROUP, owners=OWNERS, kinds={"duckdb"},
    deps=[["compliance", "report_status"]],
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer", metadata=spec_metadata("compliance.reporting_rate"),
    description=describe("compliance.reporting_rate",
                         "Completeness and timeliness (DHIS2 REPORTING_RATE / REPORTING_RATE_ON_TIME, ratio "
                         "of sums, unexpected arrivals excluded) per facility, puskesmas network, kecamatan, "
                         "kab/kota and provinsi × month and year-to-date, per form and facility type."),
)
def reporting_rate(context: dg.AssetExecutionContext, kolab: KolabHome,
                   warehouse: Warehouse) -> dg.MaterializeResult:
    periods = periods_of(context)
    with warehouse.connection() as con:
        compliance.build_reporting_rates(con, kolab.settings(), periods)
        kab = con.execute("""
            SELECT unit_code AS kabkota, period, period_type, expected, received, on_time,
                   round(completeness_pct, 1) AS completeness_pct, round(timeliness_pct, 1) AS timeliness_pct
              FROM compliance.reporting_rate
             WHERE list_contains(?, period) AND unit_level = 'kabkota' AND form = 'semua'
               AND jenis_faskes = 'semua' ORDER BY 1, 2, 3""", [periods]).df()
        return dg.MaterializeResult(metadata={
            **table_metadata(con, "compliance.reporting_rate", _WHERE, [periods]),
            "kabkota_rates": md_table(kab, empty="_(no rows)_"),
        })


@dg.asset(
    key=["evaluation", "followup"], group_name="evaluation", owners=OWNERS, kinds={"duckdb"},
    deps=[["compliance", "report_status"], ["reference", "facility"]],
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer", metadata=spec_metadata("evaluation.followup"),
    description=describe("evaluation.followup",
                         "The list a puskesmas uses to chase its network: facility × form with missing or "
                         "late reports this year, consecutive months without a report, overdue pending "
                         "reports of the month, and the last report received."),
)
def followup(context: dg.AssetExecutionContext, kolab: KolabHome,
             warehouse: Warehouse) -> dg.MaterializeResult:
    periods = periods_of(context)
    with warehouse.connection() as con:
        n = compliance.build_followup(con, kolab.settings(), periods)
        context.log.info(f"{n} follow-up rows for {', '.join(periods)}")
        return dg.MaterializeResult(metadata=table_metadata(
            con, "evaluation.followup", "list_contains(?, as_of_period)", [periods]))


COMPLIANCE_ASSETS = [expected_report, report_status, reporting_rate, followup]

compliance_job = dg.define_asset_job(
    "compliance_job",
    selection=dg.AssetSelection.assets(*COMPLIANCE_ASSETS),
    partitions_def=monthly_partitions,
    description="Expected reports, report status, reporting rates and the follow-up list for one month "
                "(run by the reporting deadline sensor after the due date and after the cut-off).",
)
