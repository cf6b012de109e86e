"""Sasaran resolution bottom-up (issue 16 item 1), partial provinces (issue 19 item 6), the baduta
cohort and the new formulas (issue 17 item 1). Every expected number is worked out by hand.

Each test builds a small kab/kota: one puskesmas per kecamatan unless said otherwise, official
figures only where the test says so.
"""

from __future__ import annotations

import duckdb
import pytest

from kolab_pipeline import indicators
from kolab_pipeline.config import Settings
from tests.support.indicators import add_facility, add_value


def wilayah(con: duckdb.DuckDBPyConnection, kab: str, penduduk: int,
            other_kabkota: tuple[str, ...] = ()) -> None:
    """Kab/kota `kab` with its population, its province, and other kab/kota of the province."""
    con.execute("INSERT INTO reference.wilayah (kode, level, kode_prov, kode_kabkota, penduduk, "
                "source_version) VALUES (?, 'kabkota', ?, ?, ?, 'test'), "
                "(?, 'provinsi', ?, NULL, 99000000, 'test')",
                [kab, kab[:2], kab, penduduk, kab[:2], kab[:2]])
    for other in other_kabkota:
        con.execute("INSERT INTO reference.wilayah (kode, level, kode_prov, kode_kabkota, "
                    "penduduk, source_version) VALUES (?, 'kabkota', ?, ?, 300000, 'test')",
                    [other, other[:2], other])


def official(con: duckdb.DuckDBPyConnection, level: str, unit: str, code: str, nilai: float,
             tahun: int = 2025) -> None:
    con.execute("INSERT INTO reference.sasaran VALUES (?, ?, ?, ?, ?, 'pusdatin_official', NULL)",
                [tahun, level, unit, code, nilai])


def resolved(con: duckdb.DuckDBPyConnection, level: str, unit: str, code: str,
             tahun: int = 2025) -> dict:
    df = con.execute("""SELECT * FROM indicators.sasaran_resolved
                         WHERE tahun = ? AND unit_level = ? AND kode_unit = ? AND sasaran = ?""",
                     [tahun, level, unit, code]).df()
    assert len(df) == 1, f"{level} {unit} {code}: {len(df)} rows"
    return df.iloc[0].to_dict()


def three_kecamatan(con: duckdb.DuckDBPyConnection, kab: str = "99.02",
                    penduduk: int = 200_000) -> None:
    wilayah(con, kab, penduduk)
    for n in (1, 2, 3):
        add_facility(con, f"P{n}", "puskesmas", None, f"{kab}.0{n}")


def test_kab_kota_without_its_own_figure_sums_its_kecamatan(con, settings: Settings):
    three_kecamatan(con)
    for kec, bumil in (("99.02.01", 1200), ("99.02.02", 950), ("99.02.03", 430)):
        official(con, "kecamatan", kec, "bumil", bumil)
    for kode, k1 in (("P1", 100), ("P2", 80), ("P3", 30)):
        add_value(con, kode, "2025-01", "kia_k1", k1)
    indicators.compute_indicator_values(con, settings, ["2025-01"])
    # 1 200 + 950 + 430 = 2 580, not the formula 1.10 × 16 × 200 000 / 1000 = 3 520
    r = resolved(con, "kabkota", "99.02", "bumil")
    assert (r["nilai"], r["method"], r["metode"]) == (2580, "sum_of_children", "sum_of_children")
    assert '"children":"99.02.01=1200.0;99.02.02=950.0;99.02.03=430.0"' in r["params"]
    assert not r["consistency_warning"] and r["children_sum"] == 2580
    # K1 January: (100 + 80 + 30) ÷ 2 580 × 100 = 8.1395 %
    value = con.execute("""SELECT value, denominator_method FROM indicators.indicator_value
                            WHERE indicator_code = 'KIA_K1' AND unit_level = 'kabkota'
                              AND period = '2025-01' AND period_type = 'month'""").fetchone()
    assert value == (pytest.approx(21_000 / 2580), "bumil:sum_of_children")
    # the other sasaran have no official figure below: formulas on the kab/kota's population,
    # e.g. bulin = 1.05 × 16 × 200 000 / 1000 = 3 360
    assert resolved(con, "kabkota", "99.02", "bulin")["nilai"] == pytest.approx(3360)
    assert resolved(con, "kabkota", "99.02", "bulin")["method"] == "formula:cbr_formula"


