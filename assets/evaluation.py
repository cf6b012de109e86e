"""Evaluation assets: scorecards per puskesmas network and per wilayah, the exports (Parquet, Excel
per kab/kota, optional PostgreSQL copy) and the offline HTML evaluation report.
Logic: `kolab_pipeline/evaluation.py`, `exports.py`, `report.py`. The `evaluation/followup` asset
is defined with the compliance assets (`assets/compliance.py`)."""

import dagster as dg

from kolab_pipeline import evaluation, exports, report
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.metadata import OWNERS, describe, spec_metadata, table_metadata
from kolab_pipeline.orchestration.partitions import DOCUMENTS_TAG, monthly_partitions, periods_of
from kolab_pipeline.orchestration.resources import KolabHome, PostgresWarehouse, Warehouse


def _document_periods(context: dg.AssetExecutionContext, settings: Settings,
                      periods: list[str]) -> list[str]:
    """Months that get workbooks and reports: those `kolab run --month` asked for (run tag), else
    the `evaluation.documents` rule of kolab.yaml (default: the run's latest month)."""
    asked = context.run.tags.get(DOCUMENTS_TAG)
    if asked:
        return sorted(set(asked.split(",")) & set(periods))
    return settings.config.evaluation.document_periods(periods)


GROUP = "evaluation"
PERIOD_WHERE = "list_contains(?::VARCHAR[], period)"

UPSTREAM = [
    dg.AssetKey(["compliance", "reporting_rate"]), dg.AssetKey(["compliance", "report_status"]),
    dg.AssetKey(["evaluation", "followup"]), dg.AssetKey(["indicators", "indicator_value"]),
    dg.AssetKey(["indicators", "network_contribution"]), dg.AssetKey(["indicators", "dq_flag"]),
    dg.AssetKey(["clean", "validation_flag"]), dg.AssetKey(["clean", "quarantine"]),
    dg.AssetKey(["reference", "facility"]),
]
SCORECARD = dg.AssetKey(["evaluation", "scorecard"])
KEY_INDICATOR = dg.AssetKey(["evaluation", "key_indicator"])
WILAYAH = dg.AssetKey(["evaluation", "wilayah_scorecard"])


@dg.multi_asset(
    group_name=GROUP,
    specs=[
        dg.AssetSpec(SCORECARD, deps=UPSTREAM, description=describe(
            "evaluation.scorecard", "Scorecard per puskesmas network: kelengkapan and ketepatan of the "
            "puskesmas, its Klinik Pratama and TPMD, key indicators vs target, network contribution "
            "and data-quality counts."),
            metadata=spec_metadata("evaluation.scorecard"), owners=OWNERS, kinds={"duckdb"}),
        dg.AssetSpec(KEY_INDICATOR, deps=UPSTREAM, description=describe(
            "evaluation.key_indicator", "The key indicators of kolab.yaml (evaluation.key_indicators) "
            "per unit, long form, NULL when not computed."),
            metadata=spec_metadata("evaluation.key_indicator"), owners=OWNERS, kinds={"duckdb"}),
    ],
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",
)
def scorecard(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """Builds the network scorecard and the key-indicator table for the run's months."""
    settings, periods = kolab.settings(), periods_of(context)
    with warehouse.connection() as con:
        evaluation.build_key_indicator(con, settings, periods)
        evaluation.build_scorecard(con, settings, periods)
        for key, table_key in ((SCORECARD, "evaluation.scorecard"),
                               (KEY_INDICATOR, "evaluation.key_indicator")):
            yield dg.MaterializeResult(asset_key=key, metadata=table_metadata(
                con, table_key, PERIOD_WHERE, [periods]))


@dg.asset(
    key=WILAYAH, group_name=GROUP, deps=UPSTREAM,
    description=describe("evaluation.wilayah_scorecard",
                         "Scorecard per kecamatan and kab/kota (same measures as the network scorecard)."),
    metadata=spec_metadata("evaluation.wilayah_scorecard"), owners=OWNERS, kinds={"duckdb"},
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",
)
def wilayah_scorecard(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    settings, periods = kolab.settings(), periods_of(context)
    with warehouse.connection() as con:
        evaluation.build_wilayah_scorecard(con, settings, periods)
        return dg.MaterializeResult(metadata=table_metadata(
            con, "evaluation.wilayah_scorecard", PERIOD_WHERE, [periods]))


@dg.asset(
    key=["evaluation", "exports"], group_name=GROUP,
    deps=[SCORECARD, KEY_INDICATOR, WILAYAH, *UPSTREAM],
    description="Parquet file per analyst-facing table (KOLAB_HOME/exports/<schema>.<table>.parquet), "
                "an Excel workbook per kab/kota × month for Dinkes staff "
                "(evaluasi_<kode_kabkota>_<YYYY-MM>.xlsx), and — when KOLAB_WAREHOUSE_URL is set — "
                "the analyst tables copied to PostgreSQL (the run's months replaced in one transaction).",
    owners=OWNERS, kinds={"parquet", "excel", "postgres"},
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",
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
        metadata = {
            "parquet_files": dg.MetadataValue.int(len(parquet)),
            "parquet_rows": dg.MetadataValue.md(md),
            "exports_dir": dg.MetadataValue.path(str(settings.paths.exports)),
            "workbooks": dg.MetadataValue.md("\n".join(f"- `{p.name}`" for p in workbooks) or "_(none)_"),
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


@dg.asset(
    key=["evaluation", "report"], group_name=GROUP,
    deps=[SCORECARD, KEY_INDICATOR, WILAYAH, dg.AssetKey(["evaluation", "followup"]),
          dg.AssetKey(["indicators", "network_contribution"]), dg.AssetKey(["indicators", "dq_flag"])],
    description="Offline HTML evaluation report per kab/kota × month "
                "(KOLAB_HOME/reports/<kode_kabkota>/<YYYY-MM>.html), in Indonesian, for the rapat evaluasi.",
    owners=OWNERS, kinds={"html"},
    partitions_def=monthly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",
)
def evaluation_report(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    settings, periods = kolab.settings(), periods_of(context)
    with warehouse.connection() as con:
        paths = report.render_reports(
            con, settings, _document_periods(context, settings, periods))
    metadata: dict = {"reports": dg.MetadataValue.int(len(paths)),
                      "dagster/row_count": dg.MetadataValue.int(len(paths)),
                      "files": dg.MetadataValue.md("\n".join(
                          f"- [{p.parent.name}/{p.name}]({p.as_uri()})" for p in paths) or "_(none)_")}
    if paths:
        metadata["report"] = dg.MetadataValue.path(str(paths[-1]))
        metadata["report_url"] = dg.MetadataValue.url(paths[-1].as_uri())
    return dg.MaterializeResult(metadata=metadata)
