"""End to end: sample generator → raw → clean → compliance, against ground_truth/reports.csv.

The generator's answer key and the pipeline share the status semantics of docs/SAMPLE_DATA.md,
so every field of every report must agree. A mismatch is listed with the clean versions behind it
and whether ground_truth/invalid_rows.csv says such a row should have been quarantined (then the
clean layer is the side to fix; otherwise the compliance rules or the generator)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from kolab_pipeline import clean, compliance, raw, reference
from kolab_pipeline import sample as sample_data
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import connect, ensure_schema

FIELDS = ["status", "expected", "received_local_date", "n_versions", "is_nil_report", "due_date",
          "cutoff_date", "overdue", "received_after_cutoff", "days_late"]


def _explain(con, gt_invalid: pd.DataFrame, key: tuple[str, str, str]) -> str:
    rows = con.execute("""SELECT version, received_at, source_path, coalesce(sheet, ''), row_number
                            FROM clean.submission WHERE kode_faskes = ? AND period = ? AND form = ?
                           ORDER BY version""", list(key)).fetchall()
    parts = []
    for version, received_at, path, sheet, row_number in rows:
        hit = gt_invalid[(gt_invalid.file == path) & (gt_invalid.sheet == sheet)
                         & (gt_invalid.row_number == str(row_number))]
        verdict = (f"ground truth: invalid {hit.rule_id.iloc[0]} ({hit.column_name.iloc[0]}) "
                   "— clean kept it" if len(hit) else "valid in ground truth")
        parts.append(f"v{version} {received_at:%Y-%m-%d %H:%M%z} {path}:{sheet}:{row_number} "
                     f"[{verdict}]")
    return "; ".join(parts) or "no clean version"


@pytest.mark.slow
def test_statuses_match_ground_truth(kolab_home):
    sample_data.generate(kolab_home, seed=1, as_of=date(2025, 1, 20), scale="kabupaten",
                         months=3, messy=True)
    settings = Settings.load(kolab_home)
    con = connect(settings.paths.warehouse)
    ensure_schema(con)
    reference.load_registry(con, settings)
    raw.ingest_landing(con, settings)
    clean.build_clean(con, settings)
    gt = pd.read_csv(kolab_home / "ground_truth" / "reports.csv", dtype=str).fillna("")
    periods = sorted(gt.period.unique())
    assert periods == ["2024-10", "2024-11", "2024-12"]
    compliance.run_compliance(con, settings, periods)
    ours = con.execute("""
        SELECT kode_faskes, period, form, status, CAST(expected::INT AS VARCHAR) AS expected,
               coalesce(CAST(received_local_date AS VARCHAR), '') AS received_local_date,
               CAST(n_versions AS VARCHAR) AS n_versions,
               CAST(is_nil_report::INT AS VARCHAR) AS is_nil_report,
               CAST(due_date AS VARCHAR) AS due_date, CAST(cutoff_date AS VARCHAR) AS cutoff_date,
               CAST(overdue::INT AS VARCHAR) AS overdue,
               CAST(received_after_cutoff::INT AS VARCHAR) AS received_after_cutoff,
               coalesce(CAST(days_late AS VARCHAR), '') AS days_late
          FROM compliance.report_status""").df()
    merged = gt.merge(ours, on=["kode_faskes", "period", "form"], how="outer",
                      suffixes=("_gt", "_ours"), indicator=True)
    only = merged[merged._merge != "both"]
    listed = only[["kode_faskes", "period", "form", "_merge"]].to_string()
    assert only.empty, f"reports in only one side:\n{listed}"
    invalid = pd.read_csv(kolab_home / "ground_truth" / "invalid_rows.csv", dtype=str).fillna("")
    problems = []
    for field in FIELDS:
        diff = merged[merged[f"{field}_gt"].fillna("") != merged[f"{field}_ours"].fillna("")]
        for r in diff.itertuples():
            key = (r.kode_faskes, r.period, r.form)
            problems.append(f"{'/'.join(key)} {field}: ground truth {getattr(r, field + '_gt')!r} "
                            f"(status {r.status_gt}), ours {getattr(r, field + '_ours')!r} "
                            f"(status {r.status_ours}) — {_explain(con, invalid, key)}")
    con.close()
    assert not problems, (f"{len(problems)} field mismatches of {len(gt)} reports:\n"
                          + "\n".join(problems[:60]))
    # the sample exercises every status
    assert set(gt.status) == {"on_time", "late", "missing", "pending", "unexpected"}
