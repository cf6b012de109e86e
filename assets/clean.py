"""Clean assets: typed, normalised, versioned submissions plus quarantine and validation flags,
rebuilt from raw + reference in one run. Logic: `kolab_pipeline/clean.py`; checks:
`data_quality/clean_checks.py`."""

import dagster as dg
import pandas as pd

from kolab_pipeline import clean
from kolab_pipeline.orchestration.metadata import md_table, table_metadata
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse
from kolab_pipeline.orchestration.specs import table_spec, writer_multi_asset

UPSTREAM = [
    dg.AssetKey(["raw", "submission_row"]), dg.AssetKey(["raw", "submission_cell"]),
    dg.AssetKey(["raw", "landing_file"]), dg.AssetKey(["reference", "facility"]),
    dg.AssetKey(["reference", "facility_alias"]), dg.AssetKey(["reference", "form_assignment"]),
    dg.AssetKey(["reference", "data_element"]),
]
TEXTS = {
    "submission": "Every valid report version (facility × period × form × version); is_current "
                  "marks the latest received, which is the one in force.",
    "submission_value": "Reported values of the current version, long form; blank stays NULL "
                        "(not reported), never 0.",
    "submission_value_history": "Reported values of every version with the previous version's "
                                "value, to audit resubmissions.",
    "quarantine": "Rejected raw rows and files with the rule, column, value verbatim and a reason "
                  "in Indonesian and English that a puskesmas clerk can act on.",
    "validation_flag": "Warnings on kept current submissions (year-to-date consistency "
                       "V07/V08/V09/V11, element not expected from the facility type V13).",
}


def _rule_table(counts: dict[str, int], what: str) -> dg.MetadataValue:
    return md_table(pd.DataFrame(sorted(counts.items()), columns=["rule_id", what]),
                    empty=f"_(no {what})_")


@writer_multi_asset([table_spec(f"clean.{name}", text, deps=UPSTREAM)
                     for name, text in TEXTS.items()])
def clean_tables(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """Build the clean layer (deterministic, idempotent): normalise periods, facility codes and
    numbers; quarantine rows breaking an error rule; version resubmissions; flag warnings.

    Incremental: only the facility × period × form keys touched by raw files new or changed since
    the last build are recomputed (a full rebuild on the first run or when the rules, reference
    data or code changed — `clean.build_clean`); the result equals a full rebuild."""
    settings = kolab.settings()
    with warehouse.connection() as con:
        summary = clean.build_clean(con, settings)
        full = f" ({summary['full_reason']})" if summary.get("full_reason") else ""
        context.log.info(
            f"clean: {summary['kept_rows']} row(s) kept ({summary['current_submissions']} "
            f"current), {summary['quarantined_rows']} quarantined, {summary['rejected_files']} "
            f"file(s) rejected, {summary['flags']} warning flag(s); {summary['mode']} build{full}"
            f", {summary['files_cleaned']} file(s) / {summary['keys_recomputed']} key(s) "
            "recomputed")
        counts = {
            "raw_rows": dg.MetadataValue.int(int(summary["raw_rows"])),
            "kept_rows": dg.MetadataValue.int(int(summary["kept_rows"])),
            "quarantined_rows": dg.MetadataValue.int(int(summary["quarantined_rows"])),
            "build_mode": dg.MetadataValue.text(str(summary["mode"])),
            "keys_recomputed": dg.MetadataValue.int(int(summary["keys_recomputed"])),
        }
        as_int = {k: dg.MetadataValue.int(int(summary[k]))
                  for k in ("current_submissions", "resubmitted", "rejected_files")}
        extra = {
            "submission": {**counts, "current_submissions": as_int["current_submissions"],
                           "resubmitted_versions": as_int["resubmitted"]},
            "quarantine": {**counts, "rejected_files": as_int["rejected_files"],
                           "by_rule": _rule_table(summary["quarantine_by_rule"], "rows")},
            "validation_flag": {"by_rule": _rule_table(summary["flags_by_rule"], "flags")},
        }
        # the GX checks of these tables build their Data Docs under KOLAB_HOME/data_docs/
        docs = dg.MetadataValue.path(str(settings.paths.data_docs / "index.html"))
        for name in TEXTS:
            extra.setdefault(name, {})["data_docs"] = docs
            yield dg.MaterializeResult(
                asset_key=["clean", name],
                metadata={**table_metadata(con, f"clean.{name}"), **extra.get(name, {})},
            )
