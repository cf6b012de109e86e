"""Each validation rule of the clean layer, with a passing and a failing case.

Raw rows are inserted directly (tests/support/clean.py) so each case is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from kolab_pipeline import clean
from kolab_pipeline.config import Settings
from tests.support.clean import Raw, q, raw_fixture, ref_con_fixture  # noqa: F401  (fixtures)


def quarantined(con: duckdb.DuckDBPyConnection) -> dict[int, set[str]]:
    """row_number → rule ids (file a.csv)."""
    out: dict[int, set[str]] = {}
    for row_number, rule_id in q(con, "SELECT row_number, rule_id FROM clean.quarantine "
                                      "WHERE raw_row_id IS NOT NULL"):
        out.setdefault(row_number, set()).add(rule_id)
    return out


def kept(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """row_number → resolved kode_faskes of kept rows."""
    return dict(q(con, "SELECT row_number, kode_faskes FROM clean.submission"))


def flags(con: duckdb.DuckDBPyConnection, rule_id: str) -> list[tuple]:
    return q(con, "SELECT kode_faskes, period, column_name, value_text FROM clean.validation_flag "
                  "WHERE rule_id = ? ORDER BY ALL", [rule_id])


def test_v01_unknown_facility_is_quarantined_and_never_guessed(raw: Raw,
                                                              settings: Settings) -> None:
    con = raw.con
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-03", "KP-99", {"tb_skrining": "4"})        # unknown code
    raw.row("a.csv", 3, "tb", "2025-03", "kp 3672-001", {"tb_skrining": "4"})  # same code, messy
    raw.row("a.csv", 4, "ptm", "2025-03", "KLSEHAT", {"ht_skrining": "4"})     # local code
    raw.row("a.csv", 5, "tb", "2025-03", None, {"tb_skrining": "4"},
            nama="PUSKESMAS CIBEBER")                                          # name only
    # a written but unknown code is not rescued by a known name: the clerk must fix the code
    raw.row("a.csv", 6, "tb", "2025-03", "DR-XX", {"tb_skrining": "4"}, nama="Praktik dr. Budi")
    clean.build_clean(con, settings)
    assert quarantined(con) == {2: {"V01"}, 6: {"V01"}}
    assert kept(con) == {3: "KP3672001", 4: "KP3672001", 5: "P3672010201"}
    reason, reason_en, col, value = q(con, "SELECT reason_id, reason_en, column_name, value_text "
                                           "FROM clean.quarantine WHERE row_number = 2")[0]
    assert reason.startswith("Kode faskes 'KP-99' tidak dikenal di registri fasilitas")
    assert "Facility code 'KP-99' is not in the facility registry" in reason_en
    assert (col, value) == ("kode_faskes", "KP-99")


def test_v05_unreadable_or_empty_period(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "bulan lalu", "KP3672001", {"tb_skrining": "1"})
    raw.row("a.csv", 3, "tb", None, "DR3672001", {"tb_skrining": "1"})
    raw.row("a.csv", 4, "tb", "Maret 2025", "P3672010201", {"tb_skrining": "1"})
    clean.build_clean(raw.con, settings)
    assert quarantined(raw.con) == {2: {"V05"}, 3: {"V05"}}
    assert q(raw.con, "SELECT period FROM clean.submission") == [("2025-03",)]
    assert "Periode 'bulan lalu' kosong atau tidak dapat dibaca" in q(
        raw.con, "SELECT reason_id FROM clean.quarantine WHERE row_number = 2")[0][0]


def test_v05f_period_after_received_date(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv", received_at="2025-04-03T10:00:00+07:00")
    # May, received 3 April
    raw.row("a.csv", 2, "tb", "2025-05", "KP3672001", {"tb_skrining": "1"})
    # April started on the 1st: ok
    raw.row("a.csv", 3, "tb", "2025-04", "DR3672001", {"tb_skrining": "1"})
    # tanggal_lapor is the received date when present: 31 March is before April started
    raw.row("a.csv", 4, "tb", "2025-04", "P3672010201", {"tb_skrining": "1"},
            tanggal_lapor="2025-03-31")
    raw.row("a.csv", 5, "ptm", "2025-04", "P3672010201", {"ht_skrining": "1"},
            tanggal_lapor="01/04/2025")
    clean.build_clean(raw.con, settings)
    assert quarantined(raw.con) == {2: {"V05F"}, 4: {"V05F"}}
    assert sorted(kept(raw.con)) == [3, 5]
    assert q(raw.con, "SELECT value_text, reason_id FROM clean.quarantine "
                      "WHERE row_number = 4") == [(
        "2025-04", "Periode '2025-04' (2025-04) belum dimulai saat laporan diterima pada "
                   "2025-03-31; periksa kolom periode dan tanggal_lapor")]


def test_v06_bad_value_quarantines_the_whole_row(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-03", "KP3672001",
            {"tb_skrining": "12", "tb_terduga_ditemukan": "-3"})
    raw.row("a.csv", 3, "tb", "2025-03", "DR3672001",
            {"tb_skrining": "1,5", "tb_terduga_ditemukan": "dua"})
    raw.row("a.csv", 4, "tb", "2025-03", "P3672010201",
            {"tb_skrining": "1.234", "tb_terduga_ditemukan": "-", "tb_terduga_diperiksa": None,
             "tb_kasus_ditemukan": "nihil"})
    clean.build_clean(raw.con, settings)
    assert quarantined(raw.con) == {2: {"V06"}, 3: {"V06"}}
    # one quarantine row per raw row × rule, listing every offending column
    assert q(raw.con, "SELECT column_name, value_text FROM clean.quarantine "
                      "WHERE row_number = 3") == [
        ("tb_skrining, tb_terduga_ditemukan", "1,5 | dua")]
    # row 2 had a valid cell (12) but nothing of it is kept: no partial rows
    assert q(raw.con, "SELECT count(*) FROM clean.submission_value "
                      "WHERE kode_faskes = 'KP3672001'") == [(0,)]
    values = dict(q(raw.con, "SELECT data_element, value FROM clean.submission_value"))
    assert values == {"tb_skrining": 1234, "tb_terduga_ditemukan": 0,
                      "tb_terduga_diperiksa": None, "tb_kasus_ditemukan": 0}


def test_v06n_nil_report(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-03", "KP3672001",
            {"tb_skrining": "5", "tb_kasus_ditemukan": None}, nihil="ya")
    raw.row("a.csv", 3, "tb", "2025-03", "DR3672001",
            {"tb_skrining": None, "tb_kasus_ditemukan": "-"}, nihil="1")
    raw.row("a.csv", 4, "tb", "2025-03", "P3672010201",
            {"tb_skrining": "0", "tb_kasus_ditemukan": None}, nihil="X")
    clean.build_clean(raw.con, settings)
    assert quarantined(raw.con) == {2: {"V06N"}}
    assert "laporan nihil" in q(raw.con, "SELECT reason_id FROM clean.quarantine")[0][0]
    # nil report: blanks become 0 (the facility said "nothing happened")
    assert q(raw.con, "SELECT kode_faskes, data_element, value FROM clean.submission_value "
                      "ORDER BY ALL") == [
        ("DR3672001", "tb_kasus_ditemukan", 0), ("DR3672001", "tb_skrining", 0),
        ("P3672010201", "tb_kasus_ditemukan", 0), ("P3672010201", "tb_skrining", 0)]
    assert q(raw.con, "SELECT count(*) FROM clean.submission WHERE is_nil_report") == [(2,)]


def test_v15_duplicate_rows_in_one_file(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv", received_at="2025-04-03T10:00:00+07:00")
    raw.file("b.csv", received_at="2025-04-04T10:00:00+07:00")
    raw.row("a.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "5"})
    raw.row("a.csv", 3, "tb", "Maret 2025", "klsehat", {"tb_skrining": "6"})  # same facility, month
    raw.row("a.csv", 4, "ptm", "2025-03", "KP3672001", {"ht_skrining": "6"})  # other form: no clash
    raw.row("b.csv", 2, "tb", "2025-03", "DR3672001", {"tb_skrining": "1"})
    raw.row("a.csv", 5, "tb", "2025-03", "DR3672001", {"tb_skrining": "1"})  # other file: a version
    clean.build_clean(raw.con, settings)
    assert quarantined(raw.con) == {2: {"V15"}, 3: {"V15"}}
    assert q(raw.con, "SELECT value_text FROM clean.quarantine WHERE rule_id = 'V15' "
                      "LIMIT 1") == [("2, 3",)]
    assert q(raw.con, "SELECT source_path, row_number, version FROM clean.submission "
                      "WHERE kode_faskes = 'DR3672001' ORDER BY version") == [
        ("a.csv", 5, 1), ("b.csv", 2, 2)]


def test_v16_unknown_form_and_file_rejects(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.file("kosong.csv", status="rejected", reject_rule="F02",
             reject_reason="kosong.csv: the file has a header but no data rows")
    # the raw layer's usual reason quotes the catalogue message: not repeated in reason_en
    raw.file("nol.csv", status="rejected", reject_rule="F02",
             reject_reason="nol.csv: File is empty or has no data rows — the file is empty "
                           "(0 bytes)")
    raw.row("a.csv", 2, None, "2025-03", "KP3672001", {"?x": "5"})
    raw.row("a.csv", 3, "tb", "2025-03", "KP3672001", {"tb_skrining": "5"})
    clean.build_clean(raw.con, settings)
    assert quarantined(raw.con) == {2: {"V16"}}
    rows = q(raw.con, "SELECT source_path, rule_id, reason_id, reason_en FROM clean.quarantine "
                      "WHERE raw_row_id IS NULL ORDER BY source_path")
    # reason_id: Indonesian only — the catalogue message and the file (was: followed by the raw
    # layer's English reason); the English detail stays in reason_en
    assert rows == [
        ("kosong.csv", "F02", "Berkas kosong atau tidak berisi baris data — berkas kosong.csv",
         "File is empty or has no data rows — kosong.csv: the file has a header but no data rows"),
        ("nol.csv", "F02", "Berkas kosong atau tidak berisi baris data — berkas nol.csv",
         "nol.csv: File is empty or has no data rows — the file is empty (0 bytes)")]


def test_received_time_from_tanggal_lapor_in_local_time(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv", received_at="2025-04-09T23:30:00+08:00")
    # Balikpapan (64.71, WITA = UTC+8): 5 April 00:00 local = 4 April 16:00 UTC
    raw.row("a.csv", 2, "tb", "2025-03", "KP6471001", {"tb_skrining": "1"},
            tanggal_lapor="05/04/2025")
    # Cilegon (WIB = UTC+7): 5 April 00:00 local = 4 April 17:00 UTC
    raw.row("a.csv", 3, "tb", "2025-03", "KP3672001", {"tb_skrining": "1"},
            tanggal_lapor="2025-04-05")
    raw.row("a.csv", 4, "tb", "2025-03", "DR3672001", {"tb_skrining": "1"},
            tanggal_lapor="besok")
    clean.build_clean(raw.con, settings)
    got = {k: (ts.astimezone(UTC), src) for k, ts, src in
           q(raw.con, "SELECT kode_faskes, received_at, received_source FROM clean.submission")}
    assert got == {
        "KP6471001": (datetime(2025, 4, 4, 16, 0, tzinfo=UTC), "tanggal_lapor"),
        "KP3672001": (datetime(2025, 4, 4, 17, 0, tzinfo=UTC), "tanggal_lapor"),
        # unreadable tanggal_lapor: the file's received_at (23:30 WITA = 15:30 UTC), its source
        "DR3672001": (datetime(2025, 4, 9, 15, 30, tzinfo=UTC), "manifest"),
    }


def test_v07_kia_year_to_date(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "kia", "2025-01", "KP3672001", {"kia_k1": "10", "kia_k4": "4"})
    raw.row("a.csv", 3, "kia", "2025-02", "KP3672001", {"kia_k1": "2", "kia_k4": "9"})
    raw.row("a.csv", 4, "kia", "2025-02", "P3672010201",
            {"kia_k1": "2", "kia_k4": "2", "kia_kn1": "3", "kia_kn_lengkap": "3"})
    # a new year starts the sums again: 2026-01 K4 5 ≤ K1 5
    raw.row("a.csv", 5, "kia", "2026-01", "KP3672001", {"kia_k1": "5", "kia_k4": "5"})
    clean.build_clean(raw.con, settings)
    # Jan: K4 4 ≤ K1 10 → no flag. Feb YTD: K4 4+9 = 13 > K1 10+2 = 12 → flag.
    # Puskesmas: K4 2 ≤ K1 2 and KN lengkap 3 ≤ KN1 3 → no flag.
    assert flags(raw.con, "V07") == [
        ("KP3672001", "2025-02", "kia_k4, kia_k1", "kia_k4 = 13 > kia_k1 = 12")]
    reason = q(raw.con, "SELECT reason_id FROM clean.validation_flag WHERE rule_id = 'V07'")[0][0]
    assert reason.startswith(
        "KIA kumulatif tahun berjalan tidak konsisten: kia_k4 = 13 > kia_k1 = 12")


def test_v08_immunisation_year_to_date(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "imun", "2025-01", "KP3672001",
            {"imun_dpt1": "5", "imun_dpt3": "7", "imun_mr1": "4"})
    raw.row("a.csv", 3, "imun", "2025-01", "P3672010201",
            {"imun_dpt1": "9", "imun_dpt3": "7", "imun_mr1": "9"})
    clean.build_clean(raw.con, settings)
    # KP: DPT3 7 > DPT1 5 → flag; MR1 4 ≤ DPT1 5 → none. Puskesmas: 7 ≤ 9 and 9 ≤ 9 → none.
    assert flags(raw.con, "V08") == [
        ("KP3672001", "2025-01", "imun_dpt3, imun_dpt1", "imun_dpt3 = 7 > imun_dpt1 = 5")]


def test_v09_tb_cascade(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-01", "KP3672001",
            {"tb_terduga_ditemukan": "6", "tb_terduga_diperiksa": "8", "tb_terduga_dirujuk": "0",
             "tb_kasus_ditemukan": "5"})
    raw.row("a.csv", 3, "tb", "2025-01", "P3672010201",
            {"tb_terduga_ditemukan": "10", "tb_terduga_diperiksa": "4", "tb_terduga_dirujuk": "3",
             "tb_kasus_ditemukan": "9"})
    raw.row("a.csv", 4, "tb", "2025-01", "DR3672001",
            {"tb_terduga_ditemukan": "10", "tb_terduga_diperiksa": "4", "tb_terduga_dirujuk": "3",
             "tb_kasus_ditemukan": "7"})
    clean.build_clean(raw.con, settings)
    # KP: diperiksa 8 > ditemukan 6 → flag; kasus 5 ≤ 8 + 0 → none.
    # Puskesmas: 4 ≤ 10 → none; kasus 9 > diperiksa 4 + dirujuk 3 = 7 → flag.
    # DR: kasus 7 ≤ 7 → none.
    assert flags(raw.con, "V09") == [
        ("KP3672001", "2025-01", "tb_terduga_diperiksa, tb_terduga_ditemukan",
         "tb_terduga_diperiksa = 8 > tb_terduga_ditemukan = 6"),
        ("P3672010201", "2025-01",
         "tb_kasus_ditemukan, tb_terduga_diperiksa, tb_terduga_dirujuk",
         "tb_kasus_ditemukan = 9 > tb_terduga_diperiksa + tb_terduga_dirujuk = 7"),
    ]


def test_v11_neonatal_deaths_year_to_date(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    raw.row("a.csv", 2, "kia", "2025-01", "KP3672001",
            {"kia_lahir_hidup": "2", "kia_kematian_neonatal": "1"})
    raw.row("a.csv", 3, "kia", "2025-02", "KP3672001",
            {"kia_lahir_hidup": None, "kia_kematian_neonatal": "2"})
    raw.row("a.csv", 4, "kia", "2025-02", "P3672010201",
            {"kia_lahir_hidup": "4", "kia_kematian_neonatal": "4"})
    clean.build_clean(raw.con, settings)
    # KP Jan: 1 ≤ 2 → none; Feb YTD deaths 1+2 = 3 > births 2 + NULL = 2 → flag.
    # Puskesmas 4 ≤ 4 → none.
    assert flags(raw.con, "V11") == [
        ("KP3672001", "2025-02", "kia_kematian_neonatal, kia_lahir_hidup",
         "kia_kematian_neonatal = 3 > kia_lahir_hidup = 2")]


def test_v13_element_not_expected_from_facility_type(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    # tb_kontak_diinvestigasi is expected from puskesmas and klinik_pratama only (not tpmd)
    raw.row("a.csv", 2, "tb", "2025-03", "DR3672001",
            {"tb_kontak_diinvestigasi": "3", "tb_skrining": "9"})
    raw.row("a.csv", 3, "tb", "2025-04", "DR3672001", {"tb_kontak_diinvestigasi": "0"})  # zero: ok
    raw.row("a.csv", 4, "tb", "2025-03", "KP3672001", {"tb_kontak_diinvestigasi": "3"})  # klinik
    clean.build_clean(raw.con, settings)
    assert flags(raw.con, "V13") == [("DR3672001", "2025-03", "tb_kontak_diinvestigasi", "3")]
    assert "jenis tpmd" in q(raw.con, "SELECT reason_id FROM clean.validation_flag "
                                      "WHERE rule_id = 'V13'")[0][0]


def test_flags_only_on_current_versions(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv", received_at="2025-04-03T10:00:00+07:00")
    raw.file("b.csv", received_at="2025-04-05T10:00:00+07:00")
    raw.row("a.csv", 2, "imun", "2025-01", "KP3672001",
            {"imun_dpt1": "5", "imun_dpt3": "7"})  # wrong
    raw.row("b.csv", 2, "imun", "2025-01", "KP3672001",
            {"imun_dpt1": "7", "imun_dpt3": "5"})  # corrected
    clean.build_clean(raw.con, settings)
    assert flags(raw.con, "V08") == []


def test_ytd_relations_need_every_month_since_january(raw: Raw, settings: Settings) -> None:
    raw.file("a.csv")
    # February and March only (January missing): YTD K4 3+9 = 12 > K1 2+2 = 4, but the K1 visits
    # may be in the unreported January → no flag
    raw.row("a.csv", 2, "kia", "2025-02", "KP3672001", {"kia_k1": "2", "kia_k4": "3"})
    raw.row("a.csv", 3, "kia", "2025-03", "KP3672001", {"kia_k1": "2", "kia_k4": "9"})
    clean.build_clean(raw.con, settings)
    assert flags(raw.con, "V07") == []
    # with January the year is complete. Feb YTD: K4 0+3 = 3 ≤ K1 1+2 = 3 → no flag;
    # Mar YTD: K4 0+3+9 = 12 > K1 1+2+2 = 5 → flag
    raw.row("a.csv", 4, "kia", "2025-01", "KP3672001", {"kia_k1": "1", "kia_k4": "0"})
    clean.build_clean(raw.con, settings)
    assert flags(raw.con, "V07") == [
        ("KP3672001", "2025-03", "kia_k4, kia_k1", "kia_k4 = 12 > kia_k1 = 5")]


def test_v17_unmapped_dhis2_element_but_unknown_template_column_is_ignored(
        raw: Raw, settings: Settings) -> None:
    raw.file("dhis2/export.json")
    raw.file("a.csv")
    # DHIS2: one mapped value and one whose data element id is not in mapping.csv ("?" = unmapped)
    raw.row("dhis2/export.json", 11, "tb", "202503", "KP3672001",
            {"tb_skrining": "4", "?x8FgT1kQ": "7"}, source_kind="dhis2")
    raw.row("dhis2/export.json", 12, "tb", "202503", "P3672010201",
            {"tb_skrining": "4", "?x8FgT1kQ": None},
            source_kind="dhis2")   # unmapped but blank: nothing is lost
    # template file with a notes column nobody maps: ignored, the row is kept
    raw.row("a.csv", 2, "tb", "2025-03", "DR3672001",
            {"tb_skrining": "2", "?keterangan": "bulan ini sepi"})
    clean.build_clean(raw.con, settings)
    assert q(raw.con, "SELECT source_path, row_number, rule_id, column_name, value_text "
                      "FROM clean.quarantine") == [
        ("dhis2/export.json", 11, "V17", "?x8FgT1kQ", "7")]
    reason = q(raw.con, "SELECT reason_id FROM clean.quarantine")[0][0]
    assert "tidak ada di landing/dhis2/mapping.csv" in reason
    assert sorted(kept(raw.con).values()) == ["DR3672001", "P3672010201"]
