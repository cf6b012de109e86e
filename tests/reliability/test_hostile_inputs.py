"""Hostile inputs (issue 10): every malformed file of `tests/support/hostile_corpus.py` lands next
to a good file; the raw and clean layers must finish, reach the outcome the corpus declares for
each input (file rule / row rule / kept), account for every row, store hostile text verbatim,
and leave the good file's clean rows exactly as they are without the corpus.

The expectations come from the corpus generator, never from the assertion lines."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from kolab_pipeline import clean, raw, reference
from kolab_pipeline.config import Settings
from kolab_pipeline.reference import RegistryError
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support import hostile_corpus as hc


@dataclass
class Run:
    home: Path
    settings: Settings
    con: duckdb.DuckDBPyConnection
    summary: raw.IngestSummary
    expects: list[hc.Expect]


def _run(home: Path, with_corpus: bool, outside: Path) -> Run:
    hc.write_registry(home)
    hc.write_config(home)
    hc.write_good_file(home / "landing")
    expects = hc.write_corpus(home / "landing", outside=outside) if with_corpus else []
    settings = Settings.load(home)
    con = connect(settings.paths.warehouse)
    ensure_schema(con)
    reference.load_catalogues(con)
    reference.load_registry(con, settings)
    summary = raw.ingest_landing(con, settings, run_id="hostile")
    clean.build_clean(con, settings)
    return Run(home, settings, con, summary, expects)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("hostile")
    run = _run(root / "home", True, root / "outside")
    yield run
    run.con.close()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("baseline")
    run = _run(root / "home", False, root / "outside")
    yield run
    run.con.close()


def _file_outcome(con: duckdb.DuckDBPyConnection, rel: str) -> str:
    rows = con.execute("SELECT f.status, f.reject_rule FROM raw.landing_path p "
                       "JOIN raw.landing_file f USING (file_id) WHERE p.source_path = ?",
                       [rel]).fetchall()
    if not rows:
        return "absent"
    assert len(rows) == 1, f"{rel}: {len(rows)} landing_file rows"
    status, rule = rows[0]
    return "kept" if status == "ingested" else rule


def _row_outcome(con: duckdb.DuckDBPyConnection, e: hc.Expect) -> tuple[int, set[str]]:
    kept = con.execute("SELECT count(*) FROM clean.submission WHERE source_path = ? AND sheet = ? "
                       "AND row_number = ?", [e.path, e.sheet, e.row]).fetchone()[0]
    rules = {r for (r,) in con.execute("SELECT rule_id FROM clean.quarantine WHERE source_path = ? "
                                       "AND sheet = ? AND row_number = ?",
                                       [e.path, e.sheet, e.row]).fetchall()}
    return kept, rules


def test_corpus_has_at_least_forty_distinct_hostile_inputs(hostile: Run):
    assert hc.CASE_COUNT(hostile.expects) >= 40
    assert len({e.klass for e in hostile.expects}) >= 10


def test_every_hostile_input_reaches_its_declared_outcome(hostile: Run):
    wrong: list[str] = []
    for e in hostile.expects:
        if e.is_file:
            got = _file_outcome(hostile.con, e.path)
            want = "absent" if e.outcome in ("not_a_file", "ignored") else e.outcome
            if got != want:
                wrong.append(f"{e.case}: file {e.path!r} expected {e.outcome}, got {got}")
            continue
        kept, rules = _row_outcome(hostile.con, e)
        ok = ((kept == 1 and not rules) if e.outcome == "kept"
              else (kept == 0 and e.outcome in rules))
        if not ok:
            wrong.append(f"{e.case}: row {e.row} of {e.path!r} expected {e.outcome}, "
                         f"got kept={kept} rules={sorted(rules)}")
    assert wrong == []


def test_ignored_and_folder_inputs_are_counted_not_read(hostile: Run):
    ignored = [e for e in hostile.expects if e.outcome == "ignored"]
    # the hidden file(s) of the corpus are ignored like any dot-file: counted, never read
    assert ignored and hostile.summary.files_ignored >= len(ignored)
    folders = [e for e in hostile.expects if e.outcome == "not_a_file"]
    for e in folders:
        assert (hostile.home / "landing" / e.path).is_dir()


def test_every_rejected_file_is_in_quarantine_with_a_reason_naming_it(hostile: Run):
    for e in [e for e in hostile.expects if e.is_file and e.outcome.startswith("F")]:
        rows = hostile.con.execute(
            "SELECT rule_id, reason_en, reason_id FROM clean.quarantine WHERE source_path = ? "
            "AND raw_row_id IS NULL", [e.path]).fetchall()
        assert [r[0] for r in rows] == [e.outcome], e.case
        reason_en, reason_id = rows[0][1], rows[0][2]
        # reason = "<path>: <catalogue message> — <what exactly>" in English; Indonesian too
        assert reason_en.startswith(f"{e.path}: ") and " — " in reason_en, e.case
        assert reason_id and e.path in reason_id, e.case


def test_nothing_is_lost_every_raw_row_is_kept_or_quarantined_with_a_reason(hostile: Run):
    acc = clean.accounting(hostile.con)
    assert acc["ok"], acc["sample"]
    assert acc["raw_rows"] == acc["kept"] + acc["quarantined"] > 0
    assert raw.unreconciled_files(hostile.con).empty
    blank = hostile.con.execute("SELECT count(*) FROM clean.quarantine "
                                "WHERE coalesce(reason_en, '') = '' "
                                "OR coalesce(reason_id, '') = '' OR rule_id IS NULL").fetchone()[0]
    assert blank == 0
    # every file on disk (not hidden, not a folder) has exactly one landing_path row
    s = hostile.summary
    assert s.files_seen == s.files_ingested + s.files_rejected + s.files_skipped + s.files_duplicate
    assert s.rows_read == s.rows_kept + s.rows_rejected


def test_the_good_file_is_cleaned_identically_with_or_without_the_corpus(hostile: Run,
                                                                          baseline: Run):
    sql = {
        "raw": ("SELECT r.* EXCLUDE (run_id), c.column_index, c.header, c.data_element, "
                "c.value_text "
                "FROM raw.submission_row r JOIN raw.submission_cell c USING (raw_row_id) "
                "WHERE r.source_path = ? ORDER BY ALL"),
        "submission": "SELECT * FROM clean.submission WHERE source_path = ? ORDER BY ALL",
        "values": ("SELECT v.* FROM clean.submission_value v "
                   "JOIN clean.submission s USING (submission_id) "
                   "WHERE s.source_path = ? ORDER BY ALL"),
        "flags": ("SELECT g.* FROM clean.validation_flag g "
                  "JOIN clean.submission s USING (submission_id) "
                  "WHERE s.source_path = ? ORDER BY ALL"),
    }
    for name, q in sql.items():
        with_corpus = hostile.con.execute(q, [hc.GOOD_FILE]).fetchall()
        alone = baseline.con.execute(q, [hc.GOOD_FILE]).fetchall()
        assert with_corpus == alone, name
    # the good file: 2 rows × 2 elements = 4 values, `1.234` read as 1234 (thousands separator)
    values = baseline.con.execute(
        "SELECT period, data_element, value FROM clean.submission_value "
        "WHERE kode_faskes = ? ORDER BY ALL",
        [hc.GOOD_KODE]).fetchall()
    assert values == [("2025-01", "tb_skrining", 120), ("2025-01", "tb_terduga_ditemukan", 14),
                      ("2025-02", "tb_skrining", 98), ("2025-02", "tb_terduga_ditemukan", 1234)]


def test_hostile_strings_are_stored_verbatim_and_every_table_survives(hostile: Run):
    con = hostile.con
    for code in (hc.SQL_CODE, hc.SHELL_CODE, hc.BACKTICK_CODE):
        assert con.execute("SELECT count(*) FROM raw.submission_row WHERE kode_faskes = ?",
                           [code]).fetchone()[0] >= 1
        q = con.execute("SELECT rule_id, value_text, reason_en FROM clean.quarantine "
                        "WHERE value_text = ?",
                        [code]).fetchall()
        assert q and all(r[0] == "V01" and f"'{code}'" in r[2] for r in q), code
    names = {n for (n,) in con.execute("SELECT nama_faskes FROM raw.submission_row").fetchall()}
    assert set(hc.FORMULA_NAMES) <= names
    tables = {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
    assert {"raw.submission_row", "clean.quarantine", "clean.submission"} <= tables
    # the placeholders of the reason templates in a value are not expanded twice
    (reason,) = con.execute("SELECT reason_en FROM clean.quarantine "
                            "WHERE source_path = 'inj/tb/placeholder.csv'").fetchone()
    assert "'{column}{value}%s?$1'" in reason


def test_re_ingesting_the_corpus_changes_nothing(hostile: Run):
    con = hostile.con
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("raw.landing_file", "raw.landing_path", "raw.submission_row",
                        "raw.submission_cell")}
    again = raw.ingest_landing(con, hostile.settings, run_id="again")
    assert (again.files_ingested, again.files_rejected, again.rows_read) == (0, 0, 0)
    after = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
    assert after == before


def test_zip_bomb_is_refused_from_the_zip_directory_without_expanding_it(hostile: Run):
    data = (hostile.home / "landing" / "xlsx/tb/bomb.xlsx").read_bytes()
    assert len(data) < 8 * 1048576          # small on disk …
    tracemalloc.start()
    try:
        with pytest.raises(raw.FileRejected) as err:
            raw.read_xlsx_grids(data, max_uncompressed=hc.MAX_XLSX_MB * 1048576)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.rule == "F03" and "1024.0 MB" in err.value.detail  # … 1 GiB inside
    assert peak < 32 * 1048576               # refused without decompressing the sheet


def test_registry_with_duplicate_codes_fails_with_the_file_rows_and_codes(tmp_path: Path):
    hc.write_registry(tmp_path)
    path = tmp_path / "registry" / "fasilitas.csv"
    # rows 2..5 are the four facilities; row 6 repeats K001 (header = row 1)
    path.write_text(hc.REGISTRY
                    + "K001,Klinik Kembar,klinik_pratama,P3273010201,32.73.01,2020-01-01,,tb\n",
                    encoding="utf-8")
    settings = Settings.load(tmp_path)
    con = connect(settings.paths.warehouse)
    try:
        ensure_schema(con)
        with pytest.raises(RegistryError) as err:
            reference.load_registry(con, settings)
        assert con.execute("SELECT count(*) FROM reference.facility").fetchone()[0] == 0
    finally:
        con.close()
    msg = str(err.value)
    assert str(path) in msg and "duplicate kode_faskes ['K001']" in msg and "rows 3, 6" in msg
