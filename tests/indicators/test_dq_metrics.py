"""WHO DQR metrics of `indicators.dq_metric` (`kolab_pipeline.indicators.dq`): content
completeness (1c: values present in the reports received, blank is not zero) and the
denominators (4a official vs estimate, 4b reported live births vs sasaran). Hand-worked."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from kolab_pipeline import catalog
from kolab_pipeline.indicators import dq
from tests.indicators.test_dq import add_sasaran, dq_world
from tests.support.indicators import add_facility, add_value

# A small catalogue, so the numbers below do not move when a form gains an element: the tb form
# with four elements, three of them expected from a TPMD.
ELEMENTS = pd.DataFrame({
    "code": ["tb_skrining", "tb_terduga_ditemukan", "tb_kasus_ditemukan", "tb_tpt_mulai"],
    "form": ["tb"] * 4,
    "expected_from": ["puskesmas;tpmd"] * 3 + ["puskesmas"]})


@pytest.fixture
def dq_con(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    return dq_world(con)


def report(con, kode: str, period: str, values: dict[str, int | None], nil: bool = False) -> None:
    """A received tb report (current version) with its cells; an element absent from `values`
    has no cell at all (its column was missing)."""
    con.execute("INSERT INTO clean.submission (submission_id, kode_faskes, period, form, version, "
                "is_current, is_nil_report) VALUES (?, ?, ?, 'tb', 1, true, ?)",
                [f"{kode}|{period}|tb", kode, period, nil])
    for element, value in values.items():
        add_value(con, kode, period, element, value)


def content(con, level: str, code: str, period_type: str, subject: str) -> tuple:
    rows = con.execute("""SELECT value, numerator, denominator, flagged FROM indicators.dq_metric
                           WHERE metric = 'content_completeness' AND period = '2025-02'
                             AND unit_level = ? AND unit_code = ? AND period_type = ?
                             AND subject = ?""", [level, code, period_type, subject]).fetchall()
    return rows[0] if rows else None


def test_content_completeness_blank_is_not_zero(dq_con, settings, monkeypatch):
    monkeypatch.setattr(catalog, "data_elements", lambda: ELEMENTS)
    add_facility(dq_con, "DA1", "tpmd", "PA", "99.01.01")
    # PA (puskesmas, 4 expected): January skrining blank, terduga 0 (a value), kasus 2, tpt 1
    # → 3 / 4; February tpt's column missing → 3 / 4
    report(dq_con, "PA", "2025-01", {"tb_skrining": None, "tb_terduga_ditemukan": 0,
                                     "tb_kasus_ditemukan": 2, "tb_tpt_mulai": 1})
    report(dq_con, "PA", "2025-02", {"tb_skrining": 5, "tb_terduga_ditemukan": 1,
                                     "tb_kasus_ditemukan": 0})
    # DA1 (TPMD, 3 expected): a nil report of zeros in January → 3 / 3; February 3 / 3 plus a
    # tpt value it is not expected to report (not counted)
    report(dq_con, "DA1", "2025-01", {"tb_skrining": 0, "tb_terduga_ditemukan": 0,
                                      "tb_kasus_ditemukan": 0}, nil=True)
    report(dq_con, "DA1", "2025-02", {"tb_skrining": 4, "tb_terduga_ditemukan": 0,
                                      "tb_kasus_ditemukan": 1, "tb_tpt_mulai": 9})
    # PB (own network and kecamatan 99.01.02): February 4 / 4
    report(dq_con, "PB", "2025-02", {"tb_skrining": 1, "tb_terduga_ditemukan": 1,
                                     "tb_kasus_ditemukan": 1, "tb_tpt_mulai": 1})
    dq.compute_dq_flags(dq_con, settings, ["2025-02"])
    # threshold 90 %: a value on it meets it (judgement.meets); below → flagged
    assert content(dq_con, "facility", "PA", "month", "tb") == (75.0, 3, 4, True)
    assert content(dq_con, "facility", "PA", "month", "semua") == (75.0, 3, 4, True)
    assert content(dq_con, "facility", "DA1", "month", "tb") == (100.0, 3, 3, False)
    # network PA = PA + DA1: (3 + 3) / (4 + 3) = 85.7 %; the same for kecamatan 99.01.01
    assert content(dq_con, "puskesmas_network", "PA", "month", "tb") == (
        pytest.approx(600 / 7), 6, 7, True)
    assert content(dq_con, "kecamatan", "99.01.01", "month", "tb") == (
        pytest.approx(600 / 7), 6, 7, True)
    # kab/kota: (3 + 3 + 4) / (4 + 3 + 4) = 10 / 11 = 90.9 % → not flagged
    assert content(dq_con, "kabkota", "99.01", "month", "semua") == (
        pytest.approx(1000 / 11), 10, 11, False)
    # Jan..Feb, network PA: (3 + 3 + 3 + 3) / (4 + 4 + 3 + 3) = 12 / 14
    assert content(dq_con, "puskesmas_network", "PA", "ytd", "tb") == (
        pytest.approx(1200 / 14), 12, 14, True)
    # per element, Jan..Feb, network PA: skrining 3 / 4 reports (PA's January blank),
    # tpt 1 / 2 (expected from PA only; February missing), terduga 4 / 4 (zeros are values)
    assert content(dq_con, "puskesmas_network", "PA", "ytd", "tb_skrining") == (75.0, 3, 4, True)
    assert content(dq_con, "puskesmas_network", "PA", "ytd", "tb_tpt_mulai") == (
        50.0, 1, 2, True)
    assert content(dq_con, "puskesmas_network", "PA", "ytd", "tb_terduga_ditemukan") == (
        100.0, 4, 4, False)
    # element rows are year-to-date and above facility level only
    assert content(dq_con, "puskesmas_network", "PA", "month", "tb_skrining") is None
    assert content(dq_con, "facility", "PA", "ytd", "tb_skrining") is None
    # exactly on the threshold meets it
    settings.config.thresholds.content_completeness_pct = 75
    dq.compute_dq_flags(dq_con, settings, ["2025-02"])
    assert content(dq_con, "facility", "PA", "month", "tb") == (75.0, 3, 4, False)


def denominators_world(con) -> None:
    # kab/kota 99.01, 2025: official pend_total 100 000, bumil 2 000, lahir_hidup 1 650; bayi
    # from the formula (not official). Network PA: official pend_total 30 000, bumil 550,
    # lahir_hidup 800. Dukcapil population of the kab/kota: 90 000.
    official = [("kabkota", "99.01", "pend_total", 100_000), ("kabkota", "99.01", "bumil", 2_000),
                ("kabkota", "99.01", "lahir_hidup", 1_650),
                ("puskesmas_network", "PA", "pend_total", 30_000),
                ("puskesmas_network", "PA", "bumil", 550),
                ("puskesmas_network", "PA", "lahir_hidup", 800)]
    for level, code, sasaran, nilai in official:
        con.execute("INSERT INTO reference.sasaran VALUES (2025, ?, ?, ?, ?, 'pusdatin_official',"
                    " NULL)", [level, code, sasaran, nilai])
        add_sasaran(con, level, code, 2025, **{sasaran: nilai})
    add_sasaran(con, "kabkota", "99.01", 2025, bayi=1_650 * (1 - 16.9 / 1000))
    con.execute("INSERT INTO reference.wilayah (kode, level, penduduk, source_version) "
                "VALUES ('99.01', 'kabkota', 90000, 'test')")


def metric_rows(con, metric: str) -> dict[tuple[str, str, str], tuple]:
    rows = con.execute("""SELECT unit_level, unit_code, subject, period_type, value, numerator,
                                 denominator, flagged
                            FROM indicators.dq_metric WHERE metric = ? AND period = '2025-06'""",
                       [metric]).fetchall()
    return {r[:3]: r[3:] for r in rows}


def test_denominators_official_vs_estimate(dq_con, settings):
    denominators_world(dq_con)
    dq.compute_dq_flags(dq_con, settings, ["2025-06"])
    # kab/kota pend_total 100 000 vs Dukcapil 90 000 → 1.111, outside 1 ± 0.10 → flagged;
    # bumil 2 000 vs 1.10 × CBR 16 ‰ × 100 000 = 1 760 → 1.136 → flagged; lahir_hidup 1 650 vs
    # 16 ‰ × 100 000 = 1 600 → 1.031; network PA bumil 550 vs 1.10 × 0.016 × 30 000 = 528 →
    # 1.042; PA lahir_hidup 800 vs 480 → 1.667 → flagged. bayi is not official: no row; a
    # network has no Dukcapil population: no pend_total row.
    assert metric_rows(dq_con, "denominator_official_vs_estimate") == {
        ("kabkota", "99.01", "pend_total"): ("year", pytest.approx(100 / 90), 100_000,
                                             90_000, True),
        ("kabkota", "99.01", "bumil"): ("year", pytest.approx(2000 / 1760), 2_000,
                                        pytest.approx(1760), True),
        ("kabkota", "99.01", "lahir_hidup"): ("year", pytest.approx(1650 / 1600), 1_650,
                                              pytest.approx(1600), False),
        ("puskesmas_network", "PA", "bumil"): ("year", pytest.approx(550 / 528), 550,
                                               pytest.approx(528), False),
        ("puskesmas_network", "PA", "lahir_hidup"): ("year", pytest.approx(800 / 480), 800,
                                                     pytest.approx(480), True)}


def test_reported_live_births_vs_sasaran(dq_con, settings):
    denominators_world(dq_con)
    # Jan..Jun: PA 6 × 50 = 300 live births, PB 480 in March
    for m in range(1, 7):
        add_value(dq_con, "PA", f"2025-{m:02d}", "kia_lahir_hidup", 50)
    add_value(dq_con, "PB", "2025-03", "kia_lahir_hidup", 480)
    dq.compute_dq_flags(dq_con, settings, ["2025-06"])
    # network PA: 300 × 12 / 6 = 600 per year vs sasaran 800 → 0.75 → flagged; kab/kota:
    # (300 + 480) × 2 = 1 560 vs 1 650 → 0.945 → within ±10 %. Units without a lahir_hidup
    # sasaran (network PB, the kecamatan) have no row.
    assert metric_rows(dq_con, "denominator_live_births") == {
        ("puskesmas_network", "PA", "kia_lahir_hidup/lahir_hidup"): ("ytd", 0.75, 600, 800,
                                                                     True),
        ("kabkota", "99.01", "kia_lahir_hidup/lahir_hidup"): ("ytd", pytest.approx(1560 / 1650),
                                                              1560, 1650, False)}


def move_to_pb(con, kode: str, on: str) -> None:
    """`kode` belongs to network PA until `on` (exclusive), to PB from then (every form); the
    registry names PB, its induk now."""
    for form in ("tb", "ptm", "kia", "imun"):
        con.execute("INSERT INTO reference.form_assignment VALUES "
                    "(?, ?, 'PA', NULL, ?, 'jejaring'), (?, ?, 'PB', ?, NULL, 'jejaring')",
                    [kode, form, on, kode, form, on])
    con.execute("UPDATE reference.facility SET kode_puskesmas_induk = 'PB', kode_jejaring = 'PB' "
                "WHERE kode_faskes = ?", [kode])


def test_content_completeness_counts_a_moved_facility_in_the_network_of_each_month(
        dq_con, settings, monkeypatch):
    monkeypatch.setattr(catalog, "data_elements", lambda: ELEMENTS)
    add_facility(dq_con, "DA1", "tpmd", "PB", "99.01.01")
    move_to_pb(dq_con, "DA1", "2025-02-01")
    # DA1 (TPMD, 3 expected): January in PA, 2 of 3 present; February in PB, 3 of 3
    report(dq_con, "DA1", "2025-01", {"tb_skrining": 0, "tb_terduga_ditemukan": 0,
                                      "tb_kasus_ditemukan": None})
    report(dq_con, "DA1", "2025-02", {"tb_skrining": 1, "tb_terduga_ditemukan": 0,
                                      "tb_kasus_ditemukan": 0})
    # PA reports January, PB February, each 4 of 4
    full = {"tb_skrining": 1, "tb_terduga_ditemukan": 1, "tb_kasus_ditemukan": 1,
            "tb_tpt_mulai": 1}
    report(dq_con, "PA", "2025-01", full)
    report(dq_con, "PB", "2025-02", full)
    dq.compute_dq_flags(dq_con, settings, ["2025-02"])
    # Jan..Feb, network PA = PA 4 + DA1's January 2 = 6 of 4 + 3 = 7 (85.7 % < 90: flagged);
    # network PB = PB 4 + DA1's February 3 = 7 of 7. (With the registry's network for every
    # month: PA 4 / 4, PB 9 / 10.)
    assert content(dq_con, "puskesmas_network", "PA", "ytd", "tb") == (
        pytest.approx(600 / 7), 6, 7, True)
    assert content(dq_con, "puskesmas_network", "PB", "ytd", "tb") == (100.0, 7, 7, False)
    assert content(dq_con, "puskesmas_network", "PB", "month", "tb") == (100.0, 7, 7, False)
    # per element: tb_kasus_ditemukan in PA, 1 of 2 (DA1's January blank)
    assert content(dq_con, "puskesmas_network", "PA", "ytd", "tb_kasus_ditemukan") == (
        50.0, 1, 2, True)
    # location units do not move: kecamatan 99.01.01 (PA, DA1) = 4 + 2 + 3 of 4 + 3 + 3
    assert content(dq_con, "kecamatan", "99.01.01", "ytd", "tb") == (90.0, 9, 10, False)


def test_relations_count_a_moved_facility_in_the_network_of_each_month(dq_con, settings):
    move_to_pb(dq_con, "KA1", "2025-02-01")
    # KA1: DPT1 5 in January (network PA), DPT3 6 in February (network PB)
    add_value(dq_con, "KA1", "2025-01", "imun_dpt1", 5)
    add_value(dq_con, "KA1", "2025-02", "imun_dpt3", 6)
    dq.compute_dq_flags(dq_con, settings, ["2025-02"])
    got = {(lvl, code) for lvl, code in dq_con.execute(
        "SELECT unit_level, unit_code FROM indicators.dq_flag "
        "WHERE method = 'negative_dropout' AND period = '2025-02'").fetchall()}
    # KA1 and its location units: (5 − 6) / 5 = −20 %, negative; network PA has DPT1 only and
    # PB DPT3 only, so neither is judged (with the registry's network, PB would be flagged)
    assert got == {("facility", "KA1"), ("kecamatan", "99.01.01"), ("kabkota", "99.01"),
                   ("provinsi", "99")}
