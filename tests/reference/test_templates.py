"""`kolab template FORM`: XLSX (codes row 1, labels row 2, frozen panes, instructions sheet) and
CSV; a filled-in template is ingested by the raw layer with the label row and instructions
skipped."""

from __future__ import annotations

import shutil

import openpyxl
import pytest

from kolab_pipeline import raw
from kolab_pipeline.catalog import data_elements
from kolab_pipeline.cli import main
from kolab_pipeline.templates import write_template

PTM_CODES = ["ht_skrining", "ht_kasus_baru", "ht_dilayani_standar", "ht_dilayani_standar_ytd_unik",
             "ht_terkendali", "dm_skrining", "dm_kasus_baru", "dm_dilayani_standar",
             "dm_dilayani_standar_ytd_unik", "dm_terkendali",
             "ptm_skrining_usia_produktif_ytd_unik"]   # SPM usia produktif (issue 17.1)
META = ["periode", "kode_faskes", "nama_faskes", "tanggal_lapor", "laporan_nihil",
        "lingkup_laporan"]


def test_template_files(tmp_path):
    xlsx, csv = write_template("ptm", tmp_path / "out")
    assert (xlsx.name, csv.name) == ("template_ptm.xlsx", "template_ptm.csv")
    assert csv.read_text(encoding="utf-8") == ",".join(META + PTM_CODES) + "\n"
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == ["ptm", "Petunjuk"]
    ws = wb["ptm"]
    assert [c.value for c in ws[1]] == META + PTM_CODES
    labels = dict(zip(data_elements()["code"], data_elements()["name_id"], strict=True))
    assert [c.value for c in ws[2]][6:] == [labels[c] for c in PTM_CODES]
    assert ws[2][5].value == "Lingkup Laporan (faskes/wilayah)"
    assert ws[2][0].value == "Periode (YYYY-MM)"
    assert ws.freeze_panes == "C3"
    assert ws.column_dimensions["G"].width > 10
    assert ws.data_validations.dataValidation == []
    assert wb["Petunjuk"]["A1"].value.startswith("Petunjuk pengisian laporan bulanan PTM")
    assert ws.max_row == 2                      # blank: no data rows


def test_unknown_form_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown form 'gizi'"):
        write_template("gizi", tmp_path)


def test_cli_template_and_filled_template_ingests(tmp_path, settings, con, capsys):
    assert main(["template", "tb", "--out", str(tmp_path / "t")]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "t" / "template_tb.xlsx"),
                                                     str(tmp_path / "t" / "template_tb.csv")]
    wb = openpyxl.load_workbook(tmp_path / "t" / "template_tb.xlsx")
    wb["tb"].append(["2025-03", "KP001", "Klinik B", "2025-04-04", None, "faskes",
                     9, 2, 2, 0, 1, 1, 1, 0, 0, 0])
    dest = settings.paths.landing / "kp001" / "tb" / "KP001_tb_2025-03.xlsx"
    dest.parent.mkdir(parents=True)
    wb.save(dest)
    shutil.copy(tmp_path / "t" / "template_tb.csv", settings.paths.landing / "blank_tb.csv")
    s = raw.ingest_landing(con, settings, run_id="r1")
    # the blank CSV has no data rows (F02)
    assert (s.files_ingested, s.files_rejected) == (1, 1)
    assert con.execute("SELECT sheet, row_number, form, kode_faskes "
                       "FROM raw.submission_row").fetchall() == [
        ("tb", 3, "tb", "KP001")]                                  # row 2 = labels, skipped
    assert con.execute("SELECT lingkup_laporan FROM raw.submission_row").fetchall() == [("faskes",)]
    # 16 TB elements (10 + the 6 cohort outcomes of issue 17.3, left blank), all mapped; values
    # as text
    cells = con.execute("SELECT data_element, value_text FROM raw.submission_cell "
                        "ORDER BY column_index").fetchall()
    assert [c[1] for c in cells] == (["9", "2", "2", "0", "1", "1", "1", "0", "0", "0"]
                                     + [None] * 6)
    assert all(c[0] is not None for c in cells)
