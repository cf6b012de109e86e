"""Report scope (lingkup laporan): a puskesmas's area recap is never added to its network's
reports — its own share = recap − the network's valid current reports of that month
(kolab_pipeline/clean/lingkup.py). Every number is worked out by hand in the comments."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from kolab_pipeline import clean
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators import compute_indicator_values
from tests.support.clean import Raw, q, setup_reference

# Two puskesmas in Kota Cilegon (36.72) with a Klinik Pratama and a bidan (TPMB) each, one in
# Balikpapan (64.71). KP1 moves from PKM1 to PKM2 on 2025-05-01 (jejaring.csv).
FASILITAS = """kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,tanggal_buka,\
tanggal_tutup,formulir,kode_lokal,is_synthetic
PKM1,Puskesmas Satu,puskesmas,,36.72.01,,,tb;ptm;kia;imun,,1
KP1,Klinik Satu,klinik_pratama,PKM1,36.72.01,,,tb;ptm;kia;imun,,1
BD1,Bidan Satu,tpmb,PKM1,36.72.01,,,kia;imun,,1
PKM2,Puskesmas Dua,puskesmas,,36.72.02,,,tb;ptm;kia;imun,,1
KP2,Klinik Dua,klinik_pratama,PKM2,36.72.02,,,tb;ptm;kia;imun,,1
PKM3,Puskesmas Tiga,puskesmas,,64.71.01,,,tb;ptm;kia;imun,,1
KP3,Klinik Tiga,klinik_pratama,PKM3,64.71.01,,,tb;ptm;kia;imun,,1
"""
JEJARING = """kode_faskes,kode_puskesmas_induk,formulir,berlaku_mulai,berlaku_sampai
KP1,PKM1,tb;ptm;kia;imun,,2025-05-01
KP1,PKM2,tb;ptm;kia;imun,2025-05-01,
"""


@pytest.fixture
def raw(con: duckdb.DuckDBPyConnection, settings: Settings) -> Iterator[Raw]:
    (settings.paths.registry).mkdir(parents=True, exist_ok=True)
    (settings.paths.registry / "jejaring.csv").write_text(JEJARING, encoding="utf-8")
    setup_reference(con, settings, FASILITAS)
    yield Raw(con)


def values(con: duckdb.DuckDBPyConnection, element: str = "kia_k1",
           period: str = "2025-03") -> dict[str, tuple]:
    """kode_faskes → (value, reported_value, network_value, lingkup_laporan)."""
    rows = q(con, "SELECT kode_faskes, value, reported_value, network_value, lingkup_laporan "
                  "FROM clean.submission_value WHERE data_element = ? AND period = ?",
             [element, period])
    return {r[0]: r[1:] for r in rows}


def flags(con: duckdb.DuckDBPyConnection, rule: str) -> list[tuple]:
    return q(con, "SELECT kode_faskes, period, column_name, value_text, reason_id, reason_en "
                  "FROM clean.validation_flag WHERE rule_id = ? ORDER BY ALL", [rule])


def march_kia(raw: Raw, pkm_k1: str, lingkup: str | None = "wilayah") -> None:
    """The issue's example: PKM1 sends K1 = 50 as an area recap; its clinic reports 10 and its
    bidan 5 themselves."""
    raw.file("kia_mar.csv", received_at="2025-04-08T10:00:00+07:00")
    raw.row("kia_mar.csv", 2, "kia", "2025-03", "PKM1", {"kia_k1": pkm_k1, "kia_k4": "30"},
            lingkup=lingkup)
    raw.row("kia_mar.csv", 3, "kia", "2025-03", "KP1", {"kia_k1": "10", "kia_k4": "6"})
    raw.row("kia_mar.csv", 4, "kia", "2025-03", "BD1", {"kia_k1": "5", "kia_k4": "4"})


# --- the own share -------------------------------------------------------------------------------

def test_recap_50_with_network_10_and_5_counts_50_not_65(raw: Raw, settings: Settings) -> None:
    march_kia(raw, "50")
    clean.build_clean(raw.con, settings)
    # own share = 50 − (10 + 5) = 35; K4: 30 − (6 + 4) = 20
    assert values(raw.con) == {"PKM1": (35, 50, 15, "wilayah"), "KP1": (10, 10, None, "faskes"),
                               "BD1": (5, 5, None, "faskes")}
    assert values(raw.con, "kia_k4")["PKM1"] == (20, 30, 10, "wilayah")
    assert q(raw.con, "SELECT kode_faskes, lingkup_laporan, lingkup_source FROM clean.submission "
                      "ORDER BY 1") == [("BD1", "faskes", "default"), ("KP1", "faskes", "default"),
                                        ("PKM1", "wilayah", "column")]
    # every consumer reads `value`: the kab/kota and the network count 35 + 10 + 5 = 50
    compute_indicator_values(raw.con, settings, ["2025-03"])
    k1 = dict(((lvl, unit), num) for lvl, unit, num in q(
        raw.con, "SELECT unit_level, unit_code, numerator FROM indicators.indicator_value "
                 "WHERE indicator_code = 'KIA_K1' AND period_type = 'month'"))
    assert k1[("kabkota", "36.72")] == 50 and k1[("puskesmas_network", "PKM1")] == 50
    # K1 coverage has no facility row in indicator_value (a sasaran is not defined for one
    # facility); the facility's own numerator is in facility_base
    assert ("facility", "PKM1") not in k1
    assert q(raw.con, "SELECT numerator FROM indicators.facility_base WHERE kode_faskes = 'PKM1' "
                      "AND indicator_code = 'KIA_K1' AND period_type = 'month'") == [(35.0,)]
    share = q(raw.con, "SELECT jenis_faskes, volume, total FROM indicators.network_contribution "
                       "WHERE unit_level = 'kabkota' AND data_element = 'kia_k1' "
                       "AND period_type = 'month' ORDER BY 1")
    assert share == [("klinik_pratama", 10, 50), ("puskesmas", 35, 50), ("tpmb", 5, 50)]
    assert flags(raw.con, "L02") == [] and flags(raw.con, "L03") == []


def test_without_the_scope_the_recap_is_counted_twice(raw: Raw, settings: Settings) -> None:
    """What the issue measured: the same rows declared as own services count 50 + 10 + 5 = 65."""
    march_kia(raw, "50", lingkup=None)
    clean.build_clean(raw.con, settings)
    assert values(raw.con)["PKM1"] == (50, 50, None, "faskes")
    compute_indicator_values(raw.con, settings, ["2025-03"])
    assert q(raw.con, "SELECT numerator FROM indicators.indicator_value "
                      "WHERE indicator_code = 'KIA_K1' AND unit_level = 'kabkota' "
                      "AND period_type = 'month'") == [(65.0,)]


def test_a_recap_below_its_network_is_warned_and_its_own_share_is_0(raw: Raw,
                                                                    settings: Settings) -> None:
    march_kia(raw, "12")
    clean.build_clean(raw.con, settings)
    # 12 < 10 + 5 = 15: own share max(12 − 15, 0) = 0, area total = 0 + 10 + 5 = 15
    assert values(raw.con)["PKM1"] == (0, 12, 15, "wilayah")
    (row,) = flags(raw.con, "L02")
    assert row[:4] == ("PKM1", "2025-03", "kia_k1", "rekap 12 < jejaring 15")
    assert "rekap 12 < jejaring 15" in row[4] and "dihitung 0" in row[4]
    assert "rekap 12 < jejaring 15" in row[5] and "counts as 0" in row[5]
    # K4 30 ≥ 6 + 4 = 10: no warning for it
    assert values(raw.con, "kia_k4")["PKM1"] == (20, 30, 10, "wilayah")


def test_a_blank_recap_cell_stays_not_reported(raw: Raw, settings: Settings) -> None:
    march_kia(raw, "")
    clean.build_clean(raw.con, settings)
    assert values(raw.con)["PKM1"] == (None, None, 15, "wilayah")


def test_a_quarantined_network_row_is_not_subtracted(raw: Raw, settings: Settings) -> None:
    """Only *valid* network reports count: the bidan's row is V06 (quarantined)."""
    raw.file("kia_mar.csv", received_at="2025-04-08T10:00:00+07:00")
    raw.row("kia_mar.csv", 2, "kia", "2025-03", "PKM1", {"kia_k1": "50"}, lingkup="Wilayah Kerja")
    raw.row("kia_mar.csv", 3, "kia", "2025-03", "KP1", {"kia_k1": "10"})
    raw.row("kia_mar.csv", 4, "kia", "2025-03", "BD1", {"kia_k1": "lima"})
    clean.build_clean(raw.con, settings)
    assert values(raw.con)["PKM1"] == (40, 50, 10, "wilayah")       # 50 − 10


