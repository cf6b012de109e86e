"""Resubmissions (versions, history), idempotency and the accounting invariant of the clean
layer."""

from __future__ import annotations

import hashlib

import duckdb
import pandas as pd

from kolab_pipeline import clean
from kolab_pipeline.config import Settings
from tests.support.clean import Raw, q, raw_fixture, ref_con_fixture  # noqa: F401  (fixtures)


def _two_versions(raw: Raw) -> None:
    # received first although its name sorts last: order is by the file's received_at
    raw.file("z_pertama.csv", received_at="2025-04-03T10:00:00+07:00")
    raw.file("a_perbaikan.csv", received_at="2025-04-08T09:00:00+07:00")
    raw.row("z_pertama.csv", 2, "kia", "2025-03", "KP3672001",
            {"kia_k1": "10", "kia_k4": "5", "kia_kn1": "3"}, tanggal_lapor="2025-04-02")
    raw.row("a_perbaikan.csv", 2, "kia", "2025-03", "KP3672001",
            {"kia_k1": "12", "kia_k4": "5", "kia_kn1": None, "kia_k6": "1"},
            tanggal_lapor="2025-04-02")  # same day as v1: the file received later wins


def test_version_2_supersedes_version_1(raw: Raw, settings: Settings) -> None:
    _two_versions(raw)
    summary = clean.build_clean(raw.con, settings)
    subs = q(raw.con, "SELECT submission_id, source_path, version, is_current "
                      "FROM clean.submission ORDER BY version")
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    assert subs == [(md5("KP3672001|2025-03|kia|1"), "z_pertama.csv", 1, False),
                    (md5("KP3672001|2025-03|kia|2"), "a_perbaikan.csv", 2, True)]
    # current values: version 2 only; a blank stays NULL (kn1 was 3 in v1 and is blank now)
    assert dict(q(raw.con, "SELECT data_element, value FROM clean.submission_value")) == {
        "kia_k1": 12, "kia_k4": 5, "kia_kn1": None, "kia_k6": 1}
    assert q(raw.con, "SELECT DISTINCT submission_id FROM clean.submission_value") == [
        (subs[1][0],)]
    history = {(v, e): (val, prev, ch) for v, e, val, prev, ch in q(
        raw.con, "SELECT version, data_element, value, previous_value, changed "
                 "FROM clean.submission_value_history")}
    assert history == {
        (1, "kia_k1"): (10, None, False), (1, "kia_k4"): (5, None, False),
        (1, "kia_kn1"): (3, None, False),
        (2, "kia_k1"): (12, 10, True),     # corrected 10 → 12
        (2, "kia_k4"): (5, 5, False),      # unchanged
        (2, "kia_kn1"): (None, 3, True),   # 3 → blank
        (2, "kia_k6"): (1, None, True),    # new in version 2
    }
    assert summary["kept_rows"] == 2 and summary["current_submissions"] == 1
    assert summary["resubmitted"] == 1


def test_row_received_time_orders_versions_before_file_time(raw: Raw, settings: Settings) -> None:
    # a puskesmas recap forwarded on 10 April carries the clinic's report of 2 April; the clinic's
    # own correction arrived on 5 April: the correction is the newer version
    raw.file("rekap.csv", received_at="2025-04-10T09:00:00+07:00")
    raw.file("revisi.csv", received_at="2025-04-05T09:00:00+07:00")
    raw.row("rekap.csv", 4, "tb", "2025-03", "KP3672001", {"tb_skrining": "7"},
            tanggal_lapor="2025-04-02")
    raw.row("revisi.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "9"},
            tanggal_lapor="2025-04-05")
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT source_path, version, is_current FROM clean.submission "
                      "ORDER BY version") == [
        ("rekap.csv", 1, False), ("revisi.csv", 2, True)]
    assert q(raw.con, "SELECT value FROM clean.submission_value") == [(9,)]


def test_ties_on_received_at_break_by_path_sheet_row(raw: Raw, settings: Settings) -> None:
    raw.file("b.csv", received_at="2025-04-03T10:00:00+07:00")
    raw.file("a.csv", received_at="2025-04-03T10:00:00+07:00")
    raw.row("b.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "1"})
    raw.row("a.csv", 7, "tb", "2025-03", "KP3672001", {"tb_skrining": "2"})
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT source_path, version FROM clean.submission ORDER BY version") == [
        ("a.csv", 1), ("b.csv", 2)]
    assert q(raw.con, "SELECT value FROM clean.submission_value") == [(1,)]


def _mixed(raw: Raw) -> None:
    _two_versions(raw)
    raw.file("c.csv", received_at="2025-04-05T10:00:00+07:00")
    raw.file("rusak.csv", status="rejected", reject_rule="F01",
             reject_reason="rusak.csv: not a CSV")
    raw.row("c.csv", 2, "tb", "2025-03", "KP-99", {"tb_skrining": "1"})
    raw.row("c.csv", 3, "tb", "2025-03", "DR3672001", {"tb_skrining": "-2"}, nihil="ya")
    raw.row("c.csv", 4, "tb", "2025-03", "DR3672001", {"tb_skrining": "3"})
    raw.row("c.csv", 5, "imun", "2025-01", "KP3672001", {"imun_dpt1": "1", "imun_dpt3": "4"})


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df() for t in clean.CLEAN_TABLES}


