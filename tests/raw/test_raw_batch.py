"""Raw layer, batched CSV fast path (issue 9): plain template CSVs are grouped by layout and split
in SQL, every other file keeps the per-file parser — and the raw tables are the same either way.

The reference is the per-file path itself (`ingest_landing(..., batch_csv=False)`) on the very
same landing folder, written to a second warehouse: every table must match row for row (only the
run-time columns `ingested_at`/`seen_at` may differ). A few rows are also spelled out by hand, so
the comparison cannot pass by both paths being wrong in the same way."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import openpyxl
import pytest

from kolab_pipeline import raw
from kolab_pipeline.config import Settings
from kolab_pipeline.raw import fast_csv
from kolab_pipeline.warehouse import connect, ensure_schema

TB = "periode,kode_faskes,nama_faskes,tanggal_lapor,laporan_nihil,tb_skrining,tb_terduga_ditemukan"
TB_LABELS = ("Periode,Kode Faskes,Nama Faskes,Tanggal Lapor,Laporan Nihil,"
             "Orang diskrining gejala TBC,Terduga TBC ditemukan")
# header row, a data row, a row of empty cells (skipped, but it keeps its line number), a row
# with a whitespace cell (verbatim) and a short row (padded: NULL, i.e. not reported)
A_CSV = (f"{TB}\n2025-03,P1,Puskesmas Ménara,2025-04-03,,12,3\n,,,,,,\n"
         "2025-03,KP2, Klinik  B ,,, ,0\n2025-03,KP3,Klinik C,,1\n")
# a row of Unicode blanks only (NBSP, ideographic space): blank as str.strip() sees it → skipped
B_CSV = f"{TB}\n2025-03,KP4,Klinik D,,,5,1\n\u00a0,,\u3000,,,,\n2025-03,KP5,Klinik’s E,,,,\n"
# same form, another layout: columns reordered and an unknown column → its own group
D_CSV = ("kode_faskes,periode,tb_terduga_ditemukan,tb_skrining,Catatan\n"
         "KP6,2025-03,2,9,dikirim ulang\n")

CLEAN = {   # batchable: plain UTF-8, header on row 1, no quotes, no blank lines
    "k1/tb/2025-03/a.csv": A_CSV,
    "k2/tb/2025-03/b.csv": B_CSV,
    "k1/tb/2025-03/copy_of_a.csv": A_CSV,                               # same content, second name
    "k3/ptm/2025-03/c.csv": "periode;kode_faskes;ht_skrining;dm_skrining\n2025-03;P7;1.234;-\n",
    "k4/tb/2025-03/d.csv": D_CSV,
    "k6/ptm/2025-03/tab.csv": "periode\tkode_faskes\tht_skrining\n2025-03\tP8\t5\n",
    "k7/tb/2025-03/no_final_newline.csv": f"{TB}\n2025-03,P9,Puskesmas I,,,4,0",
}
MESSY = {   # valid, but not plain: the per-file parser reads them (same header as the batch group)
    "m/tb/2025-03/cp1252.csv": (f"{TB}\n2025-03,P10,Klinik José’s,,,1,2\n").encode("cp1252"),
    "m/tb/2025-03/bom.csv": b"\xef\xbb\xbf" + f"{TB}\n2025-03,P11,A,,,1,2\n".encode(),
    "m/tb/2025-03/title.csv": f"LAPORAN BULANAN TBC\n{TB}\n2025-03,P12,A,,,1,2\n".encode(),
    "m/tb/2025-03/quoted.csv": f'{TB}\n2025-03,P13,"Klinik, Satu",,,1,2\n'.encode(),
    "m/tb/2025-03/labels.csv": f"{TB}\n{TB_LABELS}\n2025-03,P14,A,,,1,2\n".encode(),
    "m/tb/2025-03/crlf.csv": f"{TB}\r\n2025-03,P15,A,,,1,2\r\n".encode(),
    "m/tb/2025-03/blank_line.csv": f"{TB}\n2025-03,P16,A,,,1,2\n\n2025-03,P17,B,,,3,4\n".encode(),
    "m/tb/2025-03/wider_row.csv": f"{TB}\n2025-03,P18,A,,,1,2,lebih\n".encode(),
}
BROKEN = {  # the batch group's header, but the file breaks a rule: rejected exactly as per file
    "x/tb/2025-03/header_only.csv": (f"{TB}\n", "F02"),
    "x/tb/2025-03/empty_rows.csv": (f"{TB}\n,,,,,,\n", "F02"),
    "x/ptm/2025-03/wrong_form.csv": (f"{TB}\n2025-03,P19,A,,,1,2\n", "F09"),
    "x/tb/2025-03/nik.csv": ("periode,kode_faskes,NIK,tb_skrining\n2025-03,P20,3672,1\n", "F08"),
}


def _xlsx() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "tb"
    ws.append(TB.split(","))
    ws.append(["2025-03", "P21", "A", None, None, 1, 2])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def fill_landing(settings: Settings) -> None:
    landing = settings.paths.landing
    files: dict[str, bytes] = {rel: text.encode() for rel, text in CLEAN.items()}
    files.update(MESSY)
    files.update({rel: text.encode() for rel, (text, _) in BROKEN.items()})
    files["m/rekap_P21.xlsx"] = _xlsx()
    files["_diterima.csv"] = b"file,received_at\nk2/tb/2025-03/b.csv,2025-04-05T23:30:00+08:00\n"
    for i, (rel, data) in enumerate(sorted(files.items())):
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (1_741_000_000 + i, 1_741_000_000 + i))


RUNTIME = {"ingested_at", "seen_at"}   # when it ran: the only columns allowed to differ


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    out = {}
    for t in ("landing_file", "landing_path", "submission_row", "submission_cell"):
        cols = [r[0] for r in con.execute(f"DESCRIBE raw.{t}").fetchall() if r[0] not in RUNTIME]
        out[t] = con.execute(f"SELECT {', '.join(cols)} FROM raw.{t} ORDER BY ALL").fetchall()
    return out


@pytest.fixture
def ref_con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A second warehouse for the per-file reference run."""
    c = connect(tmp_path / "per_file.duckdb")
    ensure_schema(c)
    yield c
    c.close()


