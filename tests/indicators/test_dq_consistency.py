"""Consistency checks of the WHO DQR (`kolab_pipeline.indicators.dq`): over time against the
kab/kota's own change (a district-wide change flags nobody), between related indicators with
the flows between them (TB cases referred elsewhere for treatment), consistency of reporting
completeness over time (1d), and the relation catalogue's validation. Hand-worked numbers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kolab_pipeline.indicators import CatalogueError, Relation, dq, load_relations
from tests.indicators.test_dq import dq_world, flag_row, flags, unit
from tests.support.indicators import add_facility, add_value

P = "2025-06"


@pytest.fixture
def dq_con(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return dq_world(con)


@pytest.fixture
def ilp_con(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Kab/kota 99.01: puskesmas PA, PB, PC, one per kecamatan, each with a clinic that starts
    reporting in 2025 (the clinics joining the network under ILP)."""
    for p, k, kec in (("PA", "KA1", "99.01.01"), ("PB", "KB1", "99.01.02"),
                      ("PC", "KC1", "99.01.03")):
        add_facility(con, p, "puskesmas", None, kec)
        add_facility(con, k, "klinik_pratama", p, kec)
    return con


def ilp_world(con, pc_clinic: int) -> None:
    # Jan..Jun 2024 K1 (the data start in January 2024): PA 100, PB 200, PC 100 (kab 400).
    # 2025: the puskesmas report the same, their clinics add 40 % to PA and PB and
    # `pc_clinic` to PC.
    for p, v in (("PA", 100), ("PB", 200), ("PC", 100)):
        add_value(con, p, "2024-01", "kia_k1", v)
        add_value(con, p, "2025-01", "kia_k1", v)
    add_value(con, "KA1", "2025-02", "kia_k1", 40)
    add_value(con, "KB1", "2025-02", "kia_k1", 80)
    add_value(con, "KC1", "2025-02", "kia_k1", pc_clinic)


ALL_UNITS = {("puskesmas_network", "PA"), ("puskesmas_network", "PB"),
             ("puskesmas_network", "PC"), ("kecamatan", "99.01.01"), ("kecamatan", "99.01.02"),
             ("kecamatan", "99.01.03"), ("kabkota", "99.01"), ("provinsi", "99")}


def over_time(con, settings) -> set[tuple[str, str]]:
    return {(lvl, u) for lvl, u, s, m in flags(con, settings, P)
            if m == "consistency_over_time" and s == "kia_k1"}


def test_a_district_wide_change_flags_nobody(ilp_con, settings):
    # every network +40 %: PA 140 / 100, PB 280 / 200, PC 140 / 100 = 1.40; kab/kota 560 / 400
    # = 1.40. Against the kab/kota: 1.40 / 1.40 = 1 everywhere → no flag (the kab/kota against
    # its provinsi: 1; the provinsi is not judged)
    ilp_world(ilp_con, pc_clinic=40)
    assert over_time(ilp_con, settings) == set()
    # against 1 (the option): every unit is 40 % > 33 % above its previous year → all flagged
    settings.config.thresholds.consistency_compare_with = "one"
    assert over_time(ilp_con, settings) == ALL_UNITS


def test_a_unit_changing_unlike_its_kabkota_is_flagged(ilp_con, settings):
    # PC: 100 + 150 = 250 → 2.50; kab/kota (140 + 280 + 250) / 400 = 670 / 400 = 1.675.
    # PA, PB: 1.40 / 1.675 = 0.836 (within ±33 %); PC and its kecamatan: 2.50 / 1.675 = 1.4925
    # → flagged
    ilp_world(ilp_con, pc_clinic=150)
    assert over_time(ilp_con, settings) == {("puskesmas_network", "PC"),
                                             ("kecamatan", "99.01.03")}
    r = ilp_con.execute("""SELECT value, score, reference, threshold, message
                             FROM indicators.dq_flag
                            WHERE unit_level = 'puskesmas_network' AND unit_code = 'PC'"""
                        ).fetchone()
    # value 250; expected = previous mean 100 × the kab/kota's 1.675 = 167.5; 250 / 167.5
    assert r[:4] == (250, pytest.approx(2.5 / 1.675), pytest.approx(167.5), 0.33)
    assert "kabkota 99.01 1.68 kali" in r[4]


