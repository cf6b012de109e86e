"""Indicator assets (month-partitioned): resolved sasaran (denominators with their method),
indicator values per unit × month / YTD, network contribution, and WHO DQR data-quality flags.
Logic: `kolab_pipeline/indicators/` (engine, sasaran, contribution, dq); checks:
`data_quality/indicator_checks.py`."""

from typing import Any

import dagster as dg
import duckdb

from kolab_pipeline import indicators
from kolab_pipeline.indicators import dq
from kolab_pipeline.orchestration.metadata import md_table, period_metadata
from kolab_pipeline.orchestration.partitions import periods_of
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse
from kolab_pipeline.orchestration.specs import monthly_asset, monthly_multi_asset, table_spec

CLEAN_VALUES = ["clean", "submission_value"]
REFERENCE_DEPS = [["reference", "facility"], ["reference", "sasaran"], ["reference", "wilayah"],
                  ["reference", "form_assignment"]]

KABKOTA_YTD_SQL = """
    SELECT unit_code AS kabkota, indicator_code, numerator,
           round(denominator, 1) AS denominator, round(value, 1) AS value, target,
           round(pws_target, 1) AS pws_target, round(attainment, 1) AS attainment_pct,
           above_100, denominator_method
      FROM indicators.indicator_value
     WHERE period = $period AND period_type = 'ytd' AND unit_level = 'kabkota'
     ORDER BY unit_code, indicator_code
"""


def _kabkota_ytd_markdown(con: duckdb.DuckDBPyConnection, period: str) -> dg.MetadataValue:
    """Kab/kota YTD values vs target for the last month of the run (the evaluation meeting view)."""
    return md_table(con.execute(KABKOTA_YTD_SQL, {"period": period}).df(), empty="_(no rows)_")


@monthly_asset(
    "indicators.sasaran_resolved",
    "Denominators for every network and wilayah of the registry and the year of the month, "
    "bottom-up: the unit's official sasaran.csv number, else the sum of its children when a unit "
    "below is official, else the formula on its population (kolab.yaml sasaran:) — method "
    "recorded per row; an official number > 5 % from its children's sum is flagged "
    "(consistency_warning). A month's run recomputes its whole year.",
    deps=REFERENCE_DEPS,
)
def sasaran_resolved(context: dg.AssetExecutionContext, kolab: KolabHome,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    years = sorted({int(p[:4]) for p in periods_of(context)})
    with warehouse.connection() as con:
        n = indicators.resolve_sasaran(con, kolab.settings(), years)
        context.log.info(f"{n} sasaran rows for {years}")
        meta: dict[str, Any] = period_metadata(con, "indicators.sasaran_resolved", years,
                                               column="tahun")
        methods = con.execute("""
            SELECT unit_level, method, count(*) AS n FROM indicators.sasaran_resolved
             WHERE list_contains($years, tahun) GROUP BY ALL ORDER BY ALL""",
                              {"years": years}).df()
        meta["methods"] = md_table(methods)
        meta["consistency_warnings"] = md_table(
            indicators.denominator_warnings(con, years), empty="_(none)_")
        return dg.MaterializeResult(metadata=meta)


@monthly_multi_asset([
    table_spec("indicators.indicator_value",
               "TB, PTM, KIA and immunisation indicators (catalog/indicators.csv) per facility, "
               "puskesmas network, kecamatan, kab/kota and provinsi, month and year-to-date: "
               "ratios of sums, PWS line, attainment.",
               deps=[CLEAN_VALUES, *REFERENCE_DEPS, ["indicators", "sasaran_resolved"]]),
    table_spec("indicators.network_contribution",
               "Share of each program's service volume from puskesmas vs Klinik Pratama vs TPMD "
               "(catalog/contribution_elements.csv).",
               deps=[CLEAN_VALUES, ["reference", "facility"]]),
])
def indicator_value(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """Both tables are written per month by one pass (YTD rows read the stored earlier months)."""
    periods = periods_of(context)
    with warehouse.connection() as con:
        written = indicators.compute_indicator_values(con, kolab.settings(), periods)
        context.log.info(f"indicator rows per month: {written}")
        meta = period_metadata(con, "indicators.indicator_value", periods)
        meta["kabkota_ytd_vs_target"] = _kabkota_ytd_markdown(con, max(periods))
        meta["n_above_100"] = dg.MetadataValue.int(int(con.execute(
            "SELECT count(*) FROM indicators.indicator_value "
            "WHERE list_contains($periods, period) AND above_100",
            {"periods": periods}).fetchone()[0]))
        yield dg.MaterializeResult(asset_key=["indicators", "indicator_value"], metadata=meta)
        yield dg.MaterializeResult(
            asset_key=["indicators", "network_contribution"],
            metadata=period_metadata(con, "indicators.network_contribution", periods))


DQ_DEPS = [CLEAN_VALUES, ["clean", "submission"], ["reference", "facility"],
           ["reference", "sasaran"], ["reference", "wilayah"], ["indicators", "sasaran_resolved"],
           ["compliance", "reporting_rate"]]


@monthly_multi_asset([
    table_spec("indicators.dq_flag",
               "WHO DQR data-quality flags: outliers (±2/3 sample SD, modified z > 3.5, with the "
               "count-data rule) per facility series, consistency between related indicators "
               "(expected ratio from the sasaran), negative drop-out, consistency over time "
               "(against the kab/kota's own change).", deps=DQ_DEPS),
    table_spec("indicators.dq_metric",
               "WHO DQR metrics per unit, flagged or not: content completeness (1c), consistency "
               "of reporting completeness over time (1d), denominators (4a, 4b), facility values "
               "not judged for outliers.", deps=DQ_DEPS),
    table_spec("indicators.dq_summary",
               "WHO DQR subunit summary of outliers per kab/kota and provinsi: % of values "
               "flagged (once), facilities with ≥ 1 extreme or ≥ 2 moderate outliers, values "
               "not judged.", deps=DQ_DEPS),
])
def dq_flag(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """The three DQ tables are written per month by one pass."""
    periods = periods_of(context)
    with warehouse.connection() as con:
        written = dq.compute_dq_flags(con, kolab.settings(), periods)
        context.log.info(f"dq flags per month: {written}")
        meta = period_metadata(con, "indicators.dq_flag", periods)
        by_method = con.execute("""
            SELECT method, count(*) AS n FROM indicators.dq_flag
             WHERE list_contains($periods, period) GROUP BY ALL ORDER BY ALL""",
                                {"periods": periods}).df()
        meta["flags_by_method"] = md_table(by_method, empty="_(no flags)_")
        yield dg.MaterializeResult(asset_key=["indicators", "dq_flag"], metadata=meta)
        metric = period_metadata(con, "indicators.dq_metric", periods)
        by_metric = con.execute("""
            SELECT metric, period_type, count(*) AS n, count(*) FILTER (WHERE flagged) AS flagged
              FROM indicators.dq_metric
             WHERE list_contains($periods, period) GROUP BY ALL ORDER BY ALL""",
                                {"periods": periods}).df()
        metric["rows_by_metric"] = md_table(by_metric, empty="_(no rows)_")
        yield dg.MaterializeResult(asset_key=["indicators", "dq_metric"], metadata=metric)
        yield dg.MaterializeResult(
            asset_key=["indicators", "dq_summary"],
            metadata=period_metadata(con, "indicators.dq_summary", periods))