def test_build_twice_gives_identical_tables(raw: Raw, settings: Settings) -> None:
    _mixed(raw)
    first = clean.build_clean(raw.con, settings)
    snap1 = _snapshot(raw.con)
    second = clean.build_clean(raw.con, settings)     # nothing new: an empty incremental build
    snap2 = _snapshot(raw.con)
    third = clean.build_clean(raw.con, settings, full=True)   # and a forced full rebuild
    snap3 = _snapshot(raw.con)
    assert (first["mode"], second["mode"], third["mode"]) == ("full", "incremental", "full")
    assert (second["files_cleaned"], second["rows_cleaned"], second["keys_recomputed"]) == (0, 0, 0)
    layer = lambda s: {k: v for k, v in s.items() if k not in clean.RUN_KEYS}  # noqa: E731
    assert layer(first) == layer(second) == layer(third)
    for name in clean.CLEAN_TABLES:
        pd.testing.assert_frame_equal(snap1[name], snap2[name], check_dtype=True)
        pd.testing.assert_frame_equal(snap1[name], snap3[name], check_dtype=True)
    # the mix really exercised every table
    assert {k: len(v) for k, v in snap1.items()} == {
        "clean.submission": 3,                # two KIA versions + imun row (c.csv rows 3/4: V15)
        "clean.submission_value": 6,          # kia v2: 4 elements; imun: 2
        "clean.submission_value_history": 9,  # kia v1: 3 + v2: 4; imun: 2
        "clean.quarantine": 5,                # V01 row 2; V15 rows 3, 4; V06 row 3; rusak.csv F01
        "clean.validation_flag": 1,           # imun: DPT3 4 > DPT1 1 (V08)
    }


def test_accounting_every_raw_row_once(raw: Raw, settings: Settings) -> None:
    _mixed(raw)
    clean.build_clean(raw.con, settings)
    acc = clean.accounting(raw.con)
    # 6 raw rows: 3 kept (2 KIA versions + imun), 3 quarantined (c.csv rows 2, 3, 4)
    assert {k: v for k, v in acc.items() if k != "sample"} == {
        "raw_rows": 6, "kept": 3, "quarantined": 3, "unaccounted": 0, "kept_and_quarantined": 0,
        "kept_twice": 0, "orphans": 0, "ok": True}
    # break the invariant: drop the quarantine rows of c.csv row 2 → one unaccounted raw row
    raw.con.execute("DELETE FROM clean.quarantine WHERE source_path = 'c.csv' AND row_number = 2")
    broken = clean.accounting(raw.con)
    assert broken["ok"] is False and broken["unaccounted"] == 1
    assert broken["sample"]["raw_row_id"].tolist() == ["sha_c.csv::2"]
    # and a row both kept and quarantined
    raw.con.execute("INSERT INTO clean.quarantine (raw_row_id, rule_id) "
                    "SELECT raw_row_id, 'V01' FROM clean.submission "
                    "WHERE form = 'kia' AND version = 1")
    assert clean.accounting(raw.con)["kept_and_quarantined"] == 1


def test_structural_sql_checks(raw: Raw, settings: Settings) -> None:
    _two_versions(raw)
    clean.build_clean(raw.con, settings)
    assert clean.duplicate_current_versions(raw.con)[0] == 0
    assert clean.unresolved_keys(raw.con)[0] == 0
    raw.con.execute("UPDATE clean.submission SET is_current = true")   # both versions current
    n, sample = clean.duplicate_current_versions(raw.con)
    assert n == 1 and sample[["kode_faskes", "n_current"]].values.tolist() == [["KP3672001", 2]]
    raw.con.execute("UPDATE clean.submission SET kode_faskes = 'KP-XX', period = '2025-3' "
                    "WHERE version = 1")
    n, sample = clean.unresolved_keys(raw.con)
    assert n == 1
    assert sample["problem"].tolist() == ["kode_faskes not in registry; period not YYYY-MM"]


def test_two_columns_for_one_element_keep_the_leftmost(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    rid = raw.row("a.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "4"})
    other = raw.row("a.csv", 3, "tb", "2025-03", "P3672010201", {"tb_skrining": "6"})
    # a second header mapped to tb_skrining further right (e.g. code and label both present)
    second_column = ("INSERT INTO raw.submission_cell "
                     "(raw_row_id, column_index, header, data_element, value_text) "
                     "VALUES ($raw_row_id, 20, 'Orang diskrining', 'tb_skrining', $text)")
    raw.con.execute(second_column, {"raw_row_id": rid, "text": "9"})
    raw.con.execute(second_column, {"raw_row_id": other, "text": "8"})
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT kode_faskes, value FROM clean.submission_value ORDER BY ALL") == [
        ("KP3672001", 4), ("P3672010201", 6)]


def test_without_a_loaded_catalogue_the_shipped_one_is_used(raw: Raw, settings: Settings) -> None:
    raw.con.execute("DELETE FROM reference.data_element")
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "1.234"})
    raw.row("a.csv", 3, "tb", "2025-03", "DR3672001", {"tb_skrining": "-1"})
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT data_element, value FROM clean.submission_value") == [
        ("tb_skrining", 1234)]
    assert q(raw.con, "SELECT row_number, rule_id FROM clean.quarantine") == [(3, "V06")]
