"""Parquet and Excel exports on the hand-built kab/kota (tests/support/evaluation.py)."""

from __future__ import annotations

import os
import re
import zipfile

import duckdb
import openpyxl
import pytest

from kolab_pipeline import evaluation, exports, report
from kolab_pipeline.config import Settings
from kolab_pipeline.exports import workbook
from tests.support.evaluation import MALICIOUS_NAMES, seed, seed_report_status

SHEETS = ["Ringkasan", "Kepatuhan Pelaporan", "Tindak Lanjut", "Capaian Indikator",
          "Kontribusi Jejaring", "Kualitas Data"]


@pytest.fixture
def built(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    seed(con)
    seed_report_status(con)
    # every malicious text reaches a sheet: facility names (Kepatuhan Pelaporan, Kualitas Data),
    # the follow-up name (Tindak Lanjut) and flagged values (Kualitas Data)
    con.execute("UPDATE reference.facility SET nama_faskes = ? WHERE kode_faskes = 'KP01'",
                [MALICIOUS_NAMES[0]])
    con.execute("UPDATE reference.facility SET nama_faskes = ? WHERE kode_faskes = 'DR01'",
                [MALICIOUS_NAMES[1]])
    con.execute("UPDATE clean.validation_flag SET value_text = ? WHERE kode_faskes = 'KP01'",
                [MALICIOUS_NAMES[2]])
    con.execute("UPDATE clean.quarantine SET value_text = ? WHERE kode_faskes = 'DR01'",
                [MALICIOUS_NAMES[3]])
    evaluation.build_all(con, settings, ["2025-01", "2025-02"])
    return con


def test_excel_workbook_layout_formats_and_no_formulas(built, settings):
    paths = exports.write_workbooks(built, settings, ["2025-02"])
    assert paths == [settings.paths.exports / "evaluasi_36.72_2025-02.xlsx"]
    wb = openpyxl.load_workbook(paths[0])
    assert wb.sheetnames == SHEETS
    for ws in wb:
        assert ws.freeze_panes == "A2", ws.title
        assert all(isinstance(c.value, str) for c in ws[1]), ws.title  # header row complete
        assert ws.column_dimensions["A"].width >= 12
    ring = wb["Ringkasan"]
    headers = [c.value for c in ring[1]]
    assert headers[:7] == ["Kode jejaring", "Puskesmas", "Laporan diharapkan", "Laporan diterima",
                           "Tepat waktu", "Kelengkapan", "Ketepatan waktu"]
    rows = {r[0].value: r for r in ring.iter_rows(min_row=2)}
    p1 = rows["P0001"]
    # kelengkapan 8 / 10 = 0.8 shown as 80.0 % ; expected 10 as an integer
    assert p1[5].value == pytest.approx(0.8) and p1[5].number_format == "0.0%"
    assert p1[2].value == 10 and p1[2].number_format == "#,##0"
    assert rows["36.72"][1].value == "TOTAL KOTA CILEGON"
    kep = wb["Kepatuhan Pelaporan"]
    assert [c.value for c in kep[1]][:4] == ["Kode jejaring", "Puskesmas", "Kode faskes",
                                             "Nama faskes"]
    assert kep.max_row == 1 + 4  # one kia report per facility
    assert kep["H2"].number_format == "yyyy-mm-dd"

    # every malicious text arrives verbatim as an inert string cell
    found = {}
    for ws in wb:
        for r in ws.iter_rows(min_row=2):
            for c in r:
                if c.value in MALICIOUS_NAMES:
                    found.setdefault(c.value, []).append(c)
    assert set(found) == set(MALICIOUS_NAMES)
    for cells in found.values():
        for c in cells:
            assert c.data_type == "s" and c.quotePrefix is True
    # and the file holds no formula at all (<f> elements) in any sheet
    with zipfile.ZipFile(paths[0]) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name


def test_neutralise_csv():
    assert exports.neutralise_csv("=1+1") == "'=1+1"
    assert exports.neutralise_csv("\tx") == "'\tx"
    assert exports.neutralise_csv("Puskesmas A") == "Puskesmas A"
    assert exports.neutralise_csv(-5) == -5  # numbers stay numbers


def _read(path) -> str:
    """A DuckDB relation over an export: a hive-partitioned folder or one file."""
    if path.is_dir():
        return f"read_parquet('{path}/*/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{path}')"


def test_parquet_matches_warehouse(built, settings):
    written = exports.write_parquet(built, settings)
    analyst = {t.qualified for t in exports.analyst_tables()}
    assert set(written) == analyst and "evaluation.scorecard" in analyst
    for key, (path, n) in written.items():
        # a table with a month column is a folder per month (hive layout), others one file
        t = next(t for t in exports.analyst_tables() if t.qualified == key)
        column = exports.partition_column(t)
        if column:
            assert path == settings.paths.exports / key and path.is_dir()
            assert all(p.name.startswith(f"{column}=") for p in path.iterdir())
        else:
            assert path == settings.paths.exports / f"{key}.parquet"
        assert built.execute(f"SELECT count(*) FROM {key}").fetchone()[0] == n
        if n == 0:   # an empty table: an empty folder (or a file with no rows)
            continue
        # same rows, same values: count and an order-independent checksum of whole rows (the
        # month column comes back last from the folder names, so compare by name)
        cols = ", ".join(t.column_names)
        sql_t = f"SELECT count(*), sum(hash({cols})::HUGEINT) FROM {key}"
        sql_p = f"SELECT count(*), sum(hash({cols})::HUGEINT) FROM {_read(path)}"
        assert built.execute(sql_t).fetchone() == built.execute(sql_p).fetchone(), key
    assert exports.partition_column(
        next(t for t in exports.analyst_tables() if t.qualified == "clean.quarantine")) is None
    # ordered comparison of one table, column by column
    scorecard = written["evaluation.scorecard"][0]
    cols = ", ".join(next(t for t in exports.analyst_tables()
                          if t.qualified == "evaluation.scorecard").column_names)
    a = built.execute("SELECT * FROM evaluation.scorecard "
                      "ORDER BY kode_jejaring, period, period_type").fetchall()
    b = built.execute(f"SELECT {cols} FROM {_read(scorecard)} "
                      "ORDER BY kode_jejaring, period, period_type").fetchall()
    assert a == b and len(a) == 8
    assert not list(settings.paths.exports.glob(".*.tmp"))  # temp files renamed away
    # pandas and pyarrow read a folder as one table
    import pandas as pd
    import pyarrow.dataset as ds
    assert len(pd.read_parquet(scorecard)) == 8
    assert ds.dataset(scorecard, partitioning="hive").count_rows() == 8


def test_parquet_rewrites_only_changed_months(built, settings):
    """A month whose rows did not change keeps its file; a changed month is rewritten; a month
    gone from the table is removed; the one-file layout of earlier versions is replaced."""
    exports_dir = settings.paths.exports
    exports_dir.mkdir(parents=True, exist_ok=True)
    (exports_dir / "evaluation.scorecard.parquet").write_bytes(b"old layout")
    written = exports.write_parquet(built, settings, keys=["evaluation.scorecard"])
    folder = written["evaluation.scorecard"][0]
    assert not (exports_dir / "evaluation.scorecard.parquet").exists()
    months = sorted(p.name for p in folder.iterdir())
    assert len(months) >= 2, months
    first, last = folder / months[0] / "data.parquet", folder / months[-1] / "data.parquet"
    stamp = {p: p.stat().st_mtime_ns for p in (first, last)}
    for p in stamp:   # an older mtime: a rewrite would be seen whatever the clock resolution
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    # nothing changed: nothing written
    exports.write_parquet(built, settings, keys=["evaluation.scorecard"])
    assert first.stat().st_mtime_ns == last.stat().st_mtime_ns == 1_000_000_000
    # one month changes: only that month is rewritten
    last_month = months[-1].split("=", 1)[1]
    built.execute("UPDATE evaluation.scorecard SET n_followup = coalesce(n_followup, 0) + 1 "
                  "WHERE period = ?", [last_month])
    exports.write_parquet(built, settings, keys=["evaluation.scorecard"])
    assert first.stat().st_mtime_ns == 1_000_000_000
    assert last.stat().st_mtime_ns != 1_000_000_000
    # a month gone from the table goes from the export
    built.execute("DELETE FROM evaluation.scorecard WHERE period = ?", [last_month])
    exports.write_parquet(built, settings, keys=["evaluation.scorecard"])
    assert not (folder / months[-1]).exists() and first.exists()
    assert not list(exports_dir.glob(".*.tmp"))


def test_unchanged_workbook_is_not_rewritten(built, settings):
    """Issue 20: a workbook whose rows (and code) did not change is left as it is; a change of
    what it shows rewrites it."""
    [path] = exports.write_workbooks(built, settings, ["2025-02"])
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert exports.write_workbooks(built, settings, ["2025-02"]) == [path]
    assert path.stat().st_mtime_ns == 1_000_000_000
    built.execute("UPDATE reference.facility SET nama_faskes = 'Klinik Baru' "
                  "WHERE kode_faskes = 'KP01'")
    assert exports.write_workbooks(built, settings, ["2025-02"]) == [path]
    assert path.stat().st_mtime_ns != 1_000_000_000
    assert "Klinik Baru" in " ".join(
        str(c.value) for ws in openpyxl.load_workbook(path) for r in ws.iter_rows() for c in r)


def test_worker_processes_write_the_same_bytes(built, settings, monkeypatch):
    """National runs write workbooks in spawned worker processes: same bytes as in-process."""
    [path] = exports.write_workbooks(built, settings, ["2025-02"])
    in_process = path.read_bytes()
    monkeypatch.setattr(workbook, "MIN_PARALLEL", 1)  # one kab/kota here; use the pool anyway
    monkeypatch.setenv("KOLAB_WORKERS", "2")
    path.unlink()   # else it is left as it is: same rows, same code (next test)
    assert exports.write_workbooks(built, settings, ["2025-02"]) == [path]
    assert path.read_bytes() == in_process
    assert not list(settings.paths.exports.glob(".*.tmp"))
    monkeypatch.setenv("KOLAB_WORKERS", "0")
    with pytest.raises(ValueError, match="KOLAB_WORKERS"):
        exports.write_workbooks(built, settings, ["2025-02"])


COUNT_COLUMNS = ["Laporan diharapkan", "Laporan diterima", "Tepat waktu", "Perlu tindak lanjut",
                 "Peringatan validasi", "Baris dikarantina", "Temuan kualitas data"]
CODES = re.compile(r"^(on_time|late|missing|pending|pending_overdue|klinik_pratama|tpmd|puskesmas|"
                   r"kia|imun|tb|ptm|month|ytd|puskesmas_network|kabkota|kecamatan|facility|"
                   r"dq_flag|quarantine|validation_flag|True|False|"
                   r"outlier_\w+|related_indicators|consistency_over_time|[a-z]+_[a-z0-9_]+)$")


def _sheet(ws) -> tuple[list[str], list[list]]:
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    return rows[0], rows[1:]


def test_ringkasan_total_is_the_sum_of_its_rows_and_complete(built, settings):
    built.execute("INSERT INTO indicators.dq_flag VALUES ('kecamatan', '36.72.01', '2025-02', "
                  "'kia_k1', 'consistency_over_time', 300, 1.5, 0.33, 200, 'x')")
    [path] = exports.write_workbooks(built, settings, ["2025-02"])
    wb = openpyxl.load_workbook(path)
    header, rows = _sheet(wb["Ringkasan"])
    *body, total = rows
    assert total[1] == "TOTAL KOTA CILEGON" and [r[0] for r in body] == ["P0001", "P0002", None]
    assert body[-1][1] == "Temuan kualitas data tingkat kecamatan dan kab/kota"
    for name in COUNT_COLUMNS:
        j = header.index(name)
        assert total[j] == sum(r[j] or 0 for r in body), name
    # rates: ratio of the summed counts (12 / 14, 9 / 14); every TOTAL cell is filled
    assert total[header.index("Kelengkapan")] == pytest.approx(12 / 14)
    assert total[header.index("Ketepatan waktu")] == pytest.approx(9 / 14)
    assert all(v is not None for v in total), dict(zip(header, total, strict=True))
    # the DQ total counts the findings listed on "Kualitas Data"
    q_header, q_rows = _sheet(wb["Kualitas Data"])
    findings = [r for r in q_rows if r[0] == "Temuan kualitas data"]
    assert total[header.index("Temuan kualitas data")] == len(findings) == 3


def test_workbook_and_report_count_a_value_flagged_twice_once(built, settings):
    built.execute("INSERT INTO indicators.dq_flag VALUES "
                  "('facility', 'DR01', '2025-02', 'kia_k1', 'outlier_modified_z', 90, 4.1, 3.5, "
                  "20, 'x'), ('kecamatan', '36.72.01', '2025-02', 'kia_k1', "
                  "'consistency_over_time', 300, 1.5, 0.33, 200, 'x'), ('kecamatan', '36.72.01', "
                  "'2025-02', 'kia_k1', 'related_indicators', 300, 1.5, 0.1, 200, 'x')")
    evaluation.build_all(built, settings, ["2025-01", "2025-02"])
    [path] = exports.write_workbooks(built, settings, ["2025-02"])
    header, rows = _sheet(openpyxl.load_workbook(path)["Ringkasan"])
    n_dq = {r[1]: r[header.index("Temuan kualitas data")] for r in rows}
    # P0001: DR01 kia_k1 (2 methods, 1 value) + the network's value = 2; the kecamatan row:
    # 36.72.01 kia_k1 (2 methods) = 1; TOTAL 2 + 0 (P0002) + 1 = 3
    assert n_dq["Puskesmas Cilegon"] == 2
    assert n_dq["Temuan kualitas data tingkat kecamatan dan kab/kota"] == 1
    assert n_dq["TOTAL KOTA CILEGON"] == 3
    per_network = report.build_context(built, settings, "36.72", "2025-02")["dq"]["per_network"]
    assert {r["nama"]: r["dq"] for r in per_network}["Puskesmas Cilegon"] == "2"


def test_workbook_speaks_indonesian_and_prints_on_a4(built, settings):
    [path] = exports.write_workbooks(built, settings, ["2025-02"])
    wb = openpyxl.load_workbook(path)
    for ws in wb:
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0, ws.title
        assert ws.print_title_rows == "$1:$1", ws.title
        header, rows = _sheet(ws)
        for r in rows:  # codes only in "Kode" columns
            for h, v in zip(header, r, strict=True):
                if isinstance(v, str) and not h.startswith("Kode") and h not in ("Nilai",):
                    assert not CODES.match(v), (ws.title, h, v)
    header, rows = _sheet(wb["Kepatuhan Pelaporan"])
    status = {r[header.index("Kode faskes")]: r[header.index("Status")] for r in rows}
    assert status == {"P0001": "Tepat waktu", "KP01": "Terlambat", "DR01": "Tidak lapor",
                      "P0002": "Tepat waktu"}
    assert {r[header.index("Jenis faskes")] for r in rows} == {
        "Puskesmas", "Klinik Pratama", "TPMD (praktik mandiri dokter)"}
    assert {r[header.index("Formulir")] for r in rows} == {"KIA"}
    header, rows = _sheet(wb["Capaian Indikator"])
    k1 = next(r for r in rows if r[header.index("Kode indikator")] == "KIA_K1"
              and r[header.index("Kode unit")] == "P0001" and r[header.index("Jenis periode")]
              == "Kumulatif s.d. bulan ini")
    assert k1[header.index("Indikator")] == "Cakupan kunjungan ibu hamil K1 (dilaporkan FKTP)"
    assert k1[header.index("Memenuhi target")] == "tidak"  # 9.5 < 15.8 (PWS line)
    header, rows = _sheet(wb["Kualitas Data"])
    dq = next(r for r in rows if r[header.index("Kode aturan / metode")] == "outlier_extreme_sd")
    assert dq[header.index("Jenis temuan")] == "Pencilan ekstrem (simpangan baku)"
    assert dq[header.index("Keterangan")].startswith("Nilai 90 berada 3,40 simpangan baku di atas")


HOSTILE = ["=1+1", "=cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "+2+5", "-2+3",
           "\t=1+2", "\r=1+2", '=HYPERLINK("http://evil.example","klik")']


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_facility_names_stay_inert_text(con, settings, name):
    seed(con)
    seed_report_status(con)
    con.execute("UPDATE reference.facility SET nama_faskes = $n "
                "WHERE kode_faskes IN ('P0001', 'DR01')",
                {"n": name})
    con.execute("UPDATE evaluation.followup SET nama_faskes = $n, nama_puskesmas_induk = $n",
                {"n": name})
    evaluation.build_all(con, settings, ["2025-02"])
    [path] = exports.write_workbooks(con, settings, ["2025-02"])
    wb = openpyxl.load_workbook(path)
    stored = name.replace("\r", "_x000D_")  # XlsxWriter's escape of CR, which openpyxl keeps
    cells = [c for ws in wb for r in ws.iter_rows(min_row=2) for c in r if c.value == stored]
    sheets = {c.parent.title for c in cells}
    assert {"Ringkasan", "Kepatuhan Pelaporan", "Tindak Lanjut", "Capaian Indikator"} <= sheets
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    with zipfile.ZipFile(path) as z:
        for part in z.namelist():
            if part.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(part) and b"<f " not in z.read(part), part
