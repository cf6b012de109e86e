"""Raw assets: every landing file (CSV/XLSX/DHIS2) and SQL-source pull, verbatim, with lineage.

One unpartitioned multi-asset writes the three raw tables together (they are one ingestion:
a file's manifest row and its rows/cells commit in the same transaction). Incremental: content
already ingested (same sha256) is skipped, so re-materialising only picks up what is new.
Logic: `kolab_pipeline/raw.py`.
"""

import dagster as dg
import pandas as pd

from kolab_pipeline import raw
from kolab_pipeline.orchestration.metadata import md_table, table_metadata
from kolab_pipeline.orchestration.resources import KolabHome, SourceDatabase, Warehouse
from kolab_pipeline.orchestration.specs import table_spec, writer_multi_asset

MAX_LISTED = 100
DATA_ELEMENT = dg.AssetKey(["reference", "data_element"])
# the registry's time zones read DHIS2 completeDate in the org unit's local time
FACILITY = dg.AssetKey(["reference", "facility"])


def _spec(name: str, text: str) -> dg.AssetSpec:
    return table_spec(f"raw.{name}", text, deps=[DATA_ELEMENT, FACILITY],
                      tags={"domain": "health-reporting"})


def rejected_markdown(rejected: list[tuple[str, str, str]]) -> dg.MetadataValue:
    """The files rejected by this run, with rule and reason (what the puskesmas must fix)."""
    return md_table(pd.DataFrame(rejected, columns=["file", "rule", "reason"]),
                    empty="_(no file rejected)_", max_rows=MAX_LISTED,
                    more=" (raw.landing_file, status = 'rejected')")


def dhis2_markdown(files: list[tuple[str, int, int, int, str]]) -> dg.MetadataValue:
    """Per DHIS2 file of this run: imported, updated, ignored and why (DHIS2's ImportSummary)."""
    return md_table(pd.DataFrame(files, columns=["file", "imported", "updated", "ignored",
                                                 "conflicts"]),
                    empty="_(no DHIS2 file this run)_", max_rows=MAX_LISTED,
                    more=" (raw.landing_file: values_imported, values_updated, values_ignored, "
                         "import_conflicts)")


def summary_metadata(summary: raw.IngestSummary) -> dict:
    return {
        "run_id": summary.run_id,
        "files_ingested": summary.files_ingested,
        "files_rejected": summary.files_rejected,
        "files_skipped": summary.files_skipped,
        "files_duplicate": summary.files_duplicate,
        "rows_read": summary.rows_read,
        "rows_kept": summary.rows_kept,
        "cells": summary.cells,
        "files_per_s": round(summary.files_per_s, 1),
        "rows_per_s": round(summary.rows_per_s, 1),
        # DHIS2's ImportSummary, summed over this run's DHIS2 files (per file: raw.landing_file)
        "dhis2_values_imported": summary.values_imported,
        "dhis2_values_updated": summary.values_updated,
        "dhis2_values_ignored": summary.values_ignored,
        "dhis2_import_summary": dhis2_markdown(summary.dhis2_files),
        "rejected_files": rejected_markdown(summary.rejected),
        "warnings": dg.MetadataValue.md(
            "\n".join(f"- {w}" for w in summary.warnings) or "_(none)_"),
    }


@writer_multi_asset([
    _spec("landing_file", "Manifest of every landing file content (sha256) and SQL/DHIS2 pull: "
                          "ingested, or rejected with a file rule (F01…F10) and the reason."),
    _spec("submission_row", "Every data row of every landed submission, verbatim, with lineage "
                            "(file, sha256, sheet, row number, received_at)."),
    _spec("submission_cell", "Every data-element cell of those rows, verbatim text "
                             "(blank stays NULL: not reported is not zero)."),
])
def raw_submissions(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse,
                    source_db: SourceDatabase):
    """Ingests new landing files (CSV, XLSX, DHIS2) and, when configured, the SQL source."""
    settings = kolab.settings()
    run_id = context.run.run_id[:12] if context.run else raw.new_run_id()
    with warehouse.connection() as con:
        summary = raw.ingest_landing(con, settings, run_id=run_id)
        if source_db.url:
            summary.merge(raw.ingest_sql(con, settings, source_db.url,
                                         table=None if source_db.query else source_db.table,
                                         query=source_db.query, run_id=run_id))
        for w in summary.warnings:
            context.log.warning(w)
        context.log.info(
            f"raw: {summary.files_ingested} file(s) ingested, {summary.files_rejected} rejected, "
            f"{summary.files_skipped} unchanged, {summary.rows_kept} rows in "
            f"{summary.seconds:.1f} s")
        meta = summary_metadata(summary)
        yield dg.MaterializeResult(asset_key=["raw", "landing_file"],
                                   metadata={**table_metadata(con, "raw.landing_file"), **meta})
        yield dg.MaterializeResult(
            asset_key=["raw", "submission_row"],
            metadata={**table_metadata(con, "raw.submission_row"),
                      "rows_this_run": summary.rows_kept})
        yield dg.MaterializeResult(
            asset_key=["raw", "submission_cell"],
            metadata={**table_metadata(con, "raw.submission_cell"),
                      "cells_this_run": summary.cells})