# --- related indicators with flows ---------------------------------------------------------

def test_tb_notified_vs_treated_counts_the_cases_referred_for_treatment(dq_con, settings):
    # PB: notified 100, started treatment here 80, referred elsewhere for treatment 25:
    # 100 / (80 + 25) = 0.952 → consistent (100 / 80 = 1.25 was a false flag)
    add_value(dq_con, "PB", "2025-02", "tb_kasus_ternotifikasi", 100)
    add_value(dq_con, "PB", "2025-02", "tb_kasus_diobati", 80)
    add_value(dq_con, "PB", "2025-03", "tb_kasus_dirujuk_obat", 25)
    # PA: notified 100, treated 70, referred 10 → 100 / 80 = 1.25, |0.25| > 0.10 → flagged;
    # KA1 reports no referral (flows are optional): included in network PA with 0
    add_value(dq_con, "PA", "2025-02", "tb_kasus_ternotifikasi", 100)
    add_value(dq_con, "PA", "2025-02", "tb_kasus_diobati", 70)
    add_value(dq_con, "PA", "2025-02", "tb_kasus_dirujuk_obat", 10)
    subject = "tb_kasus_ternotifikasi/tb_kasus_diobati+tb_kasus_dirujuk_obat"
    got = {f for f in flags(dq_con, settings) if f[3] == "related_indicators"}
    # network PA = kecamatan 99.01.01 (PA only reports); kab/kota 99.01: 200 / (150 + 35)
    # = 1.081 → consistent
    assert got == {(*unit(u), subject, "related_indicators") for u in ("NPA", "99.01.01")}
    r = flag_row(dq_con, "NPA", subject, "related_indicators")
    assert (r["value"], r["reference"], r["score"]) == (100, 80, 1.25)
    assert "tb_kasus_diobati + tb_kasus_dirujuk_obat 80" in r["message"]


def test_relation_catalogue_is_validated(tmp_path: Path):
    header = "element_a,element_b,type,add_to_a,add_to_b,sasaran_a,sasaran_b,tolerance_pct,why\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "kia_k1,imun_dpt1,eq,,,bumil,bayi,15,x\n"
                             "tb_kasus_ternotifikasi,tb_kasus_diobati,eq,,"
                             "tb_kasus_dirujuk_obat+tb_terduga_dirujuk,,,,x\n")
    k1, tb = load_relations(good)
    assert (k1.sasaran_a, k1.sasaran_b, k1.tolerance_pct) == ("bumil", "bayi", 15.0)
    assert tb.add_to_b == ("tb_kasus_dirujuk_obat", "tb_terduga_dirujuk")
    assert tb.subject == ("tb_kasus_ternotifikasi/"
                          "tb_kasus_diobati+tb_kasus_dirujuk_obat+tb_terduga_dirujuk")
    for i, (row, message) in enumerate([
            ("kia_k1,imun_dpt1,eq,,,bumil,,,x", "go together"),
            ("kia_k1,imun_dpt1,aGTb,,,bumil,bayi,,x", "needs type eq"),
            ("imun_dpt1,imun_dpt3,do,,imun_mr1,,,,x", "two elements only"),
            ("kia_k1,imun_dpt1,eq,,no_such_code,,,,x", "add_to_b"),
            ("kia_k1,imun_dpt1,eq,,,,,150,x", "between 0 and 100")]):
        bad = tmp_path / f"bad{i}.csv"
        bad.write_text(header + row + "\n")
        with pytest.raises(CatalogueError, match=message):
            load_relations(bad)


