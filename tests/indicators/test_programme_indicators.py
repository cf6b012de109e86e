"""Indicators as the programmes define them (issue 17 items 1, 2, 3, 6), hand-worked on the shared
world of tests/support/indicators.py (networks PA = {PA, KA1, DA1}, PB = {PB, KB1}; official bayi
PA 48, PB 29; penduduk 100 000) plus the values each test adds.
"""

from __future__ import annotations

import duckdb
import pytest

from kolab_pipeline import catalog, compliance, indicators
from kolab_pipeline.config import Settings
from tests.support.indicators import add_value, build_world


def row(con: duckdb.DuckDBPyConnection, code: str, level: str, unit: str, period: str,
        ptype: str) -> dict:
    df = con.execute("""SELECT * FROM indicators.indicator_value
                         WHERE indicator_code = ? AND unit_level = ? AND unit_code = ?
                           AND period = ? AND period_type = ?""",
                     [code, level, unit, period, ptype]).df()
    assert len(df) == 1, f"{code} {level} {unit} {period} {ptype}: {len(df)} rows"
    return df.iloc[0].to_dict()


def n_rows(con, code, level, unit) -> int:
    return con.execute("""SELECT count(*) FROM indicators.indicator_value
                           WHERE indicator_code = ? AND unit_level = ? AND unit_code = ?""",
                       [code, level, unit]).fetchall()[0][0]


def add_values(con, values: dict[tuple[str, str, str], int]) -> None:
    for (kode, period, element), v in values.items():
        add_value(con, kode, period, element, v)


