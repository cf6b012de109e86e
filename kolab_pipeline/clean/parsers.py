"""The clean layer's parsers: periods, dates, counts and nil marks as DuckDB macros.

The macros are the one implementation (the build runs them over whole columns); `parse_periods`,
`parse_counts` and `parse_dates` run them on a Python list, for tests and probing. The spellings
each parser accepts are listed in docs/design/clean.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import duckdb

from kolab_pipeline.warehouse import Staging, ident

# Month names and abbreviations (Indonesian and English, incl. old spellings Peb/Nop/Agt).
MONTH_NAMES: dict[str, int] = {
    "januari": 1, "january": 1, "jan": 1,
    "februari": 2, "pebruari": 2, "february": 2, "feb": 2, "peb": 2,
    "maret": 3, "march": 3, "mar": 3,
    "april": 4, "apr": 4,
    "mei": 5, "may": 5,
    "juni": 6, "june": 6, "jun": 6,
    "juli": 7, "july": 7, "jul": 7,
    "agustus": 8, "august": 8, "agu": 8, "agt": 8, "ags": 8, "aug": 8, "agust": 8,
    "september": 9, "sept": 9, "sep": 9,
    "oktober": 10, "october": 10, "okt": 10, "oct": 10,
    "november": 11, "nopember": 11, "nov": 11, "nop": 11,
    "desember": 12, "december": 12, "des": 12, "dec": 12,
}
ZERO_WORDS = ("-", "–", "—", "nihil", "tidak ada", "nol")
NIL_MARKS = ("1", "ya", "y", "yes", "true", "nihil", "x")
# Report scope (`lingkup_laporan`) spellings, after lower case and every run of other characters
# → `_`; a blank cell (or `-`) declares nothing. Anything else is unreadable (L01).
SCOPE_WORDS: dict[str, tuple[str, ...]] = {
    "faskes": ("faskes", "fasilitas", "fasyankes", "faskes_sendiri", "sendiri",
               "pelayanan_sendiri", "own", "facility", "own_services"),
    "wilayah": ("wilayah", "wilayah_kerja", "wilker", "rekap", "rekap_wilayah",
                "rekap_wilayah_kerja", "rekapitulasi", "area", "recap", "area_recap"),
}


def sql_list(words: Iterable[str]) -> str:
    """A SQL list literal of fixed code constants (never user text)."""
    return ", ".join("'" + w.replace("'", "''") + "'" for w in words)


_MONTH_CASE = " ".join(f"WHEN '{name}' THEN {no}" for name, no in MONTH_NAMES.items())

MONTH_NO = f"""CREATE OR REPLACE TEMP MACRO kolab_month_no(name) AS
  CASE name {_MONTH_CASE} ELSE NULL END"""

YEAR_MONTH = """CREATE OR REPLACE TEMP MACRO kolab_ym(y, m) AS
  CASE WHEN TRY_CAST(m AS INTEGER) BETWEEN 1 AND 12
        AND TRY_CAST(y AS INTEGER) BETWEEN 1990 AND 2100
       THEN printf('%04d-%02d', TRY_CAST(y AS INTEGER), TRY_CAST(m AS INTEGER)) END"""

# two-digit years are 20YY (`Mar-25`)
YEAR4 = """CREATE OR REPLACE TEMP MACRO kolab_year4(y) AS
  CASE WHEN length(y) = 2 THEN '20' || y ELSE y END"""

NORM_TEXT = r"""CREATE OR REPLACE TEMP MACRO kolab_norm_text(t) AS
  -- any Unicode space (\pZ: NBSP, em space, ideographic space…) and vertical tab count as
  -- white space, so a cell of only spaces is blank (not reported), never invalid
  lower(trim(regexp_replace(coalesce(t, ''), '[\s\x{000B}\pZ]+', ' ', 'g')))"""

PERIOD_NORM = r"""CREATE OR REPLACE TEMP MACRO kolab_period_norm(s) AS
  CASE
    WHEN s = '' THEN NULL
    WHEN regexp_full_match(s, '\d{4}\s*[-/.]\s*\d{1,2}')
      THEN kolab_ym(regexp_extract(s, '^(\d{4})', 1), regexp_extract(s, '(\d{1,2})$', 1))
    WHEN regexp_full_match(s, '\d{1,2}\s*[-/.]\s*\d{4}')
      THEN kolab_ym(regexp_extract(s, '(\d{4})$', 1), regexp_extract(s, '^(\d{1,2})', 1))
    WHEN regexp_full_match(s, '\d{6}')
      THEN kolab_ym(substr(s, 1, 4), substr(s, 5, 2))
    WHEN regexp_full_match(s, '\d{4}-\d{1,2}-\d{1,2}([ t].*)?')
      THEN kolab_ym(regexp_extract(s, '^(\d{4})', 1),
                    regexp_extract(s, '^\d{4}-(\d{1,2})', 1))
    WHEN regexp_full_match(s, '\d{1,2}[-/.]\d{1,2}[-/.]\d{4}( .*)?')
      THEN kolab_ym(regexp_extract(s, '^\d{1,2}[-/.]\d{1,2}[-/.](\d{4})', 1),
                    regexp_extract(s, '^\d{1,2}[-/.](\d{1,2})', 1))
    WHEN regexp_full_match(s, '\d{5}(\.0+)?')
         AND TRY_CAST(s AS DOUBLE) BETWEEN 32874 AND 73051
      -- Excel serial day number (1900 date system: day 0 = 1899-12-30), 1990..2099
      THEN strftime(DATE '1899-12-30' + CAST(TRY_CAST(s AS DOUBLE) AS INTEGER), '%Y-%m')
    WHEN regexp_full_match(s, '[a-z]+[^a-z0-9]*(\d{2}|\d{4})')
      THEN kolab_ym(kolab_year4(regexp_extract(s, '(\d+)$', 1)),
                    kolab_month_no(regexp_extract(s, '^([a-z]+)', 1)))
    WHEN regexp_full_match(s, '\d{4}[^a-z0-9]*[a-z]+')
      THEN kolab_ym(regexp_extract(s, '^(\d{4})', 1),
                    kolab_month_no(regexp_extract(s, '([a-z]+)$', 1)))
  END"""

PARSE_PERIOD = """CREATE OR REPLACE TEMP MACRO kolab_parse_period(t) AS
  kolab_period_norm(kolab_norm_text(t))"""

DATE_NORM = r"""CREATE OR REPLACE TEMP MACRO kolab_date_norm(s) AS
  CASE
    WHEN s = '' THEN NULL
    WHEN regexp_full_match(s, '\d{4}-\d{1,2}-\d{1,2}([ t].*)?')
      THEN CAST(try_strptime(regexp_extract(s, '^(\d{4}-\d{1,2}-\d{1,2})', 1), '%Y-%m-%d')
                AS DATE)
    WHEN regexp_full_match(s, '\d{1,2}[-/.]\d{1,2}[-/.]\d{4}( .*)?')
      THEN CAST(try_strptime(
             regexp_replace(regexp_extract(s, '^(\d{1,2}[-/.]\d{1,2}[-/.]\d{4})', 1),
                            '[-.]', '/', 'g'),
             '%d/%m/%Y') AS DATE)
    WHEN regexp_full_match(s, '\d{5}(\.\d+)?')
         AND TRY_CAST(s AS DOUBLE) BETWEEN 32874 AND 73051
      THEN DATE '1899-12-30' + CAST(floor(TRY_CAST(s AS DOUBLE)) AS INTEGER)
    WHEN regexp_full_match(s, '\d{1,2}[ -]+[a-z]+[ -]+\d{4}')
      THEN CAST(try_strptime(
             printf('%s-%s-%s', regexp_extract(s, '(\d{4})$', 1),
                    CAST(kolab_month_no(regexp_extract(s, '([a-z]+)', 1)) AS VARCHAR),
                    regexp_extract(s, '^(\d{1,2})', 1)),
             '%Y-%m-%d') AS DATE)
  END"""

PARSE_DATE = """CREATE OR REPLACE TEMP MACRO kolab_parse_date(t) AS
  kolab_date_norm(kolab_norm_text(t))"""

COUNT_SLOW = rf"""CREATE OR REPLACE TEMP MACRO kolab_count_slow(s) AS
  CASE
    WHEN s = '' THEN NULL
    WHEN s IN ({sql_list(ZERO_WORDS)}) THEN '0'
    WHEN regexp_full_match(s, '\d+') THEN s
    WHEN regexp_full_match(s, '\d{{1,3}}(\.\d{{3}})+') THEN replace(s, '.', '')
    WHEN regexp_full_match(s, '\d{{1,3}}(,\d{{3}})+') THEN replace(s, ',', '')
    WHEN regexp_full_match(s, '\d+[.,]0{{1,2}}') THEN regexp_extract(s, '^(\d+)', 1)
    ELSE '#'
  END"""

# fast path first: most cells are plain digits (no regex, no lower/trim)
COUNT_NORM = """CREATE OR REPLACE TEMP MACRO kolab_count_norm(t) AS
  CASE WHEN t IS NULL THEN NULL
       WHEN t <> '' AND ltrim(t, '0123456789') = '' THEN t
       ELSE kolab_count_slow(kolab_norm_text(t)) END"""

# '#' also for digits too long for BIGINT: invalid, never silently NULL
COUNT_BAD = """CREATE OR REPLACE TEMP MACRO kolab_count_bad(norm) AS
  coalesce(norm = '#' OR TRY_CAST(norm AS BIGINT) IS NULL AND norm IS NOT NULL, false)"""

COUNT_TEXT = """CREATE OR REPLACE TEMP MACRO kolab_count_text(t) AS
  CASE WHEN kolab_count_bad(kolab_count_norm(t)) THEN '#' ELSE kolab_count_norm(t) END"""

IS_NIL = f"""CREATE OR REPLACE TEMP MACRO kolab_is_nil(t) AS
  kolab_norm_text(t) IN ({sql_list(NIL_MARKS)})"""

# user text (kode, value) is substituted last so it can never inject a placeholder
FILL = """CREATE OR REPLACE TEMP MACRO kolab_fill(tpl, v, col, kode, per, jenis, recv) AS
  replace(replace(replace(replace(replace(replace(tpl,
    '{column}', coalesce(col, '')), '{jenis}', coalesce(jenis, '')),
    '{received}', coalesce(strftime(recv, '%Y-%m-%d'), '')),
    '{period}', coalesce(per, '')), '{kode}', coalesce(kode, '')), '{value}', coalesce(v, ''))"""

_SCOPE_CASE = " ".join(f"WHEN s IN ({sql_list(words)}) THEN '{scope}'"
                      for scope, words in SCOPE_WORDS.items())

# 'faskes' | 'wilayah', NULL when blank, '#' when unreadable (L01)
SCOPE_NORM = f"""CREATE OR REPLACE TEMP MACRO kolab_scope_norm(s) AS
  CASE WHEN s = '' THEN NULL {_SCOPE_CASE} ELSE '#' END"""

REPORT_SCOPE = """CREATE OR REPLACE TEMP MACRO kolab_report_scope(t) AS
  CASE WHEN t IS NULL THEN NULL
       ELSE kolab_scope_norm(trim(regexp_replace(kolab_norm_text(t), '[^a-z0-9]+', '_', 'g'),
                                  '_')) END"""

MACROS = (MONTH_NO, YEAR_MONTH, YEAR4, NORM_TEXT, PERIOD_NORM, PARSE_PERIOD, DATE_NORM, PARSE_DATE,
          COUNT_SLOW, COUNT_NORM, COUNT_BAD, COUNT_TEXT, IS_NIL, FILL, SCOPE_NORM, REPORT_SCOPE)


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the parsing macros (TEMP, per connection) used by the clean layer.

    - `kolab_month_no(name)` → 1..12 or NULL;
    - `kolab_parse_period(text)` → `YYYY-MM` or NULL (unreadable);
    - `kolab_parse_date(text)` → DATE or NULL (for `tanggal_lapor`);
    - `kolab_count_norm(text)` → digits as text, NULL for blank, `'#'` for an invalid value;
      `kolab_count_bad(norm)` → the value is invalid (V06; also digits too long for BIGINT);
      `kolab_count_text(text)` → both in one (for probing; the build computes `norm` once per cell);
    - `kolab_is_nil(text)` → the `laporan_nihil` cell marks a nil report;
    - `kolab_report_scope(text)` → `faskes` | `wilayah`, NULL (blank), `'#'` (unreadable, L01);
    - `kolab_fill(template, value, column, kode, period, jenis, received_date)` → a filled message.
    """
    for sql in MACROS:
        con.execute(sql)


