"""`kolab init`: the starter registry from the bundled reference data (kecamatan through the BPS
bridge), the sasaran skeleton, kolab.yaml with the area's time zone, templates; idempotent and
never overwriting a file the user changed."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest

from kolab_pipeline.config import load_config
from kolab_pipeline.onboarding.init import InitError, init_home, sasaran_codes

# Kota Cilegon's 8 puskesmas of the Kemenkes 2019 list and their Kemendagri kecamatan, read by
# hand from reference_data/bps_kemendagri_kecamatan.csv.gz (BPS kecamatan = P-code digits 2–8):
# 3672040 CIBEBER → 36.72.01, 3672030 CILEGON → 36.72.02 (not .03!), 3672020 PULOMERAK → 36.72.03,
# 3672010 CIWANDAN → 36.72.04, 3672031 JOMBANG → 36.72.05, 3672022 GROGOL → 36.72.06,
# 3672021 PURWAKARTA → 36.72.07, 3672011 CITANGKIL → 36.72.08.
CILEGON = {
    "P3672040101": ("Puskesmas Cibeber", "36.72.01"),
    "P3672030201": ("Puskesmas Cilegon", "36.72.02"),
    "P3672020101": ("Puskesmas Pulo Merak", "36.72.03"),
    "P3672010101": ("Puskesmas Ciwandan", "36.72.04"),
    "P3672031201": ("Puskesmas Jombang", "36.72.05"),
    "P3672022201": ("Puskesmas Grogol", "36.72.06"),
    "P3672021201": ("Puskesmas Purwakarta", "36.72.07"),
    "P3672011201": ("Puskesmas Citangkil", "36.72.08"),
}
# indicators.csv sasaran denominators + the bases their formulas need
SASARAN = {"pend_total", "pend_15plus", "bumil", "bulin", "bufas", "lahir_hidup", "bayi",
           "baduta", "est_penderita_ht_15plus", "est_penderita_dm_15plus", "est_insiden_tb",
           # issue 17.1: SPM usia produktif and the SPM sasaran of presumptive TB
           "pend_15_59", "est_terduga_tb"}


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def digests(home: Path) -> dict[str, str]:
    return {p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def test_cilegon_starter_files(tmp_path: Path):
    result = init_home(tmp_path, kabkota="36.72", tahun=2025)
    fas = rows(tmp_path / "registry" / "fasilitas.csv")
    assert {r["kode_faskes"]: (r["nama_faskes"], r["kode_wilayah"]) for r in fas} == CILEGON
    assert {(r["jenis_faskes"], r["formulir"], r["kode_puskesmas_induk"]) for r in fas} == {
        ("puskesmas", "tb;ptm;kia;imun", "")}
    assert result.n_puskesmas == 8
    # sasaran: 13 codes × (kab/kota 36.72 + 8 puskesmas) = 117 rows, nilai and metode blank
    sas = rows(tmp_path / "registry" / "sasaran.csv")
    assert set(sasaran_codes()) == SASARAN
    assert len(sas) == 13 * 9
    assert {r["kode_unit"] for r in sas} == {"36.72", *CILEGON}
    assert {r["tahun"] for r in sas} == {"2025"} and {r["nilai"] for r in sas} == {""}
    bumil = next(r for r in sas if r["kode_unit"] == "P3672030201" and r["sasaran"] == "bumil")
    assert bumil["keterangan"].startswith("Ibu hamil. bila kosong: cbr_formula")
    assert "hanya bila pend_total unit ini ada" in bumil["keterangan"]
    cfg = load_config(tmp_path)
    assert cfg.timezones.default == "Asia/Jakarta" and cfg.reporting.as_of is None
    assert sorted(p.name for p in (tmp_path / "templates").iterdir()) == sorted(
        f"template_{f}.{x}" for f in ("tb", "ptm", "kia", "imun") for x in ("csv", "xlsx"))
    assert (tmp_path / "landing").is_dir()


def test_the_starter_registry_loads_and_its_blank_sasaran_are_not_zeros(tmp_path: Path):
    import duckdb

    from kolab_pipeline import reference
    from kolab_pipeline.config import Settings

    init_home(tmp_path, kabkota="36.72", tahun=2025)
    con = duckdb.connect()
    counts = reference.load_registry(con, Settings.load(tmp_path))
    # 8 puskesmas × 4 forms = 32 assignments; 117 sasaran rows, none with a value
    assert counts == {"facility": 8, "form_assignment": 32, "sasaran": 117}
    assert con.execute("SELECT count(nilai) FROM reference.sasaran").fetchone()[0] == 0


def test_wita_kabkota_gets_its_time_zone(tmp_path: Path):
    init_home(tmp_path, kabkota="64.71")   # Kota Balikpapan, Kalimantan Timur
    cfg = load_config(tmp_path)
    assert cfg.timezones.default == "Asia/Makassar"
    assert "Local time of Kota Balikpapan: WITA." in (tmp_path / "kolab.yaml").read_text()
    fas = rows(tmp_path / "registry" / "fasilitas.csv")
    assert fas and all(r["kode_wilayah"].startswith("64.71.") for r in fas)


def test_puskesmas_of_a_vanished_bps_kecamatan_get_the_kabkota_code(tmp_path: Path):
    # Pekanbaru (14.71): the BPS kecamatan 1471010 of P1471010102 no longer exists; its BPS
    # kab/kota 1471 bridges to 14.71, so it is listed with kode_wilayah 14.71 (kolab check says so)
    init_home(tmp_path, kabkota="14.71")
    fas = {r["kode_faskes"]: r["kode_wilayah"] for r in rows(tmp_path / "registry" /
                                                              "fasilitas.csv")}
    assert fas["P1471010102"] == "14.71"
    assert all(w == "14.71" or w.startswith("14.71.") for w in fas.values())


def test_provinsi(tmp_path: Path):
    init_home(tmp_path, provinsi="36")
    fas = rows(tmp_path / "registry" / "fasilitas.csv")
    assert set(CILEGON) <= {r["kode_faskes"] for r in fas}
    assert {r["kode_wilayah"][:2] for r in fas} == {"36"}
    sas = rows(tmp_path / "registry" / "sasaran.csv")
    # every kab/kota of Banten (8) + every puskesmas, 11 codes each
    assert len(sas) == 13 * (8 + len(fas))


@pytest.mark.parametrize("text, kode", [("cilegon", "36.72"), ("Kota Cilegon", "36.72"),
                                        ("kota bogor", "32.71"), ("Kabupaten Bogor", "32.01")])
def test_kabkota_by_name(tmp_path: Path, text: str, kode: str):
    assert init_home(tmp_path, kabkota=text).area.kode == kode


@pytest.mark.parametrize("kwargs, message", [
    ({"kabkota": "3672"}, "write the Kemendagri code with its dot, e.g. 36.72"),
    # BPS 1101 is Kemendagri 11.09 (Simeulue), not 11.01
    ({"kabkota": "1101"}, "BPS code 1101 is Kemendagri 11.09"),
    ({"kabkota": "bogor"}, "ambiguous: 32.01 Kabupaten Bogor or 32.71 Kota Bogor"),
    ({"kabkota": "cilgon"}, "closest: 36.72 Kota Cilegon"),
    ({"kabkota": "99.99"}, "not a Kemendagri kabkota code"),
    ({}, "give exactly one of --kabkota"),
])
def test_unknown_or_ambiguous_area(tmp_path: Path, kwargs: dict, message: str):
    with pytest.raises(InitError, match=message.replace("(", r"\(").replace(".", r"\.")):
        init_home(tmp_path, **kwargs)
    assert not (tmp_path / "registry").exists()


def test_idempotent_and_never_overwrites_an_edited_file(tmp_path: Path):
    init_home(tmp_path, kabkota="36.72", tahun=2025)
    before = digests(tmp_path)
    again = init_home(tmp_path, kabkota="36.72", tahun=2025)
    assert digests(tmp_path) == before                       # nothing rewritten
    assert all(line.startswith("same") for line in again.lines[1:-1])
    # the user edits the registry and kolab.yaml, deletes a template
    fas = tmp_path / "registry" / "fasilitas.csv"
    fas.write_text(fas.read_text() + "KP1,Klinik,klinik_pratama,P3672030201,36.72.02,,,tb,\n")
    conf = tmp_path / "kolab.yaml"
    conf.write_text(conf.read_text().replace("as_of: null", "as_of: 2025-04-30"))
    (tmp_path / "templates" / "template_tb.csv").unlink()
    third = init_home(tmp_path, kabkota="36.72", tahun=2025)
    assert "kept    registry/fasilitas.csv: edited since kolab init wrote it" in third.lines
    assert "kept    kolab.yaml: edited since kolab init wrote it" in third.lines
    assert "wrote   templates/template_tb.csv: blank template" in third.lines
    assert fas.read_text().endswith("KP1,Klinik,klinik_pratama,P3672030201,36.72.02,,,tb,\n")
    assert load_config(tmp_path).reporting.as_of.isoformat() == "2025-04-30"
    # a different year rewrites the unedited sasaran skeleton, still not the edited registry
    fourth = init_home(tmp_path, kabkota="36.72", tahun=2026)
    assert any(line.startswith("updated registry/sasaran.csv") for line in fourth.lines)
    assert {r["tahun"] for r in rows(tmp_path / "registry" / "sasaran.csv")} == {"2026"}


def test_files_it_did_not_write_are_kept(tmp_path: Path):
    (tmp_path / "registry").mkdir()
    own = tmp_path / "registry" / "fasilitas.xlsx"
    own.write_bytes(b"not really a workbook")
    (tmp_path / "kolab.yaml").write_text("reporting:\n  as_of: 2024-12-31\n")
    result = init_home(tmp_path, kabkota="36.72")
    assert "kept    registry/fasilitas.xlsx: yours (used instead of registry/fasilitas.csv)" in \
        result.lines
    assert "kept    kolab.yaml: not written by kolab init (yours)" in result.lines
    assert not (tmp_path / "registry" / "fasilitas.csv").exists()
    assert (tmp_path / "kolab.yaml").read_text() == "reporting:\n  as_of: 2024-12-31\n"
    # the sasaran year defaults to the year of as_of
    assert {r["tahun"] for r in rows(tmp_path / "registry" / "sasaran.csv")} == {"2024"}
