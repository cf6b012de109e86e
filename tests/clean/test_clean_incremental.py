"""Incremental clean builds equal a full rebuild exactly.

`build_clean` cleans only the raw files that are new (or changed) since the last build and
recomputes whole every facility × period × form key they touch — a resubmission of an older
month changes that key's versions — plus the YTD warnings of the facility × form × year around
them.
Every test here compares the incremental result with `build_clean(full=True)` on the same raw
data, table by table, with EXCEPT ALL both ways (duplicates count).
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from kolab_pipeline import clean, raw, reference
from kolab_pipeline import sample as sample_data
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support.clean import Raw, q, raw_fixture, ref_con_fixture  # noqa: F401  (fixtures)


def _snapshot(con: duckdb.DuckDBPyConnection, tag: str) -> None:
    for t in clean.CLEAN_TABLES:
        con.execute(f"CREATE OR REPLACE TEMP TABLE snap_{tag}_{t.split('.')[1]} AS "
                    f"SELECT * FROM {t}")


def _differences(con: duckdb.DuckDBPyConnection, tag: str) -> dict[str, tuple[int, int, int]]:
    """{table: (rows, rows only in the snapshot, rows only in the table now)} for tables that
    differ."""
    out = {}
    for t in clean.CLEAN_TABLES:
        s = f"snap_{tag}_{t.split('.')[1]}"
        a = q(con, f"SELECT count(*) FROM (SELECT * FROM {s} EXCEPT ALL SELECT * FROM {t})")[0][0]
        b = q(con, f"SELECT count(*) FROM (SELECT * FROM {t} EXCEPT ALL SELECT * FROM {s})")[0][0]
        if a or b:
            out[t] = (q(con, f"SELECT count(*) FROM {t}")[0][0], a, b)
    return out


def _assert_equals_full_rebuild(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    _snapshot(con, "inc")
    full = clean.build_clean(con, settings, full=True)
    assert full["mode"] == "full"
    assert _differences(con, "inc") == {}
    return full


# --- small, exact cases on hand-made raw rows ------------------------------------------------

def test_resubmission_in_a_new_file_reversions_an_older_key(raw: Raw, settings: Settings) -> None:
    raw.file("jan.csv", received_at="2025-02-03T10:00:00+07:00")
    raw.row("jan.csv", 2, "kia", "2025-01", "KP3672001", {"kia_k1": "1", "kia_k4": "0"})
    raw.row("jan.csv", 3, "kia", "2025-01", "P3672010201", {"kia_k1": "5", "kia_k4": "2"})
    raw.file("feb.csv", received_at="2025-03-03T10:00:00+07:00")
    raw.row("feb.csv", 2, "kia", "2025-02", "KP3672001", {"kia_k1": "2", "kia_k4": "3"})
    raw.row("feb.csv", 3, "kia", "2025-02", "P3672010201", {"kia_k1": "x"})    # V06, quarantined
    raw.file("bad.csv", status="rejected", reject_rule="F02", reject_reason="bad.csv: empty")
    first = clean.build_clean(raw.con, settings)
    assert first["mode"] == "full" and first["full_reason"] == "no previous build"
    assert q(raw.con, "SELECT count(*) FROM clean.validation_flag")[0][0] == 0
    # March arrives, with a correction of January (K4 raised to 8 > K1: V07 on January, February and
    # March, whose year-to-date sums all include January)
    raw.file("mar.csv", received_at="2025-04-03T10:00:00+07:00")
    raw.row("mar.csv", 2, "kia", "2025-03", "KP3672001", {"kia_k1": "2", "kia_k4": "1"})
    raw.row("mar.csv", 3, "kia", "2025-01", "KP3672001", {"kia_k1": "1", "kia_k4": "8"})
    raw.row("mar.csv", 4, "kia", "2025-13", "KP3672001", {"kia_k1": "1"})      # V05
    inc = clean.build_clean(raw.con, settings)
    assert inc["mode"] == "incremental"
    # mar.csv; 2025-01 and 2025-03
    assert (inc["files_cleaned"], inc["keys_recomputed"]) == (1, 2)
    assert q(raw.con, "SELECT period, version, is_current FROM clean.submission "
                      "WHERE kode_faskes = 'KP3672001' ORDER BY ALL") == [
        ("2025-01", 1, False), ("2025-01", 2, True), ("2025-02", 1, True), ("2025-03", 1, True)]
    assert q(raw.con, "SELECT period, rule_id FROM clean.validation_flag ORDER BY ALL") == [
        ("2025-01", "V07"), ("2025-02", "V07"), ("2025-03", "V07")]
    full = _assert_equals_full_rebuild(raw.con, settings)
    layer = lambda s: {k: v for k, v in s.items() if k not in clean.RUN_KEYS}  # noqa: E731
    assert layer(inc) == layer(full)


def test_rows_added_to_a_cleaned_file_and_new_paths_of_rejected_content(
        raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "4"})
    raw.file("bad.csv", status="rejected", reject_rule="F02", reject_reason="bad.csv: empty")
    raw.con.execute("INSERT INTO raw.landing_path (source_path, file_id, role) "
                    "VALUES ('bad.csv', 'sha_bad.csv', 'primary')")
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT rule_id, count(*) FROM clean.quarantine GROUP BY ALL") == [("F02", 1)]
    # a row appended to an already cleaned file (its signature changes) and a second path of the
    # rejected content (raw.landing_path only)
    raw.row("a.csv", 3, "tb", "2025-03", "KP3672001", {"tb_skrining": "5"})  # V15 with row 2 now
    raw.con.execute("INSERT INTO raw.landing_path (source_path, file_id, role) "
                    "VALUES ('copy/bad.csv', 'sha_bad.csv', 'duplicate')")
    inc = clean.build_clean(raw.con, settings)
    assert inc["mode"] == "incremental" and inc["files_cleaned"] == 1
    assert q(raw.con, "SELECT count(*) FROM clean.submission")[0][0] == 0
    assert q(raw.con,
             "SELECT rule_id, count(*) FROM clean.quarantine GROUP BY ALL ORDER BY ALL") == [
        ("F02", 2), ("V15", 2)]
    _assert_equals_full_rebuild(raw.con, settings)


def test_changed_rules_reference_or_empty_tables_force_a_full_build(raw: Raw,
                                                                    settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "4"})
    clean.build_clean(raw.con, settings)
    assert clean.build_clean(raw.con, settings)["mode"] == "incremental"
    raw.con.execute("UPDATE reference.facility SET timezone = 'Asia/Makassar' "
                    "WHERE kode_faskes = 'KP3672001'")
    again = clean.build_clean(raw.con, settings)
    assert (again["mode"], again["full_reason"]) == (
        "full", "rules, settings, reference or code changed")
    raw.con.execute("UPDATE clean.build_state SET fingerprint = 'old'")
    assert clean.build_clean(raw.con, settings)["mode"] == "full"
    for t in clean.CLEAN_TABLES:
        raw.con.execute(f"DELETE FROM {t}")
    wiped = clean.build_clean(raw.con, settings)
    assert (wiped["mode"], wiped["kept_rows"]) == ("full", 1)


# --- end to end: the messy kabupaten sample, one month at a time --------------------------------

def _move_month(src: Path, dst: Path, period: str) -> int:
    moved = 0
    for d in sorted(p for p in src.rglob(period) if p.is_dir()):
        target = dst / d.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(d), str(target))
        moved += 1
    return moved


def _resubmit(landing: Path, period: str) -> Path:
    """A corrected copy of one CSV of an older month, under a new name, received later: every row in
    it becomes a new version of its key, and one value changes."""
    original = sorted(landing.glob(f"*/kia/{period}/*.csv"))[0]
    lines = original.read_text(encoding="utf-8").splitlines()
    last = lines[-1]
    m = list(re.finditer(r"(?<=[,;])(\d+)(?=[,;]|$)", last))[-1]
    lines[-1] = last[:m.start()] + str(int(m.group(1)) + 7) + last[m.end():]
    copy = original.with_name(original.stem + "_revisi.csv")
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    later = datetime(2025, 4, 15, 9, 0).timestamp()
    os.utime(copy, (later, later))
    return copy


@pytest.mark.slow
def test_incremental_months_equal_a_full_rebuild(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sample_data.generate(home, seed=1, as_of=date(2025, 4, 20), scale="kabupaten", months=3,
                         messy=True)
    settings = Settings.load(home)
    held = tmp_path / "held"
    assert _move_month(settings.paths.landing, held, "2025-03") > 0
    con = connect(settings.paths.warehouse)
    try:
        ensure_schema(con)
        reference.load_catalogues(con)
        reference.load_registry(con, settings)
        raw.ingest_landing(con, settings)
        first = clean.build_clean(con, settings)
        assert first["mode"] == "full"
        assert first["quarantined_rows"] > 0 and first["resubmitted"] > 0
        files_before = first["files_cleaned"]

        # month 3 arrives, with a resubmission of month 1
        _move_month(held, settings.paths.landing, "2025-03")
        _resubmit(settings.paths.landing, "2025-01")
        raw.ingest_landing(con, settings)
        inc = clean.build_clean(con, settings)
        assert inc["mode"] == "incremental"
        n_files = q(con, "SELECT count(*) FROM clean.build_state")[0][0]
        assert 0 < inc["files_cleaned"] == n_files - files_before
        assert inc["rows_cleaned"] < inc["raw_rows"]
        assert q(con, "SELECT count(*) FROM clean.submission WHERE period = '2025-03'")[0][0] > 0
        revised = q(con, "SELECT count(*) FROM clean.submission WHERE period = '2025-01' "
                         "AND source_path LIKE '%_revisi.csv' AND is_current AND version > 1")
        assert revised[0][0] > 0
        assert clean.accounting(con)["ok"]

        # nothing new: nothing cleaned, nothing changed
        _snapshot(con, "again")
        idle = clean.build_clean(con, settings)
        assert (idle["mode"], idle["files_cleaned"], idle["rows_cleaned"]) == ("incremental", 0, 0)
        assert _differences(con, "again") == {}

        full = _assert_equals_full_rebuild(con, settings)
        layer = lambda s: {k: v for k, v in s.items() if k not in clean.RUN_KEYS}  # noqa: E731
        assert layer(inc) == layer(full)
    finally:
        con.close()
