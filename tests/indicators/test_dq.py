"""WHO DQR metrics (`kolab_pipeline.indicators.dq`): outliers, related indicators, negative
drop-out, consistency over time — edge cases pinned with hand-computed numbers. The count-data
rule, the minimum history, the subunit summary, completeness and denominators have their own
files (tests/indicators/test_dq_*.py)."""

from __future__ import annotations

import statistics

import duckdb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators import dq
from tests.support.indicators import add_facility, add_value

P = "2025-06"


def dq_world(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Puskesmas PA with clinic KA1 (kecamatan 99.01.01), puskesmas PB (99.01.02)."""
    for kode, jenis, induk, wil in [("PA", "puskesmas", None, "99.01.01"),
                                    ("KA1", "klinik_pratama", "PA", "99.01.01"),
                                    ("PB", "puskesmas", None, "99.01.02")]:
        add_facility(con, kode, jenis, induk, wil)
    return con


@pytest.fixture
def dq_con(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return dq_world(con)


def series(con, kode: str, element: str, values: list[int], end: str = P) -> None:
    """Monthly values ending at `end` (last value = the month judged)."""
    for i, v in enumerate(values):
        add_value(con, kode, add_months(end, i - len(values) + 1), element, v)


def flags(con, settings: Settings, period: str = P) -> set[tuple]:
    dq.compute_dq_flags(con, settings, [period])
    return {(lvl, u, s, m) for lvl, u, s, m in con.execute(
        "SELECT unit_level, unit_code, subject, method FROM indicators.dq_flag WHERE period = ?",
        [period]).fetchall()}


LEVEL = {"PA": "facility", "KA1": "facility", "PB": "facility", "NPA": "puskesmas_network",
         "NPB": "puskesmas_network", "99.01.01": "kecamatan", "99.01.02": "kecamatan",
         "99.01": "kabkota", "99": "provinsi"}


def unit(name: str) -> tuple[str, str]:
    """`NPB` = network PB; `PB` = the facility PB."""
    return LEVEL[name], name.removeprefix("N") if name.startswith("NP") else name


def who_rules_only(settings: Settings) -> Settings:
    """The WHO outlier formulas alone: the count-data rule and the minimum history off (they
    have their own tests in test_dq_outliers.py)."""
    t = settings.config.thresholds
    t.outlier_count_bounds, t.outlier_min_abs_deviation, t.outlier_min_months = "none", 0, 2
    return settings


def add_sasaran(con, level: str, code: str, tahun: int, **nilai: float) -> None:
    for sasaran, value in nilai.items():
        con.execute("INSERT INTO indicators.sasaran_resolved (tahun, unit_level, kode_unit, "
                    "sasaran, nilai, metode, method) VALUES (?, ?, ?, ?, ?, 'test', 'official')",
                    [tahun, level, code, sasaran, value])


def flag_row(con, name: str, subject: str, method: str) -> dict:
    level, code = unit(name)
    df = con.execute("""SELECT * FROM indicators.dq_flag
                         WHERE unit_level = ? AND unit_code = ? AND subject = ? AND method = ?""",
                     [level, code, subject, method]).df()
    assert len(df) == 1
    return df.iloc[0].to_dict()


# --- outliers ------------------------------------------------------------------------------

# A 12-month frame: months not reported are None (NaN in numpy); the judged month (last) is
# reported.
frame_values = st.lists(st.one_of(st.none(), st.integers(0, 60)), min_size=11, max_size=11).flatmap(
    lambda history: st.integers(0, 400).map(lambda x: [*history, x]))


def as_array(frames: list[list[int | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else float(v) for v in f] for f in frames])


@hsettings(max_examples=300, deadline=None)
@given(st.lists(frame_values, min_size=1, max_size=20))
def test_numpy_median_and_mad_equal_the_statistics_module(frames):
    """The prefilter's order statistics, NaN months ignored, are exactly Python's median and MAD."""
    arr = as_array(frames)
    n = (~np.isnan(arr)).sum(axis=1)
    ordered = np.sort(arr, axis=1)
    med = dq.sorted_median(ordered, n)
    mad = dq.sorted_median(np.sort(np.abs(ordered - med[:, None]), axis=1), n)
    for f, m, d in zip(frames, med, mad, strict=True):
        xs = [v for v in f if v is not None]
        assert m == statistics.median(xs)
        assert d == statistics.median([abs(v - statistics.median(xs)) for v in xs])


@hsettings(max_examples=500, deadline=None)
@given(st.lists(frame_values, min_size=1, max_size=20))
def test_outlier_candidates_include_every_flagged_frame(frames):
    """Every frame an outlier definition flags (computed with the statistics module: sample SD,
    median, MAD, scores rounded to 9 decimals) is a candidate; series of one value never are."""
    keep = dq.outlier_candidates(as_array(frames), 3.0, 2.0, 3.5)
    for f, candidate in zip(frames, keep, strict=True):
        xs = [float(v) for v in f if v is not None]
        if len(xs) < 2:
            assert not candidate
            continue
        x, mean, sd = xs[-1], statistics.mean(xs), statistics.stdev(xs)
        med = statistics.median(xs)
        mad = statistics.median([abs(v - med) for v in xs])
        by_sd = sd > 0 and round(abs(x - mean) / sd, 9) > 2.0
        by_mad = mad > 0 and round(0.6745 * abs(x - med) / mad, 9) > 3.5
        if by_sd or by_mad:
            assert candidate, (f, mean, sd, med, mad)


def test_outliers_with_unreported_months(dq_con, settings):
    # 10 of 12 months reported: [5, 5, 6, 6, 5, 5, 6, 5, 6, 30] (two gaps, ignored): median
    # 5.5, MAD 0.5 → modified z 0.6745 × 24.5 / 0.5 ≈ 33; mean 7.9, SD ≈ 7.78 → z ≈ 2.84
    # (moderate)
    values = [5, None, 5, 6, 6, None, 5, 5, 6, 5, 6, 30]
    for i, v in enumerate(values):
        if v is not None:
            add_value(dq_con, "PA", add_months(P, i - 11), "kia_k1", v)
    got = {m for lvl, u, s, m in flags(dq_con, settings) if u == "PA" and s == "kia_k1"}
    assert got == {"outlier_moderate_sd", "outlier_modified_z"}
    assert flag_row(dq_con, "PA", "kia_k1", "outlier_modified_z")["reference"] == 5.5


def test_value_exactly_two_sd_is_not_flagged(dq_con, settings):
    # [0, 0, 0, 0, 1, 5]: mean 6/6 = 1; sample variance (1+1+1+1+0+16)/5 = 4 → SD 2;
    # 5 is (5 − 1)/2 = exactly 2 SD above → not beyond (strict); MAD: median 0, |x − 0| median 0
    # → MAD 0
    series(dq_con, "PA", "kia_k1", [0, 0, 0, 0, 1, 5])
    assert flags(dq_con, settings) == set()


def test_value_just_beyond_two_sd_is_moderate(dq_con, settings):
    # [0, 0, 0, 0, 1, 6]: mean 7/6 = 1.1667; variance (4 × 1.3611 + 0.0278 + 23.3611)/5 = 5.7667,
    # SD 2.4014; z = (6 − 1.1667)/2.4014 = 2.0127 > 2 → moderate, not extreme (< 3)
    series(dq_con, "PA", "kia_k1", [0, 0, 0, 0, 1, 6])
    assert flags(dq_con, settings) == {("facility", "PA", "kia_k1", "outlier_moderate_sd")}
    r = flag_row(dq_con, "PA", "kia_k1", "outlier_moderate_sd")
    assert r["score"] == pytest.approx((6 - 7 / 6) / (173 / 30) ** 0.5)
    assert r["reference"] == pytest.approx(7 / 6) and r["threshold"] == 2


def test_extreme_outlier_with_mad_zero_is_not_a_modified_z_outlier(dq_con, settings):
    # eleven 10s and one 100 (12-month window): mean 17.5, sample SD
    # √((11 × 7.5² + 82.5²)/11) = √675 = 25.98; z = 82.5 / 25.98 = 3.175 > 3 → extreme (and not
    # also moderate);
    # median 10 and MAD 0 → modified z score 0, no flag
    series(dq_con, "PA", "imun_dpt1", [10] * 11 + [100])
    assert flags(dq_con, settings) == {("facility", "PA", "imun_dpt1", "outlier_extreme_sd")}
    assert (flag_row(dq_con, "PA", "imun_dpt1", "outlier_extreme_sd")["score"]
            == pytest.approx(82.5 / 675 ** 0.5))


def test_modified_z_exactly_at_threshold_is_not_flagged(dq_con, settings):
    # [8651, 10000, 10000, 11349, 17000]: median 10000; deviations 1349, 0, 0, 1349, 7000
    # → MAD 1349; score = 0.6745 × 7000 / 1349 = 4721.5 / 1349 = 3.5 exactly → not flagged
    # (strict).
    # SD check: mean 11400, SD 3272.6, z = 5600 / 3272.6 = 1.71 → no SD flag either
    # (five values: with the default outlier_min_months 6 they would not be judged at all)
    series(dq_con, "PA", "kia_k1", [8651, 10000, 10000, 11349, 17000])
    assert flags(dq_con, who_rules_only(settings)) == set()


def test_modified_z_just_above_threshold_is_flagged(dq_con, settings):
    # 17001: 0.6745 × 7001 / 1349 = 3.50050 > 3.5 (median and MAD unchanged)
    series(dq_con, "PA", "kia_k1", [8651, 10000, 10000, 11349, 17001])
    assert flags(dq_con, who_rules_only(settings)) == {
        ("facility", "PA", "kia_k1", "outlier_modified_z")}
    r = flag_row(dq_con, "PA", "kia_k1", "outlier_modified_z")
    assert r["score"] == pytest.approx(0.6745 * 7001 / 1349) and r["reference"] == 10000


def test_series_of_one_and_values_outside_the_window_are_not_judged(dq_con, settings):
    series(dq_con, "PA", "kia_k1", [500])                      # length 1: no SD, no flag
    # KA1: a huge value 12 months before P is outside the window P−11..P; the rest is flat
    # → SD 0
    add_value(dq_con, "KA1", add_months(P, -12), "kia_k1", 10_000)
    series(dq_con, "KA1", "kia_k1", [3] * 12)
    # *_ytd_unik grows by design: never judged
    series(dq_con, "PB", "ht_dilayani_standar_ytd_unik", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 90])
    # (the 2024 months do raise consistency-over-time flags; only outliers are pinned here)
    assert {f for f in flags(dq_con, settings) if f[3].startswith("outlier")} == set()


# --- related indicators, drop-out, consistency over time -----------------------------------

def test_related_indicators_eq_with_the_sasaran_ratio_and_agtb(dq_con, settings):
    # K1 vs DPT1 is compared with the expected ratio bumil ÷ bayi: the network's own sasaran,
    # else its kab/kota's. Kab/kota 99.01 and provinsi 99: 1120 / 1000 = 1.12; network PB:
    # 500 / 400 = 1.25; network PA and the kecamatan have none → the kab/kota's 1.12.
    add_sasaran(dq_con, "kabkota", "99.01", 2025, bumil=1120, bayi=1000)
    add_sasaran(dq_con, "provinsi", "99", 2025, bumil=1120, bayi=1000)
    add_sasaran(dq_con, "puskesmas_network", "PB", 2025, bumil=500, bayi=400)
    # network PA YTD Jan..Jun: K1 62 + 50 = 112 vs DPT1 100 → 1.12 ÷ 1.12 = 1.00 → consistent
    # (compared with 1, as before, |1.12 − 1| > 10 % was a false flag)
    add_value(dq_con, "PA", "2025-01", "kia_k1", 62)
    add_value(dq_con, "KA1", "2025-03", "kia_k1", 50)
    add_value(dq_con, "PA", "2025-02", "imun_dpt1", 100)
    # network PB: K1 111 vs DPT1 100 → 1.11 ÷ 1.25 = 0.888, |0.888 − 1| = 0.112 > 0.10 → flagged;
    # its kecamatan 99.01.02 (no sasaran of its own): 1.11 ÷ 1.12 = 0.991 → not flagged
    add_value(dq_con, "PB", "2025-01", "kia_k1", 111)
    add_value(dq_con, "PB", "2025-01", "imun_dpt1", 100)
    # PB: found 8 vs tested 10 → found/tested = 0.8 < 0.9 → aGTb flagged;
    # PA: 9 vs 10 = 0.9 → not
    add_value(dq_con, "PB", "2025-04", "tb_terduga_ditemukan", 8)
    add_value(dq_con, "PB", "2025-04", "tb_terduga_diperiksa", 10)
    add_value(dq_con, "PA", "2025-04", "tb_terduga_ditemukan", 9)
    add_value(dq_con, "PA", "2025-04", "tb_terduga_diperiksa", 10)
    got = {f for f in flags(dq_con, settings) if f[3] == "related_indicators"}
    # kab/kota 99.01 (and prov 99): K1 112 + 111 = 223 / DPT1 200 = 1.115 ÷ 1.12 = 0.9955 → not
    # flagged; found 17 / tested 20 = 0.85 → flagged. Never at facility level.
    assert got == {(*unit("NPB"), "kia_k1/imun_dpt1", "related_indicators")} | {
        (*unit(u), "tb_terduga_ditemukan/tb_terduga_diperiksa", "related_indicators")
        for u in ("NPB", "99.01.02", "99.01", "99")}
    r = flag_row(dq_con, "NPB", "kia_k1/imun_dpt1", "related_indicators")
    assert (r["value"], r["reference"], r["threshold"]) == (111, 100, 0.1)
    assert r["score"] == pytest.approx(1.11 / 1.25)
    assert "1.250" in r["message"] and "bumil 500 / bayi 400" in r["message"]


def test_a_sasaran_relation_without_sasaran_is_not_judged(dq_con, settings):
    # no sasaran anywhere: the expected K1/DPT1 ratio is unknown → no check (never against 1)
    add_value(dq_con, "PB", "2025-01", "kia_k1", 300)
    add_value(dq_con, "PB", "2025-01", "imun_dpt1", 100)
    assert {f for f in flags(dq_con, settings) if f[3] == "related_indicators"} == set()


def test_negative_dropout(dq_con, settings):
    # PB: DPT1 5, DPT3 6 YTD → (5 − 6) / 5 × 100 = −20 % → flagged at the facility and its
    # units
    add_value(dq_con, "PB", "2025-02", "imun_dpt1", 5)
    add_value(dq_con, "PB", "2025-03", "imun_dpt3", 6)
    # PA: DPT1 = DPT3 = 4 → drop-out 0 → not negative
    add_value(dq_con, "PA", "2025-02", "imun_dpt1", 4)
    add_value(dq_con, "PA", "2025-02", "imun_dpt3", 4)
    got = {f for f in flags(dq_con, settings) if f[3] == "negative_dropout"}
    # kab/kota: DPT1 9, DPT3 10 → −11.1 % → flagged too
    assert got == {(*unit(u), "imun_dpt1/imun_dpt3", "negative_dropout")
                   for u in ("PB", "NPB", "99.01.02", "99.01", "99")}
    assert (flag_row(dq_con, "PB", "imun_dpt1/imun_dpt3", "negative_dropout")["score"]
            == pytest.approx(-20))
    assert (flag_row(dq_con, "99.01", "imun_dpt1/imun_dpt3", "negative_dropout")["score"]
            == pytest.approx(-100 / 9))


def consistency_world(con) -> None:
    # PA (network PA, kecamatan 99.01.01): Jan..Jun 2024 K1 = 100, 2025 = 133 → ratio 1.33.
    # PB: 2023 = 100 and 2024 = 200 (mean 150), 2025 = 201 → 1.34.
    # July 2024 (after the current month) is not compared: it would change nothing if it were.
    add_value(con, "PA", "2024-03", "kia_k1", 100)
    add_value(con, "PA", "2024-07", "kia_k1", 900)
    add_value(con, "PA", "2025-03", "kia_k1", 133)
    add_value(con, "PB", "2023-05", "kia_k1", 100)
    add_value(con, "PB", "2024-05", "kia_k1", 200)
    add_value(con, "PB", "2025-05", "kia_k1", 201)
    # the kab/kota's data start in January 2023 (another element; no current year → no check),
    # so 2023 is a full previous year
    add_value(con, "PA", "2023-01", "imun_bcg", 7)
    # KA1 element with no prior year at all: no check
    add_value(con, "KA1", "2025-01", "tb_skrining", 50)


def test_consistency_over_time_against_one(dq_con, settings):
    settings.config.thresholds.consistency_compare_with = "one"
    consistency_world(dq_con)
    got = {f for f in flags(dq_con, settings) if f[3] == "consistency_over_time"}
    # NPA 1.33: on the ±33 % edge → not flagged; NPB 1.34 → flagged;
    # kab/kota: 2023 100, 2024 300 → mean 200; 2025 334 → 1.67 → flagged (and provinsi)
    assert got == {(*unit(u), "kia_k1", "consistency_over_time")
                   for u in ("NPB", "99.01.02", "99.01", "99")}
    r = flag_row(dq_con, "NPB", "kia_k1", "consistency_over_time")
    assert (r["value"], r["reference"], r["score"]) == (201, 150, pytest.approx(1.34))


def test_consistency_over_time_against_the_kabkota_by_default(dq_con, settings):
    assert settings.config.thresholds.consistency_compare_with == "kabkota"
    consistency_world(dq_con)
    # the same data compared with kab/kota 99.01's own ratio 334 / 200 = 1.67:
    # NPA 1.33 / 1.67 = 0.796, NPB 1.34 / 1.67 = 0.802 (and their kecamatan) → within ±33 %;
    # the kab/kota against provinsi 99 (the same facilities): 1.67 / 1.67 = 1; the provinsi has
    # nothing to be compared with → not judged. No flag.
    assert {f for f in flags(dq_con, settings) if f[3] == "consistency_over_time"} == set()


def test_a_previous_year_before_the_data_start_is_not_compared(dq_con, settings):
    settings.config.thresholds.consistency_compare_with = "one"
    # the kab/kota's data start in November 2024: Jan..Jun 2024 holds no data of it, so 2025
    # has no previous year (compared with the 0-month "year", 2025 would be 6 × higher)
    for period in ("2024-11", "2024-12", "2025-01", "2025-02", "2025-03"):
        add_value(dq_con, "PB", period, "kia_k1", 10)
    assert {f for f in flags(dq_con, settings) if f[3] == "consistency_over_time"} == set()
    # November 2025 would compare Jan..Nov 2025 with Jan..Nov 2024 (= November only): no check
    assert {f for f in flags(dq_con, settings, "2025-11")
            if f[3] == "consistency_over_time"} == set()


def test_rerun_of_a_month_is_idempotent(dq_con, settings):
    series(dq_con, "PA", "kia_k1", [0, 0, 0, 0, 1, 6])
    add_value(dq_con, "PB", "2025-02", "imun_dpt1", 5)
    add_value(dq_con, "PB", "2025-03", "imun_dpt3", 6)
    first = flags(dq_con, settings)
    n = dq_con.execute("SELECT count(*) FROM indicators.dq_flag").fetchone()[0]
    # moderate outlier PA (1) + negative drop-out PB facility, network, kecamatan, kab, prov (5) +
    # DPT1 5 < DPT3 6 as aGTb at the 4 units (4). (K1 7 vs DPT1 5 at kab/kota and provinsi was
    # 2 more flags against 1; without sasaran the expected ratio is unknown: not judged.)
    metrics = dq_con.execute("SELECT count(*) FROM indicators.dq_metric").fetchone()[0]
    summary = dq_con.execute("SELECT count(*) FROM indicators.dq_summary").fetchone()[0]
    assert flags(dq_con, settings) == first and len(first) == n == 10
    assert dq_con.execute("SELECT count(*) FROM indicators.dq_flag").fetchone()[0] == n
    assert dq_con.execute("SELECT count(*) FROM indicators.dq_metric").fetchone()[0] == metrics
    assert dq_con.execute("SELECT count(*) FROM indicators.dq_summary").fetchone()[0] == summary
    assert summary > 0