def test_the_network_s_current_version_is_subtracted(raw: Raw, settings: Settings) -> None:
    march_kia(raw, "50")
    raw.file("kp1_revisi.csv", received_at="2025-04-12T10:00:00+07:00")
    raw.row("kp1_revisi.csv", 2, "kia", "2025-03", "KP1", {"kia_k1": "12"})
    clean.build_clean(raw.con, settings)
    assert values(raw.con)["PKM1"] == (33, 50, 17, "wilayah")       # 50 − (12 + 5)


# --- incremental: a late network report re-derives the own share ------------------------------

def test_a_late_network_report_re_derives_the_own_share(raw: Raw, settings: Settings) -> None:
    raw.file("rekap_mar.csv", received_at="2025-04-08T10:00:00+07:00")
    raw.row("rekap_mar.csv", 2, "kia", "2025-03", "PKM1", {"kia_k1": "50"}, lingkup="wilayah")
    raw.row("rekap_mar.csv", 3, "kia", "2025-03", "KP1", {"kia_k1": "10"})
    clean.build_clean(raw.con, settings)
    assert values(raw.con)["PKM1"] == (40, 50, 10, "wilayah")       # 50 − 10 (bidan not in yet)
    # the bidan's own file arrives on the 25th: only that file is cleaned, PKM1's key is not
    # touched, yet its own share becomes 50 − (10 + 5) = 35
    raw.file("bd1_mar.csv", received_at="2025-04-25T10:00:00+07:00")
    raw.row("bd1_mar.csv", 2, "kia", "2025-03", "BD1", {"kia_k1": "5"})
    inc = clean.build_clean(raw.con, settings)
    assert (inc["mode"], inc["files_cleaned"], inc["keys_recomputed"]) == ("incremental", 1, 1)
    assert values(raw.con)["PKM1"] == (35, 50, 15, "wilayah")
    _assert_equals_full_rebuild(raw.con, settings)
    # and when that file is withdrawn, back to 40
    raw.con.execute("DELETE FROM raw.submission_cell WHERE raw_row_id LIKE 'sha_bd1_mar.csv%'")
    raw.con.execute("DELETE FROM raw.submission_row WHERE file_id = 'sha_bd1_mar.csv'")
    raw.con.execute("DELETE FROM raw.landing_file WHERE file_id = 'sha_bd1_mar.csv'")
    assert clean.build_clean(raw.con, settings)["mode"] == "incremental"
    assert values(raw.con)["PKM1"] == (40, 50, 10, "wilayah")
    _assert_equals_full_rebuild(raw.con, settings)