def counts(s: raw.IngestSummary) -> tuple:
    return (s.files_seen, s.files_ingested, s.files_rejected, s.files_skipped, s.files_duplicate,
            s.files_ignored, s.rows_read, s.rows_kept, s.rows_rejected, s.cells, s.bytes_read)


def test_batch_and_per_file_paths_write_identical_raw_tables(settings, con, ref_con):
    fill_landing(settings)
    fast = raw.ingest_landing(con, settings, run_id="r1")
    slow = raw.ingest_landing(ref_con, settings, run_id="r1", batch_csv=False)
    got, want = snapshot(con), snapshot(ref_con)
    for t in want:
        assert got[t] == want[t], t
    assert counts(fast) == counts(slow)
    assert sorted(fast.rejected) == sorted(slow.rejected)
    # the batch path really ran: a.csv, b.csv, c.csv, d.csv, tab.csv, no_final_newline.csv (6
    # contents; copy_of_a.csv is the same content as a.csv, so it is a duplicate, not a file of its
    # own)
    assert (fast.files_batched, slow.files_batched) == (6, 0)
    # 8 messy + xlsx + the 6 batched are ingested; the 4 broken ones are rejected with their rule
    assert (fast.files_ingested, fast.files_rejected, fast.files_duplicate) == (8 + 1 + 6, 4, 1)
    rules = dict(con.execute("SELECT source_path, reject_rule FROM raw.landing_file "
                             "WHERE status = 'rejected'").fetchall())
    assert rules == {rel: rule for rel, (_, rule) in BROKEN.items()}
    assert raw.unreconciled_files(con).empty

    # spelled out by hand for a.csv: lines 2, 4 and 5 are data (line 3 is a row of empty cells)
    fid = con.execute("SELECT file_id FROM raw.landing_path "
                      "WHERE source_path = 'k1/tb/2025-03/a.csv'").fetchone()[0]
    assert con.execute("SELECT raw_row_id, row_number, form, periode, kode_faskes, nama_faskes, "
                       "tanggal_lapor, laporan_nihil FROM raw.submission_row WHERE file_id = ? "
                       "ORDER BY row_number", [fid]).fetchall() == [
        (f"{fid}::2", 2, "tb", "2025-03", "P1", "Puskesmas Ménara", "2025-04-03", None),
        (f"{fid}::4", 4, "tb", "2025-03", "KP2", " Klinik  B ", None, None),
        (f"{fid}::5", 5, "tb", "2025-03", "KP3", "Klinik C", None, "1")]
    assert con.execute("SELECT r.row_number, c.column_index, c.header, c.data_element, "
                       "c.value_text FROM raw.submission_cell c JOIN raw.submission_row r "
                       "USING (raw_row_id) WHERE r.file_id = ? ORDER BY 1, 2",
                       [fid]).fetchall() == [
        (2, 5, "tb_skrining", "tb_skrining", "12"),
        (2, 6, "tb_terduga_ditemukan", "tb_terduga_ditemukan", "3"),
        (4, 5, "tb_skrining", "tb_skrining", " "),
        (4, 6, "tb_terduga_ditemukan", "tb_terduga_ditemukan", "0"),
        (5, 5, "tb_skrining", "tb_skrining", None),
        (5, 6, "tb_terduga_ditemukan", "tb_terduga_ditemukan", None)]
    # 3 rows read = 3 kept + 0 rejected; sha256 file_id; the copy is on record as a duplicate name
    f = con.execute("SELECT n_rows_read, n_rows_kept, n_rows_rejected, encoding, delimiter, "
                    "sheets, file_format, received_source FROM raw.landing_file WHERE file_id = ?",
                    [fid]).fetchone()
    # no _diterima.csv line: the receipt journal's first-seen mtime decides (issue 16 item 7)
    assert f == (3, 3, 0, "utf-8", ",", "", "csv", "journal")
    import hashlib
    assert fid == hashlib.sha256(A_CSV.encode()).hexdigest()
    assert con.execute("SELECT source_path, role FROM raw.landing_path WHERE file_id = ? "
                       "ORDER BY 1", [fid]).fetchall() == [("k1/tb/2025-03/a.csv", "primary"),
                                            ("k1/tb/2025-03/copy_of_a.csv", "duplicate")]
    # b.csv: the Unicode-blank line 3 is skipped; the manifest's 23:30 WITA = 15:30 UTC reaches its
    # rows
    assert con.execute("SELECT row_number, kode_faskes, received_at FROM raw.submission_row "
                       "WHERE source_path = 'k2/tb/2025-03/b.csv' ORDER BY 1").fetchall() == [
        (2, "KP4", datetime(2025, 4, 5, 15, 30, tzinfo=UTC)),
        (4, "KP5", datetime(2025, 4, 5, 15, 30, tzinfo=UTC))]


