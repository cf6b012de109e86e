"""Reference layer: bundled Kemendagri/BPS/puskesmas tables and the facility registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolab_pipeline import reference
from kolab_pipeline.config import Settings


@pytest.fixture
def loaded(con):
    reference.load_wilayah(con)
    reference.load_catalogues(con)
    return con


def test_published_wilayah_counts(loaded):
    """The counts published with Kepmendagri 300.2.2-2430/2025 (shared/data/README.md)."""
    counts = dict(loaded.execute("SELECT level, count(*) FROM reference.wilayah GROUP BY 1")
                  .fetchall())
    assert counts == {"provinsi": 38, "kabkota": 514, "kecamatan": 7285, "desa": 83762}
    # national population, Dukcapil December 2024
    total = loaded.execute("SELECT sum(penduduk) FROM reference.wilayah "
                           "WHERE level = 'provinsi'").fetchone()[0]
    assert total == 284_973_643
    # every kab/kota carries its population
    assert loaded.execute("SELECT count(*) FROM reference.wilayah "
                          "WHERE level='kabkota' AND penduduk IS NULL").fetchone()[0] == 0


def test_counts_match_the_sources_own_per_province_recap(loaded):
    recap = loaded.execute(f"""
        SELECT kode_prov, CAST(jumlah_kecamatan AS INT),
               CAST(jumlah_kelurahan AS INT) + CAST(jumlah_desa AS INT)
          FROM read_csv('{reference.REFERENCE_DIR / "rekap_provinsi_published.csv.gz"}',
                        all_varchar=true)""").fetchall()
    ours = dict(((p, (k, d)) for p, k, d in loaded.execute("""
        SELECT kode_prov, count(*) FILTER (level='kecamatan'), count(*) FILTER (level='desa')
          FROM reference.wilayah GROUP BY 1""").fetchall()))
    totals = [r for r in recap if r[0] == "TOTAL"]
    assert totals == [("TOTAL", 7285, 83762)]
    assert [(p, k, d, ours.get(p)) for p, k, d in recap
            if p != "TOTAL" and ours.get(p) != (k, d)] == []


def test_bps_bridge_and_puskesmas_mapping(loaded):
    # BPS 3172 is Jakarta Timur while Kemendagri 31.72 is Jakarta Utara (domain.md §2.2)
    row = loaded.execute("SELECT kode_dagri, nama_dagri FROM reference.bps_bridge "
                         "WHERE level='kabkota' AND kode_bps='3172'").fetchone()
    assert row[0] == "31.75" and "TIMUR" in row[1].upper()
    # Cilegon: BPS 3672010 Ciwandan = Kemendagri 36.72.04
    assert loaded.execute("SELECT kode_dagri FROM reference.bps_bridge "
                          "WHERE kode_bps='3672010'").fetchone()[0] == "36.72.04"
    n, mapped = loaded.execute("SELECT count(*), count(kode_kec) FROM reference.puskesmas_2019"
                               ).fetchone()
    assert n == 9061
    # 321 puskesmas of 2019 point at BPS kecamatan that no longer exist: reported, not dropped
    assert n - mapped == 321
    per_place = dict(loaded.execute("""
        SELECT substr(kode_faskes, 2, 4), count(*) FROM reference.puskesmas_2019
         WHERE substr(kode_faskes, 2, 4) IN ('3672','6471','3513','3328','1872')
         GROUP BY 1""").fetchall())
    assert per_place == {"3672": 8, "6471": 22, "3513": 33, "3328": 29, "1872": 10}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


FASILITAS = """kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,tanggal_buka,\
tanggal_tutup,formulir,kode_lokal,is_synthetic
P6471010201,Puskesmas Klandasan Ilir,puskesmas,,64.71.05.1002,,,tb;ptm;kia;imun,PKM-01,0
KP0001,Klinik Pratama Sehat,klinik_pratama,P6471010201,64.71.05.1002,2024-03-15,,tb;ptm;kia;imun,,1
DR0001,Praktik dr. Ani,tpmd,P6471010201,64.71.05,,2024-06-30,tb;ptm,,1
DR0002,Klinik Pratama Sehat,tpmd,P6471010201,64.71.05,,,tb,,1
"""


def test_registry_load(settings: Settings, loaded):
    _write(settings.paths.registry / "fasilitas.csv", FASILITAS)
    _write(settings.paths.registry / "jejaring.csv",
           "kode_faskes,kode_puskesmas_induk,formulir,berlaku_mulai,berlaku_sampai\n"
           "DR0002,P6471010201,tb,2024-01-01,2024-07-01\nDR0002,P6471010201,tb;ptm,2024-07-01,\n")
    _write(settings.paths.registry / "sasaran.csv",
           "tahun,kode_unit,sasaran,nilai,metode\n2024,64.71,bumil,\"13331,6\",pusdatin_official\n"
           "2024,P6471010201,bumil,812,pusdatin_official\n")
    counts = reference.load_registry(loaded, settings)
    assert counts == {"facility": 4, "form_assignment": 4 + 4 + 2 + 1 + 2, "sasaran": 2}
    fac = {r[0]: r for r in loaded.execute(
        "SELECT kode_faskes, kode_jejaring, kode_kec, kode_kabkota, reporting_level, timezone, "
        "is_synthetic FROM reference.facility").fetchall()}
    assert fac["P6471010201"][1:] == ("P6471010201", "64.71.05", "64.71", "pkm_to_dinkes",
                                      "Asia/Makassar", False)
    assert fac["DR0001"][1:] == ("P6471010201", "64.71.05", "64.71", "network_to_pkm",
                                 "Asia/Makassar", True)
    # jejaring.csv replaces the fasilitas forms of DR0002 with a dated history
    hist = loaded.execute("""SELECT form, valid_from, valid_to, basis FROM reference.form_assignment
                             WHERE kode_faskes='DR0002' ORDER BY valid_from, form""").fetchall()
    assert [(f, str(a), str(b) if b else None, basis) for f, a, b, basis in hist] == [
        ("tb", "2024-01-01", "2024-07-01", "jejaring"), ("ptm", "2024-07-01", None, "jejaring"),
        ("tb", "2024-07-01", None, "jejaring")]
    # the local code resolves; the shared name "Klinik Pratama Sehat" is ambiguous and resolves
    # to nobody
    aliases = dict(loaded.execute("SELECT alias_norm, kode_faskes FROM reference.facility_alias")
                   .fetchall())
    assert aliases["PKM01"] == "P6471010201"
    assert "KLINIKPRATAMASEHAT" not in aliases
    sas = loaded.execute("SELECT unit_level, nilai FROM reference.sasaran ORDER BY kode_unit"
                         ).fetchall()
    assert sas == [("kabkota", 13331.6), ("puskesmas_network", 812.0)]


@pytest.mark.parametrize("mutation, message", [
    (lambda t: t + "DR0001,Dup,tpmd,P6471010201,64.71.05,,,tb,,1\n", "duplicate kode_faskes"),
    (lambda t: t.replace("klinik_pratama", "apotek"), "row 3, column jenis_faskes"),
    (lambda t: t.replace("2024-03-15", "15 Maretz"), "row 3, column tanggal_buka"),
    (lambda t: t.replace(",formulir,", ",forms,"), "missing column(s) formulir"),
])
def test_registry_errors_name_file_row_and_column(settings, loaded, mutation, message):
    _write(settings.paths.registry / "fasilitas.csv", mutation(FASILITAS))
    with pytest.raises(reference.RegistryError, match="fasilitas.csv") as err:
        reference.load_registry(loaded, settings)
    assert message in str(err.value)


def test_missing_registry_says_how_to_get_one(settings, loaded):
    with pytest.raises(reference.RegistryError, match="kolab sample-data"):
        reference.load_registry(loaded, settings)


def test_norm_text_matches_norm_sql(loaded):
    for text in ["Puskesmas  Cibeber", "p-3672.040-201", "Klinik 'Sehat' é", None]:
        assert (loaded.execute(f"SELECT {reference.norm_sql('?')}", [text]).fetchone()[0]
                == reference.norm_text(text))