def test_a_late_report_that_makes_the_recap_too_small_warns_incrementally(
        raw: Raw, settings: Settings) -> None:
    march_kia(raw, "16")
    clean.build_clean(raw.con, settings)
    assert values(raw.con)["PKM1"] == (1, 16, 15, "wilayah") and flags(raw.con, "L02") == []
    raw.file("kp1_revisi.csv", received_at="2025-04-20T10:00:00+07:00")
    raw.row("kp1_revisi.csv", 2, "kia", "2025-03", "KP1", {"kia_k1": "13"})
    clean.build_clean(raw.con, settings)
    # 16 < 13 + 5 = 18
    assert values(raw.con)["PKM1"] == (0, 16, 18, "wilayah")
    assert [f[3] for f in flags(raw.con, "L02")] == ["rekap 16 < jejaring 18"]
    _assert_equals_full_rebuild(raw.con, settings)


def _assert_equals_full_rebuild(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    before = {t: sorted(q(con, f"SELECT * FROM {t}"), key=repr) for t in clean.CLEAN_TABLES}
    assert clean.build_clean(con, settings, full=True)["mode"] == "full"
    after = {t: sorted(q(con, f"SELECT * FROM {t}"), key=repr) for t in clean.CLEAN_TABLES}
    assert before == after


# --- dated network membership ------------------------------------------------------------------

def test_the_network_of_the_month_is_subtracted(raw: Raw, settings: Settings) -> None:
    """KP1 belongs to PKM1 until April and to PKM2 from May (jejaring.csv)."""
    raw.file("rekap.csv", received_at="2025-06-08T10:00:00+07:00")
    for n, (period, kode, k1, lingkup) in enumerate([
            ("2025-04", "PKM1", "40", "wilayah"), ("2025-04", "PKM2", "30", "wilayah"),
            ("2025-04", "KP1", "10", None), ("2025-04", "KP2", "4", None),
            ("2025-05", "PKM1", "40", "wilayah"), ("2025-05", "PKM2", "30", "wilayah"),
            ("2025-05", "KP1", "10", None), ("2025-05", "KP2", "4", None)], start=2):
        raw.row("rekap.csv", n, "kia", period, kode, {"kia_k1": k1}, lingkup=lingkup)
    clean.build_clean(raw.con, settings)
    # April: PKM1 40 − 10 = 30, PKM2 30 − 4 = 26; May: PKM1 40 − 0 = 40, PKM2 30 − (10 + 4) = 16
    assert {k: v[0] for k, v in values(raw.con, period="2025-04").items()} == {
        "PKM1": 30, "PKM2": 26, "KP1": 10, "KP2": 4}
    assert {k: v[0] for k, v in values(raw.con, period="2025-05").items()} == {
        "PKM1": 40, "PKM2": 16, "KP1": 10, "KP2": 4}


# --- where the scope is declared -----------------------------------------------------------------

def test_kolab_yaml_declares_the_scope_per_form_and_the_column_wins(
        raw: Raw, settings: Settings) -> None:
    rep = settings.config.reporting
    rep.puskesmas_scope = {"kia": "wilayah", "imun": "wilayah"}
    rep.puskesmas_scope_by_kabkota = {"64.71": {"kia": "faskes"}}
    raw.file("mar.csv", received_at="2025-04-08T10:00:00+07:00")
    raw.row("mar.csv", 2, "kia", "2025-03", "PKM1", {"kia_k1": "50"})                 # kolab.yaml
    raw.row("mar.csv", 3, "kia", "2025-03", "KP1", {"kia_k1": "10"})
    raw.row("mar.csv", 4, "kia", "2025-03", "PKM2", {"kia_k1": "20"}, lingkup="faskes")  # column
    raw.row("mar.csv", 5, "kia", "2025-03", "KP2", {"kia_k1": "3"})
    raw.row("mar.csv", 6, "kia", "2025-03", "PKM3", {"kia_k1": "9"})           # 64.71: faskes
    raw.row("mar.csv", 7, "kia", "2025-03", "KP3", {"kia_k1": "2"})
    raw.row("mar.csv", 8, "tb", "2025-03", "PKM1", {"tb_skrining": "70"})     # tb: not listed
    raw.row("mar.csv", 9, "tb", "2025-03", "KP1", {"tb_skrining": "7"})
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT kode_faskes, form, lingkup_laporan, lingkup_source "
                      "FROM clean.submission WHERE kode_faskes LIKE 'PKM%' ORDER BY 1, 2") == [
        ("PKM1", "kia", "wilayah", "kolab.yaml"), ("PKM1", "tb", "faskes", "default"),
        ("PKM2", "kia", "faskes", "column"), ("PKM3", "kia", "faskes", "kolab.yaml")]
    assert values(raw.con)["PKM1"] == (40, 50, 10, "wilayah")                  # 50 − 10
    assert values(raw.con)["PKM2"] == (20, 20, None, "faskes")
    assert values(raw.con, "tb_skrining")["PKM1"] == (70, 70, None, "faskes")


