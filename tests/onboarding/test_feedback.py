"""Run feedback: receipt sources read as data (today's values and `journal` alike), "did you
mean" for unknown facility codes, reports received after as_of, and the scorecard's quarantine
count attributed to the network whose file carried the rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kolab_pipeline import evaluation, reference
from kolab_pipeline.config import Settings
from kolab_pipeline.onboarding import feedback

REGISTRY = """kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,\
tanggal_buka,tanggal_tutup,formulir,kode_lokal
P0001,Puskesmas Satu,puskesmas,,36.72.01,,,tb,
KP01,Klinik Pratama Sehat,klinik_pratama,P0001,36.72.01,,,tb,KL-7
KP02,Klinik Pratama Medika,klinik_pratama,P0001,36.72.01,,,tb,
P0002,Puskesmas Dua,puskesmas,,36.72.02,,,tb,
P0003,Puskesmas Makassar,puskesmas,,64.71.01,,,tb,
"""


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, kolab_home: Path) -> tuple:
    (kolab_home / "registry").mkdir()
    (kolab_home / "registry" / "fasilitas.csv").write_text(REGISTRY)
    (kolab_home / "kolab.yaml").write_text("reporting:\n  as_of: '2025-04-30'\n")
    settings = Settings.load(kolab_home)
    reference.load_registry(con, settings)
    return con, settings


def test_source_words_take_any_received_source():
    assert feedback.source_words("manifest") == "receipt log landing/_diterima.csv"
    assert feedback.source_words("journal") == "receipt journal (the file's date when first seen)"
    assert feedback.source_words("mtime") == "the file's date (mtime)"
    assert feedback.source_words("some_new_source") == "some_new_source"   # shown as itself
    assert set(feedback.FILE_DATE_SOURCES) == {"mtime", "journal"}


@pytest.mark.parametrize("written, suggested", [
    # the name written is a registered name: that facility, whatever the code looks like
    (("KP3672901", "Klinik Pratama Sehat"), "KP01 (Klinik Pratama Sehat)"),
    # a code one typo off a registered code (KPO2 vs KP02: one letter changed)
    (("KP-O2", ""), "KP02 (Klinik Pratama Medika)"),
    # two characters swapped: PK02 → KP02
    (("PK02", ""), "KP02 (Klinik Pratama Medika)"),
    # a local code (kode_lokal alias) almost right
    (("KL7", "Klinik Baru"), "KP01 (Klinik Pratama Sehat)"),
    # a name close to a registered one (0.99 ≥ 0.93)
    (("ZZZ", "Klinik Pratama Medik"), "KP02 (Klinik Pratama Medika)"),
])
def test_did_you_mean(loaded: tuple, written: tuple, suggested: str):
    con, _ = loaded
    assert feedback.suggestions(con, [written]) == {written: suggested}


def test_nothing_close_is_not_suggested(loaded: tuple):
    con, _ = loaded
    assert feedback.suggestions(con, [("ABC123", "Rumah Bersalin Entah")]) == {}
    # two typos away is another facility, not a typo (Jaro-Winkler would rate it 0.9)
    assert feedback.suggestions(con, [("KP0X9", "")]) == {}
    # another clinic of the same kind is not "close": KLINIKPRATAMABUNDA scores 0.92 against
    # KLINIKPRATAMAMEDIKA and 0.91 against KLINIKPRATAMASEHAT, both < 0.93
    assert feedback.suggestions(con, [("ZZZ", "Klinik Pratama Bunda")]) == {}


def _submission(con, kode: str, period: str, received: str, source: str, path: str,
                version: int = 1) -> None:
    con.execute(
        "INSERT INTO clean.submission (submission_id, kode_faskes, period, form, version, "
        "is_current, received_at, received_source, is_nil_report, source_kind, source_path, "
        "row_number, file_id) VALUES (?, ?, ?, 'tb', ?, true, ?, ?, false, 'file', ?, 2, ?)",
        [f"{kode}{period}{version}", kode, period, version, received, source, path, path])


def test_sources_and_reports_after_as_of(loaded: tuple):
    con, settings = loaded
    # P0001: receipt log; KP01: its journal (first-seen file date); P0002 at 10:00 WIB on the
    # as_of day (counts: 03:00 UTC ≤ 16:59:59.999999 UTC); P0003 (WITA) 00:30 WITA on 1 May
    # = 16:30 UTC on 30 April: after WITA's as_of (15:59:59.999999 UTC) → ignored
    _submission(con, "P0001", "2025-03", "2025-04-08T09:00:00+07:00", "manifest", "a.csv")
    _submission(con, "KP01", "2025-03", "2025-04-04T09:00:00+07:00", "journal", "b.csv")
    _submission(con, "P0002", "2025-03", "2025-04-30T10:00:00+07:00", "mtime", "c.csv")
    _submission(con, "P0003", "2025-03", "2025-05-01T00:30:00+08:00", "mtime", "d.csv")
    for kode, jenis, received, status in [
            ("P0001", "puskesmas", "2025-04-08T09:00:00+07:00", "on_time"),
            ("KP01", "klinik_pratama", "2025-04-04T09:00:00+07:00", "on_time"),
            ("P0002", "puskesmas", "2025-04-30T10:00:00+07:00", "late"),
            ("P0003", "puskesmas", None, "pending"), ("KP02", "klinik_pratama", None, "missing")]:
        con.execute("INSERT INTO compliance.report_status (kode_faskes, period, form, expected, "
                    "status, overdue, received_at, received_local_date, days_late, jenis_faskes) "
                    "VALUES (?, '2025-03', 'tb', true, ?, ?, ?, CAST(? AS DATE), ?, ?)",
                    [kode, status, status == "pending", received,
                     received[:10] if received else None, 20 if status == "late" else None,
                     jenis])
    fb = feedback.collect(con, settings, ["2025-03"])
    assert dict(fb.sources) == {"manifest": 1, "journal": 1, "mtime": 1}
    assert [r["source_path"] for r in fb.file_date_files] == ["b.csv", "c.csv"]
    assert [r["kode_faskes"] for r in fb.after_as_of] == ["P0003"]
    text = "\n".join(feedback.summary_lines(fb))
    assert "5 expected, 3 received (2 on time, 1 late), 1 missing, 1 pending" in text
    assert "receipt journal (the file's date when first seen)" in text
    assert "P0002 Puskesmas Dua: tb 2025-03 (20 d)" in text
    assert "KP02 Klinik Pratama Medika: tb 2025-03" in text
    assert ("P0003 Puskesmas Makassar tb 2025-03 (d.csv row 2): received 2025-05-01 00:30 WITA "
            "from the file's date (mtime)") in text


def test_scorecard_counts_quarantined_rows_for_the_network_that_sent_the_file(loaded: tuple):
    """Rows rejected in February 2025, each counted once whatever its rules:
    - r_a, file f1 (KP01's file: its kept row is KP01 2025-02), code 'KP0X' unknown, V01 + V06
      → the file's facility KP01 → network P0001, 2025-02;
    - r_b, file f1, code KP01, period unreadable (V05) → its own facility, the file's period
      2025-02 → P0001;
    - r_c, file f2 (nothing kept), code 'ZZ9' unknown, name 'Klinik Pratama Sehat' (an alias)
      → KP01 → P0001, 2025-02;
    - r_d, file f3, code 'QQ1', name 'Nobody' → no facility: not counted;
    - r_e, file f4 (P0002's), code P0002, 2025-01 (V06) → P0002, January.
    P0001: month 2025-02 = 3 (r_a, r_b, r_c), ytd = 3; the old column counts only rows whose own
    code resolves and whose period is known: none of these three → 0.
    P0002: January month = 1, February month = 0, February ytd = 1 (Jan + Feb).
    """
    con, settings = loaded
    _submission(con, "KP01", "2025-02", "2025-03-03T09:00:00+07:00", "manifest", "f1")
    _submission(con, "P0002", "2025-01", "2025-02-03T09:00:00+07:00", "manifest", "f4")
    quarantine = [("r_a", "f1", "KP0X", "2025-02", "V01"), ("r_a", "f1", "KP0X", "2025-02", "V06"),
                  ("r_b", "f1", "KP01", None, "V05"), ("r_c", "f2", "ZZ9", "2025-02", "V01"),
                  ("r_d", "f3", "QQ1", "2025-02", "V01"), ("r_e", "f4", "P0002", "2025-01", "V06")]
    names = {"r_a": "Klinik Apa", "r_b": "Klinik Pratama Sehat", "r_c": "Klinik Pratama Sehat",
             "r_d": "Nobody", "r_e": "Puskesmas Dua"}
    for raw_row_id, file_id, kode, period, rule in quarantine:
        con.execute("INSERT INTO clean.quarantine (raw_row_id, file_id, source_path, row_number, "
                    "rule_id, severity, kode_faskes, period, form) "
                    "VALUES (?, ?, ?, 3, ?, 'error', ?, ?, 'tb')",
                    [raw_row_id, file_id, file_id, rule, kode, period])
    for raw_row_id, nama in names.items():
        con.execute("INSERT INTO raw.submission_row (raw_row_id, nama_faskes) VALUES (?, ?)",
                    [raw_row_id, nama])
    evaluation.build_scorecard(con, settings, ["2025-01", "2025-02"])

    def counts(kode: str, period: str, ptype: str) -> tuple:
        return con.execute(
            "SELECT n_quarantined_rows, n_quarantined_file_rows FROM evaluation.scorecard "
            "WHERE kode_jejaring = ? AND period = ? AND period_type = ?",
            [kode, period, ptype]).fetchone()

    assert counts("P0001", "2025-02", "month") == (0, 3)
    assert counts("P0001", "2025-02", "ytd") == (0, 3)
    assert counts("P0002", "2025-01", "month") == (1, 1)
    assert counts("P0002", "2025-02", "month") == (0, 0)
    assert counts("P0002", "2025-02", "ytd") == (1, 1)
