"""Outliers as counts (`kolab_pipeline.indicators.dq`): the count-data rule (minimum deviation,
Poisson tail), values not judged for lack of history (marked, not silently clean), and the WHO
subunit summary (`indicators.dq_summary`: a value flagged by two methods counted once; ≥ 1
extreme, ≥ 2 moderate outliers per facility). Every number worked out by hand below."""

from __future__ import annotations

import duckdb
import pytest

from kolab_pipeline.indicators import dq
from tests.indicators.test_dq import P, dq_world, flags, series, who_rules_only
from tests.support.indicators import add_value

OUTLIER = ("outlier_extreme_sd", "outlier_moderate_sd", "outlier_modified_z")


@pytest.fixture
def dq_con(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return dq_world(con)


def outliers(con, settings, period: str = P) -> set[tuple]:
    return {(u, s, m) for _, u, s, m in flags(con, settings, period) if m in OUTLIER}


# --- the count-data rule -------------------------------------------------------------------

def test_one_among_zeros_is_not_an_outlier(dq_con, settings):
    # eleven 0s and a 1: mean 1/12 = 0.083, sample SD √((11 × 0.083² + 0.917²)/11) = √(1/12)
    # = 0.289, z = 0.917 / 0.289 = 3.175 > 3 → the WHO rule alone calls it extreme;
    # median 0 and MAD 0 → no modified z.
    series(dq_con, "PA", "tb_kasus_ditemukan", [0] * 11 + [1])
    assert outliers(dq_con, who_rules_only(settings)) == {
        ("PA", "tb_kasus_ditemukan", "outlier_extreme_sd")}
    # As counts: |1 − 0.083| = 0.917 ≤ 2 (outlier_min_abs_deviation), and a Poisson count with
    # mean 1/12 is ≥ 1 with probability 1 − e^(−1/12) = 0.080, far above the 3-SD tail 0.00135
    # (and the 2-SD tail 0.0228): not an outlier.
    settings.config.thresholds.outlier_count_bounds = "poisson"
    settings.config.thresholds.outlier_min_abs_deviation = 2
    assert outliers(dq_con, settings) == set()


def test_poisson_tail_decides_extreme_moderate_or_nothing(dq_con, settings):
    t = settings.config.thresholds
    t.outlier_min_abs_deviation = 0          # the Poisson rule alone
    assert t.outlier_count_bounds == "poisson"
    # eleven 0s and x: z is (n − 1)/√n = 11/√12 = 3.175 for any x > 0 (always "extreme" by SD)
    # x = 2: mean 1/6; P(X ≥ 2) = 1 − e^(−1/6)(1 + 1/6) = 0.0124: > 0.00135, < 0.0228 → moderate
    series(dq_con, "PA", "kia_k1", [0] * 11 + [2])
    # x = 3: mean 1/4; P(X ≥ 3) = 1 − e^(−1/4)(1 + 1/4 + 1/32) = 0.00216 → moderate
    series(dq_con, "KA1", "kia_k1", [0] * 11 + [3])
    # x = 4: mean 1/3; P(X ≥ 4) = 1 − e^(−1/3)(1 + 1/3 + 1/18 + 1/162) = 0.00039 < 0.00135
    # → extreme
    series(dq_con, "PB", "kia_k1", [0] * 11 + [4])
    # a drop: eleven 20s and a 0: mean 18.33, SD √((11 × 1.667² + 18.33²)/11) = 5.77,
    # z = −18.33 / 5.77 = −3.175; P(X ≤ 0) = e^(−18.33) = 1.1e−8 → extreme (the low tail)
    series(dq_con, "PB", "kia_k4", [20] * 11 + [0])
    # a regular series [10, 11, 10, 9, 10, 11, 10, 9, 10, 11, 10, 14]: mean 125/12 = 10.42,
    # SD 1.311, z = 3.583 / 1.311 = 2.73 > 2; median 10, MAD 0.5, modified z = 0.6745 × 4 / 0.5
    # = 5.40 > 3.5 — but a Poisson count with mean 10.42 is ≥ 14 with probability 0.168: ordinary
    # count noise, not an outlier
    series(dq_con, "PA", "kia_k4", [10, 11, 10, 9, 10, 11, 10, 9, 10, 11, 10, 14])
    assert outliers(dq_con, settings) == {
        ("PA", "kia_k1", "outlier_moderate_sd"), ("KA1", "kia_k1", "outlier_moderate_sd"),
        ("PB", "kia_k1", "outlier_extreme_sd"), ("PB", "kia_k4", "outlier_extreme_sd")}
    assert outliers(dq_con, who_rules_only(settings)) == {
        ("PA", "kia_k1", "outlier_extreme_sd"), ("KA1", "kia_k1", "outlier_extreme_sd"),
        ("PB", "kia_k1", "outlier_extreme_sd"), ("PB", "kia_k4", "outlier_extreme_sd"),
        ("PA", "kia_k4", "outlier_moderate_sd"), ("PA", "kia_k4", "outlier_modified_z")}


def test_minimum_absolute_deviation_alone(dq_con, settings):
    t = settings.config.thresholds
    t.outlier_count_bounds, t.outlier_min_abs_deviation = "none", 2
    # eleven 0s and a 2: |2 − 1/6| = 1.83 ≤ 2 → not an outlier although z = 3.175
    series(dq_con, "PA", "kia_k1", [0] * 11 + [2])
    # eleven 0s and a 3: |3 − 1/4| = 2.75 > 2 → extreme (z = 3.175)
    series(dq_con, "PB", "kia_k1", [0] * 11 + [3])
    assert outliers(dq_con, settings) == {("PB", "kia_k1", "outlier_extreme_sd")}


# --- too few months: not judged, marked ----------------------------------------------------

def test_a_value_with_too_short_a_history_is_not_judged_but_marked(dq_con, settings):
    assert settings.config.thresholds.outlier_min_months == 6
    # PA kia_k1: five months (Feb..Jun) — the modified z of 17001 would be 3.5005 > 3.5 (see
    # test_dq.py) but with 5 < 6 values in its window the value is not judged; with fewer than
    # 6 values no value can lie 2 sample SD from the mean at all: max |z| = (n − 1)/√n = 1.79
    series(dq_con, "PA", "kia_k1", [8651, 10000, 10000, 11349, 17001])
    # PA kia_k4: six months → judged (flat, nothing to flag); KA1: six months → judged
    series(dq_con, "PA", "kia_k4", [3] * 6)
    series(dq_con, "KA1", "kia_k1", [4] * 6)
    assert outliers(dq_con, settings) == set()
    rows = dq_con.execute("""
        SELECT unit_level, unit_code, period_type, subject, value, numerator, denominator,
               threshold, flagged, message
          FROM indicators.dq_metric WHERE metric = 'outlier_not_judged'""").fetchall()
    # PA in June: 1 of its 2 values not judged (50 %); KA1: every value judged → no row
    assert len(rows) == 1
    level, code, ptype, subject, value, num, den, threshold, flagged, message = rows[0]
    assert (level, code, ptype, subject) == ("facility", "PA", "month", "semua")
    assert (value, num, den, threshold, flagged) == (50.0, 1, 2, 6, True)
    assert "kia_k1" in message and "kia_k4" not in message
    summary = dq_con.execute("""
        SELECT n_units, n_units_not_judged, n_values, n_values_not_judged
          FROM indicators.dq_summary
         WHERE unit_level = 'kabkota' AND period_type = 'month' AND subject = 'semua'""").fetchone()
    # kab/kota 99.01 in June: facilities PA, KA1 with values; 3 values, 1 not judged (PA kia_k1)
    assert summary == (2, 1, 3, 1)


# --- the subunit summary -------------------------------------------------------------------

def summary_world(con) -> None:
    # PA kia_k1, Jul 2024 … Jun 2025: [8, 12, 9, 11, 10, 10, 8, 12, 9, 11, 10, 40]. In June:
    # mean 150/12 = 12.5, Σ(x − mean)² = 88.75 + 27.5² = 845, SD √(845/11) = 8.765,
    # z = 27.5 / 8.765 = 3.138 > 3 → extreme; median 10, MAD 1 → modified z 0.6745 × 30 = 20.2
    # → also flagged: two rows, one value. Earlier months hold 8..12 only (|z| < 2, modified
    # z ≤ 0.6745 × 2 / 1 = 1.35): nothing.
    for i, v in enumerate([8, 12, 9, 11, 10, 10, 8, 12, 9, 11, 10, 40]):
        add_value(con, "PA", f"{2024 + (6 + i) // 12}-{(6 + i) % 12 + 1:02d}", "kia_k1", v)
    # PA kia_k4 Jan..Jun 2025 flat 3: judged from February (January has 1 value < 2), no flag
    for m in range(1, 7):
        add_value(con, "PA", f"2025-{m:02d}", "kia_k4", 3)
    # PB kia_k1 Jan..Dec 2025 [0, 0, 0, 0, 1, 6, 0, 0, 0, 0, 0, 8]: June, frame [0,0,0,0,1,6]:
    # mean 7/6, SD √(5.7667) = 2.401, z = 2.013 → moderate; December, frame of 12: mean 15/12 =
    # 1.25, Σ(x − mean)² = 9 × 1.5625 + 0.0625 + 22.5625 + 45.5625 = 82.25, SD √(82.25/11) =
    # 2.734, z = 6.75 / 2.734 = 2.469 → moderate. Two moderate values of one element.
    for m, v in enumerate([0, 0, 0, 0, 1, 6, 0, 0, 0, 0, 0, 8], start=1):
        add_value(con, "PB", f"2025-{m:02d}", "kia_k1", v)
    # KA1 kia_k1 flat 5 all year (SD 0, nothing); KA1 kia_k4 and imun_dpt1 Jul..Dec
    # [0, 0, 0, 0, 1, 6] → one moderate each in December: two moderate values, but in two
    # elements (the WHO rule counts them per element)
    for m in range(1, 13):
        add_value(con, "KA1", f"2025-{m:02d}", "kia_k1", 5)
    for element in ("kia_k4", "imun_dpt1"):
        for m, v in enumerate([0, 0, 0, 0, 1, 6], start=7):
            add_value(con, "KA1", f"2025-{m:02d}", element, v)


def summary(con, period_type: str, subject: str, level: str = "kabkota") -> dict:
    df = con.execute("""SELECT * FROM indicators.dq_summary
                         WHERE unit_level = ? AND period = '2025-12' AND period_type = ?
                           AND subject = ?""", [level, period_type, subject]).df()
    assert len(df) == 1
    return df.iloc[0].to_dict()


def test_subunit_summary_counts_values_once_and_units_by_the_who_rules(dq_con, settings):
    who_rules_only(settings)             # outlier_min_months 2; the count rule has its own tests
    summary_world(dq_con)
    year = [f"2025-{m:02d}" for m in range(1, 13)]
    dq.compute_dq_flags(dq_con, settings, year)
    got = set(dq_con.execute("""SELECT unit_code, period, subject, method FROM indicators.dq_flag
                                 WHERE method LIKE 'outlier%'""").fetchall())
    assert got == {("PA", "2025-06", "kia_k1", "outlier_extreme_sd"),
                   ("PA", "2025-06", "kia_k1", "outlier_modified_z"),
                   ("PB", "2025-06", "kia_k1", "outlier_moderate_sd"),
                   ("PB", "2025-12", "kia_k1", "outlier_moderate_sd"),
                   ("KA1", "2025-12", "kia_k4", "outlier_moderate_sd"),
                   ("KA1", "2025-12", "imun_dpt1", "outlier_moderate_sd")}
    # kia_k1, Jan..Dec: PA 6 values (Jan..Jun) + PB 12 + KA1 12 = 30; flagged values 3 (PA June
    # once although two methods flag it, PB June and December); extreme 1, moderate 2; not
    # judged: the first value of PB and of KA1 (1 value < 2 in its window) = 2 — PA's January
    # has Jul..Dec 2024 before it. Units: 3 reporting, PA ≥ 1 extreme, PB ≥ 2 moderate.
    k1 = summary(dq_con, "ytd", "kia_k1")
    assert (k1["n_values"], k1["n_values_flagged"], k1["n_values_extreme"],
            k1["n_values_moderate"], k1["n_values_not_judged"]) == (30, 3, 1, 2, 2)
    assert (k1["n_units"], k1["n_units_extreme"], k1["n_units_moderate"],
            k1["n_units_not_judged"]) == (3, 1, 1, 2)
    assert k1["pct_values_flagged"] == pytest.approx(10.0)          # 3 / 30
    assert k1["pct_units_extreme"] == pytest.approx(100 / 3)        # 1 / 3
    # all elements: values 30 (kia_k1) + 12 (kia_k4: PA 6, KA1 6) + 6 (imun_dpt1, KA1) = 48;
    # flagged 3 + 1 + 1 = 5 (extreme 1, moderate 4); not judged 2 + 2 (PA Jan, KA1 Jul) + 1
    # (KA1 Jul) = 5; facilities 3, each counted once: ≥ 1 extreme PA; ≥ 2 moderate in one
    # element PB only (KA1 has two moderate values in two elements); not judged 3
    everything = summary(dq_con, "ytd", "semua")
    assert (everything["n_values"], everything["n_values_flagged"],
            everything["n_values_extreme"], everything["n_values_moderate"],
            everything["n_values_not_judged"]) == (48, 5, 1, 4, 5)
    assert (everything["n_units"], everything["n_units_extreme"],
            everything["n_units_moderate"], everything["n_units_not_judged"]) == (3, 1, 1, 3)
    # December alone: values PB kia_k1, KA1 kia_k1, kia_k4, imun_dpt1 = 4, flagged 3 (all
    # moderate); facilities PB, KA1; one value per element and month → never ≥ 2 moderate
    december = summary(dq_con, "month", "semua")
    assert (december["n_values"], december["n_values_flagged"], december["n_values_moderate"],
            december["n_units"], december["n_units_moderate"]) == (4, 3, 3, 2, 0)
    # the provinsi holds the same facilities
    assert summary(dq_con, "ytd", "semua", "provinsi") == {
        **everything, "unit_level": "provinsi", "unit_code": "99"}
    # a run of December alone: Jan..Nov are stored (month rows in dq_summary), so only December
    # is judged and the earlier flags are read back — the same summary
    before = dq_con.execute("SELECT * FROM indicators.dq_summary WHERE period = '2025-12' "
                            "ORDER BY ALL").fetchall()
    assert dq.months_to_judge(dq_con, ["2025-12"]) == [2025 * 12 + 12]
    dq.compute_dq_flags(dq_con, settings, ["2025-12"])
    december = "SELECT * FROM indicators.dq_summary WHERE period = '2025-12' ORDER BY ALL"
    assert dq_con.execute(december).fetchall() == before
    # nothing stored: December's run judges Jan..Nov in the same pass — the same summary again
    dq_con.execute("DELETE FROM indicators.dq_summary")
    dq_con.execute("DELETE FROM indicators.dq_flag")
    assert len(dq.months_to_judge(dq_con, ["2025-12"])) == 12
    dq.compute_dq_flags(dq_con, settings, ["2025-12"])
    assert dq_con.execute(december).fetchall() == before