def test_only_a_puskesmas_reports_for_an_area(raw: Raw, settings: Settings) -> None:
    march_kia(raw, "50")
    raw.file("kp2.csv", received_at="2025-04-08T10:00:00+07:00")
    raw.row("kp2.csv", 2, "kia", "2025-03", "KP2", {"kia_k1": "8"}, lingkup="rekap")
    clean.build_clean(raw.con, settings)
    assert values(raw.con)["KP2"] == (8, 8, None, "faskes")
    ((kode, period, column, value_text, reason_id, _),) = flags(raw.con, "L04")
    assert (kode, period, column, value_text) == ("KP2", "2025-03", "lingkup_laporan", "rekap")
    assert "klinik_pratama" in reason_id


def test_an_unreadable_scope_quarantines_the_row(raw: Raw, settings: Settings) -> None:
    march_kia(raw, "50", lingkup="kecamatan")
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT row_number, rule_id, column_name, value_text FROM clean.quarantine"
             ) == [(2, "L01", "lingkup_laporan", "kecamatan")]
    assert "kecamatan" in q(raw.con, "SELECT reason_id FROM clean.quarantine")[0][0]
    assert "PKM1" not in values(raw.con)


# --- L03: a faskes report that looks like an area recap -------------------------------------------

def _monthly_kia(raw: Raw, pkm: dict[str, int], network: dict[str, int]) -> None:
    """One file per month (received on the 8th of the next) with PKM1's K1 as own services
    and its network's rows."""
    for m, (period, k1) in enumerate(pkm.items(), start=1):
        name = f"kia_{m}.csv"
        y, mo = int(period[:4]), int(period[5:])
        received = f"{y + mo // 12}-{mo % 12 + 1:02d}-08T10:00:00+07:00"
        raw.file(name, received_at=received)
        raw.row(name, 2, "kia", period, "PKM1", {"kia_k1": str(k1)})
        for n, (kode, value) in enumerate(network.items(), start=3):
            raw.row(name, n, "kia", period, kode, {"kia_k1": str(value)})


