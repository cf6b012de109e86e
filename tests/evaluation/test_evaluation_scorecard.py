"""Scorecards on the hand-built kab/kota of `tests/support/evaluation.py`; every expected number
is worked out by hand in a comment."""

from __future__ import annotations

import duckdb
import pytest

from kolab_pipeline import evaluation
from kolab_pipeline.config import Settings
from tests.support.evaluation import seed

PERIODS = ["2025-01", "2025-02"]


@pytest.fixture
def built(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    seed(con)
    evaluation.build_all(con, settings, PERIODS)
    return con


def row(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, f"expected one row for {params}, got {len(rows)}"
    return dict(zip(names, rows[0], strict=True))


def sc(con: duckdb.DuckDBPyConnection, unit: str, period: str, ptype: str) -> dict:
    return row(con, "SELECT * FROM evaluation.scorecard WHERE kode_jejaring = ? AND period = ? "
               "AND period_type = ?", [unit, period, ptype])


def test_network_completeness_and_timeliness(built):
    r = sc(built, "P0001", "2025-02", "month")
    # all types: 8 received / 10 expected × 100 = 80.0 ; 5 on time / 10 × 100 = 50.0
    assert r["completeness_pct"] == pytest.approx(80.0)
    assert r["timeliness_pct"] == pytest.approx(50.0)
    # thresholds 90 / 75 (kolab.yaml): 80 < 90 and 50 < 75 → both not met
    assert r["meets_completeness"] is False and r["meets_timeliness"] is False
    # puskesmas itself: 4/4 = 100.0 ; on time 3/4 = 75.0
    assert r["pkm_completeness_pct"] == pytest.approx(100.0)
    assert r["pkm_timeliness_pct"] == pytest.approx(75.0)
    # klinik: 3/4 = 75.0, on time 2/4 = 50.0 ; tpmd: 1/2 = 50.0, on time 0/2 = 0.0
    klinik = (r["klinik_expected"], r["klinik_completeness_pct"], r["klinik_timeliness_pct"])
    assert klinik == (4, 75.0, 50.0)
    tpmd = (r["tpmd_expected"], r["tpmd_completeness_pct"], r["tpmd_timeliness_pct"])
    assert tpmd == (2, 50.0, 0.0)
    assert r["nama_puskesmas"] == "Puskesmas Cilegon" and r["kode_kec"] == "36.72.01"


def test_network_ytd_and_threshold_edge(built):
    ytd = sc(built, "P0001", "2025-02", "ytd")
    # ytd: 17 / 20 × 100 = 85.0 ; 12 / 20 × 100 = 60.0
    assert ytd["completeness_pct"] == pytest.approx(85.0)
    assert ytd["timeliness_pct"] == pytest.approx(60.0)
    jan = sc(built, "P0002", "2025-01", "month")
    # P0002 Jan: 3 / 4 = 75.0 % completeness (< 90 → not met); 3 / 4 = 75.0 % timeliness — exactly
    # the 75 threshold, which counts as met (≥)
    assert jan["completeness_pct"] == pytest.approx(75.0) and jan["meets_completeness"] is False
    assert jan["timeliness_pct"] == pytest.approx(75.0) and jan["meets_timeliness"] is True
    # P0002 has no clinics: no clinic rate (NULL), not 0 %
    feb = sc(built, "P0002", "2025-02", "month")
    assert feb["klinik_completeness_pct"] is None and feb["tpmd_timeliness_pct"] is None


def test_key_indicators_attainment_and_missing_are_null(built):
    m = sc(built, "P0001", "2025-02", "month")
    # KIA_K1 month: value 30 / 600 × 100 = 5.0 ; attainment 5.0 / 95 × 100 = 5.2632
    assert m["kia_k1_value"] == pytest.approx(5.0)
    assert m["kia_k1_attainment"] == pytest.approx(5.2632, abs=1e-4)
    # IMUN_IDL: 2.5 / 90 × 100 = 2.7778
    assert m["imun_idl_attainment"] == pytest.approx(2.7778, abs=1e-4)
    y = sc(built, "P0001", "2025-02", "ytd")
    # KIA_K1 ytd (PWS): 57 / 600 × 100 = 9.5 ; PWS line 95 × 2/12 = 15.8333 ;
    # 9.5 / 15.8333 × 100 = 60.0
    assert y["kia_k1_value"] == pytest.approx(9.5)
    assert y["kia_k1_attainment"] == pytest.approx(60.0)
    # not computed by the indicator layer → NULL, never 0
    for code in ("kia_k6", "imun_dpt3", "ptm_spm_ht", "ptm_spm_dm", "tb_spm_terduga", "tb_tc"):
        assert m[f"{code}_value"] is None and m[f"{code}_attainment"] is None
    # the long table carries every configured key indicator for every unit, in config order
    ki = built.execute(
        "SELECT indicator_code, display_order, program, pws_target, meets_target "
        "FROM evaluation.key_indicator "
        "WHERE unit_level = 'puskesmas_network' AND unit_code = 'P0001' "
        "AND period = '2025-02' AND period_type = 'ytd' ORDER BY display_order").fetchall()
    assert [k[0] for k in ki] == ["KIA_K1", "KIA_K6", "IMUN_IDL", "IMUN_DPT3", "PTM_SPM_HT",
                                  "PTM_SPM_DM", "TB_SPM_TERDUGA", "TB_TC"]
    assert ki[0][3] == pytest.approx(95 * 2 / 12)   # PWS line 15.8333
    assert ki[0][4] is False                         # attainment 60 < 100
    assert ki[3][2] == "Imunisasi" and ki[3][4] is None  # program from the code prefix, no value


def test_network_contribution_and_quality_counts(built):
    r = sc(built, "P0001", "2025-02", "month")
    # volume from non-puskesmas: KIA klinik 10 + TB tpmd 2 + TB klinik 2 = 14 of 40 + 10 = 50
    # → 14 / 50 × 100 = 28.0 ; KIA 10 / 40 = 25.0 ; TB 4 / 10 = 40.0 ; PTM none → NULL
    assert r["network_share_pct"] == pytest.approx(28.0)
    assert r["share_kia_pct"] == pytest.approx(25.0)
    assert r["share_tb_pct"] == pytest.approx(40.0)
    assert r["share_ptm_pct"] is None
    # validation flags: KP01 × 2 in Feb ; quarantine: 'kp-1' (alias → KP01) + DR01 = 2
    # (XX99 unknown and the period-less row are not attributable) ; dq: DR01 facility + network = 2
    assert (r["n_validation_flags"], r["n_quarantined_rows"], r["n_dq_flags"]) == (2, 2, 2)
    # follow-up rows chased by P0001 as of 2025-02: KP01 kia + DR01 tb = 2
    assert r["n_followup"] == 2
    # ytd adds P0001's January flag: 2 + 1 = 3
    assert sc(built, "P0001", "2025-02", "ytd")["n_validation_flags"] == 3


def test_a_value_flagged_by_two_methods_counts_once(con, settings: Settings):
    seed(con)
    # DR01's kia_k1 of February flagged a second time (modified z) and its imun_dpt1 once
    con.execute("INSERT INTO indicators.dq_flag VALUES "
                "('facility', 'DR01', '2025-02', 'kia_k1', 'outlier_modified_z', 90, 4.1, 3.5, "
                "20, 'x'), ('facility', 'DR01', '2025-02', 'imun_dpt1', 'outlier_moderate_sd', "
                "30, 2.4, 2, 10, 'x')")
    evaluation.build_all(con, settings, PERIODS)
    # values flagged: DR01 kia_k1 (two rows, one value) + DR01 imun_dpt1 + P0001's network
    # kia_k1/imun_dpt1 = 3 (4 rows)
    assert sc(con, "P0001", "2025-02", "month")["n_dq_flags"] == 3
    kab = row(con, "SELECT n_dq_flags FROM evaluation.wilayah_scorecard WHERE unit_level = "
              "'kabkota' AND unit_code = '36.72' AND period = '2025-02' AND period_type = 'ytd'",
              [])
    assert kab["n_dq_flags"] == 2   # the kab/kota counts its facilities' values: DR01's two


def test_wilayah_scorecard(built):
    kab = row(built, "SELECT * FROM evaluation.wilayah_scorecard WHERE unit_level = 'kabkota' "
              "AND unit_code = '36.72' AND period = '2025-02' AND period_type = 'month'", [])
    # kab/kota: 12 / 14 × 100 = 85.714 ; 9 / 14 × 100 = 64.286 ; 2 puskesmas
    assert kab["completeness_pct"] == pytest.approx(85.714, abs=1e-3)
    assert kab["timeliness_pct"] == pytest.approx(64.286, abs=1e-3)
    assert kab["n_puskesmas"] == 2 and kab["nama_unit"] == "KOTA CILEGON"
    # all facilities of the kab/kota: validation flags 2 (KP01) + 1 (P0002) = 3 in Feb
    assert kab["n_validation_flags"] == 3
    kec = row(built, "SELECT * FROM evaluation.wilayah_scorecard WHERE unit_level = 'kecamatan' "
              "AND unit_code = '36.72.02' AND period = '2025-02' AND period_type = 'month'", [])
    assert kec["n_puskesmas"] == 1 and kec["n_validation_flags"] == 1


def test_rerun_is_idempotent(built, settings):
    digest = "SELECT count(*), sum(hash(s)::HUGEINT) FROM evaluation.scorecard s"
    before = built.execute(digest).fetchone()
    evaluation.build_all(built, settings, ["2025-02"])
    after = built.execute(digest).fetchone()
    # 2 networks × 2 months × 2 period types = 8 rows, unchanged by re-running one month
    assert before[0] == 8 and before == after


def test_meets_target_is_the_one_judgement_rule(con, settings):
    """`meets_target` = judgement.meets on value vs the (PWS) target, with the indicator's
    direction — not `attainment ≥ 100`, which ignored direction (issue 16)."""
    seed(con)
    net = "puskesmas_network"
    rows = [
        # drop-out DPT1→DPT3 (decreasing, ≤ 5 %): P0001 exactly 5.0 → meets; P0002 6.0 → not
        ("IMUN_DO_DPT1_DPT3", "P0001", 5.0, 5.0, 100.0),
        ("IMUN_DO_DPT1_DPT3", "P0002", 6.0, 5.0, 120.0),
        # maternal deaths (decreasing, target 0): 0 deaths meets it although attainment is NULL
        ("KIA_KEMATIAN_IBU", "P0001", 0.0, 0.0, None),
        ("KIA_KEMATIAN_IBU", "P0002", 1.0, 0.0, None),
        # K6 (increasing): value exactly on the target meets it
        ("KIA_K6", "P0001", 80.0, 80.0, 100.0),
        ("KIA_K6", "P0002", 79.9, 80.0, 99.875),
    ]
    for code, unit, value, target, attainment in rows:
        con.execute(
            "INSERT INTO indicators.indicator_value (indicator_code, program, unit_level,"
            " unit_code, period, period_type, numerator, denominator, factor, value, target,"
            " pws_target, attainment, denominator_method, above_100, n_facilities)"
            " VALUES (?, 'x', ?, ?, '2025-02', 'month', 1, 1, 100, ?, ?, NULL, ?, 'x', false, 1)",
            [code, net, unit, value, target, attainment])
    settings.config.evaluation.key_indicators = ["IMUN_DO_DPT1_DPT3", "KIA_KEMATIAN_IBU", "KIA_K6"]
    evaluation.build_key_indicator(con, settings, ["2025-02"])
    got = dict(((c, u), m) for c, u, m in con.execute(
        "SELECT indicator_code, unit_code, meets_target FROM evaluation.key_indicator "
        "WHERE unit_level = ? AND period = '2025-02' AND period_type = 'month'", [net]).fetchall())
    assert got[("IMUN_DO_DPT1_DPT3", "P0001")] is True     # 5.0 ≤ 5
    assert got[("IMUN_DO_DPT1_DPT3", "P0002")] is False    # 6.0 > 5 (attainment 120 ≥ 100!)
    assert got[("KIA_KEMATIAN_IBU", "P0001")] is True      # 0 ≤ 0
    assert got[("KIA_KEMATIAN_IBU", "P0002")] is False     # 1 > 0
    assert got[("KIA_K6", "P0001")] is True                # 80.0 ≥ 80
    assert got[("KIA_K6", "P0002")] is False               # 79.9 < 80
