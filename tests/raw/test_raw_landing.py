"""Raw layer, landing folder: messy-but-valid files are kept verbatim, broken ones rejected with the
exact rule and reason, re-runs change nothing, and one bad file never blocks the others.

Every input is built in the test (bytes written into a temp KOLAB_HOME/landing)."""

from __future__ import annotations

import io
import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from kolab_pipeline import raw
from kolab_pipeline.config import Settings
from kolab_pipeline.raw import ingest
from tests.support.landing import PLAIN, TB_HEADER, file_of, put, reason, xlsx_bytes

TB_LABELS = ("Periode,Kode Faskes,Nama Faskes,Tanggal Lapor,Laporan Nihil,"
             "Orang diskrining gejala TBC,Terduga TBC ditemukan")




def rows_of(con: duckdb.DuckDBPyConnection, rel: str) -> list[tuple]:
    return con.execute(
        "SELECT sheet, row_number, form, periode, kode_faskes, nama_faskes, tanggal_lapor, "
        "laporan_nihil FROM raw.submission_row WHERE source_path = ? ORDER BY sheet, row_number",
        [rel]).fetchall()


def cells_of(con: duckdb.DuckDBPyConnection, rel: str) -> list[tuple]:
    return con.execute(
        "SELECT r.sheet, r.row_number, c.column_index, c.header, c.data_element, c.value_text "
        "FROM raw.submission_cell c JOIN raw.submission_row r USING (raw_row_id) "
        "WHERE r.source_path = ? ORDER BY r.sheet, r.row_number, c.column_index", [rel]).fetchall()






# --- messy but valid ---------------------------------------------------------------------------

EXPECTED_ROWS = [("", 2, "tb", "2025-03", "P3672010101", "Puskesmas A", "2025-04-03", None),
                 ("", 3, "tb", "2025-03", "KP001", "Klinik B", None, None)]
EXPECTED_CELLS = [("", 2, 5, "tb_skrining", "tb_skrining", "12"),
                  ("", 2, 6, "tb_terduga_ditemukan", "tb_terduga_ditemukan", "3"),
                  ("", 3, 5, "tb_skrining", "tb_skrining", None),       # blank stays NULL, not 0
                  ("", 3, 6, "tb_terduga_ditemukan", "tb_terduga_ditemukan", "0")]


@pytest.mark.parametrize("encoding,prefix,expected_enc", [
    ("utf-8", b"", "utf-8"),
    ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
])
def test_plain_csv_with_and_without_bom(settings, con, encoding, prefix, expected_enc):
    put(settings, "a/tb/2025-03/plain.csv", prefix + PLAIN.encode(encoding))
    s = raw.ingest_landing(con, settings, run_id="r1")
    assert (s.files_ingested, s.files_rejected, s.rows_kept) == (1, 0, 2)
    assert rows_of(con, "a/tb/2025-03/plain.csv") == EXPECTED_ROWS
    assert cells_of(con, "a/tb/2025-03/plain.csv") == EXPECTED_CELLS
    f = file_of(con, "a/tb/2025-03/plain.csv")
    assert (f["status"], f["encoding"], f["delimiter"], f["n_rows_read"], f["n_rows_kept"]) == (
        "ingested", expected_enc, ",", 2, 2)


def test_cp1252_semicolons_title_rows_and_indonesian_numbers(settings, con):
    text = ("LAPORAN BULANAN TBC\nPUSKESMAS CILEGON\n\n"
            f"{TB_HEADER.replace(',', ';')}\n"
            "Maret 2025;P3672010101;Klinik Dr. José’s;;;1.234;-\n"
            "\n"
            "03/2025;KP002;Klinik C;;nihil;1,234;nihil\n")
    put(settings, "b/tb/2025-03/messy.csv", text, encoding="cp1252")
    raw.ingest_landing(con, settings, run_id="r1")
    # header on line 4 (3 title/blank lines above); line 6 is blank; data on lines 5 and 7
    assert rows_of(con, "b/tb/2025-03/messy.csv") == [
        ("", 5, "tb", "Maret 2025", "P3672010101", "Klinik Dr. José’s", None, None),
        ("", 7, "tb", "03/2025", "KP002", "Klinik C", None, "nihil")]
    assert [c[5] for c in cells_of(con, "b/tb/2025-03/messy.csv")] == [
        "1.234", "-", "1,234", "nihil"]
    f = file_of(con, "b/tb/2025-03/messy.csv")
    assert (f["encoding"], f["delimiter"]) == ("cp1252", ";")


