"""Raw layer, DHIS2 dataValueSets (JSON and CSV): ids mapped through landing/dhis2/mapping.csv,
one raw row per orgUnit × period × form, one cell per value, completeDate as received time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kolab_pipeline import raw
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