# six months of PKM1's own K1: sorted 28, 29, 30, 30, 30, 32 → median 30
OWN_HALF_YEAR = {"2024-07": 30, "2024-08": 32, "2024-09": 28, "2024-10": 30, "2024-11": 30,
                 "2024-12": 29}


def test_a_puskesmas_that_starts_sending_recaps_is_warned_in_the_third_month(
        raw: Raw, settings: Settings) -> None:
    """PKM1 reports its own K1 for six months, then recaps without saying so (50, 52, 48 =
    own + network 20), then its own again (31). Its network: KP1 12 + BD1 8 (KP1 is PKM1's until
    April 2025). Defaults: 6 baseline months, tolerance 50 %, min network 40 %, 3 running."""
    _monthly_kia(raw, {**OWN_HALF_YEAR, "2025-01": 50, "2025-02": 52, "2025-03": 48,
                       "2025-04": 31}, {"KP1": 12, "BD1": 8})
    clean.build_clean(raw.con, settings)
    # usual own level U = median of the months before (≥ 6 of them); looks like a recap when
    # N = 20 ≥ 40 % × U and V ≥ U + 20 × (1 − 50 %) = U + 10:
    # Jul–Dec: fewer than 6 months before → not judged;
    # Jan U = median(28,29,30,30,30,32) = 30: 20 ≥ 12, 50 ≥ 40 (run 1);
    # Feb U = median(…, 50) = 30: 52 ≥ 40 (run 2);
    # Mar U = median(28,29,30,30,30,32,50,52) = 30: 48 ≥ 40 (run 3 → warned);
    # Apr U = median(…, 48) = 30: 31 < 40 (run broken)
    got = flags(raw.con, "L03")
    assert [(k, p, c, v) for k, p, c, v, _, _ in got] == [
        ("PKM1", "2025-03", "kia_k1", "48 vs 20 + 30")]
    assert "lingkup_laporan = wilayah" in got[0][4] and "lingkup_laporan = wilayah" in got[0][5]
    # a resubmission of April as a recap (51 ≥ 30 + 10) arrives alone: the run goes on
    # (Feb, Mar, Apr) and April is warned too — recomputed by an incremental build
    raw.file("kia_apr_revisi.csv", received_at="2025-05-20T10:00:00+07:00")
    raw.row("kia_apr_revisi.csv", 2, "kia", "2025-04", "PKM1", {"kia_k1": "51"})
    assert clean.build_clean(raw.con, settings)["mode"] == "incremental"
    assert [f[1:4] for f in flags(raw.con, "L03")] == [
        ("2025-03", "kia_k1", "48 vs 20 + 30"), ("2025-04", "kia_k1", "51 vs 20 + 30")]
    _assert_equals_full_rebuild(raw.con, settings)


