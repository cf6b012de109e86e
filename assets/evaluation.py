"""Evaluation assets (month-partitioned): the follow-up list, scorecards per puskesmas network and
per wilayah, the exports (Parquet, Excel per kab/kota, optional PostgreSQL copy) and the offline
HTML evaluation report. Logic: `kolab_pipeline/evaluation/`, `exports.py`, `report.py`."""

import dagster as dg

from kolab_pipeline import evaluation, exports, report
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.metadata import period_metadata
from kolab_pipeline.orchestration.partitions import DOCUMENTS_TAG, periods_of
from kolab_pipeline.orchestration.resources import KolabHome, PostgresWarehouse, Warehouse
from kolab_pipeline.orchestration.specs import (
    build_months,
    monthly_asset,
    monthly_multi_asset,
    table_spec,
)


def _document_periods(context: dg.AssetExecutionContext, settings: Settings,
                      periods: list[str]) -> list[str]:
    """Months that get workbooks and reports: those `kolab run --month` asked for (run tag), else
    the `evaluation.documents` rule of kolab.yaml (default: the run's latest month)."""
    asked = context.run.tags.get(DOCUMENTS_TAG)
    if asked:
        return sorted(set(asked.split(",")) & set(periods))
    return settings.config.evaluation.document_periods(periods)


FOLLOWUP = dg.AssetKey(["evaluation", "followup"])
UPSTREAM = [
    dg.AssetKey(["compliance", "reporting_rate"]), dg.AssetKey(["compliance", "report_status"]),
    FOLLOWUP, dg.AssetKey(["indicators", "indicator_value"]),
    dg.AssetKey(["indicators", "network_contribution"]), dg.AssetKey(["indicators", "dq_flag"]),
    dg.AssetKey(["clean", "validation_flag"]), dg.AssetKey(["clean", "quarantine"]),
    dg.AssetKey(["reference", "facility"]),
]
SCORECARD = dg.AssetKey(["evaluation", "scorecard"])
KEY_INDICATOR = dg.AssetKey(["evaluation", "key_indicator"])
WILAYAH = dg.AssetKey(["evaluation", "wilayah_scorecard"])


@monthly_asset(
    "evaluation.followup",
    "The list a puskesmas uses to chase its network: facility × form with missing or late "
    "reports this year, consecutive months without a report, overdue pending reports of the "
    "month, and the last report received.",
    deps=[["compliance", "report_status"], ["reference", "facility"]],
)
def followup(context: dg.AssetExecutionContext, kolab: KolabHome,
             warehouse: Warehouse) -> dg.MaterializeResult:
    return build_months(context, kolab, warehouse, evaluation.build_followup,
                        "evaluation.followup", what="follow-up rows", column="as_of_period")