def _scalar_map(con: duckdb.DuckDBPyConnection, macro: str,
                values: Sequence[str | None]) -> list[Any]:
    """`macro` applied to each of `values`, in order."""
    install_macros(con)
    with Staging(con, "_kolab") as stage:
        probe = stage.create("probe", "SELECT NULL::INTEGER AS i, NULL::VARCHAR AS t LIMIT 0")
        con.executemany(f"INSERT INTO {probe} VALUES (?, ?)", list(enumerate(values)))
        out = con.execute(f"SELECT {ident(macro)}(t) FROM {probe} ORDER BY i").fetchall()
    return [r[0] for r in out]


def parse_periods(values: Sequence[str | None],
                  con: duckdb.DuckDBPyConnection | None = None) -> list[str | None]:
    """Run the period parser (the SQL macro, the one implementation) on a list of texts."""
    return _scalar_map(con or duckdb.connect(), "kolab_parse_period", values)


def parse_counts(values: Sequence[str | None],
                 con: duckdb.DuckDBPyConnection | None = None) -> list[int | str | None]:
    """Run the count parser: an int, None for blank, or the string `'invalid'` (V06)."""
    raw = _scalar_map(con or duckdb.connect(), "kolab_count_text", values)
    return ["invalid" if v == "#" else (None if v is None else int(v)) for v in raw]


def parse_dates(values: Sequence[str | None],
                con: duckdb.DuckDBPyConnection | None = None) -> list[Any]:
    """Run the `tanggal_lapor` date parser: a `date`, or None (blank or unreadable)."""
    return _scalar_map(con or duckdb.connect(), "kolab_parse_date", values)


def parse_scopes(values: Sequence[str | None],
                 con: duckdb.DuckDBPyConnection | None = None) -> list[str | None]:
    """Run the `lingkup_laporan` parser: `faskes`, `wilayah`, None (blank) or `'invalid'`."""
    raw = _scalar_map(con or duckdb.connect(), "kolab_report_scope", values)
    return ["invalid" if v == "#" else v for v in raw]
