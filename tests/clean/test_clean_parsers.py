"""The clean layer's SQL parsers (periods, counts, dates) on every spelling they must accept."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from kolab_pipeline import clean


@pytest.fixture(scope="module")
def mem() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


PERIODS = [
    ("2025-03", "2025-03"),
    ("2025/03", "2025-03"),
    ("2025-3", "2025-03"),
    ("03/2025", "2025-03"),
    ("3-2025", "2025-03"),
    ("3/2025", "2025-03"),
    ("Maret 2025", "2025-03"),
    ("MARET 2025", "2025-03"),
    ("maret 2025", "2025-03"),
    ("Mar 2025", "2025-03"),
    ("Mar-25", "2025-03"),
    ("  Maret  2025 ", "2025-03"),
    ("2025-03-01", "2025-03"),
    ("2025-03-01 00:00:00", "2025-03"),
    ("01/03/2025", "2025-03"),   # day first: 1 March
    ("15-03-2025", "2025-03"),
    ("202503", "2025-03"),       # DHIS2
    ("45717", "2025-03"),        # Excel serial: 1899-12-30 + 45717 days = 2025-03-01
    ("45747", "2025-03"),        # 45717 + 30 = 2025-03-31
    ("45748", "2025-04"),        # next day
    ("45717.0", "2025-03"),
    # every Indonesian and English month name / abbreviation
    ("Januari 2025", "2025-01"), ("Jan 2025", "2025-01"), ("January 2025", "2025-01"),
    ("Februari 2025", "2025-02"), ("Feb 2025", "2025-02"), ("Peb 2025", "2025-02"),
    ("Pebruari 2025", "2025-02"),
    ("April 2025", "2025-04"), ("Apr-25", "2025-04"),
    ("Mei 2025", "2025-05"), ("May 2025", "2025-05"),
    ("Juni 2025", "2025-06"), ("Jun 2025", "2025-06"),
    ("Juli 2025", "2025-07"), ("Jul-25", "2025-07"),
    ("Agustus 2025", "2025-08"), ("Agu 2025", "2025-08"), ("Agt 2025", "2025-08"),
    ("Aug 2025", "2025-08"),
    ("September 2025", "2025-09"), ("Sep 2025", "2025-09"), ("Sept 2025", "2025-09"),
    ("Oktober 2025", "2025-10"), ("Okt 2025", "2025-10"), ("Oct 2025", "2025-10"),
    ("November 2025", "2025-11"), ("Nov 2025", "2025-11"), ("Nop 2025", "2025-11"),
    ("Desember 2024", "2024-12"), ("Des 2024", "2024-12"), ("Dec-24", "2024-12"),
    ("2025 Maret", "2025-03"),
    # unreadable → NULL (V05)
    ("", None), ("   ", None), (None, None), ("2025-13", None), ("13/2025", None),
    ("Marc 2025", None),
    ("bulan lalu", None), ("202513", None), ("2025", None), ("12345", None), ("Smarch 2025", None),
]


@pytest.mark.parametrize(("text", "expected"), PERIODS)
def test_parse_period(mem: duckdb.DuckDBPyConnection, text: str | None,
                      expected: str | None) -> None:
    assert clean.parse_periods([text], mem) == [expected]


COUNTS = [
    ("12", 12), ("0", 0), ("007", 7),
    ("1.234", 1234),          # Indonesian thousands separator
    ("1,234", 1234),          # English thousands separator: same rule (group of exactly 3 digits)
    ("1.234.567", 1234567), ("12.345", 12345), ("1,234,567", 1234567),
    ("12.0", 12), ("12,00", 12),   # spreadsheet float of a whole number
    (" 15 ", 15),
    ("-", 0), ("–", 0), ("nihil", 0), ("NIHIL", 0), ("tidak ada", 0), ("Tidak Ada", 0),
    ("nol", 0),
    ("", None), ("  ", None), (None, None),   # blank = not reported, never 0
    ("-3", "invalid"), ("1,5", "invalid"), ("2.5", "invalid"), ("1.23", "invalid"),
    ("1.2345", "invalid"), ("1.234,5", "invalid"), ("abc", "invalid"), ("12 orang", "invalid"),
    ("1.234.56", "invalid"), ("99999999999999999999999", "invalid"),
]


@pytest.mark.parametrize(("text", "expected"), COUNTS)
def test_parse_count(mem: duckdb.DuckDBPyConnection, text: str | None,
                     expected: int | str | None) -> None:
    assert clean.parse_counts([text], mem) == [expected]


DATES = [
    ("2025-04-03", date(2025, 4, 3)), ("2025-04-03 10:15:00", date(2025, 4, 3)),
    ("03/04/2025", date(2025, 4, 3)), ("3-4-2025", date(2025, 4, 3)),
    ("03.04.2025", date(2025, 4, 3)),
    ("45750", date(2025, 4, 3)),     # 45717 = 1 March; + 33 days = 3 April
    ("3 April 2025", date(2025, 4, 3)), ("5 Mei 2025", date(2025, 5, 5)),
    ("31/02/2025", None), ("kemarin", None), ("", None), (None, None),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
def test_parse_date(mem: duckdb.DuckDBPyConnection, text: str | None,
                    expected: date | None) -> None:
    assert clean.parse_dates([text], mem) == [expected]


def test_month_names_cover_every_month() -> None:
    assert sorted(set(clean.MONTH_NAMES.values())) == list(range(1, 13))