@pytest.fixture
def world(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    build_world(con)
    return con


# --- immunisation: one baduta cohort, polio 4, drop-out target -------------------------------

def test_ibl_dpt4_mr2_over_one_baduta_cohort(world, settings: Settings):
    add_values(world, {("PA", "2025-01", "imun_ibl"): 10, ("PB", "2025-01", "imun_ibl"): 5,
                       ("PA", "2025-01", "imun_dpt4"): 12, ("PB", "2025-01", "imun_dpt4"): 6,
                       ("PA", "2025-01", "imun_mr2"): 11, ("PA", "2025-01", "imun_polio4"): 9,
                       ("PB", "2025-01", "imun_polio4"): 4})
    indicators.compute_indicator_values(world, settings, ["2025-01"])
    # baduta = one cohort: no official baduta and no bayi of 2024 → this year's bayi:
    # PA 48, PB 29, kab/kota 77 (before: 3.4 % × 100 000 = 3 400, two cohorts)
    ibl = row(world, "IMUN_IBL", "kabkota", "99.01", "2025-01", "ytd")
    dpt1 = row(world, "IMUN_DPT1", "kabkota", "99.01", "2025-01", "ytd")
    assert ibl["denominator"] == dpt1["denominator"] == 77
    # IBL (10 + 5) / 77 = 19.48 %; DPT-HB-Hib 4 (12 + 6) / 77 = 23.38 %; MR2 11 / 77 = 14.29 %
    assert ibl["value"] == pytest.approx(1500 / 77)
    assert row(world, "IMUN_DPT4", "kabkota", "99.01", "2025-01", "ytd")["value"] == \
        pytest.approx(1800 / 77)
    assert row(world, "IMUN_MR2", "kabkota", "99.01", "2025-01", "ytd")["value"] == \
        pytest.approx(1100 / 77)
    assert ibl["denominator_method"] == "baduta:surviving_infants_same_year"
    # Polio 4 over the infants: (9 + 4) / 77 = 16.88 %; PWS line 95 / 12 = 7.92 → on track
    polio = row(world, "IMUN_POLIO4", "kabkota", "99.01", "2025-01", "ytd")
    assert polio["value"] == pytest.approx(1300 / 77) and polio["on_track"]
    assert polio["pws_target"] == pytest.approx(95 / 12)


def test_dropout_judged_with_the_configured_maximum(con, kolab_home):
    (kolab_home / "kolab.yaml").write_text("thresholds:\n  dropout_max_pct: 12\n",
                                           encoding="utf-8")
    build_world(con)
    indicators.compute_indicator_values(con, Settings.load(kolab_home), ["2025-02"])
    # DPT1 → DPT3 kab/kota YTD (29 − 26) / 29 = 10.345 % ≤ 12 → meets (decreasing); with the
    # default 5 it would not (test_indicators_engine)
    r = row(con, "IMUN_DO_DPT1_DPT3", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["target"], r["on_track"]) == (12, True)
    assert r["attainment"] == pytest.approx(300 / 29 / 12 * 100)
    # DPT1 → MR1: 2 / 29 = 6.897 % ≤ 12
    assert row(con, "IMUN_DO_DPT1_MR1", "kabkota", "99.01", "2025-02", "ytd")["on_track"]


def test_on_track_against_the_pro_rata_line(world, settings: Settings):
    indicators.compute_indicator_values(world, settings, ["2025-01", "2025-02"])
    # K1 kecamatan 99.01.02 (PB alone; bumil 40) February month: 3 / 40 = 7.5 % < 100 / 12 =
    # 8.33 % → not on track; YTD: (4 + 3) / 40 = 17.5 % ≥ 100 × 2/12 = 16.67 % → on track;
    # the annual target still shown: 100
    month = row(world, "KIA_K1", "kecamatan", "99.01.02", "2025-02", "month")
    ytd = row(world, "KIA_K1", "kecamatan", "99.01.02", "2025-02", "ytd")
    assert (month["value"], month["on_track"]) == (pytest.approx(7.5), False)
    assert (ytd["value"], ytd["on_track"], ytd["target"]) == (pytest.approx(17.5), True, 100)
    # no target: nothing judged
    assert pd_isna(row(world, "TB_CNR", "kabkota", "99.01", "2025-02", "ytd")["on_track"])


def pd_isna(x: object) -> bool:
    return x is None or x != x or str(x) == "<NA>"


# --- PTM -------------------------------------------------------------------------------------

def test_spm_usia_produktif_unique_persons_15_59(world, settings: Settings):
    add_values(world, {("PA", "2025-01", "ptm_skrining_usia_produktif_ytd_unik"): 300,
                       ("PA", "2025-02", "ptm_skrining_usia_produktif_ytd_unik"): 450,
                       ("KA1", "2025-01", "ptm_skrining_usia_produktif_ytd_unik"): 100,
                       ("KA1", "2025-02", "ptm_skrining_usia_produktif_ytd_unik"): 80})
    indicators.compute_indicator_values(world, settings, ["2025-01", "2025-02"])
    # unique persons YTD per facility (max): PA 450, KA1 100 → 550; pend_15_59 = 0.64 × 100 000
    # = 64 000 → 0.859375 %; pro-rata line 100 × 2/12 = 16.667 → attainment 5.15625 %
    r = row(world, "PTM_SPM_USIA_PRODUKTIF", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"]) == (550, pytest.approx(64_000))
    assert r["value"] == pytest.approx(55_000 / 64_000)
    assert r["attainment"] == pytest.approx(55_000 / 64_000 / (200 / 12) * 100)
    assert r["denominator_method"] == "pend_15_59:share_estimate"


def test_ht_screening_is_named_for_what_it_counts():
    ind = {i.code: i for i in indicators.load_catalogue()}
    ht = ind["PTM_SKRINING_HT"]
    # a sum of monthly blood-pressure measurements: no SPM claim, no target
    assert "bukan orang unik" in ht.name_id and "bukan SPM" in ht.name_id
    assert ht.target is None and not ht.target_source.startswith("SPM")
    spm = ind["PTM_SPM_USIA_PRODUKTIF"]
    assert (spm.aggregation, spm.sasaran, spm.target) == ("UNIQUE_YTD", "pend_15_59", 100)


def test_spm_dm_pro_rata_and_blood_pressure_measurements(world, settings: Settings):
    add_values(world, {("PA", "2025-01", "dm_dilayani_standar_ytd_unik"): 60,
                       ("PA", "2025-02", "dm_dilayani_standar_ytd_unik"): 90,
                       ("PB", "2025-01", "dm_dilayani_standar_ytd_unik"): 54,
                       ("PA", "2025-01", "ht_skrining"): 700, ("PA", "2025-02", "ht_skrining"): 650,
                       ("KA1", "2025-02", "ht_skrining"): 90})
    indicators.compute_indicator_values(world, settings, ["2025-01", "2025-02"])
    # SPM DM: unique persons PA max(60, 90) = 90 + PB 54 = 144 ÷ est. DM 0.02 × 72 000 = 1 440
    # = 10 % < the pro-rata line 100 × 2/12 = 16.67 % → attainment 60 %, not on track
    r = row(world, "PTM_SPM_DM", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"]) == (144, pytest.approx(1440))
    assert r["attainment"] == pytest.approx(10 / (200 / 12) * 100) and not r["on_track"]
    # blood-pressure measurements summed over the months (the same people measured monthly
    # count again): 700 + 650 + 90 = 1 440 ÷ pend_15plus 72 000 = 2 %; no target, not judged
    r = row(world, "PTM_SKRINING_HT", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["value"]) == (1440, pytest.approx(2))
    assert pd_isna(r["target"]) and pd_isna(r["on_track"])


def test_dm_screening_and_control(world, settings: Settings):
    add_values(world, {("PA", "2025-01", "dm_skrining"): 100, ("PA", "2025-02", "dm_skrining"): 50,
                       ("PA", "2025-01", "dm_dilayani_standar"): 10,
                       ("PA", "2025-01", "dm_terkendali"): 3,
                       ("KA1", "2025-01", "dm_dilayani_standar"): 5,
                       ("KA1", "2025-01", "dm_terkendali"): 2})
    indicators.compute_indicator_values(world, settings, ["2025-01", "2025-02"])
    # blood-glucose tests YTD 100 + 50 = 150 ÷ pend_15plus 72 000 × 100 = 0.2083 %
    r = row(world, "PTM_SKRINING_DM", "kabkota", "99.01", "2025-02", "ytd")
    assert r["value"] == pytest.approx(15_000 / 72_000) and pd_isna(r["target"])
    # DM controlled January: (3 + 2) / (10 + 5) = 33.3 %; PA alone 3 / 10 = 30 %
    assert row(world, "PTM_DM_TERKENDALI", "kabkota", "99.01", "2025-01", "month")["value"] == \
        pytest.approx(100 / 3)
    assert row(world, "PTM_DM_TERKENDALI", "facility", "PA", "2025-01", "month")["value"] == \
        pytest.approx(30)


# --- TB: cohort success, enrolment, TPT ------------------------------------------------------

def test_tb_treatment_success_over_the_cohort_of_twelve_months_earlier(world, settings: Settings):
    add_values(world, {
        # cohorts: started treatment in January and February 2024
        ("PA", "2024-01", "tb_kasus_diobati"): 5, ("PA", "2024-02", "tb_kasus_diobati"): 10,
        ("KA1", "2024-02", "tb_kasus_diobati"): 4,
        # their outcomes, reported twelve months later
        ("PA", "2025-01", "tb_hasil_sembuh"): 4, ("PA", "2025-01", "tb_hasil_lengkap"): 0,
        ("PA", "2025-02", "tb_hasil_sembuh"): 6, ("PA", "2025-02", "tb_hasil_lengkap"): 2,
        ("KA1", "2025-02", "tb_hasil_sembuh"): 3, ("KA1", "2025-02", "tb_hasil_lengkap"): 1,
        # DA1 reports an outcome without a cohort month: counted in neither
        ("DA1", "2025-02", "tb_hasil_sembuh"): 1, ("DA1", "2025-02", "tb_hasil_lengkap"): 0})
    indicators.compute_indicator_values(world, settings, ["2025-01", "2025-02"])
    # PA January: (4 + 0) / 5 = 80 %
    assert row(world, "TB_TSR", "facility", "PA", "2025-01", "month")["value"] == \
        pytest.approx(80)
    # kab/kota February: (6 + 2 + 3 + 1) / (10 + 4) = 12 / 14 = 85.71 %
    r = row(world, "TB_TSR", "kabkota", "99.01", "2025-02", "month")
    assert (r["numerator"], r["denominator"]) == (12, 14)
    # YTD: (4 + 12) / (5 + 14) = 16 / 19 = 84.21 % < 90 → not on track (no pro-rata: a ratio)
    r = row(world, "TB_TSR", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"]) == (16, 19)
    assert r["value"] == pytest.approx(1600 / 19) and not r["on_track"]
    assert pd_isna(r["pws_target"])
    assert r["denominator_method"] == "data_element:tb_kasus_diobati (kohort 12 bulan)"
    assert n_rows(world, "TB_TSR", "facility", "DA1") == 0
    assert indicators.reconcile_totals(world, "2025-02").empty


def test_tb_enrolment_and_tpt_among_contacts(world, settings: Settings):
    add_values(world, {("PA", "2025-01", "tb_kasus_ditemukan"): 3,
                       ("PA", "2025-01", "tb_kasus_diobati"): 2,
                       ("KA1", "2025-01", "tb_kasus_ditemukan"): 1,
                       ("KA1", "2025-01", "tb_kasus_diobati"): 0,
                       ("PA", "2025-01", "tb_kontak_diinvestigasi"): 10,
                       ("PA", "2025-01", "tb_tpt_mulai"): 4,
                       ("KA1", "2025-01", "tb_kontak_diinvestigasi"): 5,
                       ("KA1", "2025-01", "tb_tpt_mulai"): 1})
    indicators.compute_indicator_values(world, settings, ["2025-01"])
    # enrolment: started ÷ diagnosed = (2 + 0) / (3 + 1) = 50 % (KA1 referred its case)
    assert row(world, "TB_ENROLMENT", "kabkota", "99.01", "2025-01", "ytd")["value"] == \
        pytest.approx(50)
    # TPT: started ÷ contacts investigated = (4 + 1) / (10 + 5) = 33.3 %; target 70 →
    # attainment 47.6 %
    r = row(world, "TB_TPT_KONTAK", "kabkota", "99.01", "2025-01", "ytd")
    assert r["value"] == pytest.approx(100 / 3)
    assert r["attainment"] == pytest.approx(100 / 3 / 70 * 100) and not r["on_track"]


# --- UCI desa ----------------------------------------------------------------------------------

def test_uci_desa_where_desa_sasaran_exist_and_the_proxy_elsewhere(world, settings: Settings):
    # kecamatan 99.01.01 has two desa with an official sasaran bayi: 2001 (where PA is) 30 and
    # 2002 (no facility reports) 18
    for desa, bayi in (("99.01.01.2001", 30), ("99.01.01.2002", 18)):
        world.execute("INSERT INTO reference.wilayah (kode, level, kode_kec, kode_kabkota, "
                      "kode_prov) VALUES (?, 'desa', '99.01.01', '99.01', '99')", [desa])
        world.execute("INSERT INTO reference.sasaran VALUES "
                      "(2025, 'desa', ?, 'bayi', ?, 'pusdatin_official', NULL)", [desa, bayi])
    indicators.compute_indicator_values(world, settings, ["2025-01", "2025-02"])
    # February threshold 80 × 2/12 = 13.33 %: desa 2001 IDL YTD PA 20 + 15 = 35 / 30 = 116.7 %
    # → UCI; desa 2002 has a sasaran and no report → not UCI. 1 of 2 = 50 %
    r = row(world, "IMUN_UCI_DESA", "kecamatan", "99.01.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"], r["value"]) == (1, 2, 50)
    assert r["denominator_method"] == "desa_idl_ytd>=13.33% (80% x 2/12)"
    assert not r["on_track"]                       # 50 < 100 % of desa
    assert row(world, "IMUN_UCI_DESA", "kabkota", "99.01", "2025-02", "ytd")["value"] == 50
    # the proxy only where no desa is judged: kecamatan 99.01.02 (network PB 22 / 29 = 75.9 %
    # ≥ 13.33 % → 1 of 1); none for 99.01.01, the kab/kota or the province
    assert row(world, "IMUN_UCI", "kecamatan", "99.01.02", "2025-02", "ytd")["value"] == 100
    for level, unit in (("kecamatan", "99.01.01"), ("kabkota", "99.01"), ("provinsi", "99")):
        assert n_rows(world, "IMUN_UCI", level, unit) == 0


# --- hospitals count in numerators, not in compliance ------------------------------------------

def add_hospital(con: duckdb.DuckDBPyConnection) -> None:
    """RS1: a hospital registered with jenis_faskes rs, no induk, no forms it must report."""
    con.execute("""INSERT INTO reference.facility (kode_faskes, nama_faskes, jenis_faskes,
                       kode_puskesmas_induk, kode_jejaring, kode_wilayah, kode_kec, kode_kabkota,
                       kode_prov, formulir, reporting_level, timezone)
                   VALUES ('RS1', 'RSUD', 'rs', NULL, NULL, '99.01.02', '99.01.02', '99.01',
                           '99', [], 'pkm_to_dinkes', 'Asia/Jakarta')""")


def test_a_registered_hospital_counts_in_numerators_not_in_networks(world, settings: Settings):
    add_hospital(world)
    add_values(world, {("RS1", "2025-01", "kia_k1"): 7,
                       ("RS1", "2025-01", "tb_kasus_ternotifikasi"): 2})
    indicators.compute_indicator_values(world, settings, ["2025-01"])
    # K1 January: kab/kota 15 + 7 = 22; kecamatan 99.01.02 PB 4 + RS1 7 = 11; network PB still
    # 4 + 1 = 5 (the hospital belongs to no network)
    assert row(world, "KIA_K1", "kabkota", "99.01", "2025-01", "month")["numerator"] == 22
    assert row(world, "KIA_K1", "kecamatan", "99.01.02", "2025-01", "month")["numerator"] == 11
    assert row(world, "KIA_K1", "puskesmas_network", "PB", "2025-01", "month")["numerator"] == 5
    # network share of TB notifications: the clinics' 1 + 1 + 0 = 2 over all 5 + 2 = 7 = 28.6 %
    r = row(world, "TB_KONTRIBUSI_JEJARING", "kabkota", "99.01", "2025-01", "month")
    assert (r["numerator"], r["denominator"]) == (2, 7)
    share = world.execute("""SELECT volume, total FROM indicators.network_contribution
                              WHERE unit_level = 'kabkota' AND data_element = 'kia_k1'
                                AND period = '2025-01' AND period_type = 'month'
                                AND jenis_faskes = 'rs'""").fetchall()[0]
    assert share == (7, 22)
    assert indicators.reconcile_totals(world, "2025-01").empty


def test_a_hospital_listing_forms_counts_in_numerators_but_is_never_expected(
        world, settings: Settings):
    """RS1 registered with `formulir` kia;tb (the loader turns it into assignments): forms.csv
    assigns kia and tb to no hospital, so nothing is expected of it; its values still count."""
    add_hospital(world)
    world.execute("UPDATE reference.facility SET formulir = ['kia', 'tb'] "
                  "WHERE kode_faskes = 'RS1'")
    world.execute("INSERT INTO reference.form_assignment VALUES "
                  "('RS1', 'kia', NULL, NULL, NULL, 'fasilitas'), "
                  "('RS1', 'tb', NULL, NULL, NULL, 'fasilitas'), "
                  "('PA', 'kia', NULL, NULL, NULL, 'fasilitas')")
    add_values(world, {("RS1", "2025-01", "kia_k1"): 7})
    indicators.compute_indicator_values(world, settings, ["2025-01"])
    compliance.build_expected_reports(world, settings, ["2025-01"])
    # K1 January: kab/kota PA 5 + KA1 3 + DA1 2 + PB 4 + KB1 1 + RS1 7 = 22
    assert row(world, "KIA_K1", "kabkota", "99.01", "2025-01", "month")["numerator"] == 22
    assert world.execute("SELECT kode_faskes, form FROM compliance.expected_report"
                         ).fetchall() == [("PA", "kia")]


def test_a_hospital_without_forms_is_not_expected_by_compliance(world, settings: Settings):
    add_hospital(world)
    # the registry loader gives PA its forms; RS1 (formulir empty) none
    world.execute("INSERT INTO reference.form_assignment VALUES "
                  "('PA', 'kia', NULL, NULL, NULL, 'fasilitas')")
    compliance.build_expected_reports(world, settings, ["2025-01"])
    expected = {k for (k,) in world.execute(
        "SELECT DISTINCT kode_faskes FROM compliance.expected_report").fetchall()}
    assert expected == {"PA"}


# --- catalogue ---------------------------------------------------------------------------------

def test_every_indicator_names_its_source_and_denominator():
    for ind in indicators.load_catalogue():
        assert ind.source, ind.code
        # a denominator, or a plain count
        assert ind.den_text or ind.code == "KIA_KEMATIAN_IBU", ind.code
        assert ind.description, ind.code
    # the coverage numerators say they are what first-level facilities reported
    coverage = [i for i in indicators.load_catalogue() if i.aggregation == "PWS"]
    assert coverage and all("dilaporkan FKTP" in i.name_id for i in coverage)


def test_collected_elements_have_indicators():
    used = {c for i in indicators.load_catalogue()
            for c in i.numerator.codes + (i.denominator.codes if i.denominator else [])}
    for code in ("tb_kontak_diinvestigasi", "tb_tpt_mulai", "imun_polio4", "imun_dpt4",
                 "imun_mr2", "tb_hasil_sembuh", "tb_hasil_lengkap",
                 "ptm_skrining_usia_produktif_ytd_unik"):
        assert code in used, code
    # the outcome elements are on the TB form (and so in its template)
    assert {"tb_hasil_sembuh", "tb_hasil_lengkap", "tb_hasil_gagal", "tb_hasil_meninggal",
            "tb_hasil_putus_obat", "tb_hasil_tidak_dievaluasi"} <= set(catalog.form_elements("tb"))
