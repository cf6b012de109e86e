"""What the checks read from the clean layer: its counts (`summarise`), the accounting invariant
(every raw row kept once or quarantined) and the exact structural checks the Dagster checks wrap.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from kolab_pipeline.catalog import FORMS
from kolab_pipeline.clean.parsers import sql_list
from kolab_pipeline.clean.stage import PREFIX
from kolab_pipeline.warehouse import Staging

QUARANTINE_BY_RULE = """SELECT rule_id, count(DISTINCT coalesce(raw_row_id, source_path))
  FROM clean.quarantine GROUP BY rule_id ORDER BY rule_id"""

FLAGS_BY_RULE = """SELECT rule_id, count(*)
  FROM clean.validation_flag GROUP BY rule_id ORDER BY rule_id"""

COUNTS = {
    "raw_rows": "SELECT count(*) FROM raw.submission_row",
    "kept_rows": "SELECT count(*) FROM clean.submission",
    "current_submissions": "SELECT count(*) FROM clean.submission WHERE is_current",
    "resubmitted": "SELECT count(*) FROM clean.submission WHERE version > 1",
    "quarantined_rows": "SELECT count(DISTINCT raw_row_id) FROM clean.quarantine",
    "rejected_files": "SELECT count(DISTINCT source_path) FROM clean.quarantine "
                      "WHERE raw_row_id IS NULL",
    "values": "SELECT count(*) FROM clean.submission_value",
    "history_values": "SELECT count(*) FROM clean.submission_value_history",
    "flags": "SELECT count(*) FROM clean.validation_flag",
}


def summarise(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts of the clean layer: rows kept / quarantined, and per rule (rows, not cells)."""
    out: dict[str, Any] = {name: con.execute(sql).fetchone()[0] for name, sql in COUNTS.items()}
    out["quarantine_by_rule"] = dict(con.execute(QUARANTINE_BY_RULE).fetchall())
    out["flags_by_rule"] = dict(con.execute(FLAGS_BY_RULE).fetchall())
    return out


# one raw row with the number of times it is kept and quarantined
ROW_FATES = """
WITH kept AS (SELECT raw_row_id, count(*) AS n FROM clean.submission GROUP BY raw_row_id),
     quarantined AS (SELECT raw_row_id, count(*) AS n FROM clean.quarantine
                      WHERE raw_row_id IS NOT NULL GROUP BY raw_row_id)
SELECT raw_row.raw_row_id, raw_row.source_path, raw_row.sheet, raw_row.row_number,
       coalesce(kept.n, 0) AS n_kept, coalesce(quarantined.n, 0) AS n_quarantine
  FROM raw.submission_row raw_row
  LEFT JOIN kept ON kept.raw_row_id = raw_row.raw_row_id
  LEFT JOIN quarantined ON quarantined.raw_row_id = raw_row.raw_row_id
"""

FATE_COUNTS = """
SELECT count(*), count(*) FILTER (WHERE n_kept = 1 AND n_quarantine = 0),
       count(*) FILTER (WHERE n_kept = 0 AND n_quarantine > 0),
       count(*) FILTER (WHERE n_kept = 0 AND n_quarantine = 0),
       count(*) FILTER (WHERE n_kept > 0 AND n_quarantine > 0),
       count(*) FILTER (WHERE n_kept > 1)
  FROM _clean_accounting"""

# kept or quarantined rows whose raw row is gone
ORPHANS = """
SELECT count(*) FROM (
    SELECT raw_row_id FROM clean.submission
    UNION ALL SELECT raw_row_id FROM clean.quarantine WHERE raw_row_id IS NOT NULL
) accounted ANTI JOIN raw.submission_row raw_row ON raw_row.raw_row_id = accounted.raw_row_id"""

UNACCOUNTED_SAMPLE = """
SELECT raw_row_id, source_path, sheet, row_number, n_kept, n_quarantine FROM _clean_accounting
 WHERE NOT ((n_kept = 1 AND n_quarantine = 0) OR (n_kept = 0 AND n_quarantine > 0))
 ORDER BY source_path, sheet, row_number LIMIT $sample_size"""


