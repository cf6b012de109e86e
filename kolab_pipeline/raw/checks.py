"""Queries the raw layer's checks ask: files whose row counts do not reconcile, rejected files."""

from __future__ import annotations

import duckdb
import pandas as pd

_UNRECONCILED = """
    SELECT landing.source_path, landing.file_id, landing.status, landing.n_rows_read,
           landing.n_rows_kept, landing.n_rows_rejected, coalesce(stored.n, 0) AS rows_in_table
      FROM raw.landing_file AS landing
      LEFT JOIN (SELECT file_id, count(*) AS n FROM raw.submission_row GROUP BY file_id) AS stored
        USING (file_id)
     WHERE landing.n_rows_read IS DISTINCT FROM landing.n_rows_kept + landing.n_rows_rejected
        OR coalesce(stored.n, 0) <> landing.n_rows_kept
     ORDER BY landing.source_path"""
_REJECTED = """
    SELECT source_path, reject_rule, reject_reason FROM raw.landing_file
     WHERE status = 'rejected' AND ($run_id IS NULL OR run_id = $run_id)
     ORDER BY source_path"""


def unreconciled_files(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Files whose counts do not reconcile: `n_rows_read ≠ kept + rejected`, or a kept count that
    differs from the rows actually in `raw.submission_row`. Empty = nothing lost."""
    return con.execute(_UNRECONCILED).df()


def rejected_files(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pd.DataFrame:
    """The rejected files (path, rule, reason), of one run when `run_id` is given."""
    return con.execute(_REJECTED, {"run_id": run_id or None}).df()