def test_real_city_idl_over_the_sum_of_its_seven_kecamatan(con, settings: Settings):
    # a city's published immunisation table: 7 kecamatan, sasaran bayi 26 791, IDL 26 029.
    # Penduduk 1 463 600 would give the formula bayi 1 463 600 × 16/1000 × (1 − 16.9/1000)
    # = 23 021.8 — the 113 % of issue 16; the kecamatan figures must win.
    wilayah(con, "99.03", 1_463_600)
    bayi = (4210, 3985, 3702, 4118, 3560, 3876, 3340)      # Σ = 26 791
    idl = (4102, 3871, 3590, 4005, 3455, 3760, 3246)       # Σ = 26 029
    for n, (sas, count) in enumerate(zip(bayi, idl, strict=True), start=1):
        kec = f"99.03.0{n}"
        add_facility(con, f"PK{n}", "puskesmas", None, kec)
        official(con, "kecamatan", kec, "bayi", sas)
        add_value(con, f"PK{n}", "2025-12", "imun_idl", count)
    indicators.compute_indicator_values(con, settings, ["2025-12"])
    r = resolved(con, "kabkota", "99.03", "bayi")
    assert (r["nilai"], r["method"]) == (26_791, "sum_of_children")

    def idl_ytd(level: str, unit: str) -> float:
        return con.execute("""SELECT value FROM indicators.indicator_value
                               WHERE indicator_code = 'IMUN_IDL' AND unit_level = ?
                                 AND unit_code = ? AND period = '2025-12'
                                 AND period_type = 'ytd'""", [level, unit]).fetchone()[0]
    # 26 029 ÷ 26 791 × 100 = 97.156 % (published 97.16 %); kecamatan 1: 4 102 ÷ 4 210 = 97.43 %
    assert idl_ytd("kabkota", "99.03") == pytest.approx(2_602_900 / 26_791)
    assert round(idl_ytd("kabkota", "99.03"), 2) == 97.16
    assert idl_ytd("kecamatan", "99.03.01") == pytest.approx(410_200 / 4210)


def test_children_without_an_official_figure_resolve_by_formula_and_the_share_is_recorded(
        con, settings: Settings):
    three_kecamatan(con)
    official(con, "kecamatan", "99.02.01", "bumil", 1200)
    official(con, "kecamatan", "99.02.02", "bumil", 950)
    # the third kecamatan has only its population: bumil = 1.10 × 16 × 30 000 / 1000 = 528
    official(con, "kecamatan", "99.02.03", "pend_total", 30_000)
    indicators.resolve_sasaran(con, settings, [2025])
    third = resolved(con, "kecamatan", "99.02.03", "bumil")
    assert (third["nilai"], third["method"]) == (pytest.approx(528), "formula:cbr_formula")
    # kab/kota: 1 200 + 950 + 528 = 2 678, of which official (1 200 + 950) ÷ 2 678 = 80.3 %
    r = resolved(con, "kabkota", "99.02", "bumil")
    assert r["nilai"] == pytest.approx(2678)
    assert r["method"] == "mixed:official=80.3%;formula=19.7%"
    assert '"official_share":0.8028' in r["params"]


def test_a_child_that_cannot_resolve_sends_the_parent_to_its_formula(con, settings: Settings):
    three_kecamatan(con)
    official(con, "kecamatan", "99.02.01", "bumil", 1200)
    official(con, "kecamatan", "99.02.02", "bumil", 950)
    # 99.02.03: no figure and no population — a sum of two would understate the kab/kota
    indicators.resolve_sasaran(con, settings, [2025])
    r = resolved(con, "kabkota", "99.02", "bumil")
    # formula on the kab/kota's 200 000: 1.10 × 16 × 200 = 3 520
    assert (r["nilai"], r["method"]) == (pytest.approx(3520), "formula:cbr_formula")
    assert pd_isna(r["children_sum"])


