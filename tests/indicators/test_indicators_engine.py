"""Indicator engine on a small hand-built wilayah; every expected number is worked out by hand.

The wilayah (province 99, kab/kota 99.01, penduduk 100 000):

    kecamatan 99.01.01: PA (puskesmas), KA1 (klinik, network PA), DA1 (TPMD, network PA),
                        KB1 (klinik, network PB — located outside its puskesmas' kecamatan)
    kecamatan 99.01.02: PB (puskesmas)

    networks: PA = {PA, KA1, DA1}; PB = {PB, KB1}

Official sasaran 2025 (sasaran.csv): network PA bumil 60, lahir_hidup 50, bayi 48; network PB
bumil 40, lahir_hidup 30, bayi 29; kab/kota 99.01 bumil 110. Everything else is derived.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from kolab_pipeline import catalog, indicators
from kolab_pipeline.config import Settings
from tests.support.indicators import add_facility, add_value, build_world


@pytest.fixture
def world(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    build_world(con)
    indicators.compute_indicator_values(con, settings, ["2025-01", "2025-02"])
    return con


def row(con: duckdb.DuckDBPyConnection, code: str, level: str, unit: str, period: str,
        ptype: str) -> dict:
    df = con.execute("""SELECT * FROM indicators.indicator_value
                         WHERE indicator_code = ? AND unit_level = ?
                           AND unit_code = ? AND period = ? AND period_type = ?""",
                     [code, level, unit, period, ptype]).df()
    assert len(df) == 1, (f"expected one row for {code} {level} {unit} {period} {ptype}, "
                          f"got {len(df)}")
    return df.iloc[0].to_dict()


def base(con, code: str, unit: str, period: str, ptype: str) -> dict:
    """The facility's row of `indicators.facility_base` (every indicator, numerator and
    denominator only)."""
    df = con.execute("""SELECT * FROM indicators.facility_base
                         WHERE indicator_code = ? AND kode_faskes = ? AND period = ?
                           AND period_type = ?""", [code, unit, period, ptype]).df()
    assert len(df) == 1, f"expected one facility_base row for {code} {unit} {period} {ptype}"
    return df.iloc[0].to_dict()


def has_row(con, code, level, unit, period, ptype) -> bool:
    return con.execute("""SELECT count(*) FROM indicators.indicator_value
                           WHERE indicator_code = ? AND unit_level = ?
                             AND unit_code = ? AND period = ? AND period_type = ?""",
                       [code, level, unit, period, ptype]).fetchone()[0] > 0


# --- catalogue and expressions ------------------------------------------------------------

def test_catalogue_covers_the_required_indicators():
    codes = {i.code for i in indicators.load_catalogue()}
    required = {"TB_SPM_TERDUGA", "TB_TC", "TB_CNR", "TB_KONTRIBUSI_JEJARING", "PTM_SPM_HT",
                "PTM_SPM_DM", "PTM_SKRINING_HT", "KIA_K1", "KIA_K4", "KIA_K6", "KIA_PF",
                "KIA_KF_LENGKAP", "KIA_KN1", "KIA_KN_LENGKAP", "KIA_KEMATIAN_IBU",
                "KIA_KEMATIAN_NEONATAL", "IMUN_HB0", "IMUN_BCG",
                "IMUN_DPT1", "IMUN_DPT3", "IMUN_MR1", "IMUN_IDL", "IMUN_IBL", "IMUN_DO_DPT1_DPT3",
                "IMUN_DO_DPT1_MR1", "IMUN_UCI"}
    assert required - codes == set()


def test_expressions_are_parsed_against_a_whitelist():
    known = {"imun_dpt1", "imun_dpt3", "imun_mr1"}
    expr = indicators.parse_expression("imun_dpt1 - imun_dpt3 + imun_mr1", known, "x")
    assert expr.terms == ((1, "imun_dpt1"), (-1, "imun_dpt3"), (1, "imun_mr1"))
    assert expr.sql("w.") == "(w.imun_dpt1 - w.imun_dpt3 + w.imun_mr1)"
    for bad in ("imun_dpt1 * 2", "__import__('os')", "imun_dpt1 -", "imun_dpt9",
                "imun_dpt1; DROP TABLE x"):
        with pytest.raises(indicators.CatalogueError):
            indicators.parse_expression(bad, known, "indicators.csv: row 7, column numerator")


def test_catalogue_errors_name_file_row_and_column(tmp_path):
    src = catalog.INDICATORS.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "indicators.csv"
    broken = src[3].replace("tb_kasus_ternotifikasi", "tb_kasus_x", 1)  # TB_TC
    bad.write_text("\n".join([src[0], src[1], broken]) + "\n")
    with pytest.raises(indicators.CatalogueError,
                       match=r"indicators.csv: row 3, column numerator: "
                             r"unknown data element 'tb_kasus_x'"):
        indicators.load_catalogue(bad)


# --- sasaran -------------------------------------------------------------------------------

def test_sasaran_official_formula_and_sum_of_children(world):
    got = {(lvl, unit, code): (nilai, method) for lvl, unit, code, nilai, method in world.execute(
        "SELECT unit_level, kode_unit, sasaran, nilai, method FROM indicators.sasaran_resolved "
        "WHERE tahun = 2025").fetchall()}
    # official beats the sum of children at kab/kota: 110, not 60 + 40 = 100 (and not the formula
    # 1.10 × 16 × 100 000 / 1000 = 1760)
    assert got[("kabkota", "99.01", "bumil")] == (110, "official")
    assert got[("kabkota", "99.01", "pend_total")] == (100_000, "official")  # Dukcapil
    # bottom-up (issue 16.1; before: CBR formula 1600 and 1572.96): the networks' official
    # figures roll up through their kecamatan: lahir_hidup 50 + 30 = 80, bayi 48 + 29 = 77
    assert got[("kabkota", "99.01", "lahir_hidup")] == (80, "sum_of_children")
    assert got[("kabkota", "99.01", "bayi")] == (77, "sum_of_children")
    # no unit below has an HT or TB figure: formulas on the kab/kota population
    # est HT = 0.30 × (0.72 × 100 000) = 21 600; est TB = 387 per 100 000 × 100 000 = 387
    assert got[("kabkota", "99.01", "est_penderita_ht_15plus")] == (
        pytest.approx(21_600), "formula:prevalence_estimate")
    assert got[("kabkota", "99.01", "est_insiden_tb")] == (pytest.approx(387),
                                                           "formula:incidence_estimate")
    # kecamatan 99.01.01 has one network puskesmas (PA): its sum of children is PA's 60
    assert got[("kecamatan", "99.01.01", "bumil")] == (60, "sum_of_children")
    assert got[("kecamatan", "99.01.02", "bayi")] == (29, "sum_of_children")
    # provinsi = sum of the registry's kab/kota (one here), not the province's 5 000 000 people
    assert got[("provinsi", "99", "pend_total")] == (100_000, "sum_of_children")
    # a network without official numbers and without population stays unknown
    assert ("puskesmas_network", "PA", "est_penderita_ht_15plus") not in got
    params = world.execute("""SELECT params FROM indicators.sasaran_resolved
                               WHERE unit_level = 'kabkota'
                                 AND sasaran = 'est_penderita_ht_15plus'""").fetchone()[0]
    assert '"param_value":0.3' in params and '"base":"pend_15plus"' in params
    # the official 110 differs from its children's 100 by (110 − 100) ÷ 100 = 10 % > 5 %: used,
    # and flagged naming both numbers
    warning = world.execute("""SELECT consistency_warning, children_sum, children_diff_pct,
                                      consistency_message
                                 FROM indicators.sasaran_resolved
                                WHERE unit_level = 'kabkota' AND sasaran = 'bumil'""").fetchone()
    assert warning[:3] == (True, 100, pytest.approx(10))
    assert "110" in warning[3] and "100" in warning[3]


def test_sum_of_children_needs_every_child(con, settings):
    build_world(con)
    # a second puskesmas in kecamatan 99.01.01 without sasaran: 60 alone would understate the
    # kecamatan
    add_facility(con, "PC", "puskesmas", None, "99.01.01")
    indicators.resolve_sasaran(con, settings, [2025])
    n = con.execute("""SELECT count(*) FROM indicators.sasaran_resolved
                        WHERE unit_level = 'kecamatan' AND kode_unit = '99.01.01'
                          AND sasaran = 'bumil'""").fetchone()[0]
    assert n == 0
    indicators.compute_indicator_values(con, settings, ["2025-01"])
    r = row(con, "KIA_K1", "kecamatan", "99.01.01", "2025-01", "month")
    # numerator known (5 + 3 + 2 + 1 = 11), denominator unknown → value NULL, never 0
    assert r["numerator"] == 11 and pd.isna(r["value"])
    assert r["denominator_method"] == "bumil:missing"


# --- KIA -----------------------------------------------------------------------------------

def test_kia_pws_month_ytd_line_and_attainment(world):
    # network PA, January: K1 = PA 5 + KA1 3 + DA1 2 = 10; ÷ annual bumil 60 × 100 = 16.667 %
    # month line = target 100 / 12 = 8.333; attainment = 16.667 / 8.333 × 100 = 200 %
    r = row(world, "KIA_K1", "puskesmas_network", "PA", "2025-01", "month")
    assert (r["numerator"], r["denominator"]) == (10, 60)
    assert r["value"] == pytest.approx(100 * 10 / 60)
    assert r["pws_target"] == pytest.approx(100 / 12)
    assert r["attainment"] == pytest.approx(200)
    assert r["denominator_method"] == "bumil:pusdatin_official"
    # February YTD: 10 + (PA 6 + KA1 blank + DA1 1) = 17 → 17 / 60 × 100 = 28.333 %,
    # line 100 × 2/12 = 16.667, attainment 28.333 / 16.667 × 100 = 170 %
    r = row(world, "KIA_K1", "puskesmas_network", "PA", "2025-02", "ytd")
    assert r["numerator"] == 17 and r["value"] == pytest.approx(1700 / 60)
    assert r["pws_target"] == pytest.approx(100 * 2 / 12) and r["attainment"] == pytest.approx(170)
    # kab/kota YTD: Jan 5+3+2+4+1 = 15, Feb 6+1+3+2 = 12 → 27 ÷ official 110 = 24.545 %;
    # attainment 24.545 / 16.667 × 100 = 147.27 %; Feb month counted 4 facilities (KA1 left K1
    # blank)
    r = row(world, "KIA_K1", "kabkota", "99.01", "2025-02", "ytd")
    assert r["numerator"] == 27 and r["value"] == pytest.approx(2700 / 110)
    assert r["attainment"] == pytest.approx((2700 / 110) / (200 / 12) * 100)
    assert row(world, "KIA_K1", "kabkota", "99.01", "2025-02", "month")["n_facilities"] == 4
    # kecamatan 99.01.01 counts KB1 (network PB, located here): Jan 5+3+2+1 = 11, Feb 6+1+2 = 9
    r = row(world, "KIA_K1", "kecamatan", "99.01.01", "2025-02", "ytd")
    assert r["numerator"] == 20 and r["value"] == pytest.approx(2000 / 60)
    # no coverage for one facility (no sasaran): no facility row in indicator_value (issue 20);
    # the facility's contribution is kept in facility_base
    assert not has_row(world, "KIA_K1", "facility", "PA", "2025-02", "month")
    assert base(world, "KIA_K1", "PA", "2025-02", "month")["numerator"] == 6
    assert not has_row(world, "KIA_K1", "facility", "KA1", "2025-02", "month")


def test_kia_mortality_per_live_births_and_count(world):
    # neonatal deaths per 1000 KH, kab/kota YTD: (PA 0 + KA1 0 + PB 1 + PA 0) = 1 death over
    # live births 40 + 10 + 30 + 20 = 100 → 1 / 100 × 1000 = 10 per 1000
    r = row(world, "KIA_KEMATIAN_NEONATAL", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"], r["value"]) == (1, 100, pytest.approx(10))
    # not meaningful for one facility: no indicator_value row, numerator kept in facility_base
    assert not has_row(world, "KIA_KEMATIAN_NEONATAL", "facility", "PB", "2025-01", "month")
    assert base(world, "KIA_KEMATIAN_NEONATAL", "PB", "2025-01", "month")["numerator"] == 1
    # maternal deaths are a count: value = numerator = 1; MMR = 1 / (live births of the facility-
    # months that reported a maternal-death value: PB Jan 30) × 100 000 = 3333.3
    assert row(world, "KIA_KEMATIAN_IBU", "kabkota", "99.01", "2025-02", "ytd")["value"] == 1
    assert (row(world, "KIA_AKI", "kabkota", "99.01", "2025-02", "ytd")["value"]
            == pytest.approx(100_000 / 30))


# --- TB ------------------------------------------------------------------------------------

def test_tb_terduga_diperiksa_ratio_of_sums_and_above_100(world):
    # the found-count ratio, its own indicator since TB_SPM_TERDUGA divides by the sasaran
    # PB January: 6 tested of 5 found = 120 % → flagged, not clipped
    r = row(world, "TB_TERDUGA_DIPERIKSA", "facility", "PB", "2025-01", "month")
    assert r["value"] == pytest.approx(120) and r["above_100"]
    # kab/kota January: tested 8 + 4 + 6 = 18 over found 10 + 4 + 5 = 19 (DA1 left "tested" blank,
    # so its 2 found are not in the denominator either) → 94.737 %; target 100 → attainment
    # 94.737
    r = row(world, "TB_TERDUGA_DIPERIKSA", "kabkota", "99.01", "2025-01", "month")
    assert (r["numerator"], r["denominator"]) == (18, 19)
    assert r["value"] == pytest.approx(1800 / 19) and r["attainment"] == pytest.approx(1800 / 19)
    assert r["denominator_method"] == "data_element:tb_terduga_ditemukan" and not r["above_100"]
    # February YTD: (18 + 6) / (19 + 6) = 24 / 25 = 96 %  — a ratio of sums, not the mean of
    # the facility percentages (which would be (80 + 100 + 120 + 100) / 4 = 100)
    r = row(world, "TB_TERDUGA_DIPERIKSA", "kabkota", "99.01", "2025-02", "ytd")
    assert r["value"] == pytest.approx(96)


def test_tb_spm_over_the_sasaran_of_presumptive_tb(world):
    # SPM (Permenkes 4/2019): tested ÷ the year's sasaran of presumptive TB. Tested YTD February:
    # Jan 8 + 4 + 6 = 18 (DA1's blank "tested" counts nothing), Feb 6 → 24; est_terduga_tb =
    # est_insiden_tb 387 × tb_terduga_per_kasus 10 = 3 870 → 24 ÷ 3 870 × 100 = 0.6202 %.
    # Cumulative: judged against the pro-rata line 100 × 2/12 = 16.667 → attainment 3.7209 %
    r = row(world, "TB_SPM_TERDUGA", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"]) == (24, pytest.approx(3870))
    assert r["value"] == pytest.approx(2400 / 3870)
    assert r["target"] == 100 and r["pws_target"] == pytest.approx(100 * 2 / 12)
    assert r["attainment"] == pytest.approx((2400 / 3870) / (200 / 12) * 100)
    assert r["denominator_method"] == "est_terduga_tb:presumptive_estimate"
    assert not r["on_track"]
    # no sasaran for one facility: not a facility indicator, so no facility row (issue 20)
    assert not has_row(world, "TB_SPM_TERDUGA", "facility", "PB", "2025-01", "month")


def test_tb_case_finding_cnr_and_network_share(world):
    # notified YTD Feb: 2 + 1 + 1 + 1 + 0 + 1 = 6; est. incidence 387 → 6 / 387 × 100 = 1.5504 %
    # cumulative (issue 17.1; before: against the annual 90): judged against the pro-rata line
    # 90 × 2/12 = 15 → attainment 1.5504 / 15 × 100 = 10.336 %; the annual target still shown
    r = row(world, "TB_TC", "kabkota", "99.01", "2025-02", "ytd")
    assert r["value"] == pytest.approx(600 / 387) and r["target"] == 90
    assert r["pws_target"] == pytest.approx(15)
    assert r["attainment"] == pytest.approx(600 / 387 / 15 * 100) and not r["on_track"]
    # month: 1 / 387 × 100 = 0.2584 %, compared with 90 / 12 = 7.5
    r = row(world, "TB_TC", "kabkota", "99.01", "2025-02", "month")
    assert r["pws_target"] == pytest.approx(7.5)
    assert r["attainment"] == pytest.approx(100 / 387 / 7.5 * 100)
    # CNR annualised (issue 17.1; before: 6, half the yearly rate in February):
    # 6 / 100 000 × 100 000 × 12 ÷ 2 months = 36 per 100 000 per year (no target)
    r = row(world, "TB_CNR", "kabkota", "99.01", "2025-02", "ytd")
    assert r["value"] == pytest.approx(36) and pd.isna(r["attainment"])
    assert r["value"] == pytest.approx(r["numerator"] / r["denominator"] * r["factor"])
    # = the monthly rates annualised, averaged: January 5 × 12 = 60, February 1 × 12 = 12
    months = [row(world, "TB_CNR", "kabkota", "99.01", p, "month")["value"]
              for p in ("2025-01", "2025-02")]
    assert months == [pytest.approx(60), pytest.approx(12)]
    assert r["value"] == pytest.approx(sum(months) / 2)
    # network share, kab/kota January: KA1 1 + DA1 1 + KB1 0 = 2 of 5 → 40 %
    share = "TB_KONTRIBUSI_JEJARING"
    assert row(world, share, "kabkota", "99.01", "2025-01", "month")["value"] == pytest.approx(40)
    # network PA YTD: (KA1 1 + DA1 1) / (2 + 1 + 1 + 1 in Feb) = 2 / 5 = 40 %;
    # PB January 0 / 1 = 0 %
    assert (row(world, share, "puskesmas_network", "PA", "2025-02", "ytd")["value"]
            == pytest.approx(40))
    assert row(world, share, "puskesmas_network", "PB", "2025-01", "month")["value"] == 0


# --- PTM -----------------------------------------------------------------------------------

def test_ptm_unique_ytd_uses_max_per_facility(world):
    # per facility max over Jan..Feb of ht_dilayani_standar_ytd_unik: PA max(100, 90) = 100,
    # KA1 max(20, 30) = 30, PB 50 (Feb blank) → 180 unique persons; est HT 21 600
    # → 180 / 21 600 × 100 = 0.8333 %; target 100, pro rata 100 × 2/12 = 16.667 (issue 17.1;
    # before: against 100) → attainment 0.8333 / 16.667 × 100 = 5 %
    r = row(world, "PTM_SPM_HT", "kabkota", "99.01", "2025-02", "ytd")
    assert r["numerator"] == 180 and r["denominator"] == pytest.approx(21_600)
    assert r["value"] == pytest.approx(18_000 / 21_600)
    assert r["pws_target"] == pytest.approx(200 / 12) and r["attainment"] == pytest.approx(5)
    assert r["denominator_method"] == "est_penderita_ht_15plus:prevalence_estimate"
    # no month rows above facility level for a unique-persons count
    assert not has_row(world, "PTM_SPM_HT", "kabkota", "99.01", "2025-02", "month")
    # the network has no sasaran: value NULL, method says so
    r = row(world, "PTM_SPM_HT", "puskesmas_network", "PA", "2025-02", "ytd")
    assert r["numerator"] == 130 and pd.isna(r["value"])
    assert r["denominator_method"] == "est_penderita_ht_15plus:missing"
    # SUM_MONTH: controlled ÷ served, January kab/kota: (30 + 5) / (60 + 10) = 50 %; no YTD row
    assert (row(world, "PTM_HT_TERKENDALI", "kabkota", "99.01", "2025-01", "month")["value"]
            == pytest.approx(50))
    assert not has_row(world, "PTM_HT_TERKENDALI", "kabkota", "99.01", "2025-01", "ytd")


# --- immunisation, drop-out, UCI -----------------------------------------------------------

def test_immunisation_coverage_and_dropout(world):
    # DPT1 network PA YTD: 10 + 2 + 8 = 20 / bayi 48 = 41.667 %; line 95 × 2/12 = 15.833
    # → attainment 41.667 / 15.833 × 100 = 263.16 %
    r = row(world, "IMUN_DPT1", "puskesmas_network", "PA", "2025-02", "ytd")
    assert r["value"] == pytest.approx(2000 / 48) and r["pws_target"] == pytest.approx(95 * 2 / 12)
    assert r["attainment"] == pytest.approx((2000 / 48) / (95 * 2 / 12) * 100)
    # kab/kota IDL over the sum of its networks' official bayi 48 + 29 = 77 (issue 16.1; before:
    # the formula 1572.96): (20 + 5 + 10 + 15 + 12) = 62 → 80.519 %
    r = row(world, "IMUN_IDL", "kabkota", "99.01", "2025-02", "ytd")
    assert r["value"] == pytest.approx(6200 / 77)
    assert r["denominator_method"] == "bayi:sum_of_children"
    # drop-out DPT1→DPT3 kab/kota YTD: DPT1 10+2+5+8+4 = 29, DPT3 8+2+6+7+3 = 26
    # → (29 − 26) / 29 × 100 = 10.345 %; target ≤ 5 (kolab.yaml dropout_max_pct) → attainment
    # 206.9 (decreasing: > 100 is bad), not on track
    r = row(world, "IMUN_DO_DPT1_DPT3", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"]) == (3, 29)
    assert r["value"] == pytest.approx(300 / 29) and r["target"] == 5
    assert r["attainment"] == pytest.approx(300 / 29 / 5 * 100) and not r["on_track"]
    # DPT1→MR1: MR1 9+1+5+8+4 = 27 → 2 / 29 × 100 = 6.897 %
    assert (row(world, "IMUN_DO_DPT1_MR1", "kabkota", "99.01", "2025-02", "ytd")["value"]
            == pytest.approx(200 / 29))
    # negative drop-out is reported as is: PB January (5 − 6) / 5 × 100 = −20 %
    assert (row(world, "IMUN_DO_DPT1_DPT3", "facility", "PB", "2025-01", "month")["value"]
            == pytest.approx(-20))


def test_uci_proxy_share_of_networks_against_a_pro_rata_threshold(world):
    # no desa sasaran anywhere: the network proxy. February threshold 80 × 2/12 = 13.33 %:
    # IDL YTD PA (20 + 5 + 15) / 48 = 83.3 %, PB (10 + 12) / 29 = 75.9 % → 2 of 2 networks
    r = row(world, "IMUN_UCI", "kabkota", "99.01", "2025-02", "ytd")
    assert (r["numerator"], r["denominator"], r["value"]) == (2, 2, 100)
    assert r["attainment"] == pytest.approx(100) and r["on_track"]
    assert r["denominator_method"] == "proksi_jejaring_puskesmas_idl_ytd>=13.33% (80% x 2/12)"
    # networks belong to their puskesmas' kecamatan: 99.01.01 → PA, 99.01.02 → PB
    assert row(world, "IMUN_UCI", "kecamatan", "99.01.01", "2025-02", "ytd")["value"] == 100
    # UCI is annual and cumulative: no month rows, no network rows; no desa rows without desa
    assert world.execute("""SELECT count(*) FROM indicators.indicator_value
                             WHERE indicator_code IN ('IMUN_UCI', 'IMUN_UCI_DESA')
                               AND unit_level <> 'facility'
                               AND (period_type = 'month' OR unit_level = 'puskesmas_network'
                                    OR indicator_code = 'IMUN_UCI_DESA')
                         """).fetchone()[0] == 0


def test_uci_proxy_in_december_and_a_network_without_reports(con, settings):
    build_world(con)
    # PC: a third puskesmas (kecamatan 99.01.02) with a sasaran of 30 infants and no IDL report;
    # before issue 17.2 it was dropped from the denominator, now it is a network not reaching UCI
    add_facility(con, "PC", "puskesmas", None, "99.01.02")
    con.execute("INSERT INTO reference.sasaran VALUES "
                "(2025, 'puskesmas_network', 'PC', 'bayi', 30, 'pusdatin_official', NULL)")
    for kode in ("PA", "PB"):
        add_value(con, kode, "2025-12", "imun_idl", 0)
    indicators.compute_indicator_values(con, settings, ["2025-12"])
    # December: the full threshold 80 %. PA 40 / 48 = 83.3 % ✓, PB 22 / 29 = 75.9 % ✗,
    # PC 0 / 30 = 0 % ✗ → 1 of 3 = 33.3 %; kecamatan 99.01.02: 0 of 2
    r = row(con, "IMUN_UCI", "kabkota", "99.01", "2025-12", "ytd")
    assert (r["numerator"], r["denominator"]) == (1, 3) and r["value"] == pytest.approx(100 / 3)
    assert r["denominator_method"] == "proksi_jejaring_puskesmas_idl_ytd>=80% (80% x 12/12)"
    assert row(con, "IMUN_UCI", "kecamatan", "99.01.02", "2025-12", "ytd")["value"] == 0


def test_uci_threshold_from_config(con, kolab_home):
    (kolab_home / "kolab.yaml").write_text("thresholds:\n  uci_threshold_pct: 75\n",
                                           encoding="utf-8")
    settings = Settings.load(kolab_home)
    build_world(con)
    for kode in ("PA", "PB"):
        add_value(con, kode, "2025-12", "imun_idl", 0)
    indicators.compute_indicator_values(con, settings, ["2025-12"])
    # with 75 % in December: PA 83.3 % and PB 75.9 % both reach it → 2 of 2
    r = row(con, "IMUN_UCI", "kabkota", "99.01", "2025-12", "ytd")
    assert (r["numerator"], r["denominator"]) == (2, 2)


# --- network contribution ------------------------------------------------------------------

def test_network_contribution_shares(world):
    def share(element, period, ptype, jenis):
        return world.execute("""SELECT volume, total, share_pct FROM indicators.network_contribution
                                 WHERE unit_level = 'kabkota' AND unit_code = '99.01'
                                   AND data_element = ?
                                   AND period = ? AND period_type = ? AND jenis_faskes = ?""",
                             [element, period, ptype, jenis]).fetchone()
    # TB notified, January: puskesmas PA 2 + PB 1 = 3, klinik KA1 1 + KB1 0 = 1, TPMD DA1 1;
    # total 5
    tb = "tb_kasus_ternotifikasi"
    assert share(tb, "2025-01", "month", "puskesmas") == (3, 5, pytest.approx(60))
    assert share(tb, "2025-01", "month", "klinik_pratama") == (1, 5, pytest.approx(20))
    assert share(tb, "2025-01", "month", "tpmd") == (1, 5, pytest.approx(20))
    # YTD Feb adds PA 1: puskesmas 4 of 6 = 66.7 %
    assert share(tb, "2025-02", "ytd", "puskesmas") == (4, 6, pytest.approx(400 / 6))
    # K1 January: puskesmas 5 + 4 = 9, klinik 3 + 1 = 4, TPMD 2 → 60 %, 26.7 %, 13.3 %
    assert share("kia_k1", "2025-01", "month", "klinik_pratama") == (4, 15, pytest.approx(400 / 15))
    # network PB, K1 YTD: PB 4 + 3 = 7, KB1 1 + 2 = 3 → klinik share 30 %
    pb = world.execute("""SELECT share_pct FROM indicators.network_contribution
                           WHERE unit_level = 'puskesmas_network' AND unit_code = 'PB'
                             AND data_element = 'kia_k1' AND period = '2025-02'
                             AND period_type = 'ytd' AND jenis_faskes = 'klinik_pratama'
                       """).fetchone()[0]
    assert pb == pytest.approx(30)


# --- reconciliation, idempotency -----------------------------------------------------------

def test_totals_reconcile_and_detects_a_broken_total(world):
    assert indicators.reconcile_totals(world, "2025-02").empty
    world.execute("""UPDATE indicators.indicator_value SET numerator = numerator + 1
                      WHERE indicator_code = 'KIA_K1' AND unit_level = 'kabkota'
                        AND period = '2025-02' AND period_type = 'ytd'""")
    bad = indicators.reconcile_totals(world, "2025-02")
    assert (bad[["indicator_code", "unit_level", "period_type"]].values.tolist()
            == [["KIA_K1", "kabkota", "ytd"]])
    assert (bad.iloc[0]["numerator"], bad.iloc[0]["fac_numerator"]) == (28, 27)


def test_month_rerun_is_idempotent_and_picks_up_corrections(world, settings):
    def snapshot(table):
        return world.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    before = {t: snapshot(t)
              for t in ("indicators.indicator_value", "indicators.network_contribution")}
    indicators.compute_indicator_values(world, settings, ["2025-02"])
    assert {t: snapshot(t) for t in before} == before
    # a resubmission changes PA's February K1 from 6 to 9: YTD kab/kota 27 → 30, no duplicate rows
    world.execute("""UPDATE clean.submission_value SET value = 9
                      WHERE kode_faskes = 'PA' AND period = '2025-02'
                        AND data_element = 'kia_k1'""")

    indicators.compute_indicator_values(world, settings, ["2025-02"])
    assert row(world, "KIA_K1", "kabkota", "99.01", "2025-02", "ytd")["numerator"] == 30
    assert len(snapshot("indicators.indicator_value")) == len(before["indicators.indicator_value"])


def test_ytd_computes_missing_earlier_months_first(con, settings):
    build_world(con)
    # only February requested: January is computed first so YTD is complete (10 + 7 = 17 for PA)
    indicators.compute_indicator_values(con, settings, ["2025-02"])
    assert row(con, "KIA_K1", "puskesmas_network", "PA", "2025-02", "ytd")["numerator"] == 17
    assert row(con, "KIA_K1", "puskesmas_network", "PA", "2025-01", "month")["numerator"] == 10
