"""Property tests (Hypothesis) for the parsers (issue 10).

- Any byte string as a CSV, XLSX or DHIS2 JSON/CSV landing file → a parsed result or a clean
  reject (`FileRejected` with a rule id of the catalogue) — never another exception; and through
  `ingest_landing` + `build_clean`: the file is ingested or rejected, and every row it yields is
  kept or quarantined (nothing lost).
- The clean layer's normalisers (the SQL macros behind `clean.parse_periods` / `parse_counts` /
  `parse_dates`) → a value of the right shape or NULL/invalid (a V05/V06 reject), never an
  exception; and on well-formed inputs they return the exact value (round trips).
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kolab_pipeline import clean, raw, reference, rules
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support import hostile_corpus as hc

FILE_RULES = {r for r in rules.rules() if r.startswith("F")}
FIXTURES_AND_SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES_AND_SLOW)
MACRO_PROFILE = settings(max_examples=40, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW_PROFILE = settings(max_examples=25, deadline=None, suppress_health_check=FIXTURES_AND_SLOW)

# text that looks like template CSV: headers, delimiters, quotes, numbers, separators, junk
CSV_PIECES = st.sampled_from([
    "periode", "kode_faskes", "nama_faskes", "tb_skrining", "ht_skrining", "Kode Faskes", "NIK",
    "laporan_nihil", "2025-03", "Maret 2025", hc.PKM, "K001", "1.234", "-", "nihil", "ya",
    ",", ";", "\t", "|", "\n", "\r\n", "\r", '"', '""', " ", "\ufeff", "é", "\x00", "\x1a",
    "=SUM(A1)", "'; DROP TABLE x; --", "9" * 30, "", "\u200b",
])
CSV_TEXT = st.lists(CSV_PIECES, max_size=60).map("".join)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"])


@pytest.fixture(scope="module")
def env_settings() -> Iterator[Settings]:
    home = Path(tempfile.mkdtemp(prefix="kolab_prop_"))
    hc.write_registry(home)
    hc.write_config(home)
    yield Settings.load(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def reader() -> Iterator[duckdb.DuckDBPyConnection]:
    r = duckdb.connect()
    yield r
    raw.close_reader(r)


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def _parse(reader: duckdb.DuckDBPyConnection, s: Settings, rel: str,
           data: bytes) -> raw.Parsed | None:
    """One file through the raw parsers; None = a clean reject with a catalogue file rule."""
    try:
        fmt = raw.detect_format(rel, data)
        if fmt == "csv":
            return raw.parse_template_csv(reader, data, "fid", rel, s)
        if fmt == "xlsx":
            return raw.parse_template_xlsx(data, "fid", rel, s)
        return raw.parse_dhis2(reader, data, "fid", fmt, s.paths.landing, s)
    except raw.FileRejected as exc:
        assert exc.rule in FILE_RULES and exc.detail, exc
        return None


def _check_parsed(p: raw.Parsed | None) -> None:
    if p is None:
        return
    assert p.n_rows_read == len(p.rows) > 0
    assert set(p.cells["raw_row_id"]) <= set(p.rows["raw_row_id"])
    assert p.rows["raw_row_id"].is_unique


@PROFILE
@given(data=st.binary(max_size=2000))
def test_any_bytes_as_csv_xlsx_or_json_is_parsed_or_cleanly_rejected(env_settings, reader, data):
    for rel in ("x/tb/f.csv", "x/tb/f.xlsx", "dhis2/f.json", "dhis2/f.csv"):
        _check_parsed(_parse(reader, env_settings, rel, data))


@PROFILE
@given(text=CSV_TEXT, encoding=ENCODINGS)
def test_any_template_like_text_as_csv_is_parsed_or_cleanly_rejected(env_settings, reader, text,
                                                                     encoding):
    data = _encode(text, encoding)
    _check_parsed(_parse(reader, env_settings, "x/tb/f.csv", data))
    _check_parsed(_parse(reader, env_settings, "dhis2/f.csv", data))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["tb_skrining", "202503", hc.PKM, "dataValues"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["dataElement", "period", "orgUnit", "value", "completeDate",
                         "categoryOptionCombo", "x"]) | st.text(max_size=6), children, max_size=5),
    max_leaves=20)


@PROFILE
@given(doc=st.dictionaries(
    st.sampled_from(["dataValues", "period", "orgUnit", "completeDate", "x"]), JSON_VALUES,
    max_size=4))
def test_any_json_shape_as_dhis2_is_parsed_or_cleanly_rejected(env_settings, reader, doc):
    import json

    data = json.dumps(doc).encode()
    _check_parsed(_parse(reader, env_settings, "dhis2/f.json", data))


CELL = (st.none() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True, allow_infinity=False)
        | st.text(max_size=10) | st.dates(date(1900, 1, 1), date(2100, 1, 1))
        | st.sampled_from(["periode", "kode_faskes", "tb_skrining", "ht_skrining", "=SUM(1,2)",
                           hc.PKM, "2025-03", "Nama Pasien"]))


def _xlsx_bytes(sheets: list[list[list[object]]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for i, rows in enumerate(sheets):
        ws = wb.create_sheet(["tb", "Sheet1", "ptm", "petunjuk"][i % 4] + ("" if i < 4 else str(i)))
        for r in rows:
            ws.append([re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", v) if isinstance(v, str) else v
                       for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@SLOW_PROFILE
@given(sheets=st.lists(st.lists(st.lists(CELL, max_size=8), max_size=6), min_size=1, max_size=3),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3))
def test_any_workbook_and_any_corruption_of_it_is_parsed_or_cleanly_rejected(env_settings, reader,
                                                                             sheets, flips):
    data = bytearray(_xlsx_bytes(sheets))
    _check_parsed(_parse(reader, env_settings, "x/tb/f.xlsx", bytes(data)))
    for pos, byte in flips:   # flip bytes anywhere: zip directory, compressed XML, …
        data[pos % len(data)] = byte
    _check_parsed(_parse(reader, env_settings, "x/tb/f.xlsx", bytes(data)))


@SLOW_PROFILE
@given(text=CSV_TEXT, encoding=ENCODINGS, blob=st.binary(max_size=300))
def test_ingest_then_clean_loses_nothing_for_any_input(text, encoding, blob):
    """End to end through the raw and clean layers: any file is ingested or rejected with a rule,
    and every raw row it yields is kept or quarantined (`clean.accounting`)."""
    home = Path(tempfile.mkdtemp(prefix="kolab_prop_e2e_"))
    try:
        hc.write_registry(home)
        hc.write_config(home)
        landing = home / "landing"
        (landing / "x" / "tb").mkdir(parents=True)
        (landing / "x" / "tb" / "a.csv").write_bytes(_encode(text, encoding))
        (landing / "x" / "tb" / "b.xlsx").write_bytes(blob)
        (landing / "dhis2").mkdir()
        (landing / "dhis2" / "c.json").write_bytes(blob)
        s = Settings.load(home)
        con = connect(s.paths.warehouse)
        try:
            ensure_schema(con)
            reference.load_catalogues(con)
            reference.load_registry(con, s)
            summary = raw.ingest_landing(con, s)
            clean.build_clean(con, s)
            statuses = con.execute("SELECT status, reject_rule FROM raw.landing_file").fetchall()
            assert summary.files_seen == 3
            assert all((st_ == "ingested" and r is None) or (st_ == "rejected" and r in FILE_RULES)
                       for st_, r in statuses)
            assert raw.unreconciled_files(con).empty
            acc = clean.accounting(con)
            assert acc["ok"], acc
        finally:
            con.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- the clean layer's normalisers -------------------------------------------------------------

@pytest.fixture(scope="module")
def macro_con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


ANY_TEXT = st.none() | st.text(max_size=25) | st.sampled_from(
    ["", " ", "-", "nihil", "1.234", "1,234", "12,00", "Maret 2025", "Mar-25", "202503", "45717",
     "2025-13", "0000-00", "9" * 25, "\x00", "١٢", "１２", "1e3", "-0", "+5", "٣/2025"])
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
# the whitespace the clean layer documents as blank (kolab_norm_text: \s of RE2 and NBSP)
BLANK = " \t\r\n\f\u00a0"
BIGINT_MAX = 2**63 - 1


@MACRO_PROFILE
@given(values=st.lists(ANY_TEXT, min_size=1, max_size=40))
def test_period_parser_gives_a_month_or_null_never_an_error(macro_con, values):
    out = clean.parse_periods(values, macro_con)
    assert len(out) == len(values)
    for v, p in zip(values, out, strict=True):
        assert p is None or (PERIOD.fullmatch(p) and 1990 <= int(p[:4]) <= 2100), (v, p)
        if v is None or not v.strip(BLANK):
            assert p is None


@MACRO_PROFILE
@given(values=st.lists(ANY_TEXT, min_size=1, max_size=40))
def test_count_parser_gives_a_non_negative_integer_blank_or_invalid_never_an_error(macro_con,
                                                                                   values):
    out = clean.parse_counts(values, macro_con)
    assert len(out) == len(values)
    for v, n in zip(values, out, strict=True):
        assert n is None or n == "invalid" or (isinstance(n, int) and 0 <= n <= BIGINT_MAX), (v, n)
        if v is None or not v.strip(BLANK):
            assert n is None          # blank = not reported, never 0 and never invalid
        negative = (v is not None and v.strip().startswith("-") and v.strip() != "-"
                    and any(ch.isdigit() for ch in v))
        if negative:
            assert n == "invalid"     # a negative count is V06, never its absolute value


@MACRO_PROFILE
@given(values=st.lists(ANY_TEXT, min_size=1, max_size=40))
def test_date_parser_gives_a_date_or_null_never_an_error(macro_con, values):
    out = clean.parse_dates(values, macro_con)
    assert all(d is None or isinstance(d, date) for d in out)


@MACRO_PROFILE
@given(n=st.integers(0, 10**15))
def test_count_round_trips_every_written_form_of_a_whole_number(macro_con, n):
    forms = [str(n), f" {n} ", f"{n:,}", f"{n:,}".replace(",", "."), f"{n}.0", f"{n},00"]
    assert clean.parse_counts(forms, macro_con) == [n] * len(forms)


MONTHS_ID = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
             "Oktober", "November", "Desember"]


@MACRO_PROFILE
@given(y=st.integers(1990, 2100), m=st.integers(1, 12))
def test_period_round_trips_every_accepted_spelling(macro_con, y, m):
    want = f"{y:04d}-{m:02d}"
    forms = [want, f"{y}/{m}", f"{m:02d}/{y}", f"{m}-{y}", f"{y}{m:02d}", f"{want}-01",
             f"{MONTHS_ID[m - 1]} {y}", f"{MONTHS_ID[m - 1].upper()}  {y}"]
    assert clean.parse_periods(forms, macro_con) == [want] * len(forms)


@MACRO_PROFILE
@given(y=st.one_of(st.integers(0, 1989), st.integers(2101, 9999)), m=st.integers(1, 12))
def test_periods_outside_1990_2100_are_unreadable(macro_con, y, m):
    assert clean.parse_periods([f"{y:04d}-{m:02d}", f"{m:02d}/{y:04d}"], macro_con) == [None, None]


def test_a_cell_of_only_unicode_whitespace_is_blank_not_invalid(macro_con):
    # Python's str.strip() and Excel's TRIM/CLEAN treat these as nothing; so must the count parser:
    # blank = not reported (NULL), never V06 (which would quarantine the whole row).
    values = ["\x0b", "\u2003", "\u3000", " \u2009 "]
    assert clean.parse_counts(values, macro_con) == [None, None, None, None]