@monthly_multi_asset([
    table_spec("evaluation.scorecard",
               "Scorecard per puskesmas network: kelengkapan and ketepatan of the puskesmas, its "
               "Klinik Pratama and TPMD, key indicators vs target, network contribution and "
               "data-quality counts.", deps=UPSTREAM),
    table_spec("evaluation.key_indicator",
               "The key indicators of kolab.yaml (evaluation.key_indicators) per unit, long "
               "form, NULL when not computed.", deps=UPSTREAM),
])
def scorecard(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """Builds the network scorecard and the key-indicator table for the run's months."""
    settings, periods = kolab.settings(), periods_of(context)
    with warehouse.connection() as con:
        evaluation.build_key_indicator(con, settings, periods)
        evaluation.build_scorecard(con, settings, periods)
        for key, table_key in ((SCORECARD, "evaluation.scorecard"),
                               (KEY_INDICATOR, "evaluation.key_indicator")):
            yield dg.MaterializeResult(asset_key=key,
                                       metadata=period_metadata(con, table_key, periods))


@monthly_asset(
    "evaluation.wilayah_scorecard",
    "Scorecard per kecamatan and kab/kota (same measures as the network scorecard).",
    deps=UPSTREAM,
)
def wilayah_scorecard(context: dg.AssetExecutionContext, kolab: KolabHome,
                      warehouse: Warehouse) -> dg.MaterializeResult:
    return build_months(context, kolab, warehouse, evaluation.build_wilayah_scorecard,
                        "evaluation.wilayah_scorecard")


@monthly_asset(
    "evaluation.exports",
    "Parquet file per analyst-facing table (KOLAB_HOME/exports/<schema>.<table>.parquet), an "
    "Excel workbook per kab/kota × month for Dinkes staff "
    "(evaluasi_<kode_kabkota>_<YYYY-MM>.xlsx), and — when KOLAB_WAREHOUSE_URL is set — the "
    "analyst tables copied to PostgreSQL (the run's months replaced in one transaction).",
    deps=[SCORECARD, KEY_INDICATOR, WILAYAH, *UPSTREAM],
    contract=False, kinds={"parquet", "excel", "postgres"},
)
def exports_asset(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse,
                  pg_warehouse: PostgresWarehouse):
    settings, periods = kolab.settings(), periods_of(context)
    with warehouse.connection() as con:
        parquet = exports.write_parquet(con, settings)
        workbooks = exports.write_workbooks(
            con, settings, _document_periods(context, settings, periods))
        md = "| tabel | baris |\n|---|---|\n" + "\n".join(
            f"| {k} | {n} |" for k, (_, n) in parquet.items())
        listed = "\n".join(f"- `{p.name}`" for p in workbooks) or "_(none)_"
        metadata = {
            "parquet_files": dg.MetadataValue.int(len(parquet)),
            "parquet_rows": dg.MetadataValue.md(md),
            "exports_dir": dg.MetadataValue.path(str(settings.paths.exports)),
            "workbooks": dg.MetadataValue.md(listed),
            "dagster/row_count": dg.MetadataValue.int(sum(n for _, n in parquet.values())),
        }
        if pg_warehouse.url:
            result = exports.copy_to_postgres(con, pg_warehouse.url, periods,
                                              chunk_rows=settings.config.evaluation.pg_chunk_rows)
            # counts and speed only: the URL may hold a password and is never logged
            context.log.info(f"PostgreSQL warehouse: {sum(result.rows.values())} rows in "
                             f"{result.seconds:.2f}s ({result.rows_per_second:,.0f} rows/s)")
            metadata["postgres_rows"] = dg.MetadataValue.int(sum(result.rows.values()))
            metadata["postgres_seconds"] = dg.MetadataValue.float(round(result.seconds, 3))
        return dg.MaterializeResult(metadata=metadata)


@monthly_asset(
    "evaluation.report",
    "Offline HTML evaluation report per kab/kota × month "
    "(KOLAB_HOME/reports/<kode_kabkota>/<YYYY-MM>.html), in Indonesian, for the rapat evaluasi.",
    deps=[SCORECARD, KEY_INDICATOR, WILAYAH, FOLLOWUP,
          dg.AssetKey(["indicators", "network_contribution"]),
          dg.AssetKey(["indicators", "dq_flag"])],
    contract=False, kinds={"html"},
)
def evaluation_report(context: dg.AssetExecutionContext, kolab: KolabHome,
                      warehouse: Warehouse):
    settings, periods = kolab.settings(), periods_of(context)
    with warehouse.connection() as con:
        paths = report.render_reports(
            con, settings, _document_periods(context, settings, periods))
    files = "\n".join(f"- [{p.parent.name}/{p.name}]({p.as_uri()})" for p in paths) or "_(none)_"
    metadata: dict = {"reports": dg.MetadataValue.int(len(paths)),
                      "dagster/row_count": dg.MetadataValue.int(len(paths)),
                      "files": dg.MetadataValue.md(files)}
    if paths:
        metadata["report"] = dg.MetadataValue.path(str(paths[-1]))
        metadata["report_url"] = dg.MetadataValue.url(paths[-1].as_uri())
    return dg.MaterializeResult(metadata=metadata)