def test_a_month_without_a_report_does_not_break_the_run(raw: Raw, settings: Settings) -> None:
    """February missing: the run counts PKM1's reports (Jan, Mar, Apr), not calendar months."""
    _monthly_kia(raw, {**OWN_HALF_YEAR, "2025-01": 50, "2025-03": 52, "2025-04": 48},
                 {"KP1": 12, "BD1": 8})
    clean.build_clean(raw.con, settings)
    # Jan U = 30, 50 ≥ 40; Mar U = median(…, 50) = 30, 52 ≥ 40;
    # Apr U = median(28,29,30,30,30,32,50,52) = 30, 48 ≥ 40 → third recap-like report in a row
    assert [f[1:4] for f in flags(raw.con, "L03")] == [("2025-04", "kia_k1", "48 vs 20 + 30")]


def test_a_small_network_or_a_short_history_is_not_judged(raw: Raw,
                                                          settings: Settings) -> None:
    """Half a network of 10 next to an own level of 30 (33 % < 40 %) is within a puskesmas's
    own variation: 45, 46, 44 (= own 35 + 10) raise nothing; nor do recaps after fewer than
    six months of history."""
    _monthly_kia(raw, {**OWN_HALF_YEAR, "2025-01": 45, "2025-02": 46, "2025-03": 44},
                 {"KP1": 10})
    clean.build_clean(raw.con, settings)
    # Jan U = 30: 10 < 40 % × 30 = 12 → not a recap, whatever the value
    assert flags(raw.con, "L03") == []
    settings.config.reporting.recap_detection.min_network_pct = 30
    clean.build_clean(raw.con, settings)
    # 10 ≥ 30 % × 30 = 9: Jan 45 ≥ 30 + 5, Feb 46 ≥ 35, Mar 44 ≥ 35 → warned in March
    assert [f[1:4] for f in flags(raw.con, "L03")] == [("2025-03", "kia_k1", "44 vs 10 + 30")]
    settings.config.reporting.recap_detection.min_baseline_months = 7
    clean.build_clean(raw.con, settings)
    # Jan has only 6 months before it: the run starts in February and has 2 reports by March
    assert flags(raw.con, "L03") == []


@pytest.mark.parametrize(("element", "warned"), [("ht_dilayani_standar", ["2025-03"]),
                                                 ("ht_dilayani_standar_ytd_unik", [])])