def test_group_with_a_different_header_is_split_by_layout(settings, con, ref_con):
    """Same folder and form, two headers: each file's cells follow its own header."""
    fill_landing(settings)
    raw.ingest_landing(con, settings, run_id="r1")
    raw.ingest_landing(ref_con, settings, run_id="r1", batch_csv=False)
    d_cells = ("SELECT c.column_index, c.header, c.data_element, c.value_text "
               "FROM raw.submission_cell c JOIN raw.submission_row r USING (raw_row_id) "
               "WHERE r.source_path = ? ORDER BY 1")
    # d.csv: kode_faskes,periode,tb_terduga_ditemukan,tb_skrining,Catatan → cells are columns 2-4
    want = [(2, "tb_terduga_ditemukan", "tb_terduga_ditemukan", "2"),
            (3, "tb_skrining", "tb_skrining", "9"),
            (4, "Catatan", None, "dikirim ulang")]
    assert con.execute(d_cells, ["k4/tb/2025-03/d.csv"]).fetchall() == want
    assert ref_con.execute(d_cells, ["k4/tb/2025-03/d.csv"]).fetchall() == want
    assert con.execute("SELECT periode, kode_faskes FROM raw.submission_row WHERE source_path = ?",
                       ["k4/tb/2025-03/d.csv"]).fetchall() == [("2025-03", "KP6")]
    # and b.csv of the other TB layout kept its own columns 5 and 6 (row 4 = 2 blank cells → NULL)
    assert con.execute("SELECT r.row_number, c.column_index, c.header, c.value_text "
                       "FROM raw.submission_cell c JOIN raw.submission_row r USING (raw_row_id) "
                       "WHERE r.source_path = ? ORDER BY 1, 2",
                       ["k2/tb/2025-03/b.csv"]).fetchall() == [
        (2, 5, "tb_skrining", "5"), (2, 6, "tb_terduga_ditemukan", "1"),
        (4, 5, "tb_skrining", None), (4, 6, "tb_terduga_ditemukan", None)]