def accounting(con: duckdb.DuckDBPyConnection, sample_size: int = 10) -> dict[str, Any]:
    """Check the invariant: every raw row is kept exactly once (in `clean.submission`) or
    quarantined (≥1 `clean.quarantine` rows) — never both, never neither.

    Returns the counts and a sample of offending raw_row_ids; `ok` is the verdict.
    """
    with Staging(con, PREFIX) as stage:
        stage.create("accounting", ROW_FATES)
        counts = con.execute(FATE_COUNTS).fetchone()
        orphans = con.execute(ORPHANS).fetchone()[0]
        sample = con.execute(UNACCOUNTED_SAMPLE, {"sample_size": sample_size}).df()
    names = ("raw_rows", "kept", "quarantined", "unaccounted", "kept_and_quarantined",
             "kept_twice")
    out: dict[str, Any] = {**dict(zip(names, counts, strict=True)), "orphans": orphans}
    out["ok"] = (out["unaccounted"] == 0 and out["kept_and_quarantined"] == 0
                 and out["kept_twice"] == 0 and orphans == 0)
    out["sample"] = sample
    return out


# --- exact structural checks (SQL over whole tables; the Dagster checks wrap these) ---------------

def _count_and_sample(con: duckdb.DuckDBPyConnection, sql: str, order: str,
                      sample_size: int) -> tuple[int, pd.DataFrame]:
    n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    sample = con.execute(f"SELECT * FROM ({sql}) ORDER BY {order} LIMIT $sample_size",
                         {"sample_size": sample_size}).df()
    return n, sample


NOT_ONE_CURRENT = """
SELECT kode_faskes, period, form, count(*) FILTER (WHERE is_current) AS n_current,
       count(*) AS n_versions
  FROM clean.submission GROUP BY kode_faskes, period, form
HAVING count(*) FILTER (WHERE is_current) <> 1"""


def duplicate_current_versions(con: duckdb.DuckDBPyConnection,
                               sample_size: int = 10) -> tuple[int, pd.DataFrame]:
    """Facility × period × form groups that do not have exactly one current version.
    Returns (number of such groups, sample DataFrame)."""
    return _count_and_sample(con, NOT_ONE_CURRENT, "kode_faskes, period, form", sample_size)


_UNKNOWN_FACILITY = ("kode_faskes IS NULL "
                     "OR kode_faskes NOT IN (SELECT kode_faskes FROM reference.facility)")
_BAD_PERIOD = r"period IS NULL OR NOT regexp_full_match(period, '\d{4}-(0[1-9]|1[0-2])')"
_UNKNOWN_FORM = f"form IS NULL OR form NOT IN ({sql_list(FORMS)})"

UNRESOLVED = f"""
SELECT 'clean.submission' AS tbl, submission_id, kode_faskes, period, form,
       concat_ws('; ',
         CASE WHEN {_UNKNOWN_FACILITY} THEN 'kode_faskes not in registry' END,
         CASE WHEN {_BAD_PERIOD} THEN 'period not YYYY-MM' END,
         CASE WHEN {_UNKNOWN_FORM} THEN 'unknown form' END) AS problem
  FROM clean.submission
 WHERE {_UNKNOWN_FACILITY}
    OR {_BAD_PERIOD}
    OR {_UNKNOWN_FORM}
UNION ALL
SELECT 'clean.submission_value', current_value.submission_id, current_value.kode_faskes,
       current_value.period, current_value.form,
       'value of a submission that is not current' AS problem
  FROM clean.submission_value current_value
  ANTI JOIN (SELECT submission_id FROM clean.submission WHERE is_current) current_sub
    ON current_sub.submission_id = current_value.submission_id"""


def unresolved_keys(con: duckdb.DuckDBPyConnection,
                    sample_size: int = 10) -> tuple[int, pd.DataFrame]:
    """Kept submissions whose facility is not in the registry, whose period is not `YYYY-MM`, or
    whose form is unknown — and values whose submission is not a current one."""
    return _count_and_sample(con, UNRESOLVED, "ALL", sample_size)