def test_label_headers_and_unknown_columns(settings, con):
    text = (f"{TB_LABELS},Catatan\n"
            "2025-03,P3672010101,Puskesmas A,,,7,1,dikirim terlambat\n")
    put(settings, "c/tb/2025-03/labels.csv", text)
    raw.ingest_landing(con, settings, run_id="r1")
    assert rows_of(con, "c/tb/2025-03/labels.csv") == [
        ("", 2, "tb", "2025-03", "P3672010101", "Puskesmas A", None, None)]
    # labels resolve to codes; the unknown column is kept with data_element NULL
    assert cells_of(con, "c/tb/2025-03/labels.csv") == [
        ("", 2, 5, "Orang diskrining gejala TBC", "tb_skrining", "7"),
        ("", 2, 6, "Terduga TBC ditemukan", "tb_terduga_ditemukan", "1"),
        ("", 2, 7, "Catatan", None, "dikirim terlambat")]


def test_xlsx_multi_sheet_dates_formulas_and_code_plus_label_header(settings, con):
    data = xlsx_bytes({
        "tb": [["LAPORAN BULANAN TBC"],
               TB_HEADER.split(","),
               TB_LABELS.split(","),                        # second header row: skipped
               [date(2025, 3, 1), "P3672010101", "Puskesmas A", datetime(2025, 4, 3), None, 12.0,
                "=1+2"]],
        "ptm": [["periode", "kode_faskes", "ht_skrining", "dm_skrining"],
                ["2025-03", "P3672010101", 1500, None]],
        "Petunjuk": [["Isi satu baris per fasilitas"]],      # instructions: ignored
    })
    put(settings, "d/rekap_P3672010101_2025-03.xlsx", data)
    s = raw.ingest_landing(con, settings, run_id="r1")
    assert (s.files_ingested, s.files_rejected) == (1, 0)
    rel = "d/rekap_P3672010101_2025-03.xlsx"
    assert rows_of(con, rel) == [
        ("ptm", 2, "ptm", "2025-03", "P3672010101", None, None, None),
        ("tb", 4, "tb", "2025-03-01", "P3672010101", "Puskesmas A", "2025-04-03", None)]
    # 12.0 → "12"; the formula (no cached value: written by openpyxl) is kept as its text
    assert cells_of(con, rel) == [
        ("ptm", 2, 2, "ht_skrining", "ht_skrining", "1500"),
        ("ptm", 2, 3, "dm_skrining", "dm_skrining", None),
        ("tb", 4, 5, "tb_skrining", "tb_skrining", "12"),
        ("tb", 4, 6, "tb_terduga_ditemukan", "tb_terduga_ditemukan", "=1+2")]
    assert file_of(con, rel)["sheets"] == "tb;ptm"


def test_xlsx_cached_formula_value_is_kept(settings, con):
    """A workbook saved by Excel carries the computed value next to the formula: keep that value."""
    data = xlsx_bytes({"tb": [TB_HEADER.split(","), ["2025-03", "P1", "A", None, None, "=2+3", 4]]})
    # Inject a cached value <v>5</v> into the formula cell, as Excel would have written it.
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<f>2+3</f><v></v>" in body or b"<f>2+3</f><v />" in body
                body = body.replace(b"<f>2+3</f><v></v>", b"<f>2+3</f><v>5</v>").replace(
                    b"<f>2+3</f><v />", b"<f>2+3</f><v>5</v>")
            dst.writestr(item, body)
    put(settings, "e/tb/x.xlsx", out.getvalue())
    raw.ingest_landing(con, settings, run_id="r1")
    assert [c[5] for c in cells_of(con, "e/tb/x.xlsx")] == ["5", "4"]


