"""Parquet and Excel exports on the hand-built kab/kota (tests/support/evaluation.py)."""

from __future__ import annotations

import zipfile

import duckdb
import openpyxl
import pytest

from kolab_pipeline import evaluation, exports
from kolab_pipeline.exports import workbook
from kolab_pipeline.config import Settings
from tests.support.evaluation import MALICIOUS_NAMES, seed, seed_report_status

SHEETS = ["Ringkasan", "Kepatuhan Pelaporan", "Tindak Lanjut", "Capaian Indikator",
          "Kontribusi Jejaring", "Kualitas Data"]


@pytest.fixture
def built(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    seed(con)
    seed_report_status(con)
    # every malicious text reaches a sheet: facility names (Kepatuhan Pelaporan, Kualitas Data),
    # the follow-up name (Tindak Lanjut) and flagged values (Kualitas Data)
    con.execute("UPDATE reference.facility SET nama_faskes = ? WHERE kode_faskes = 'KP01'", [MALICIOUS_NAMES[0]])
    con.execute("UPDATE reference.facility SET nama_faskes = ? WHERE kode_faskes = 'DR01'", [MALICIOUS_NAMES[1]])
    con.execute("UPDATE clean.validation_flag SET value_text = ? WHERE kode_faskes = 'KP01'", [MALICIOUS_NAMES[2]])
    con.execute("UPDATE clean.quarantine SET value_text = ? WHERE kode_faskes = 'DR01'", [MALICIOUS_NAMES[3]])
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
    assert [c.value for c in kep[1]][:4] == ["Kode jejaring", "Puskesmas", "Kode faskes", "Nama faskes"]
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


def test_parquet_matches_warehouse(built, settings):
    written = exports.write_parquet(built, settings)
    analyst = {t.qualified for t in exports.analyst_tables()}
    assert set(written) == analyst and "evaluation.scorecard" in analyst
    for key, (path, n) in written.items():
        assert path == settings.paths.exports / f"{key}.parquet"
        # same rows, same values: count and an order-independent checksum of whole rows
        sql_t = f"SELECT count(*), sum(hash(t)::HUGEINT) FROM {key} t"
        sql_p = f"SELECT count(*), sum(hash(t)::HUGEINT) FROM read_parquet('{path}') t"
        assert built.execute(sql_t).fetchone() == built.execute(sql_p).fetchone(), key
        assert built.execute(f"SELECT count(*) FROM {key}").fetchone()[0] == n
    # ordered comparison of one table, column by column
    a = built.execute("SELECT * FROM evaluation.scorecard ORDER BY kode_jejaring, period, period_type").fetchall()
    b = built.execute(f"SELECT * FROM read_parquet('{written['evaluation.scorecard'][0]}') "
                      "ORDER BY kode_jejaring, period, period_type").fetchall()
    assert a == b and len(a) == 8
    assert not list(settings.paths.exports.glob(".*.tmp"))  # temp files renamed away


def test_worker_processes_write_the_same_bytes(built, settings, monkeypatch):
    """National runs write workbooks in spawned worker processes: same bytes as in-process."""
    [path] = exports.write_workbooks(built, settings, ["2025-02"])
    in_process = path.read_bytes()
    monkeypatch.setattr(workbook, "MIN_PARALLEL", 1)  # one kab/kota here; use the pool anyway
    monkeypatch.setenv("KOLAB_WORKERS", "2")
    assert exports.write_workbooks(built, settings, ["2025-02"]) == [path]
    assert path.read_bytes() == in_process
    assert not list(settings.paths.exports.glob(".*.tmp"))
    monkeypatch.setenv("KOLAB_WORKERS", "0")
    with pytest.raises(ValueError, match="KOLAB_WORKERS"):
        exports.write_workbooks(built, settings, ["2025-02"])