def pd_isna(x: object) -> bool:
    return x is None or x != x


def test_puskesmas_figures_roll_up_through_their_kecamatan(con, settings: Settings):
    wilayah(con, "99.02", 200_000)
    # kecamatan 99.02.01 has two puskesmas (700 + 500), 99.02.02 one (430)
    add_facility(con, "P1", "puskesmas", None, "99.02.01")
    add_facility(con, "P1B", "puskesmas", None, "99.02.01.2001")
    add_facility(con, "P2", "puskesmas", None, "99.02.02")
    for kode, bumil in (("P1", 700), ("P1B", 500), ("P2", 430)):
        official(con, "puskesmas_network", kode, "bumil", bumil)
    indicators.resolve_sasaran(con, settings, [2025])
    assert resolved(con, "kecamatan", "99.02.01", "bumil")["nilai"] == 1200
    r = resolved(con, "kabkota", "99.02", "bumil")
    # 700 + 500 = 1 200 in 99.02.01, + 430 = 1 630 at the kab/kota
    assert (r["nilai"], r["method"]) == (1630, "sum_of_children")


@pytest.mark.parametrize("kab_official, warned, diff", [
    (2900, True, (2900 - 2580) / 2580 * 100),    # 12.4 % > 5 %
    (2650, False, (2650 - 2580) / 2580 * 100),   # 2.7 %
    (2709, False, (2709 - 2580) / 2580 * 100),   # 5.0 % exactly: not more than 5 %
])
def test_an_official_figure_far_from_its_children_is_used_and_flagged(
        con, settings: Settings, kab_official, warned, diff):
    three_kecamatan(con)
    for kec, bumil in (("99.02.01", 1200), ("99.02.02", 950), ("99.02.03", 430)):
        official(con, "kecamatan", kec, "bumil", bumil)
    official(con, "kabkota", "99.02", "bumil", kab_official)
    indicators.resolve_sasaran(con, settings, [2025])
    r = resolved(con, "kabkota", "99.02", "bumil")
    assert (r["nilai"], r["method"], r["children_sum"]) == (kab_official, "official", 2580)
    assert r["children_diff_pct"] == pytest.approx(diff)
    assert bool(r["consistency_warning"]) is warned
    warnings = indicators.denominator_warnings(con, [2025])
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert (f"= {kab_official} berbeda 12.4 % dari jumlah 3 kecamatan di bawahnya = 2580"
                in warnings.iloc[0]["consistency_message"])


def test_tolerance_from_config(con, kolab_home):
    (kolab_home / "kolab.yaml").write_text("sasaran:\n  consistency_tolerance_pct: 2\n",
                                           encoding="utf-8")
    three_kecamatan(con)
    for kec, bumil in (("99.02.01", 1200), ("99.02.02", 950), ("99.02.03", 430)):
        official(con, "kecamatan", kec, "bumil", bumil)
    official(con, "kabkota", "99.02", "bumil", 2650)
    indicators.resolve_sasaran(con, Settings.load(kolab_home), [2025])
    # 2.7 % > 2 %
    assert resolved(con, "kabkota", "99.02", "bumil")["consistency_warning"]


def test_a_province_built_from_some_of_its_kab_kota_is_partial(con, settings: Settings):
    # the registry holds 99.02 only; the province also has 99.05 and 99.71
    wilayah(con, "99.02", 200_000, other_kabkota=("99.05", "99.71"))
    for n in (1, 2, 3):
        add_facility(con, f"P{n}", "puskesmas", None, f"99.02.0{n}")
    official(con, "kabkota", "99.02", "bumil", 2580)
    official(con, "provinsi", "99", "bumil", 9999)    # covers kab/kota whose reports are absent
    add_value(con, "P1", "2025-01", "kia_k1", 258)
    indicators.compute_indicator_values(con, settings, ["2025-01"])
    r = resolved(con, "provinsi", "99", "bumil")
    # the sum of the registry's kab/kota (2 580), never the province's own 9 999
    assert (r["nilai"], r["method"], r["partial"]) == (2580, "sum_of_children", True)
    assert not resolved(con, "kabkota", "99.02", "bumil")["partial"]
    rows = dict(con.execute("""SELECT unit_level, partial FROM indicators.indicator_value
                                WHERE indicator_code = 'KIA_K1' AND period_type = 'month'
                                  AND unit_level IN ('kabkota', 'provinsi')""").fetchall())
    assert rows == {"kabkota": False, "provinsi": True}
    # K1 of the partial province = 258 ÷ 2 580 × 100 = 10 %, the kab/kota's own figure
    assert con.execute("""SELECT value FROM indicators.indicator_value
                           WHERE indicator_code = 'KIA_K1' AND unit_level = 'provinsi'
                             AND period_type = 'month'""").fetchone()[0] == pytest.approx(10)