# --- broken files: exact rule and reason -------------------------------------------------------

def _big_csv(n_cols: int) -> str:
    extra = ",".join(f"x{i}" for i in range(n_cols - 7))
    return f"{TB_HEADER},{extra}\n2025-03,P1,A,,,1,2{',' * (n_cols - 7)}\n"


BROKEN = [
    ("zero.csv", b"", "F02", "the file is empty (0 bytes)"),
    ("junk.csv", bytes(range(256)) * 8, "F01", "binary content (NUL bytes), not a text CSV"),
    ("header_only.csv", (TB_HEADER + "\n").encode(), "F02",
     "the file has a header (row 1) but no data rows"),
    ("no_header.csv", b"2025-03,P1,A,,,1,2\n2025-03,P2,B,,,3,4\n", "F04",
     "no header row with periode/kode_faskes/data-element columns in the first 15 rows of "
     "the file"),
    ("wide.csv", _big_csv(40).encode(), "F05",
     "the file has 40 columns; the limit is 20 (ingest.max_columns in kolab.yaml)"),
    ("mixed.csv", b"periode,kode_faskes,tb_skrining,ht_skrining\n2025-03,P1,1,2\n", "F09",
     "the file has data-element columns of forms ptm and tb (ptm: ht_skrining; tb: tb_skrining)"),
    ("tb/wrong_form.csv", b"periode,kode_faskes,ht_skrining,dm_skrining\n2025-03,P1,1,2\n", "F09",
     "the file has data-element columns of form ptm but its folder/file name says tb"),
    ("nik.csv", b"periode,kode_faskes,NIK,nama_pasien,tb_skrining\n2025-03,P1,3672,Ani,1\n", "F08",
     "the file row 1 has person-identifying column(s) 'NIK', 'nama_pasien'"),
    ("truncated.xlsx", None, "F01", None),   # bytes and detail built in the test
    ("notes.txt", b"hello", "F06", "extension '.txt' is not .csv, .xlsx or .json"),
    ("old.xls", b"\xd0\xcf\x11\xe0", "F06",
     "extension '.xls' is not .csv, .xlsx or .json (save old .xls workbooks as .xlsx)"),
    ("no_kode.csv", b"periode,tb_skrining,tb_terduga_ditemukan\n2025-03,1,2\n", "F04",
     "header in row 1 of the file has no 'kode_faskes' column"),
]


@pytest.fixture
def small_limits(kolab_home: Path) -> Settings:
    (kolab_home / "kolab.yaml").write_text("ingest:\n  max_columns: 20\n  max_file_mb: 0.01\n")
    return Settings.load(kolab_home)