def test_year_to_date_elements_are_not_compared(raw: Raw, settings: Settings, element: str,
                                                warned: list[str]) -> None:
    """A `person_ytd` element grows through the year by nature (December ≫ its median): only
    monthly elements are compared. The series that warns in a monthly element (same numbers
    as above: U = 30, N = 20, 50, 52, 48 ≥ 40) raises nothing in a year-to-date one."""
    series = {**OWN_HALF_YEAR, "2025-01": 50, "2025-02": 52, "2025-03": 48}
    for m, (period, value) in enumerate(series.items(), start=1):
        name = f"ptm_{m}.csv"
        raw.file(name, received_at="2025-04-08T10:00:00+07:00")
        raw.row(name, 2, "ptm", period, "PKM1", {element: str(value)})
        raw.row(name, 3, "ptm", period, "KP1", {element: "20"})
    clean.build_clean(raw.con, settings)
    assert [f[1] for f in flags(raw.con, "L03")] == warned


def test_a_declared_recap_month_feeds_the_usual_level_with_its_own_share(
        raw: Raw, settings: Settings) -> None:
    """After six declared recaps (own shares 30, 32, 28, 30, 30, 29), a recap sent without the
    column is compared with the *own share*: U = 30, 49 ≥ 30 + 20 × 50 % = 40 and
    20 ≥ 40 % × 30 = 12 — with months_running 1 it is warned at once."""
    settings.config.reporting.recap_detection.months_running = 1
    raw.file("kia.csv", received_at="2025-02-08T10:00:00+07:00")
    months = [(period, own + 20, "wilayah") for period, own in OWN_HALF_YEAR.items()]
    for n, (period, k1, lingkup) in enumerate([*months, ("2025-01", 49, None)]):
        raw.row("kia.csv", 2 + 3 * n, "kia", period, "PKM1", {"kia_k1": str(k1)}, lingkup=lingkup)
        raw.row("kia.csv", 3 + 3 * n, "kia", period, "KP1", {"kia_k1": "12"})
        raw.row("kia.csv", 4 + 3 * n, "kia", period, "BD1", {"kia_k1": "8"})
    clean.build_clean(raw.con, settings)
    # own shares 50 − 20 = 30, 52 − 20 = 32, … → usual level median = 30
    assert values(raw.con, period="2024-08")["PKM1"] == (32, 52, 20, "wilayah")
    assert [f[1:4] for f in flags(raw.con, "L03")] == [("2025-01", "kia_k1", "49 vs 20 + 30")]


def test_the_recap_detection_settings_are_configuration(raw: Raw, settings: Settings) -> None:
    _monthly_kia(raw, {**OWN_HALF_YEAR, "2025-01": 45, "2025-02": 47}, {"KP1": 15})
    clean.build_clean(raw.con, settings)
    assert flags(raw.con, "L03") == []          # two months running are not three
    settings.config.reporting.recap_detection.months_running = 2
    clean.build_clean(raw.con, settings)
    # Jan: U = 30, 15 ≥ 12, 45 ≥ 30 + 7.5 (run 1); Feb: U = median(…, 45) = 30, 47 ≥ 37.5
    # (run 2 → warned now)
    assert [f[1:4] for f in flags(raw.con, "L03")] == [("2025-02", "kia_k1", "47 vs 15 + 30")]
    # with min_network_pct 60 a network of 15 < 60 % × 30 = 18 is not judged
    settings.config.reporting.recap_detection.min_network_pct = 60
    clean.build_clean(raw.con, settings)
    assert flags(raw.con, "L03") == []
    # a stricter tolerance (10 %: V ≥ U + 13.5) still sees 45 and 47 at min_network_pct 40
    settings.config.reporting.recap_detection.min_network_pct = 40
    settings.config.reporting.recap_detection.tolerance_pct = 10
    clean.build_clean(raw.con, settings)
    assert [f[1] for f in flags(raw.con, "L03")] == ["2025-02"]
