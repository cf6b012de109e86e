"""Raw layer, DHIS2 dataValueSets (JSON and CSV): ids mapped through landing/dhis2/mapping.csv,
one raw row per orgUnit × period × form, one cell per value (every combo, with its ids),
completeDate as received time in the org unit's local time, an import summary per file; and the
clean layer's DHIS2 totals (the sum over combos)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kolab_pipeline import clean, raw
from tests.support.landing import file_of, put, reason

MAPPING = ("kind,dhis2_id,kode\n"
           "data_element,deSkrn001,tb_skrining\n"
           "data_element,deTerd001,tb_terduga_ditemukan\n"
           "data_element,deHtSk001,ht_skrining\n"
           "org_unit,ouCilegon1,P3672010101\n")


def _rows(con, rel):
    return con.execute(
        "SELECT row_number, form, periode, kode_faskes, received_at FROM raw.submission_row "
        "WHERE source_path = ? ORDER BY row_number", [rel]).fetchall()


def _cells(con, rel):
    return con.execute(
        "SELECT r.row_number, c.column_index, c.header, c.data_element, c.value_text "
        "FROM raw.submission_cell c JOIN raw.submission_row r USING (raw_row_id) "
        "WHERE r.source_path = ? ORDER BY c.column_index", [rel]).fetchall()


def test_dhis2_json_grouped_and_mapped(settings, con):
    put(settings, "dhis2/mapping.csv", MAPPING)
    doc = {"dataSet": "dsTB", "completeDate": "2025-04-04", "dataValues": [
        {"dataElement": "deSkrn001", "period": "202503", "orgUnit": "ouCilegon1", "value": "12"},
        {"dataElement": "deTerd001", "period": "202503", "orgUnit": "ouCilegon1", "value": 3},
        {"dataElement": "deHtSk001", "period": "202503", "orgUnit": "ouCilegon1", "value": "40",
         "completeDate": "2025-04-06T09:00:00+07:00"},
        {"dataElement": "deSkrn001", "period": "202503", "orgUnit": "ouUnknown9", "value": "5"},
        {"dataElement": "deMystery", "period": "202503", "orgUnit": "ouCilegon1", "value": "1"},
    ]}
    put(settings, "dhis2/cilegon_202503.json", json.dumps(doc))
    s = raw.ingest_landing(con, settings, run_id="r1")
    assert (s.files_ingested, s.files_rejected) == (1, 0)
    rel = "dhis2/cilegon_202503.json"
    noon_wib = datetime(2025, 4, 4, 5, 0, tzinfo=UTC)  # bare date = 12:00 WIB (UTC+7) = 05:00 UTC
    # groups sorted by (orgUnit, period, form); the unmapped element has no form (NULL sorts last)
    got = [(n, f, p, k, r.astimezone(UTC)) for n, f, p, k, r in _rows(con, rel)]
    assert got == [
        (1, "ptm", "202503", "P3672010101", datetime(2025, 4, 6, 2, 0, tzinfo=UTC)),  # 09:00+07
        (2, "tb", "202503", "P3672010101", noon_wib),
        (3, None, "202503", "P3672010101", noon_wib),
        (4, "tb", "202503", "ouUnknown9", noon_wib),   # unmapped org unit kept verbatim
    ]
    assert _cells(con, rel) == [
        (2, 0, "deSkrn001", "tb_skrining", "12"),
        (2, 1, "deTerd001", "tb_terduga_ditemukan", "3"),
        (1, 2, "deHtSk001", "ht_skrining", "40"),
        (4, 3, "deSkrn001", "tb_skrining", "5"),
        (3, 4, "deMystery", None, "1"),
    ]
    f = file_of(con, rel)
    assert (f["source_kind"], f["file_format"], f["received_source"], f["n_rows_read"]) == (
        "dhis2", "dhis2_json", "dhis2_completeDate", 4)


def test_dhis2_csv_detected_by_content_outside_dhis2_folder(settings, con):
    put(settings, "dhis2/mapping.csv", MAPPING)
    put(settings, "kiriman/export.csv",
        "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated\n"
        "deSkrn001,202503,ouCilegon1,HllvX50cXC0,,7,admin,2025-04-02\n"
        "deTerd001,202503,ouCilegon1,HllvX50cXC0,,,admin,2025-04-02\n")
    raw.ingest_landing(con, settings, run_id="r1")
    rel = "kiriman/export.csv"
    assert file_of(con, rel)["file_format"] == "dhis2_csv"
    assert [(n, f, p, k) for n, f, p, k, _ in _rows(con, rel)] == [
        (1, "tb", "202503", "P3672010101")]
    # column_index = the value's data line (line 2 and 3); the empty value stays NULL
    assert _cells(con, rel) == [
        (1, 2, "deSkrn001.HllvX50cXC0", "tb_skrining", "7"),
        (1, 3, "deTerd001.HllvX50cXC0", "tb_terduga_ditemukan", None),
    ]


def test_invalid_dhis2_payloads_are_f07(settings, con):
    put(settings, "dhis2/broken.json", '{"dataValues": [ {"dataElement": "x", ')
    put(settings, "dhis2/not_a_set.json", '{"hello": 1}')
    put(settings, "dhis2/no_value.json", json.dumps(
        {"dataValues": [{"dataElement": "a", "period": "202503", "orgUnit": "b"}]}))
    put(settings, "dhis2/other.csv", "a,b\n1,2\n")
    raw.ingest_landing(con, settings, run_id="r1")
    got = dict(con.execute("SELECT source_path, reject_reason FROM raw.landing_file "
                           "WHERE reject_rule = 'F07'").fetchall())
    assert got["dhis2/broken.json"] == reason(
        "dhis2/broken.json", "F07",
        "not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 39 (char 38))")
    assert got["dhis2/not_a_set.json"] == reason(
        "dhis2/not_a_set.json", "F07",
        "JSON has no 'dataValues' list (expected a DHIS2 dataValueSet)")
    assert got["dhis2/no_value.json"] == reason(
        "dhis2/no_value.json", "F07",
        "dataValues lack value (expected dataElement, period, orgUnit, value)")
    assert got["dhis2/other.csv"] == reason(
        "dhis2/other.csv", "F07",
        "dataValues lack dataelement, period, orgunit, value "
        "(expected dataElement, period, orgUnit, value)")
    assert con.execute("SELECT count(*) FROM raw.submission_row").fetchone()[0] == 0


# --- issue 16 item 2: DHIS2 like DHIS2 -----------------------------------------------------------

# Org units: a Cilegon puskesmas (WIB) and a Balikpapan clinic (WITA) of the clean-test registry.
COMBO_MAPPING = ("kind,dhis2_id,kode\n"
                 "org_unit,ouCibeber01,P3672010201\n"
                 "org_unit,ouBppBaru01,KP6471001\n")


def _value(de: str, coc: str | None, aoc: str | None, value: str | None,
           org: str = "ouCibeber01", complete: str | None = None) -> dict:
    v = {"dataElement": de, "period": "202503", "orgUnit": org, "value": value}
    if coc:
        v["categoryOptionCombo"] = coc
    if aoc:
        v["attributeOptionCombo"] = aoc
    if complete:
        v["completeDate"] = complete
    return v


def _clean_values(con) -> dict[tuple[str, str], int | None]:
    return {(k, de): v for k, de, v in con.execute(
        "SELECT kode_faskes, data_element, value FROM clean.submission_value").fetchall()}


def _registry(settings, con):
    from tests.support.clean import setup_reference
    setup_reference(con, settings)


def test_dhis2_value_is_the_sum_over_its_combos(settings, con):
    """BCG of one org unit in four combos: fixed / outreach × two attribute option combos
    (e.g. funding source). DHIS2's total = 12 + 3 + 2 + 1 = 18; raw keeps the four values."""
    _registry(settings, con)
    put(settings, "dhis2/mapping.csv", COMBO_MAPPING + "data_element,deBCG0001,imun_bcg\n")
    doc = {"completeDate": "2025-04-08T10:00:00+07:00", "dataValues": [
        _value("deBCG0001", "cocFixed01", "aocApbd001", "12"),
        _value("deBCG0001", "cocOutrch1", "aocApbd001", "3"),
        _value("deBCG0001", "cocFixed01", "aocBok0001", "2"),
        _value("deBCG0001", "cocOutrch1", "aocBok0001", "1"),
    ]}
    put(settings, "dhis2/imun.json", json.dumps(doc))
    raw.ingest_landing(con, settings, run_id="r1")
    cells = con.execute(
        "SELECT header, data_element, value_text, category_option_combo, attribute_option_combo, "
        "import_status, ignore_reason FROM raw.submission_cell ORDER BY column_index").fetchall()
    assert cells == [
        ("deBCG0001.cocFixed01", "imun_bcg", "12", "cocFixed01", "aocApbd001", "imported", None),
        ("deBCG0001.cocOutrch1", "imun_bcg", "3", "cocOutrch1", "aocApbd001", "imported", None),
        ("deBCG0001.cocFixed01", "imun_bcg", "2", "cocFixed01", "aocBok0001", "imported", None),
        ("deBCG0001.cocOutrch1", "imun_bcg", "1", "cocOutrch1", "aocBok0001", "imported", None)]
    f = file_of(con, "dhis2/imun.json")
    assert (f["values_imported"], f["values_updated"], f["values_ignored"]) == (4, 0, 0)
    clean.build_clean(con, settings)
    assert _clean_values(con) == {("P3672010201", "imun_bcg"): 18}   # 12 + 3 + 2 + 1