# --- consistency of reporting completeness over time (1d) ----------------------------------

def add_rate(con, level: str, code: str, period: str, completeness: float) -> None:
    con.execute("""INSERT INTO compliance.reporting_rate (unit_level, unit_code, jenis_faskes,
                       period, period_type, form, expected, received, completeness_pct)
                   VALUES (?, ?, 'semua', ?, 'ytd', 'semua', 100, ?, ?)""",
                [level, code, period, completeness, completeness])


def completeness_rows(con) -> dict[tuple[str, str], tuple]:
    rows = con.execute("""SELECT unit_level, unit_code, value, numerator, denominator, reference,
                                 flagged
                            FROM indicators.dq_metric
                           WHERE metric = 'completeness_consistency' AND period = ?""",
                       [P]).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_completeness_consistency_over_time(dq_con, settings):
    # YTD completeness in June of 2023, 2024 → 2025: kab/kota (and provinsi) 70, 80 → 90:
    # 90 / 75 = 1.2; network PA 80, 80 → 96: 1.2; network PB 60, 40 → 90: 1.8; kecamatan
    # 99.01.02 has no previous year → no row
    for level, code, history in (("kabkota", "99.01", (70, 80, 90)),
                                 ("provinsi", "99", (70, 80, 90)),
                                 ("puskesmas_network", "PA", (80, 80, 96)),
                                 ("puskesmas_network", "PB", (60, 40, 90))):
        for year, pct in zip((2023, 2024, 2025), history, strict=True):
            add_rate(dq_con, level, code, f"{year}-06", pct)
    add_rate(dq_con, "kecamatan", "99.01.02", P, 50)
    dq.compute_dq_flags(dq_con, settings, [P])
    got = completeness_rows(dq_con)
    # against the kab/kota: PA 1.2 / 1.2 = 1 → fine; PB 1.8 / 1.2 = 1.5 → flagged; the kab/kota
    # against its provinsi 1.2 / 1.2 → fine; the provinsi has no reference → not judged (NULL)
    assert got == {
        ("puskesmas_network", "PA"): (pytest.approx(1.2), 96, 80, pytest.approx(1.2), False),
        ("puskesmas_network", "PB"): (pytest.approx(1.8), 90, 50, pytest.approx(1.2), True),
        ("kabkota", "99.01"): (pytest.approx(1.2), 90, 75, pytest.approx(1.2), False),
        ("provinsi", "99"): (pytest.approx(1.2), 90, 75, None, None)}
    # against 1: PA and the kab/kota 1.2 (within ±33 %), PB 1.8 → flagged, the provinsi judged
    settings.config.thresholds.consistency_compare_with = "one"
    dq.compute_dq_flags(dq_con, settings, [P])
    assert {k: v[-1] for k, v in completeness_rows(dq_con).items()} == {
        ("puskesmas_network", "PA"): False, ("puskesmas_network", "PB"): True,
        ("kabkota", "99.01"): False, ("provinsi", "99"): False}


def test_a_catalogue_without_sasaran_or_flows_runs(dq_con, settings, monkeypatch):
    # only a drop-out relation: no expected ratio, no flow columns to stage
    monkeypatch.setattr("kolab_pipeline.indicators.dq.build.load_relations",
                        lambda: (Relation("imun_dpt1", "imun_dpt3", "do"),))
    add_value(dq_con, "PB", "2025-02", "imun_dpt1", 5)
    add_value(dq_con, "PB", "2025-03", "imun_dpt3", 6)
    # (5 − 6) / 5 = −20 % at PB and its network, kecamatan, kab/kota, provinsi
    assert {f for f in flags(dq_con, settings) if f[3] == "negative_dropout"} == {
        (*unit(u), "imun_dpt1/imun_dpt3", "negative_dropout")
        for u in ("PB", "NPB", "99.01.02", "99.01", "99")}