def test_rerun_is_idempotent_and_new_files_are_batched_alone(settings, con):
    fill_landing(settings)
    first = raw.ingest_landing(con, settings, run_id="r1")
    before = snapshot(con)
    second = raw.ingest_landing(con, settings, run_id="r2")
    assert snapshot(con) == before
    # 7 clean paths + 8 messy + 4 broken + 1 xlsx = 20 submission paths, all known now
    assert (second.files_seen, second.files_skipped, second.files_ingested,
            second.files_batched) == (20, 20, 0, 0)
    assert first.files_seen == 20
    # one new plain file: only it is read and batched; the old rows stay as they were
    new = settings.paths.landing / "k8/tb/2025-04/e.csv"
    new.parent.mkdir(parents=True)
    new.write_text(f"{TB}\n2025-04,P1,Puskesmas A,,,7,7\n", encoding="utf-8")
    third = raw.ingest_landing(con, settings, run_id="r3")
    assert (third.files_ingested, third.files_batched, third.files_skipped) == (1, 1, 20)
    after = snapshot(con)
    assert len(after["submission_row"]) == len(before["submission_row"]) + 1
    assert set(before["submission_cell"]) <= set(after["submission_cell"])


def test_small_chunks_and_pending_cap_give_the_same_tables(settings, con, ref_con, monkeypatch):
    """Chunking is invisible: one file per statement, or the biggest group flushed early."""
    fill_landing(settings)
    monkeypatch.setattr(fast_csv, "FAST_CHUNK_FILES", 1)
    raw.ingest_landing(con, settings, run_id="r1")
    raw.ingest_landing(ref_con, settings, run_id="r1", batch_csv=False)
    assert snapshot(con) == snapshot(ref_con)


def test_pending_cap_flushes_the_biggest_group(settings, tmp_path, monkeypatch):
    fill_landing(settings)
    monkeypatch.setattr(fast_csv, "FAST_PENDING_BYTES", 1)   # every offer overflows: flush at once
    c = connect(tmp_path / "cap.duckdb")
    ensure_schema(c)
    try:
        s = raw.ingest_landing(c, settings, run_id="r1")
        assert s.files_batched == 6
        assert raw.unreconciled_files(c).empty
    finally:
        c.close()