def test_dhis2_mapped_pairs_go_to_their_codes_and_unmapped_combos_are_reported(settings, con):
    """One data element disaggregated by dose: each `dataElement.categoryOptionCombo` pair goes
    to its code; BCG's two infant combos both map to imun_bcg (summed), its third combo (given at
    one year or older) is not mapped: ignored, reported per file, never counted, never dropped
    from raw, and it does not quarantine the row."""
    _registry(settings, con)
    put(settings, "dhis2/mapping.csv", COMBO_MAPPING
        + "data_element,deDoses001.cocDpt1xx1,imun_dpt1\n"
          "data_element,deDoses001.cocDpt3xx1,imun_dpt3\n"
          "data_element,deBCG0001.cocFixed01,imun_bcg\n"
          "data_element,deBCG0001.cocOutrch1,imun_bcg\n")
    doc = {"completeDate": "2025-04-08T10:00:00+07:00", "dataValues": [
        _value("deDoses001", "cocDpt1xx1", None, "20"),
        _value("deDoses001", "cocDpt3xx1", None, "17"),
        _value("deBCG0001", "cocFixed01", None, "9"),
        _value("deBCG0001", "cocOutrch1", None, "4"),
        _value("deBCG0001", "cocAge1plu", None, "5"),
    ]}
    put(settings, "dhis2/imun.json", json.dumps(doc))
    s = raw.ingest_landing(con, settings, run_id="r1")
    f = file_of(con, "dhis2/imun.json")
    assert (f["values_imported"], f["values_updated"], f["values_ignored"]) == (4, 0, 1)
    assert f["import_conflicts"] == "combo_not_mapped deBCG0001.cocAge1plu: 1"
    assert (s.values_imported, s.values_ignored) == (4, 1)
    assert s.dhis2_files == [("dhis2/imun.json", 4, 0, 1,
                              "combo_not_mapped deBCG0001.cocAge1plu: 1")]
    assert any("dhis2/imun.json: import summary: 4 imported, 0 updated, 1 ignored" in w
               for w in s.warnings)
    # the unmapped combo stays in raw, in the row of its element's form, with why
    assert con.execute(
        "SELECT r.form, c.data_element, c.value_text, c.import_status, c.ignore_reason "
        "FROM raw.submission_cell c JOIN raw.submission_row r USING (raw_row_id) "
        "WHERE c.category_option_combo = 'cocAge1plu'").fetchall() == [
        ("imun", None, "5", "ignored", "combo_not_mapped")]
    clean.build_clean(con, settings)
    assert con.execute("SELECT count(*) FROM clean.quarantine").fetchone()[0] == 0
    assert _clean_values(con) == {("P3672010201", "imun_dpt1"): 20,
                                  ("P3672010201", "imun_dpt3"): 17,
                                  ("P3672010201", "imun_bcg"): 13}   # 9 + 4; the 5 is not
    # a data element mapped whole as well takes the combos its pairs leave: nothing ignored
    put(settings, "dhis2/mapping.csv", COMBO_MAPPING
        + "data_element,deBCG0001.cocFixed01,imun_bcg\n"
          "data_element,deBCG0001,imun_hb0\n")
    put(settings, "dhis2/imun2.json", json.dumps({"dataValues": [
        _value("deBCG0001", "cocFixed01", None, "9"), _value("deBCG0001", "cocAge1plu", None, "5"),
    ]}).replace("202503", "202504"))
    raw.ingest_landing(con, settings, run_id="r2")
    assert con.execute(
        "SELECT c.data_element, c.import_status FROM raw.submission_cell c "
        "JOIN raw.submission_row r USING (raw_row_id) WHERE r.source_path = 'dhis2/imun2.json' "
        "ORDER BY c.column_index").fetchall() == [("imun_bcg", "imported"),
                                                  ("imun_hb0", "imported")]


