"""End to end: sample generator → raw → clean → compliance, against ground_truth/reports.csv.

The generator's answer key and the pipeline share the status semantics of docs/SAMPLE_DATA.md,
so every field of every report must agree. A mismatch is listed with the clean versions behind it
and whether ground_truth/invalid_rows.csv says such a row should have been quarantined (then the
clean layer is the side to fix; otherwise the compliance rules or the generator)."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
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


def _pipeline(home: Path) -> duckdb.DuckDBPyConnection:
    """registry → raw → clean → compliance of the sample's months, into home's warehouse."""
    settings = Settings.load(home)
    con = connect(settings.paths.warehouse)
    ensure_schema(con)
    reference.load_registry(con, settings)
    raw.ingest_landing(con, settings)
    clean.build_clean(con, settings)
    compliance.run_compliance(con, settings, ["2024-10", "2024-11", "2024-12"])
    return con


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("e2e") / "kolab_home"
    sample_data.generate(home, seed=1, as_of=date(2025, 1, 20), scale="kabupaten",
                         months=3, messy=True)
    _pipeline(home).close()
    return home


@pytest.mark.slow
def test_statuses_match_ground_truth(sample_home):
    kolab_home = sample_home
    settings = Settings.load(kolab_home)
    con = connect(settings.paths.warehouse)
    gt = pd.read_csv(kolab_home / "ground_truth" / "reports.csv", dtype=str).fillna("")
    periods = sorted(gt.period.unique())
    assert periods == ["2024-10", "2024-11", "2024-12"]
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


STATUS_COLUMNS = ("kode_faskes, period, form, status, received_at, received_source, "
                  "received_dinkes_at, declared_at, days_late, forwarded_on_time, "
                  "received_by_cutoff")


@pytest.mark.slow
def test_statuses_survive_a_copied_landing_folder_and_an_empty_warehouse(sample_home, tmp_path):
    """Issue 16 item 7: copy the landing folder (every mtime becomes the copy's), start from an
    empty warehouse, re-run: every status and receipt time is the same. The sample has files
    whose mtime is their receipt (Kota Cilegon's clinic files, no receipt-log line): the receipt
    journal kept with the folder is what keeps them."""
    settings = Settings.load(sample_home)
    with connect(settings.paths.warehouse) as con:
        before = con.execute(f"SELECT {STATUS_COLUMNS} FROM compliance.report_status "
                             "ORDER BY ALL").fetchall()
        by_journal = con.execute("SELECT count(*) FROM clean.submission "
                                 "WHERE received_source = 'journal'").fetchone()[0]
    assert by_journal > 0
    copy = tmp_path / "kolab_home"
    copy.mkdir()
    for part in ("registry", "ground_truth"):
        shutil.copytree(sample_home / part, copy / part)
    shutil.copy(sample_home / "kolab.yaml", copy / "kolab.yaml")
    shutil.copytree(sample_home / "landing", copy / "landing", copy_function=shutil.copy)
    later = time.time()
    for path in (copy / "landing").rglob("*"):
        if path.is_file():
            os.utime(path, (later, later))
    assert not (copy / "kolab.duckdb").exists()
    con = _pipeline(copy)
    after = con.execute(f"SELECT {STATUS_COLUMNS} FROM compliance.report_status "
                        "ORDER BY ALL").fetchall()
    con.close()
    assert len(after) == len(before) > 6000
    assert after == before