def test_a_failing_batch_falls_back_to_one_by_one(settings, con, ref_con, monkeypatch):
    """Should a batch statement fail, nothing of it is committed and its files are read per file."""
    fill_landing(settings)
    real = fast_csv.write_csv_batch

    def fail_tb_groups(c, layout, files, run_id, now):
        if layout.form == "tb":
            raise duckdb.InvalidInputException("simulated failure of a batch")
        return real(c, layout, files, run_id, now)

    monkeypatch.setattr(fast_csv, "write_csv_batch", fail_tb_groups)
    s = raw.ingest_landing(con, settings, run_id="r1")
    raw.ingest_landing(ref_con, settings, run_id="r1", batch_csv=False)
    assert snapshot(con) == snapshot(ref_con)
    # c.csv and tab.csv (ptm) stayed batched; the TB contents were read one by one: one warning per
    # failed TB group — {a, b, no_final_newline} share a header, d.csv has its own → 2 groups
    assert s.files_batched == 2
    assert sum("read one by one instead" in w for w in s.warnings) == 2
    assert raw.unreconciled_files(con).empty


@pytest.mark.parametrize("text,why", [
    (f"{TB}\n2025-03,P1,A,,,1,2\n", None),
    (f'{TB}\n2025-03,P1,"A",,,1,2\n', "a quote"),
    (f"{TB}\r\n2025-03,P1,A,,,1,2\r\n", "CR line ends"),
    (f"{TB}\n\n2025-03,P1,A,,,1,2\n", "a blank line"),
    (f"{TB}\n   \n2025-03,P1,A,,,1,2\n", "a whitespace-only line"),
    (f"LAPORAN TBC\n{TB}\n2025-03,P1,A,,,1,2\n", "a title row"),
    (f"{TB}\n{TB_LABELS}\n2025-03,P1,A,,,1,2\n", "a label row under the header"),
    (f"{TB}\n2025-03,P1,A,,,1,2,3\n", "a row wider than the header"),
    (f"{TB},\n2025-03,P1,A,,,1,2\n", "an empty header cell"),
    (f"{TB}\n", "no data row"),
    (f"{TB}\n,,,,,,\n", "only empty rows"),
    ("periode,kode_faskes,NIK,tb_skrining\n2025-03,P1,3672,1\n", "a person column"),
    ("periode,kode_faskes,tb_skrining,ht_skrining\n2025-03,P1,1,2\n", "two forms"),
    ("periode,tb_skrining,tb_terduga_ditemukan\n2025-03,1,2\n", "no kode_faskes"),
    (f"{TB}\n2025-03,P1,A\x0b,,,1,2\n", "a vertical tab (a line break for str.splitlines)"),
])
def test_fast_layout_accepts_only_plain_files(settings, text, why):
    layout = fast_csv.fast_csv_layout(text, "k/tb/2025-03/x.csv", settings)
    if why is None:
        assert layout is not None and layout.form == "tb" and layout.delimiter == ","
        assert layout.width == 7
    else:
        assert layout is None, why


def test_fast_layout_respects_path_form_and_limits(kolab_home):
    text = f"{TB}\n2025-03,P1,A,,,1,2\n2025-03,P2,B,,,3,4\n"
    defaults = Settings.load(kolab_home)      # 500 columns, 200,000 rows
    assert fast_csv.fast_csv_layout(text, "k/tb/x.csv", defaults) is not None
    # TB header in a ptm folder
    assert fast_csv.fast_csv_layout(text, "k/ptm/x.csv", defaults) is None
    (kolab_home / "kolab.yaml").write_text("ingest:\n  max_columns: 6\n")
    assert fast_csv.fast_csv_layout(text, "k/tb/x.csv",
                                    Settings.load(kolab_home)) is None   # 7 columns > 6
    (kolab_home / "kolab.yaml").write_text("ingest:\n  max_rows_per_file: 1\n")
    assert fast_csv.fast_csv_layout(text, "k/tb/x.csv",
                                    Settings.load(kolab_home)) is None   # 2 rows > 1