def test_dhis2_import_summary_imported_updated_ignored(settings, con):
    """File 1: 3 values imported; one data element not mapped, one org unit not mapped (neither
    in the mapping nor in the registry), one empty value: 3 ignored. File 2 sends two of the same
    keys again (updated), one new key (imported), and one key twice (the first ignored as a
    duplicate, the last counts)."""
    _registry(settings, con)
    put(settings, "dhis2/mapping.csv", COMBO_MAPPING + "data_element,deBCG0001,imun_bcg\n"
                                                       "data_element,deDpt1001,imun_dpt1\n"
                                                       "data_element,deDpt3001,imun_dpt3\n")
    put(settings, "dhis2/a.json", json.dumps({"completeDate": "2025-04-05", "dataValues": [
        _value("deBCG0001", "cocFixed01", None, "9"),
        _value("deBCG0001", "cocOutrch1", None, "4"),
        _value("deDpt1001", None, None, "7"),
        _value("deMystery1", None, None, "1"),
        _value("deBCG0001", None, None, "2", org="ouNowhere1"),
        _value("deDpt3001", None, None, None),
    ]}))
    raw.ingest_landing(con, settings, run_id="r1")
    a = file_of(con, "dhis2/a.json")
    assert (a["values_imported"], a["values_updated"], a["values_ignored"]) == (3, 0, 3)
    assert a["import_conflicts"] == ("org_unit_not_mapped ouNowhere1: 1; "
                                     "element_not_mapped deMystery1: 1; no_value: 1")
    put(settings, "dhis2/b.json", json.dumps({"completeDate": "2025-04-09", "dataValues": [
        _value("deBCG0001", "cocFixed01", None, "10"),
        _value("deBCG0001", "cocOutrch1", None, "4"),
        _value("deDpt3001", None, None, "6"),
        _value("deDpt1001", None, None, "7"),
        _value("deDpt1001", None, None, "8"),
    ]}))
    raw.ingest_landing(con, settings, run_id="r2")
    b = file_of(con, "dhis2/b.json")
    # updated: BCG fixed, BCG outreach, the last DPT1 (3); imported: DPT3 (1); ignored: the
    # first DPT1 (duplicate key in the file: the last one counts)
    assert (b["values_imported"], b["values_updated"], b["values_ignored"]) == (1, 3, 1)
    assert b["import_conflicts"] == "duplicate deDpt1001: 1"
    clean.build_clean(con, settings)
    current = con.execute(
        "SELECT s.source_path, v.data_element, v.value FROM clean.submission_value v "
        "JOIN clean.submission s USING (submission_id) ORDER BY 2").fetchall()
    # b.json is the current version of P3672010201 × 2025-03 × imun: 10 + 4 = 14, DPT1 8 (the
    # last of the two), DPT3 6
    assert current == [("dhis2/b.json", "imun_bcg", 14), ("dhis2/b.json", "imun_dpt1", 8),
                       ("dhis2/b.json", "imun_dpt3", 6)]