def test_baduta_is_one_cohort_the_previous_years_surviving_infants(con, settings: Settings):
    three_kecamatan(con)
    # P1: official bayi 2024 = 500 and 2025 = 520 → baduta 2025 = last year's 500
    official(con, "puskesmas_network", "P1", "bayi", 500, tahun=2024)
    official(con, "puskesmas_network", "P1", "bayi", 520)
    # P2: bayi 2025 only → baduta 2025 = this year's 300 (no figure of 2024 to age)
    official(con, "puskesmas_network", "P2", "bayi", 300)
    # P3: its own official baduta wins
    official(con, "puskesmas_network", "P3", "bayi", 200)
    official(con, "puskesmas_network", "P3", "baduta", 190)
    indicators.resolve_sasaran(con, settings, [2025])
    got = {unit: (resolved(con, "puskesmas_network", unit, "baduta")["nilai"],
                  resolved(con, "puskesmas_network", unit, "baduta")["method"])
           for unit in ("P1", "P2", "P3")}
    assert got == {"P1": (500, "formula:surviving_infants_previous_year"),
                   "P2": (300, "formula:surviving_infants_same_year"),
                   "P3": (190, "official")}
    # the kab/kota: 500 + 300 + 190 = 990 (one cohort, not 3.4 % of 200 000 = 6 800)
    r = resolved(con, "kabkota", "99.02", "baduta")
    assert r["nilai"] == 990 and r["method"].startswith("mixed:official=")
    # nothing of 2024 is written
    assert con.execute("SELECT count(*) FROM indicators.sasaran_resolved "
                       "WHERE tahun = 2024").fetchone()[0] == 0


def test_new_sasaran_formulas(con, settings: Settings):
    three_kecamatan(con)
    indicators.resolve_sasaran(con, settings, [2025])
    # pend_15_59 = 0.64 × 200 000 = 128 000; est_terduga_tb = (387 × 200 000 / 100 000) × 10
    # = 774 × 10 = 7 740; baduta = bayi = 200 000 × 16/1000 × (1 − 16.9/1000) = 3 145.92
    assert resolved(con, "kabkota", "99.02", "pend_15_59")["nilai"] == pytest.approx(128_000)
    r = resolved(con, "kabkota", "99.02", "est_terduga_tb")
    assert (r["nilai"], r["method"]) == (pytest.approx(7740), "formula:presumptive_estimate")
    assert resolved(con, "kabkota", "99.02", "baduta")["nilai"] == pytest.approx(3145.92)


def test_desa_figures_roll_up_when_no_network_has_one(con, settings: Settings):
    wilayah(con, "99.02", 200_000)
    add_facility(con, "P1", "puskesmas", None, "99.02.01.2001")
    for desa in ("99.02.01.2001", "99.02.01.2002"):
        con.execute("INSERT INTO reference.wilayah (kode, level, kode_kec, kode_kabkota, "
                    "kode_prov) VALUES (?, 'desa', '99.02.01', '99.02', '99')", [desa])
    official(con, "desa", "99.02.01.2001", "bayi", 30)
    official(con, "desa", "99.02.01.2002", "bayi", 18)
    indicators.resolve_sasaran(con, settings, [2025])
    r = resolved(con, "kecamatan", "99.02.01", "bayi")
    # 30 + 18 = 48 from the desa (the network P1 has no figure)
    assert (r["nilai"], r["method"]) == (48, "sum_of_children")
    assert '"child_level":"desa"' in r["params"]
