"""Indicator assets (month-partitioned): resolved sasaran (denominators with their method),
indicator values per unit × month / YTD, network contribution, and WHO DQR data-quality flags.
Logic and pinned definitions: `kolab_pipeline/indicators.py`, `kolab_pipeline/dq_metrics.py`.
Checks: `data_quality/indicator_checks.py`."""

from typing import Any

import dagster as dg
import duckdb

from kolab_pipeline import indicators
from kolab_pipeline.indicators import dq
from kolab_pipeline.orchestration.metadata import (
    OWNERS,
    describe,
    md_table,
    spec_metadata,
    table_metadata,
)
from kolab_pipeline.orchestration.partitions import monthly_partitions, periods_of
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse

GROUP = "indicators"
_WHERE = "list_contains(?, period)"
CLEAN_VALUES = ["clean", "submission_value"]
REFERENCE_DEPS = [["reference", "facility"], ["reference", "sasaran"], ["reference", "wilayah"]]


def _kabkota_ytd_markdown(con: duckdb.DuckDBPyConnection, period: str) -> dg.MetadataValue:
    """Kab/kota YTD values vs target for the last month of the run (the evaluation meeting view)."""
    df = con.execute("""
        SELECT unit_code AS kabkota, indicator_code, numerator, round(denominator, 1) AS denominator,
               round(value, 1) AS value, target, round(pws_target, 1) AS pws_target,
               round(attainment, 1) AS attainment_pct, above_100, denominator_method
          FROM indicators.indicator_value
         WHERE period = ? AND period_type = 'ytd' AND unit_level = 'kabkota'
         ORDER BY unit_code, indicator_code""", [period]).df()
    return md_table(df, empty="_(no rows)_")


@dg.asset(
    key=["indicators", "sasaran_resolved"], group_name=GROUP, owners=OWNERS, kinds={"duckdb"},
    deps=REFERENCE_DEPS,
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer", metadata=spec_metadata("indicators.sasaran_resolved"),
    description=describe("indicators.sasaran_resolved",
                         "Denominators for every network and wilayah of the registry and the year of "
                         "the month: official sasaran.csv numbers, else formulas from population "
                         "(kolab.yaml sasaran:), else the sum of children — method recorded per row. "
                         "A month's run recomputes its whole year."),
)
def sasaran_resolved(context: dg.AssetExecutionContext, kolab: KolabHome,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    years = sorted({int(p[:4]) for p in periods_of(context)})
    with warehouse.connection() as con:
        n = indicators.resolve_sasaran(con, kolab.settings(), years)
        context.log.info(f"{n} sasaran rows for {years}")
        meta: dict[str, Any] = table_metadata(con, "indicators.sasaran_resolved",
                                              "list_contains(?, tahun)", [years])
        methods = con.execute("""SELECT unit_level, metode, count(*) AS n FROM indicators.sasaran_resolved
                                  WHERE list_contains(?, tahun) GROUP BY ALL ORDER BY ALL""", [years]).df()
        meta["methods"] = md_table(methods)
        return dg.MaterializeResult(metadata=meta)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["indicators", "indicator_value"], group_name=GROUP, owners=OWNERS, kinds={"duckdb"},
                     deps=[CLEAN_VALUES, *REFERENCE_DEPS, ["indicators", "sasaran_resolved"]],
                     metadata=spec_metadata("indicators.indicator_value"),
                     description=describe("indicators.indicator_value",
                                          "TB, PTM, KIA and immunisation indicators (catalog/indicators.csv) "
                                          "per facility, puskesmas network, kecamatan, kab/kota and provinsi, "
                                          "month and year-to-date: ratios of sums, PWS line, attainment.")),
        dg.AssetSpec(["indicators", "network_contribution"], group_name=GROUP, owners=OWNERS,
                     kinds={"duckdb"}, deps=[CLEAN_VALUES, ["reference", "facility"]],
                     metadata=spec_metadata("indicators.network_contribution"),
                     description=describe("indicators.network_contribution",
                                          "Share of each program's service volume from puskesmas vs Klinik "
                                          "Pratama vs TPMD (catalog/contribution_elements.csv).")),
    ],
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",
)
def indicator_value(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """Both tables are written per month by one pass (YTD rows read the stored earlier months)."""
    periods = periods_of(context)
    with warehouse.connection() as con:
        written = indicators.compute_indicator_values(con, kolab.settings(), periods)
        context.log.info(f"indicator rows per month: {written}")
        meta = table_metadata(con, "indicators.indicator_value", _WHERE, [periods])
        meta["kabkota_ytd_vs_target"] = _kabkota_ytd_markdown(con, max(periods))
        meta["n_above_100"] = dg.MetadataValue.int(int(con.execute(
            "SELECT count(*) FROM indicators.indicator_value WHERE list_contains(?, period) AND above_100",
            [periods]).fetchone()[0]))
        yield dg.MaterializeResult(asset_key=["indicators", "indicator_value"], metadata=meta)
        yield dg.MaterializeResult(
            asset_key=["indicators", "network_contribution"],
            metadata=table_metadata(con, "indicators.network_contribution", _WHERE, [periods]))


@dg.asset(
    key=["indicators", "dq_flag"], group_name=GROUP, owners=OWNERS, kinds={"duckdb"},
    deps=[CLEAN_VALUES, ["reference", "facility"]],
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer", metadata=spec_metadata("indicators.dq_flag"),
    description=describe("indicators.dq_flag",
                         "WHO DQR data-quality flags: outliers (±2/3 sample SD, modified z > 3.5) per "
                         "facility series, consistency between related indicators, negative drop-out, "
                         "consistency over time."),
)
def dq_flag(context: dg.AssetExecutionContext, kolab: KolabHome,
            warehouse: Warehouse) -> dg.MaterializeResult:
    periods = periods_of(context)
    with warehouse.connection() as con:
        written = dq.compute_dq_flags(con, kolab.settings(), periods)
        context.log.info(f"dq flags per month: {written}")
        meta = table_metadata(con, "indicators.dq_flag", _WHERE, [periods])
        by_method = con.execute("""SELECT method, count(*) AS n FROM indicators.dq_flag
                                    WHERE list_contains(?, period) GROUP BY ALL ORDER BY ALL""", [periods]).df()
        meta["flags_by_method"] = md_table(by_method, empty="_(no flags)_")
        return dg.MaterializeResult(metadata=meta)
