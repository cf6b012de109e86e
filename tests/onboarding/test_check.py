"""`kolab check`: every kind of finding on a planted registry, sasaran file and receipt log, with
file, row and column; errors vs warnings and the exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolab_pipeline import catalog
from kolab_pipeline.cli import main
from kolab_pipeline.onboarding.check import Report, run_checks
from kolab_pipeline.onboarding.findings import severities
from kolab_pipeline.onboarding.init import init_home

HEADER = ("kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,tanggal_buka,"
          "tanggal_tutup,formulir")
# row number in the file (header = row 1) → the planted problem
REGISTRY = [
    "P3672030201,Puskesmas Cilegon,puskesmas,,36.72.03,,,tb",            # 2 kecamatan_mismatch
    "P3672010101,Puskesmas Ciwandan,puskesmas,P3672030201,36.72.04,,,tb",  # 3 induk_on_puskesmas
    "P3672999999,Puskesmas Baru,puskesmas,,36.72.01,,,tb",                # 4 not in 2019 list
    "PKM-JOMBANG,Puskesmas Jombang,puskesmas,,36.72.05,,,tb",            # 5 not a P-code
    "KP1,Klinik Satu,klinik_pratama,,36.72.02,,,tb",                     # 6 induk_missing
    "KP2,Klinik Dua,klinik_pratama,KP1,36.72.02,,,tb",                   # 7 induk is a klinik
    "KP3,Klinik Tiga,klinik_pratama,P0000000000,36.72.02,,,tb",          # 8 induk not registered
    "KP4,Klinik Empat,klinik_pratama,P3672030201,36.72.99,,,tb",         # 9 wilayah_unknown
    "KP5,Klinik Lima,klinik_pratama,P3672030201,36.72,,,tb",             # 10 not a kecamatan
    "DR1,dr. Satu,tpmd,P3672030201,36.72.02,,,tb;xyz",                   # 11 form_unknown
    "DR2,dr. Dua,tpmd,P3672030201,91.01.01,,,tb",                        # 12 closed 2020 code
    "DR3,dr. Tiga,tpmd,P3672030201,32.73.01,,,tb",                       # 13 outside 36.72
    "P1471010102,Puskesmas RI Sidomulyo,puskesmas,,14.71.01,,,tb",       # 14 BPS kec. gone
    "P3672040101,Puskesmas Cibeber,puskesmas,,36.72.01,,,tb",            # 15 fine
]
SASARAN = """tahun,kode_unit,sasaran,nilai,metode
2025,P3672030201,bumil,abc,pendataan
2025,P3672030201,bumill,100,pendataan
2025,KP1,bumil,100,pendataan
2025,36.73,bumil,100,pendataan
20x5,P3672040101,bumil,100,pendataan
2025,P3672040101,pend_total,,
2025,36.72.02.1001,bumil,10,pendataan
2025,36.72.06,bumil,50,pendataan
2025,36,bumil,900,pendataan
"""
RECEIPTS = """file,received_at
cilegon/tb.csv,2025-02-08
tb.csv,2025-02-08T09:00:00+07:00
cilegon/tb.csv,kemarin
"""
TB = ("periode,kode_faskes,nama_faskes,tanggal_lapor,laporan_nihil,tb_skrining\n"
      "2025-01,P3672040101,Puskesmas Cibeber,,,10\n")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    init_home(tmp_path, kabkota="36.72", tahun=2025)   # records the area (outside_area)
    (tmp_path / "registry" / "fasilitas.csv").write_text(HEADER + "\n" + "\n".join(REGISTRY)
                                                         + "\n")
    (tmp_path / "registry" / "sasaran.csv").write_text(SASARAN)
    (tmp_path / "landing" / "cilegon").mkdir(parents=True)
    (tmp_path / "landing" / "cilegon" / "tb.csv").write_text(TB)
    (tmp_path / "landing" / "_diterima.csv").write_text(RECEIPTS)
    return tmp_path


def found(report: Report) -> set[tuple]:
    return {(f.check, f.file, f.row, f.column) for f in report.findings}


def test_every_check_has_a_severity_and_a_meaning():
    rows = catalog.rows(catalog.CHECKS)
    assert {r["severity"] for r in rows} == {"error", "warning"}
    assert all(r["meaning"] for r in rows)
    assert severities()["induk_missing"] == "error"
    assert severities()["kecamatan_mismatch"] == "warning"


def test_registry_sasaran_and_receipt_log_findings(home: Path):
    report = run_checks(home, deep=False)
    fas, sas, log = "registry/fasilitas.csv", "registry/sasaran.csv", "landing/_diterima.csv"
    assert {
        ("kecamatan_mismatch", fas, 2, "kode_wilayah"),
        ("induk_on_puskesmas", fas, 3, "kode_puskesmas_induk"),
        ("puskesmas_code_unknown", fas, 4, "kode_faskes"),
        ("puskesmas_code_unknown", fas, 5, "kode_faskes"),
        ("induk_missing", fas, 6, "kode_puskesmas_induk"),
        ("induk_unknown", fas, 7, "kode_puskesmas_induk"),
        ("induk_unknown", fas, 8, "kode_puskesmas_induk"),
        ("wilayah_unknown", fas, 9, "kode_wilayah"),
        ("wilayah_not_kecamatan", fas, 10, "kode_wilayah"),
        ("form_unknown", fas, 11, "formulir"),
        ("wilayah_closed", fas, 12, "kode_wilayah"),
        ("outside_area", fas, 13, "kode_wilayah"),
        ("puskesmas_kecamatan_gone", fas, 14, "kode_wilayah"),
        ("outside_area", fas, 14, "kode_wilayah"),
        ("sasaran_invalid", sas, 2, "nilai"),
        ("sasaran_code_unknown", sas, 3, "sasaran"),
        ("sasaran_unit_unknown", sas, 4, "kode_unit"),
        ("sasaran_unit_unknown", sas, 5, "kode_unit"),
        ("sasaran_unit_unknown", sas, 10, "kode_unit"),
        ("sasaran_invalid", sas, 6, "tahun"),
        ("sasaran_invalid", sas, None, None),   # the load itself stops on tahun 20x5
        ("receipt_log_missing_file", log, 3, "file"),
        ("receipt_log_unreadable", log, 4, "received_at"),
    } == found(report)
    text = "\n".join(report.lines(limit=None))
    # the messages name what is wrong and what to write instead
    assert ("kode_wilayah says 36.72.03 Pulomerak; write 36.72.02 (the P-code's digits are BPS "
            "codes, not Kemendagri)") in text
    assert "PKM-JOMBANG Puskesmas Jombang: not a Kemenkes puskesmas code (P + 10 digits)" in text
    assert "did you mean P3672031201 (JOMBANG)?" in text
    assert "KP2 Klinik Dua: KP1 is a klinik_pratama, not a puskesmas" in text
    assert "91.01.01 (Merauke) is a 2020 Kemendagri code that no longer exists" in text
    assert "'bumill' is not a sasaran code; did you mean bumil?" in text
    assert ("'tb.csv' is not in the landing folder; paths are relative to KOLAB_HOME/landing; "
            "did you mean 'cilegon/tb.csv'?") in text
    # row 7 of sasaran.csv has nilai blank: an inert skeleton row, no finding; rows 8 (a desa)
    # and 9 (a kecamatan of Cilegon without a puskesmas in the registry) are used by the
    # bottom-up resolution: no finding; row 10, Banten, of which the registry holds only Cilegon,
    # resolves to the sum of its kab/kota, so its own figure is not used
    assert not any(f.file == sas and f.row in (7, 8, 9) for f in report.findings)
    assert ("36 is a province the registry holds only some kab/kota of: its sasaran is the sum "
            "of theirs: the row is not used") in text
    assert "KP1 is a facility but not a puskesmas" in text
    # row 15 (Puskesmas Cibeber) is right: no finding
    assert not any(f.file == fas and f.row == 15 for f in report.findings)
    # errors come first; the summary counts both kinds
    lines = report.lines(limit=None)
    assert lines[0].startswith("error   ") and lines[-1].startswith("warning ")
    # registry rows 6, 7, 8, 9, 11, 12 + sasaran rows 2, 6 + the sasaran load = 9
    assert len(report.errors) == 9
    assert "`kolab run` would stop loading it: Conversion Error" in text


def test_quick_check_flags_files_missing_from_the_receipt_log(home: Path):
    (home / "landing" / "ciwandan.csv").write_text(TB)
    report = run_checks(home, deep=False)
    hits = [f for f in report.findings if f.check == "receipt_from_file_date"]
    assert [f.file for f in hits] == ["landing/ciwandan.csv"]   # cilegon/tb.csv is listed


def test_limit_per_check(home: Path):
    report = Report()
    for i in range(25):
        report.add("induk_missing", "registry/fasilitas.csv", f"KP{i}", i + 2,
                   "kode_puskesmas_induk")
    lines = report.lines(limit=20)
    assert len(lines) == 21
    assert lines[-1] == ("error   … and 5 more [induk_missing] (kolab check --all lists every "
                         "one)")


def test_exit_code_1_for_errors_0_for_warnings(home: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--home", str(home), "check", "--quick"]) == 1
    out = capsys.readouterr().out
    assert "kolab check: 9 error(s)" in out.splitlines()[-1]
    # fix the errors, keep the warnings (kecamatan mismatch, receipt log, …)
    fixed = [r for i, r in enumerate(REGISTRY, start=2) if i not in (6, 7, 8, 9, 11, 12)]
    (home / "registry" / "fasilitas.csv").write_text(HEADER + "\n" + "\n".join(fixed) + "\n")
    (home / "registry" / "sasaran.csv").write_text(
        "tahun,kode_unit,sasaran,nilai,metode\n2025,P3672040101,pend_total,30000,bps\n")
    assert main(["--home", str(home), "check", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "[kecamatan_mismatch]" in out and "kolab check: 0 error(s)" in out


def test_missing_registry_and_bad_config(tmp_path: Path):
    (tmp_path / "kolab.yaml").write_text("reporting:\n  due_day:\n    pkm_to_dinkes: 40\n")
    report = run_checks(tmp_path)
    assert {f.check for f in report.findings} == {"config_invalid", "registry_missing"}
    assert all(f.severity == "error" for f in report.findings)


# a receipt log naming many absent files (a month not copied yet) stays quick: the same-name
# suggestion is a lookup for every line, the fuzzy one (difflib over every landing file) only
# for the first FUZZY_LIMIT lines
def test_receipt_log_suggestions_same_name_always_fuzzy_for_the_first_lines():
    from kolab_pipeline.onboarding.landing_check import _Closest

    files = [f"k{i:03d}/tb/2025-03/rekap_{i:03d}.csv" for i in range(200)]
    closest = _Closest(files)
    assert closest.hint("tb/rekap_007.csv") == "; did you mean 'k007/tb/2025-03/rekap_007.csv'?"
    typos = [closest.hint(f"k{i:03d}/tb/2025-03/rekap_{i:03d}.cvs") for i in range(60)]
    assert typos[0] == "; did you mean 'k000/tb/2025-03/rekap_000.csv'?"
    assert all(t.startswith("; did you mean") for t in typos[:_Closest.FUZZY_LIMIT])
    assert typos[_Closest.FUZZY_LIMIT:] == [""] * (60 - _Closest.FUZZY_LIMIT)
    # same-name suggestions go on after the fuzzy ones are used up
    assert closest.hint("x/rekap_150.csv") == "; did you mean 'k150/tb/2025-03/rekap_150.csv'?"