def test_each_broken_kind_is_rejected_with_its_rule_and_reason(small_limits, con):
    settings = small_limits
    good = put(settings, "good/tb/ok.csv", PLAIN)
    for rel, data, _, _ in BROKEN:
        if rel == "truncated.xlsx":
            full = xlsx_bytes({"tb": [TB_HEADER.split(","),
                                      ["2025-03", "P1", "A", None, None, 1, 2]]})
            data = full[: len(full) // 2]
        put(settings, rel, data)
    # ~15 KB > 0.01 MB
    put(settings, "big.csv", PLAIN + "\n".join(["2025-03,P9,Z,,,1,1"] * 800) + "\n")
    s = raw.ingest_landing(con, settings, run_id="r1")

    got = {r[0]: (r[1], r[2]) for r in con.execute(
        "SELECT source_path, reject_rule, reject_reason FROM raw.landing_file "
        "WHERE status = 'rejected'").fetchall()}
    for rel, _, rule, detail in BROKEN:
        assert rel in got, f"{rel} not rejected"
        assert got[rel][0] == rule, (rel, got[rel])
        if detail is not None:
            assert got[rel][1] == reason(rel, rule, detail)
    assert got["truncated.xlsx"][1].startswith(reason(
        "truncated.xlsx", "F01", "not a readable XLSX workbook (truncated or corrupt: "))
    size = (settings.paths.landing / "big.csv").stat().st_size
    assert got["big.csv"] == ("F03", reason(
        "big.csv", "F03", f"{size} bytes ({size / 1048576:.2f} MB); the limit is 0.01 MB "
        "(ingest.max_file_mb in kolab.yaml)"))
    # the one good file is ingested in full despite 13 broken neighbours
    assert s.files_rejected == len(BROKEN) + 1 and s.files_ingested == 1
    assert rows_of(con, "good/tb/ok.csv") == EXPECTED_ROWS
    assert good.exists()
    # rejected files keep no rows, and their counts reconcile
    assert con.execute("SELECT count(*) FROM raw.submission_row "
                       "WHERE source_path <> 'good/tb/ok.csv'").fetchone()[0] == 0
    assert raw.unreconciled_files(con).empty


def test_too_many_rows_is_f03(kolab_home, con):
    (kolab_home / "kolab.yaml").write_text("ingest:\n  max_rows_per_file: 3\n")
    settings = Settings.load(kolab_home)
    put(settings, "many.csv", TB_HEADER + "\n" + "2025-03,P1,A,,,1,1\n" * 4)
    raw.ingest_landing(con, settings, run_id="r1")
    f = file_of(con, "many.csv")
    assert (f["reject_rule"], f["reject_reason"]) == ("F03", reason(
        "many.csv", "F03",
        "the file has 4 data rows; the limit is 3 (ingest.max_rows_per_file in kolab.yaml)"))


def test_unexpected_exception_becomes_f01_and_run_goes_on(settings, con, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk hiccup")
    put(settings, "a.xlsx", xlsx_bytes({"tb": [TB_HEADER.split(",")]}))
    put(settings, "b/tb/ok.csv", PLAIN)
    monkeypatch.setattr(ingest, "parse_template_xlsx", boom)
    s = raw.ingest_landing(con, settings, run_id="r1")
    f = file_of(con, "a.xlsx")
    assert (f["reject_rule"], f["reject_reason"]) == (
        "F01", reason("a.xlsx", "F01", "could not be read (RuntimeError: disk hiccup)"))
    assert s.files_ingested == 1 and rows_of(con, "b/tb/ok.csv") == EXPECTED_ROWS


def test_symlink_to_outside_is_refused_f10(settings, con, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text(PLAIN)
    settings.paths.landing.mkdir(parents=True)
    (settings.paths.landing / "link.csv").symlink_to(outside)
    raw.ingest_landing(con, settings, run_id="r1")
    f = file_of(con, "link.csv")
    assert f["reject_rule"] == "F10"
    assert f["reject_reason"] == reason(
        "link.csv", "F10", f"a symbolic link to outside the landing folder ({outside}); "
        "copy the file into the landing folder instead")
    assert con.execute("SELECT count(*) FROM raw.submission_row").fetchone()[0] == 0


# --- incremental and idempotent ----------------------------------------------------------------

def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    return {t: con.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").fetchall()
            for t in ("landing_file", "landing_path", "submission_row", "submission_cell")}


def test_second_run_changes_nothing(settings, con):
    put(settings, "a/tb/ok.csv", PLAIN)
    put(settings, "a/zero.csv", b"")
    put(settings, "a/x.xlsx", xlsx_bytes({"tb": [TB_HEADER.split(","),
                                            ["2025-03", "P1", "A", None, None, 1, 2]]}))
    first = raw.ingest_landing(con, settings, run_id="r1")
    before = _snapshot(con)
    second = raw.ingest_landing(con, settings, run_id="r2")
    assert _snapshot(con) == before
    assert (first.files_ingested, first.files_rejected) == (2, 1)
    assert (second.files_ingested, second.files_rejected, second.files_skipped) == (0, 0, 3)


def test_touched_copy_changed_and_deleted_files(settings, con):
    p = put(settings, "a/tb/ok.csv", PLAIN)
    raw.ingest_landing(con, settings, run_id="r1")
    # touched (new mtime, same content): re-hashed once, recognised, nothing new ingested
    os.utime(p, (1_700_000_000, 1_700_000_000))
    s = raw.ingest_landing(con, settings, run_id="r2")
    assert (s.files_ingested, s.files_skipped, s.files_duplicate, s.bytes_read) == (0, 1, 0, 0)
    s = raw.ingest_landing(con, settings, run_id="r2b")   # the new mtime is remembered
    assert (s.files_skipped, s.files_duplicate) == (1, 0)
    # same content under a second name: ingested once, the name is recorded
    put(settings, "b/tb/copy.csv", PLAIN)
    s = raw.ingest_landing(con, settings, run_id="r3")
    assert (s.files_ingested, s.files_duplicate) == (0, 1)
    assert con.execute("SELECT count(*) FROM raw.landing_file").fetchone()[0] == 1
    assert con.execute("SELECT source_path, role FROM raw.landing_path "
                       "WHERE source_path = 'b/tb/copy.csv'").fetchall() == [
        ("b/tb/copy.csv", "duplicate")]
    # changed content (a resubmission in place): a new file_id, the old one kept as history
    put(settings, "a/tb/ok.csv", PLAIN.replace(",12,3", ",13,3"))
    s = raw.ingest_landing(con, settings, run_id="r4")
    assert s.files_ingested == 1
    assert con.execute("SELECT count(*) FROM raw.landing_file WHERE source_path = 'a/tb/ok.csv'"
                       ).fetchone()[0] == 2
    # deleted: history stays
    p.unlink()
    raw.ingest_landing(con, settings, run_id="r5")
    assert con.execute("SELECT count(*) FROM raw.submission_row WHERE source_path = 'a/tb/ok.csv'"
                       ).fetchone()[0] == 4   # 2 rows × 2 versions


def test_received_at_from_manifest_else_mtime(settings, con):
    a = put(settings, "a/tb/one.csv", PLAIN)
    b = put(settings, "a/tb/two.csv", PLAIN.replace("KP001", "KP002"))
    os.utime(b, (1_741_000_000, 1_741_000_000))
    put(settings, "_diterima.csv", "file,received_at\na/tb/one.csv,2025-04-05T23:30:00+08:00\n")
    raw.ingest_landing(con, settings, run_id="r1")
    fa, fb = file_of(con, "a/tb/one.csv"), file_of(con, "a/tb/two.csv")
    # 23:30 WITA (UTC+8) = 15:30 UTC the same day
    assert fa["received_at"].astimezone(UTC) == datetime(2025, 4, 5, 15, 30, tzinfo=UTC)
    assert fa["received_source"] == "manifest"
    assert fb["received_at"].astimezone(UTC) == datetime.fromtimestamp(1_741_000_000, UTC)
    # not in the manifest: its mtime when first seen, kept in the receipt journal (issue 16.7)
    assert fb["received_source"] == "journal"
    assert a.exists()
    # every raw row carries its file's received_at
    got = con.execute("SELECT DISTINCT received_at FROM raw.submission_row "
                      "WHERE source_path = 'a/tb/one.csv'").fetchall()
    assert [g[0].astimezone(UTC) for g in got] == [datetime(2025, 4, 5, 15, 30, tzinfo=UTC)]
    # the manifest itself is not a submission
    assert con.execute("SELECT count(*) FROM raw.landing_file WHERE source_path LIKE '%_diterima%'"
                       ).fetchone()[0] == 0


def test_unreconciled_files_finds_a_lost_row(settings, con):
    put(settings, "a/tb/ok.csv", PLAIN)
    raw.ingest_landing(con, settings, run_id="r1")
    assert raw.unreconciled_files(con).empty
    con.execute("DELETE FROM raw.submission_row WHERE row_number = 3")
    bad = raw.unreconciled_files(con)
    assert bad[["source_path", "n_rows_kept", "rows_in_table"]].values.tolist() == [
        ["a/tb/ok.csv", 2, 1]]


def test_copy_of_a_rejected_file_is_reported_for_its_own_path(settings, con):
    put(settings, "a/kp1_tb.csv", b"")
    raw.ingest_landing(con, settings, run_id="r1")
    put(settings, "b/kp2_tb.csv", b"")          # a second clinic also sends an empty file
    s = raw.ingest_landing(con, settings, run_id="r2")
    assert (s.files_duplicate, s.files_rejected) == (1, 0)   # one content, rejected once
    assert s.rejected == [("b/kp2_tb.csv", "F02", "b/kp2_tb.csv: same content as a rejected file — "
                           + reason("a/kp1_tb.csv", "F02", "the file is empty (0 bytes)"))]


# --- workbooks parsed ahead in worker processes ---------------------------------------------

RAW_TABLES = {
    "raw.landing_file": "SELECT * EXCLUDE (run_id, ingested_at) FROM raw.landing_file",
    "raw.submission_row": "SELECT * EXCLUDE (run_id) FROM raw.submission_row",
    "raw.submission_cell": "SELECT * FROM raw.submission_cell",
}


def test_workbooks_parsed_in_worker_processes_give_the_same_raw_tables(
        settings, tmp_path, monkeypatch):
    """16 good workbooks, one truncated, one without a header and one copy of a good one,
    among 16 copies of one CSV: ingested with two worker processes parsing the workbooks
    ahead, and in the run's own process — the same rows, rejections and reasons."""
    from kolab_pipeline.raw import prefetch

    for i in range(16):
        put(settings, f"k/tb/rekap_{i:02d}.xlsx", xlsx_bytes({"tb": [
            TB_HEADER.split(","), ["2025-03", f"P{i:03d}", f"Puskesmas {i}", None, None, i, 1]]}))
        put(settings, f"k/tb/rekap_{i:02d}.csv", PLAIN)
    good = xlsx_bytes({"tb": [TB_HEADER.split(","), ["2025-03", "P1", "A", None, None, 1, 2]]})
    put(settings, "k/tb/truncated.xlsx", good[: len(good) // 2])
    put(settings, "k/tb/copy.xlsx", (settings.paths.landing / "k/tb/rekap_00.xlsx").read_bytes())
    put(settings, "k/tb/no_header.xlsx", xlsx_bytes({"tb": [["catatan saja"], ["1", "2"]]}))

    taken: list[bool] = []
    original = prefetch.XlsxPrefetch.take

    def counting_take(self, entry):
        result = original(self, entry)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(prefetch.XlsxPrefetch, "take", counting_take)
    tables = {}
    for workers in ("2", "1"):
        monkeypatch.setenv("KOLAB_WORKERS", workers)
        monkeypatch.setattr(prefetch, "MIN_WORKBOOKS", 2)
        con = duckdb.connect(str(tmp_path / f"w{workers}.duckdb"))
        taken.clear()
        s = raw.ingest_landing(con, settings, run_id=f"r{workers}")
        assert (s.files_ingested, s.files_rejected, s.files_duplicate) == (17, 2, 16), workers
        # with 2 workers the 18 distinct workbooks came parsed (the copy too, before its
        # content was known); with 1 none did
        assert sum(taken) == (19 if workers == "2" else 0), workers
        tables[workers] = {k: sorted(con.execute(q).fetchall(), key=repr)
                           for k, q in RAW_TABLES.items()}
        con.close()
    assert tables["2"] == tables["1"]
    assert any(r for r in tables["2"]["raw.landing_file"] if "F04" in repr(r))