def test_dhis2_complete_date_without_offset_is_the_org_units_local_time(settings, con):
    """`2025-04-10T23:30:00` (no offset): Balikpapan is WITA (UTC+8) → 15:30 UTC, on the due
    date locally; Cilegon WIB (UTC+7) → 16:30 UTC. Read as WIB the Balikpapan report would be
    00:30 WITA on the 11th, a day late."""
    _registry(settings, con)
    put(settings, "dhis2/mapping.csv", COMBO_MAPPING + "data_element,deBCG0001,imun_bcg\n")
    put(settings, "dhis2/imun.json", json.dumps({"completeDate": "2025-04-10T23:30:00.000",
                                                "dataValues": [
        _value("deBCG0001", None, None, "3", org="ouBppBaru01"),
        _value("deBCG0001", None, None, "4", org="ouCibeber01"),
    ]}))
    raw.ingest_landing(con, settings, run_id="r1")
    got = {k: (r.astimezone(UTC), src) for k, r, src in con.execute(
        "SELECT kode_faskes, received_at, received_source FROM raw.submission_row").fetchall()}
    assert got == {"KP6471001": (datetime(2025, 4, 10, 15, 30, tzinfo=UTC), "dhis2_completeDate"),
                   "P3672010201": (datetime(2025, 4, 10, 16, 30, tzinfo=UTC),
                                   "dhis2_completeDate")}
    clean.build_clean(con, settings)
    assert con.execute("SELECT received_source FROM clean.submission "
                       "WHERE kode_faskes = 'KP6471001'").fetchone() == ("dhis2_completeDate",)


def test_dhis2_receipt_log_line_outranks_complete_date(settings, con):
    put(settings, "dhis2/mapping.csv", MAPPING)
    put(settings, "_diterima.csv", "file,received_at\ndhis2/tb.json,2025-04-12T09:00:00+07:00\n")
    put(settings, "dhis2/tb.json", json.dumps({"completeDate": "2025-04-04", "dataValues": [
        {"dataElement": "deSkrn001", "period": "202503", "orgUnit": "ouCilegon1", "value": "1"}]}))
    raw.ingest_landing(con, settings, run_id="r1")
    f = file_of(con, "dhis2/tb.json")
    assert f["received_source"] == "manifest"
    assert f["received_at"].astimezone(UTC) == datetime(2025, 4, 12, 2, 0, tzinfo=UTC)
    assert _rows(con, "dhis2/tb.json")[0][4].astimezone(UTC) == datetime(2025, 4, 12, 2, 0,
                                                                          tzinfo=UTC)
