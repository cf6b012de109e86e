"""Clean layer: normalise raw rows, validate them against the rule catalogue, version
resubmissions, and write the `clean.*` tables — deterministic DuckDB SQL, incremental by default
(only raw files new since the last build, and the facility × period × form keys they touch, are
recomputed; the result equals a full rebuild, which `build_clean(..., full=True)` forces).

Tables (grain in `catalog/tables.yaml`):
- `clean.submission` — one facility × period × form × version (every valid raw row is one version);
- `clean.submission_value` — facility × period × form × data element of the *current* version;
- `clean.submission_value_history` — the same for every version, with the previous version's value;
- `clean.quarantine` — one rejected raw row (or whole file) × rule that rejected it;
- `clean.validation_flag` — one kept current submission × warning rule × relation/element.

Nothing is lost: every raw row ends in `clean.submission` (kept) or in `clean.quarantine` (≥1 rule);
`accounting()` proves it. A row with any error is quarantined whole — we never keep half a report,
because a partial row would silently look like a complete one to the compliance layer.

Normalisation decisions (documented because they are judgement calls):
- **Facility**: the `kode_faskes` cell, normalised (`reference.norm_sql`), is looked up in
  `reference.facility_alias` (codes, local codes and unambiguous names). Only when the code cell is
  blank is the `nama_faskes` cell looked up. A code that is written but unknown is V01 even if the
  name would match: a wrong code is a signal the clerk must fix, never something we guess around.
- **Period** → `YYYY-MM` from `2025-03`, `2025/03`, `03/2025`, `3-2025`, `202503` (DHIS2), `2025-03-01`
  (also with a time), `01/03/2025` (day first, the Indonesian order), Excel serial numbers
  (`45717` = 2025-03-01) and month names in Indonesian or English (`Maret 2025`, `Mar-25`, `Peb 2025`,
  `Nop 2025`, `Agt 2025`…; two-digit years are 20YY). Years outside 1990–2100 are unreadable (V05).
- **Counts**: digits only → the number. A single kind of separator followed by groups of exactly
  three digits is a thousands separator, in either convention (`1.234` = `1,234` = 1234,
  `1.234.567` = 1234567): monthly counts are whole numbers, so `1.234` can only mean a thousand-odd.
  `12.0` / `12,00` (a spreadsheet float) is 12. Anything else with a separator (`1,5`, `2.5`,
  `1.23`) is fractional → V06. `-`, `–`, `nihil`, `tidak ada`, `nol` mean zero; blank stays NULL
  (not reported, never 0); negative numbers or other text → V06.
- **Nil report** (`laporan_nihil` in 1/ya/y/yes/true/nihil/x): blank cells become 0; any non-zero
  value contradicts the nil mark → V06N.
- **Received time** of a row: `tanggal_lapor` when present and readable (a date, taken as 00:00
  local time of the facility's kab/kota, converted to UTC), else the file's `received_at`.
  `received_source` records which. V05F fires when the period starts after the received local date.
- **Versions**: valid rows of one facility × period × form are ordered by the row's received time
  (`tanggal_lapor` when present, else the file's `received_at`), then the *file-level* `received_at`,
  source path, sheet and row number: version 1 is the first received, the last is current.
  Why the row's time first: a puskesmas recap forwarded on the 10th can carry a clinic's report of
  the 2nd, while the clinic's own correction arrived on the 5th — the correction is the newer
  version (this is also what the sample generator's ground truth expects). Within the same day
  (tanggal_lapor has no time), the file that reached us later wins.
  `submission_id = md5(kode_faskes|period|form|version)`.
- **Warnings** (V07, V08, V09, V11 relations from the catalogue, on year-to-date sums of the
  facility's current versions; V13 element not expected from the facility type) flag current
  submissions only: superseded versions are history, not data in force. A YTD relation is judged
  only when the facility has a current report of that form for every month from January to the
  period: with a month missing (or data starting mid-year) K4 can legitimately exceed K1 because
  the K1 visits are in the missing months, and a flag would be noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from kolab_pipeline import catalog
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import Settings
from kolab_pipeline.reference import norm_sql
from kolab_pipeline.rules import Relation, rules, rules_rows
from kolab_pipeline.warehouse import ensure_schema, ident, table, transaction

CLEAN_TABLES = ("clean.submission", "clean.submission_value", "clean.submission_value_history",
                "clean.quarantine", "clean.validation_flag")
# what the last build cleaned (one row per raw file): the base of incremental builds
STATE = "clean.build_state"

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


def _sql_list(words: Iterable[str]) -> str:
    """A SQL list literal of fixed code constants (never user text)."""
    return ", ".join("'" + w.replace("'", "''") + "'" for w in words)


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the parsing macros (TEMP, per connection) used by the clean layer.

    - `kolab_month_no(name)` → 1..12 or NULL;
    - `kolab_parse_period(text)` → `YYYY-MM` or NULL (unreadable);
    - `kolab_parse_date(text)` → DATE or NULL (for `tanggal_lapor`);
    - `kolab_count_norm(text)` → digits as text, NULL for blank, `'#'` for an invalid value;
      `kolab_count_bad(norm)` → the value is invalid (V06; also digits too long for BIGINT);
      `kolab_count_text(text)` → both in one (for probing; the build computes `norm` once per cell);
    - `kolab_fill(template, value, column, kode, period, jenis, received_date)` → a filled message.
    """
    month_case = " ".join(f"WHEN '{k}' THEN {v}" for k, v in MONTH_NAMES.items())
    macros = [
        f"CREATE OR REPLACE TEMP MACRO kolab_month_no(name) AS CASE name {month_case} ELSE NULL END",
        """CREATE OR REPLACE TEMP MACRO kolab_ym(y, m) AS
             CASE WHEN TRY_CAST(m AS INTEGER) BETWEEN 1 AND 12 AND TRY_CAST(y AS INTEGER) BETWEEN 1990 AND 2100
                  THEN printf('%04d-%02d', TRY_CAST(y AS INTEGER), TRY_CAST(m AS INTEGER)) END""",
        # two-digit years are 20YY (`Mar-25`)
        """CREATE OR REPLACE TEMP MACRO kolab_year4(y) AS
             CASE WHEN length(y) = 2 THEN '20' || y ELSE y END""",
        r"""CREATE OR REPLACE TEMP MACRO kolab_norm_text(t) AS
             -- any Unicode space (\pZ: NBSP, em space, ideographic space…) and vertical tab count as
             -- white space, so a cell of only spaces is blank (not reported), never invalid
             lower(trim(regexp_replace(coalesce(t, ''), '[\s\x{000B}\pZ]+', ' ', 'g')))""",
        r"""CREATE OR REPLACE TEMP MACRO kolab_period_norm(s) AS
           CASE
             WHEN s = '' THEN NULL
             WHEN regexp_full_match(s, '\d{4}\s*[-/.]\s*\d{1,2}')
               THEN kolab_ym(regexp_extract(s, '^(\d{4})', 1), regexp_extract(s, '(\d{1,2})$', 1))
             WHEN regexp_full_match(s, '\d{1,2}\s*[-/.]\s*\d{4}')
               THEN kolab_ym(regexp_extract(s, '(\d{4})$', 1), regexp_extract(s, '^(\d{1,2})', 1))
             WHEN regexp_full_match(s, '\d{6}')
               THEN kolab_ym(substr(s, 1, 4), substr(s, 5, 2))
             WHEN regexp_full_match(s, '\d{4}-\d{1,2}-\d{1,2}([ t].*)?')
               THEN kolab_ym(regexp_extract(s, '^(\d{4})', 1), regexp_extract(s, '^\d{4}-(\d{1,2})', 1))
             WHEN regexp_full_match(s, '\d{1,2}[-/.]\d{1,2}[-/.]\d{4}( .*)?')
               THEN kolab_ym(regexp_extract(s, '^\d{1,2}[-/.]\d{1,2}[-/.](\d{4})', 1),
                             regexp_extract(s, '^\d{1,2}[-/.](\d{1,2})', 1))
             WHEN regexp_full_match(s, '\d{5}(\.0+)?') AND TRY_CAST(s AS DOUBLE) BETWEEN 32874 AND 73051
               -- Excel serial day number (1900 date system: day 0 = 1899-12-30), 1990..2099
               THEN strftime(DATE '1899-12-30' + CAST(TRY_CAST(s AS DOUBLE) AS INTEGER), '%Y-%m')
             WHEN regexp_full_match(s, '[a-z]+[^a-z0-9]*(\d{2}|\d{4})')
               THEN kolab_ym(kolab_year4(regexp_extract(s, '(\d+)$', 1)),
                             kolab_month_no(regexp_extract(s, '^([a-z]+)', 1)))
             WHEN regexp_full_match(s, '\d{4}[^a-z0-9]*[a-z]+')
               THEN kolab_ym(regexp_extract(s, '^(\d{4})', 1), kolab_month_no(regexp_extract(s, '([a-z]+)$', 1)))
           END""",
        "CREATE OR REPLACE TEMP MACRO kolab_parse_period(t) AS kolab_period_norm(kolab_norm_text(t))",
        r"""CREATE OR REPLACE TEMP MACRO kolab_date_norm(s) AS
           CASE
             WHEN s = '' THEN NULL
             WHEN regexp_full_match(s, '\d{4}-\d{1,2}-\d{1,2}([ t].*)?')
               THEN CAST(try_strptime(regexp_extract(s, '^(\d{4}-\d{1,2}-\d{1,2})', 1), '%Y-%m-%d') AS DATE)
             WHEN regexp_full_match(s, '\d{1,2}[-/.]\d{1,2}[-/.]\d{4}( .*)?')
               THEN CAST(try_strptime(regexp_replace(regexp_extract(s, '^(\d{1,2}[-/.]\d{1,2}[-/.]\d{4})', 1),
                                                     '[-.]', '/', 'g'), '%d/%m/%Y') AS DATE)
             WHEN regexp_full_match(s, '\d{5}(\.\d+)?') AND TRY_CAST(s AS DOUBLE) BETWEEN 32874 AND 73051
               THEN DATE '1899-12-30' + CAST(floor(TRY_CAST(s AS DOUBLE)) AS INTEGER)
             WHEN regexp_full_match(s, '\d{1,2}[ -]+[a-z]+[ -]+\d{4}')
               THEN CAST(try_strptime(printf('%s-%s-%s', regexp_extract(s, '(\d{4})$', 1),
                                             CAST(kolab_month_no(regexp_extract(s, '([a-z]+)', 1)) AS VARCHAR),
                                             regexp_extract(s, '^(\d{1,2})', 1)), '%Y-%m-%d') AS DATE)
           END""",
        "CREATE OR REPLACE TEMP MACRO kolab_parse_date(t) AS kolab_date_norm(kolab_norm_text(t))",
        rf"""CREATE OR REPLACE TEMP MACRO kolab_count_slow(s) AS
           CASE
             WHEN s = '' THEN NULL
             WHEN s IN ({_sql_list(ZERO_WORDS)}) THEN '0'
             WHEN regexp_full_match(s, '\d+') THEN s
             WHEN regexp_full_match(s, '\d{{1,3}}(\.\d{{3}})+') THEN replace(s, '.', '')
             WHEN regexp_full_match(s, '\d{{1,3}}(,\d{{3}})+') THEN replace(s, ',', '')
             WHEN regexp_full_match(s, '\d+[.,]0{{1,2}}') THEN regexp_extract(s, '^(\d+)', 1)
             ELSE '#'
           END""",
        # fast path first: most cells are plain digits (no regex, no lower/trim)
        """CREATE OR REPLACE TEMP MACRO kolab_count_norm(t) AS
             CASE WHEN t IS NULL THEN NULL
                  WHEN t <> '' AND ltrim(t, '0123456789') = '' THEN t
                  ELSE kolab_count_slow(kolab_norm_text(t)) END""",
        # '#' also for digits too long for BIGINT: invalid, never silently NULL
        """CREATE OR REPLACE TEMP MACRO kolab_count_bad(norm) AS
             coalesce(norm = '#' OR TRY_CAST(norm AS BIGINT) IS NULL AND norm IS NOT NULL, false)""",
        """CREATE OR REPLACE TEMP MACRO kolab_count_text(t) AS
             CASE WHEN kolab_count_bad(kolab_count_norm(t)) THEN '#' ELSE kolab_count_norm(t) END""",
        f"CREATE OR REPLACE TEMP MACRO kolab_is_nil(t) AS kolab_norm_text(t) IN ({_sql_list(NIL_MARKS)})",
        # user text (kode, value) is substituted last so it can never inject a placeholder
        """CREATE OR REPLACE TEMP MACRO kolab_fill(tpl, v, col, kode, per, jenis, recv) AS
             replace(replace(replace(replace(replace(replace(tpl,
               '{column}', coalesce(col, '')), '{jenis}', coalesce(jenis, '')),
               '{received}', coalesce(strftime(recv, '%Y-%m-%d'), '')),
               '{period}', coalesce(per, '')), '{kode}', coalesce(kode, '')), '{value}', coalesce(v, ''))""",
    ]
    for sql in macros:
        con.execute(sql)


def _scalar_map(con: duckdb.DuckDBPyConnection, macro: str, values: Sequence[str | None]) -> list[Any]:
    install_macros(con)
    con.execute("CREATE OR REPLACE TEMP TABLE _kolab_probe (i INTEGER, t VARCHAR)")
    con.executemany("INSERT INTO _kolab_probe VALUES (?, ?)", list(enumerate(values)))
    out = con.execute(f"SELECT {ident(macro)}(t) FROM _kolab_probe ORDER BY i").fetchall()
    con.execute("DROP TABLE _kolab_probe")
    return [r[0] for r in out]


def parse_periods(values: Sequence[str | None], con: duckdb.DuckDBPyConnection | None = None) -> list[str | None]:
    """Run the period parser (the SQL macro, the one implementation) on a list of texts."""
    return _scalar_map(con or duckdb.connect(), "kolab_parse_period", values)


def parse_counts(values: Sequence[str | None], con: duckdb.DuckDBPyConnection | None = None) -> list[int | str | None]:
    """Run the count parser: an int, None for blank, or the string `'invalid'` (V06)."""
    raw = _scalar_map(con or duckdb.connect(), "kolab_count_text", values)
    return ["invalid" if v == "#" else (None if v is None else int(v)) for v in raw]


def parse_dates(values: Sequence[str | None], con: duckdb.DuckDBPyConnection | None = None) -> list[Any]:
    return _scalar_map(con or duckdb.connect(), "kolab_parse_date", values)


def _register_rules(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE OR REPLACE TEMP TABLE _kolab_rule (rule_id VARCHAR, severity VARCHAR,
                   message_id VARCHAR, message_en VARCHAR, template_id VARCHAR, template_en VARCHAR,
                   applies_to VARCHAR)""")
    con.executemany("INSERT INTO _kolab_rule VALUES (?, ?, ?, ?, ?, ?, ?)", rules_rows())


def _stage_catalogue(con: duckdb.DuckDBPyConnection) -> None:
    """`_clean_catalogue`: the element catalogue, which decides which cells are data. If
    `reference.data_element` has not been loaded, the shipped catalogue is used rather than silently
    treating every cell as unknown."""
    loaded = con.execute("SELECT count(*) FROM reference.data_element").fetchone()[0] > 0
    source = ("reference.data_element" if loaded
              else f"read_csv('{catalog.DATA_ELEMENTS}', all_varchar=true)")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _clean_catalogue AS
                    SELECT code, any_value(form) AS form, any_value(expected_from) AS expected_from
                      FROM {source} GROUP BY code""")
    con.execute("CREATE OR REPLACE TEMP TABLE _clean_form_element AS SELECT DISTINCT code, form FROM _clean_catalogue")


# --- step 0: what changed since the last build ----------------------------------------------------

def _fingerprint(con: duckdb.DuckDBPyConnection, settings: Settings,
                 relations: list[tuple[str, Relation]]) -> str:
    """Everything the clean tables depend on besides the raw rows: this module's code, the rule
    catalogue, the default time zone and the reference rows the build reads (aliases, facility
    types/time zones, element catalogue). A different fingerprint forces a full rebuild."""
    ref = con.execute("""
        SELECT (SELECT concat(count(*), ':', coalesce(sum(hash(alias_norm, kode_faskes)), 0))
                  FROM reference.facility_alias),
               (SELECT concat(count(*), ':', coalesce(sum(hash(kode_faskes, jenis_faskes, timezone)), 0))
                  FROM reference.facility),
               (SELECT concat(count(*), ':', coalesce(sum(hash(code, form, expected_from)), 0))
                  FROM _clean_catalogue)""").fetchone()
    parts = [hashlib.sha256(Path(__file__).read_bytes()).hexdigest(), repr(rules_rows()), repr(relations),
             settings.config.timezones.default, *map(str, ref)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _stage_files(con: duckdb.DuckDBPyConnection) -> None:
    """`_clean_file_now`: one row per raw file (landing_file and/or submission_row file_id) with a
    signature of everything the clean layer reads from it: the manifest row and every raw row.
    The raw layer writes a file's rows and cells in one transaction and never edits them (a
    changed file is a new file_id), so a file whose signature is unchanged needs no cleaning."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_file_now AS
        SELECT coalesce(f.file_id, r.file_id) AS file_id,
               concat_ws(':', coalesce(r.n_rows, 0), coalesce(r.h, 0), coalesce(f.h, 0)) AS signature,
               coalesce(r.n_rows, 0) AS n_rows
          FROM (SELECT file_id, sum(hash(status, reject_rule, reject_reason, received_at, received_source,
                                         source_kind, run_id, ingested_at)) AS h
                  FROM raw.landing_file GROUP BY file_id) f
          FULL JOIN (SELECT file_id, count(*) AS n_rows,
                            sum(hash(raw_row_id, source_kind, source_path, sheet, row_number, form, periode,
                                     kode_faskes, nama_faskes, tanggal_lapor, laporan_nihil, received_at,
                                     run_id)) AS h
                       FROM raw.submission_row GROUP BY file_id) r ON r.file_id = f.file_id""")


def _needs_full(con: duckdb.DuckDBPyConnection, fingerprint: str) -> str | None:
    """Why an incremental build is not possible (None when it is)."""
    n_state, n_other = con.execute(f"SELECT count(*), count(*) FILTER (WHERE fingerprint <> ?) FROM {STATE}",
                                   [fingerprint]).fetchone()
    if n_state == 0:
        return "no previous build"
    if n_other:
        return "rules, settings, reference or code changed"
    if con.execute("SELECT count(*) FROM _clean_file_now WHERE file_id IS NULL").fetchone()[0]:
        return "raw rows without a file_id"
    if not con.execute("SELECT EXISTS (SELECT 1 FROM clean.submission) OR EXISTS (SELECT 1 FROM clean.quarantine)"
                       ).fetchone()[0]:
        return "clean tables are empty"
    return None


def _stage_scope(con: duckdb.DuckDBPyConnection) -> int:
    """`_clean_dirty` (files new, changed or gone since the last build) and `_clean_scope` (their
    raw rows). Returns the number of dirty files."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _clean_dirty AS
        SELECT coalesce(n.file_id, s.file_id) AS file_id
          FROM _clean_file_now n FULL JOIN {STATE} s ON s.file_id = n.file_id
         WHERE n.signature IS DISTINCT FROM s.signature""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_scope AS
        SELECT raw_row_id FROM raw.submission_row SEMI JOIN _clean_dirty USING (file_id)""")
    return con.execute("SELECT count(*) FROM _clean_dirty").fetchone()[0]


def _widen_scope(con: duckdb.DuckDBPyConnection) -> None:
    """The keys touched by the dirty files — facility × period × form of their kept rows now and of
    their rows kept by the last build — go back to the versioning whole: add the other kept rows of
    those keys (from unchanged files) to the scope. Errors never depend on another file, so rows of
    unchanged files keep their verdict; only versions (and YTD warnings) move."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_keys AS
        SELECT DISTINCT kode_faskes, period, form FROM (
            SELECT kode_faskes, period, form FROM _clean_rows ANTI JOIN _clean_err USING (raw_row_id)
            UNION ALL
            SELECT kode_faskes, period, form FROM clean.submission SEMI JOIN _clean_dirty USING (file_id))""")
    con.execute("""
        INSERT INTO _clean_scope
        SELECT s.raw_row_id FROM clean.submission s
          SEMI JOIN _clean_keys k ON k.kode_faskes = s.kode_faskes AND k.period = s.period AND k.form = s.form
          ANTI JOIN _clean_dirty d ON d.file_id = s.file_id""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _clean_groups AS
                   SELECT DISTINCT kode_faskes, form, substr(period, 1, 4) AS year FROM _clean_keys""")


# --- step 1: one normalised row per raw row ---------------------------------------------------

def _stage_rows(con: duckdb.DuckDBPyConnection, settings: Settings, scoped: bool) -> None:
    """`_clean_rows`: each raw row (of the scope) with its parsed period, resolved facility, form,
    nil flag and received time. Grain: one raw row. Period, date, nil-mark and facility texts repeat
    a lot, so each distinct text is parsed once (`_clean_map_*`) and joined back."""
    src = ("(SELECT * FROM raw.submission_row SEMI JOIN _clean_scope USING (raw_row_id))" if scoped
           else "raw.submission_row")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _clean_map_period AS
                    SELECT periode, kolab_parse_period(periode) AS period
                      FROM (SELECT DISTINCT periode FROM {src}) WHERE periode IS NOT NULL""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _clean_map_date AS
                    SELECT tanggal_lapor, kolab_parse_date(tanggal_lapor) AS d
                      FROM (SELECT DISTINCT tanggal_lapor FROM {src}) WHERE tanggal_lapor IS NOT NULL""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _clean_map_nil AS
                    SELECT laporan_nihil, kolab_is_nil(laporan_nihil) AS is_nil
                      FROM (SELECT DISTINCT laporan_nihil FROM {src}) WHERE laporan_nihil IS NOT NULL""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _clean_map_fac AS
        WITH alias AS (
            SELECT alias_norm, min(kode_faskes) AS kode_faskes
              FROM reference.facility_alias GROUP BY alias_norm
        ), n AS (
            SELECT kode_faskes AS kode_written, nama_faskes,
                   nullif({norm_sql('kode_faskes')}, '') AS kode_norm,
                   nullif({norm_sql('nama_faskes')}, '') AS nama_norm
              FROM (SELECT DISTINCT kode_faskes, nama_faskes FROM {src})
        )
        SELECT n.*, a.kode_faskes, f.jenis_faskes, coalesce(f.timezone, ?) AS tz
          FROM n
          LEFT JOIN alias a ON a.alias_norm = coalesce(n.kode_norm, n.nama_norm)
          LEFT JOIN reference.facility f ON f.kode_faskes = a.kode_faskes
    """, [settings.config.timezones.default])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _clean_rows AS
        SELECT row_number() OVER () AS rk, hash(r.file_id, coalesce(r.sheet, '')) AS fk,
               r.raw_row_id, r.file_id, r.source_kind, r.source_path, coalesce(r.sheet, '') AS sheet,
               r.row_number, lower(trim(r.form)) AS form, r.periode, r.kode_faskes AS kode_written,
               r.nama_faskes, r.tanggal_lapor, r.received_at AS file_received_at,
               lf.status AS file_status, lf.reject_rule AS file_reject_rule,
               lf.reject_reason AS file_reject_reason,
               mp.period, md.d AS tanggal_lapor_date, coalesce(mn.is_nil, false) AS is_nil,
               mf.kode_norm, mf.kode_faskes, mf.jenis_faskes,
               lower(trim(r.form)) IN ({_sql_list(FORMS)}) AS form_ok,
               CASE WHEN md.d IS NOT NULL THEN timezone(mf.tz, CAST(md.d AS TIMESTAMP))
                    ELSE r.received_at END AS received_at,
               CASE WHEN md.d IS NOT NULL THEN 'tanggal_lapor'
                    ELSE coalesce(lf.received_source, 'raw') END AS received_source,
               coalesce(md.d, CAST(timezone(mf.tz, r.received_at) AS DATE)) AS received_local_date
          FROM {src} r
          LEFT JOIN raw.landing_file lf ON lf.file_id = r.file_id
          LEFT JOIN _clean_map_period mp ON mp.periode = r.periode
          LEFT JOIN _clean_map_date md ON md.tanggal_lapor = r.tanggal_lapor
          LEFT JOIN _clean_map_nil mn ON mn.laporan_nihil = r.laporan_nihil
          LEFT JOIN _clean_map_fac mf ON mf.kode_written IS NOT DISTINCT FROM r.kode_faskes
                                     AND mf.nama_faskes IS NOT DISTINCT FROM r.nama_faskes
    """)


# --- step 2: errors (one row per raw row × rule) ------------------------------------------------

def _stage_errors(con: duckdb.DuckDBPyConnection) -> None:
    """`_clean_err`: one row per raw row × error rule that fired, with the offending column and
    value verbatim. Cell errors (V06, V06N) are aggregated per row and rule (columns listed).
    Every rule looks at one row or one file only — never at another file — which is what lets an
    incremental build leave the verdicts of unchanged files alone."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_cell AS
        SELECT rk, fk, column_index, data_element, is_nil, value,
               coalesce(norm = '#' OR (value IS NULL AND norm IS NOT NULL), false) AS bad,
               -- verbatim text only where needed (errors), to keep this table small
               CASE WHEN is_nil OR norm = '#' OR (value IS NULL AND norm IS NOT NULL) THEN value_text END AS value_text
          FROM (
            SELECT *, TRY_CAST(norm AS BIGINT) AS value
              FROM (
                SELECT r.rk, r.fk, c.column_index, c.data_element, c.value_text, r.is_nil,
                       kolab_count_norm(c.value_text) AS norm
                  FROM raw.submission_cell c
                  JOIN _clean_rows r ON r.raw_row_id = c.raw_row_id
                  JOIN _clean_form_element de ON de.code = c.data_element AND de.form = r.form
              )
          )
    """)
    # Two columns of one row mapped to the same element: the leftmost is the value (raw keeps both).
    # A row-by-row window over every cell is the slow way to find them; in a template file an
    # element sits in one column for all rows, so only (file × sheet × element) groups spread over
    # several columns (duplicated headers, DHIS2 payloads) need the window.
    con.execute("""
        DELETE FROM _clean_cell AS c USING (
            SELECT rk, data_element, column_index
              FROM _clean_cell
              SEMI JOIN (SELECT fk, data_element FROM _clean_cell GROUP BY fk, data_element
                          HAVING min(column_index) <> max(column_index)) m USING (fk, data_element)
            QUALIFY row_number() OVER (PARTITION BY rk, data_element ORDER BY column_index) > 1
        ) d
        WHERE c.rk = d.rk AND c.data_element = d.data_element AND c.column_index = d.column_index
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_err AS
        -- rows of a file the raw layer rejected as a whole carry the file's rule
        SELECT raw_row_id, coalesce(file_reject_rule, 'F01') AS rule_id, NULL AS column_name,
               NULL AS value_text
          FROM _clean_rows WHERE file_status = 'rejected'
        UNION ALL
        SELECT raw_row_id, 'V16', 'form', form FROM _clean_rows WHERE NOT coalesce(form_ok, false)
        UNION ALL
        SELECT raw_row_id, 'V01', CASE WHEN kode_norm IS NULL THEN 'nama_faskes' ELSE 'kode_faskes' END,
               CASE WHEN kode_norm IS NULL THEN nama_faskes ELSE kode_written END
          FROM _clean_rows WHERE kode_faskes IS NULL
        UNION ALL
        SELECT raw_row_id, 'V05', 'periode', periode FROM _clean_rows WHERE period IS NULL
        UNION ALL
        SELECT raw_row_id, 'V05F', CASE WHEN tanggal_lapor_date IS NOT NULL THEN 'periode, tanggal_lapor'
                                        ELSE 'periode' END,
               periode
          FROM _clean_rows
         WHERE period IS NOT NULL AND CAST(period || '-01' AS DATE) > received_local_date
        UNION ALL
        -- both rows of a duplicated facility × period × form inside one file: we cannot know which
        -- one the clerk meant, so neither is kept (a GROUP BY finds the rare duplicates, no window)
        SELECT r.raw_row_id, 'V15', 'kode_faskes, periode',
               string_agg(CAST(r.row_number AS VARCHAR), ', ' ORDER BY r.sheet, r.row_number)
                 OVER (PARTITION BY r.file_id, r.kode_faskes, r.period, r.form)
          FROM _clean_rows r
          SEMI JOIN (SELECT file_id, kode_faskes, period, form
                       FROM _clean_rows
                      WHERE kode_faskes IS NOT NULL AND period IS NOT NULL AND form_ok
                      GROUP BY file_id, kode_faskes, period, form HAVING count(*) > 1) d
            ON d.file_id IS NOT DISTINCT FROM r.file_id AND d.kode_faskes = r.kode_faskes
           AND d.period = r.period AND d.form = r.form
        UNION ALL
        SELECT r.raw_row_id, b.rule_id,
               string_agg(b.data_element, ', ' ORDER BY b.column_index) AS column_name,
               string_agg(coalesce(b.value_text, ''), ' | ' ORDER BY b.column_index) AS value_text
          FROM (SELECT rk, column_index, data_element, value_text,
                       CASE WHEN bad THEN 'V06' ELSE 'V06N' END AS rule_id
                  FROM _clean_cell WHERE bad OR (is_nil AND value <> 0)) b
          JOIN _clean_rows r ON r.rk = b.rk
         GROUP BY r.raw_row_id, b.rule_id
        UNION ALL
        -- a DHIS2 value whose data element is not mapped would vanish: the row waits for the mapping.
        -- (Unknown columns of a template file — notes, totals — are ignored; they stay in raw.)
        SELECT c.raw_row_id, 'V17', string_agg(c.header, ', ' ORDER BY c.column_index),
               string_agg(c.value_text, ' | ' ORDER BY c.column_index)
          FROM raw.submission_cell c
          JOIN _clean_rows r ON r.raw_row_id = c.raw_row_id
         WHERE c.data_element IS NULL AND c.value_text IS NOT NULL AND r.source_kind = 'dhis2'
         GROUP BY c.raw_row_id
    """)


# --- step 3: versions -----------------------------------------------------------------------------

def _stage_kept(con: duckdb.DuckDBPyConnection) -> None:
    """`_clean_kept`: rows without any error, numbered into versions per facility × period × form.
    Most keys have one version: a GROUP BY counts them and only keys with several versions are
    sorted (the window)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_ok AS
        WITH ok AS (SELECT * FROM _clean_rows r ANTI JOIN _clean_err e ON e.raw_row_id = r.raw_row_id)
        SELECT o.rk, o.raw_row_id, o.file_id, o.source_kind, o.source_path, o.sheet, o.row_number,
               o.kode_faskes, o.period, o.form, o.is_nil, o.received_at, o.received_source, o.file_received_at,
               n.n_versions
          FROM ok o
          JOIN (SELECT kode_faskes, period, form, count(*) AS n_versions FROM ok GROUP BY ALL) n
            ON n.kode_faskes = o.kode_faskes AND n.period = o.period AND n.form = o.form""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_kept AS
        SELECT k.* EXCLUDE (file_received_at),
               md5(concat_ws('|', k.kode_faskes, k.period, k.form, CAST(k.version AS VARCHAR))) AS submission_id
          FROM (
            SELECT *, 1 AS version FROM _clean_ok WHERE n_versions = 1
            UNION ALL
            SELECT *, CAST(row_number() OVER w AS INTEGER) AS version FROM _clean_ok WHERE n_versions > 1
            WINDOW w AS (PARTITION BY kode_faskes, period, form
                         ORDER BY received_at NULLS FIRST, file_received_at NULLS FIRST, source_path,
                                  sheet, row_number, raw_row_id)
          ) k""")
    con.execute("DROP TABLE _clean_ok")


def _insert(con: duckdb.DuckDBPyConnection, key: str, select_sql: str, params: Sequence[object] = ()) -> None:
    """INSERT the contract columns of `key` from `select_sql`. Used inside one transaction for all
    five tables (instead of `warehouse.replace_rows`, which commits per table) so a failed
    rebuild leaves the previous clean layer intact."""
    t = table(key)
    cols = ", ".join(t.column_names)
    con.execute(f"INSERT INTO {t.qualified} ({cols}) SELECT {cols} FROM ({select_sql}) AS src", list(params))


def _relation_codes(relations: list[tuple[str, Relation]]) -> list[str]:
    return sorted({c for _, rel in relations for c in (rel.lhs, *rel.rhs)})


def _stage_ytd(con: duckdb.DuckDBPyConnection, relations: list[tuple[str, Relation]], groups: bool) -> None:
    """`_clean_ytd`: per current submission whose year is complete so far (a current report of the
    form for every month since January), the year-to-date sums of the relation elements.
    Grain: one current submission. Read from the clean tables as just written (current versions,
    nil reports already 0), so a full and an incremental build judge the same data; `groups`
    limits it to the facility × form × year groups an incremental build touched. An element only
    ever has values in submissions of its own form (`_clean_form_element`), so each form's running
    sums cover that form's elements only (the others are NULL, as they would be anyway)."""
    codes = _relation_codes(relations)
    if not codes:
        con.execute("CREATE OR REPLACE TEMP TABLE _clean_ytd AS SELECT NULL::VARCHAR AS submission_id LIMIT 0")
        return
    by_form = con.execute(f"""SELECT form, list(code ORDER BY code) FROM _clean_form_element
                              WHERE code IN ({", ".join("?" for _ in codes)}) GROUP BY form ORDER BY form""",
                          codes).fetchall()
    only = ("SEMI JOIN _clean_groups g ON g.kode_faskes = s.kode_faskes AND g.form = s.form "
            "AND g.year = substr(s.period, 1, 4)") if groups else ""
    selects, params = [], []
    for form, form_codes in by_form:
        pivot = ", ".join(f"sum(value) FILTER (WHERE data_element = ?) AS {ident(c)}" for c in form_codes)
        running = ", ".join(f"sum({ident(c)}) OVER w AS {ident(c)}" if c in form_codes
                            else f"NULL::HUGEINT AS {ident(c)}" for c in codes)
        selects.append(f"""
            SELECT * EXCLUDE (n_months) FROM (
                SELECT c.submission_id, c.kode_faskes, c.period, c.form, {running}, count(*) OVER w AS n_months
                  FROM (SELECT submission_id, kode_faskes, period, form FROM clean.submission s {only}
                         WHERE is_current AND form = ?) c
                  LEFT JOIN (SELECT submission_id, {pivot} FROM clean.submission_value s {only}
                              WHERE form = ? AND data_element IN ({", ".join("?" for _ in form_codes)})
                              GROUP BY submission_id) p ON p.submission_id = c.submission_id
                WINDOW w AS (PARTITION BY c.kode_faskes, substr(c.period, 1, 4) ORDER BY c.period
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
             WHERE n_months = CAST(substr(period, 6, 2) AS INTEGER)""")
        params += [form, *form_codes, form, *form_codes]
    if not selects:
        cols = ", ".join(f"NULL::HUGEINT AS {ident(c)}" for c in codes)
        selects.append(f"SELECT NULL::VARCHAR AS submission_id, NULL::VARCHAR AS kode_faskes, "
                       f"NULL::VARCHAR AS period, NULL::VARCHAR AS form, {cols} LIMIT 0")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _clean_ytd AS {' UNION ALL '.join(selects)}", params)


def _flag_sql(relations: list[tuple[str, Relation]]) -> tuple[str, list[object]]:
    """SQL (and params) for the YTD relation warnings over `_clean_ytd`: one SELECT per relation."""
    params: list[object] = []
    selects = []
    for rule_id, rel in relations:
        lhs = ident(rel.lhs)
        rhs_sum = " + ".join(f"coalesce({ident(c)}, 0)" for c in rel.rhs)
        rhs_any = " OR ".join(f"{ident(c)} IS NOT NULL" for c in rel.rhs)
        selects.append(f"""
            SELECT submission_id, kode_faskes, period, form, ? AS rule_id, ? AS column_name,
                   printf('%s = %d > %s = %d', ?, {lhs}, ?, {rhs_sum}) AS value_text, NULL AS jenis
              FROM _clean_ytd
             WHERE {lhs} IS NOT NULL AND ({rhs_any}) AND {lhs} > {rhs_sum}""")
        params += [rule_id, ", ".join((rel.lhs, *rel.rhs)), rel.lhs, " + ".join(rel.rhs)]
    return " UNION ALL ".join(selects), params


def _write(con: duckdb.DuckDBPyConnection, relations: list[tuple[str, Relation]], incremental: bool,
           fingerprint: str) -> None:
    """Replace the clean rows in one transaction: everything (full) or the touched keys, the dirty
    files' quarantine rows and the touched facility × form × year warning groups (incremental)."""
    keys = ("USING _clean_keys k WHERE t.kode_faskes = k.kode_faskes AND t.period = k.period "
            "AND t.form = k.form")
    with transaction(con):
        if incremental:
            for key in ("clean.submission", "clean.submission_value", "clean.submission_value_history"):
                con.execute(f"DELETE FROM {table(key).qualified} AS t {keys}")
            con.execute("""DELETE FROM clean.quarantine WHERE raw_row_id IS NULL
                             OR file_id IN (SELECT file_id FROM _clean_dirty)
                             OR raw_row_id IN (SELECT raw_row_id FROM _clean_scope)""")
            con.execute("""DELETE FROM clean.validation_flag AS t USING _clean_groups g
                            WHERE t.kode_faskes = g.kode_faskes AND t.form = g.form
                              AND substr(t.period, 1, 4) = g.year""")
            con.execute(f"DELETE FROM {STATE} WHERE file_id IN (SELECT file_id FROM _clean_dirty)")
        else:
            for key in (*CLEAN_TABLES, STATE):
                con.execute(f"DELETE FROM {table(key).qualified}")
        _insert(con, "clean.submission", """
            SELECT submission_id, kode_faskes, period, form, version, version = n_versions AS is_current,
                   received_at, received_source, is_nil AS is_nil_report, source_kind, raw_row_id, file_id,
                   source_path, sheet, row_number
              FROM _clean_kept""")
        # every version's values; a blank cell stays NULL unless the row is a nil report. Only
        # groups with several versions need the (sorting) window for the previous value.
        cells = """
            SELECT k.submission_id, k.kode_faskes, k.period, k.form, k.version, c.data_element,
                   CASE WHEN k.is_nil THEN coalesce(c.value, 0) ELSE c.value END AS value
              FROM _clean_kept k JOIN _clean_cell c ON c.rk = k.rk
             WHERE {where}"""
        _insert(con, "clean.submission_value_history", f"""
            SELECT submission_id, kode_faskes, period, form, version, data_element, value,
                   NULL::BIGINT AS previous_value, false AS changed
              FROM ({cells.format(where="k.n_versions = 1")})
            UNION ALL
            SELECT submission_id, kode_faskes, period, form, version, data_element, value,
                   CASE WHEN prev_version = version - 1 THEN prev_value END AS previous_value,
                   version > 1 AND (prev_version IS DISTINCT FROM version - 1
                                    OR value IS DISTINCT FROM prev_value) AS changed
              FROM (SELECT *, lag(version) OVER w AS prev_version, lag(value) OVER w AS prev_value
                      FROM ({cells.format(where="k.n_versions > 1")})
                    WINDOW w AS (PARTITION BY kode_faskes, period, form, data_element ORDER BY version))""")
        _insert(con, "clean.submission_value", f"""
            SELECT submission_id, kode_faskes, period, form, data_element, value
              FROM ({cells.format(where="k.version = k.n_versions")})""")
        _insert(con, "clean.quarantine", """
            SELECT e.raw_row_id, r.file_id, r.source_path, r.sheet, r.row_number, e.rule_id,
                   'error' AS severity, e.column_name, e.value_text,
                   CASE WHEN r.file_status = 'rejected'
                        THEN concat_ws(' — ', k.message_id, r.file_reject_reason)
                        ELSE kolab_fill(k.template_id, e.value_text, e.column_name,
                                        coalesce(r.kode_faskes, r.kode_written, r.nama_faskes), r.period, r.jenis_faskes,
                                        r.received_local_date)
                   END AS reason_id,
                   CASE WHEN r.file_status = 'rejected' AND contains(coalesce(r.file_reject_reason, ''), k.message_en)
                        THEN r.file_reject_reason
                        WHEN r.file_status = 'rejected'
                        THEN concat_ws(' — ', k.message_en, r.file_reject_reason)
                        ELSE kolab_fill(k.template_en, e.value_text, e.column_name,
                                        coalesce(r.kode_faskes, r.kode_written, r.nama_faskes), r.period, r.jenis_faskes,
                                        r.received_local_date)
                   END AS reason_en,
                   coalesce(r.kode_faskes, r.kode_written) AS kode_faskes, r.period, r.form
              FROM _clean_err e
              JOIN _clean_rows r ON r.raw_row_id = e.raw_row_id
              LEFT JOIN _kolab_rule k ON k.rule_id = e.rule_id
            UNION ALL
            -- whole files the raw layer rejected: one quarantine row per path the content was seen
            -- at (two empty files share one sha256, but both senders must hear about it). Small:
            -- rewritten by every build, so a new path of an old rejected content is never missed.
            SELECT NULL, lf.file_id, coalesce(lp.source_path, lf.source_path), NULL, NULL,
                   coalesce(lf.reject_rule, 'F01'), 'error', NULL, NULL,
                   concat_ws(' — ', k.message_id, lf.reject_reason),
                   -- the raw layer's reason already quotes the English catalogue message
                   CASE WHEN contains(coalesce(lf.reject_reason, ''), k.message_en) THEN lf.reject_reason
                        ELSE concat_ws(' — ', k.message_en, lf.reject_reason) END,
                   NULL, NULL, NULL
              FROM raw.landing_file lf
              LEFT JOIN (SELECT DISTINCT file_id, source_path FROM raw.landing_path) lp ON lp.file_id = lf.file_id
              LEFT JOIN _kolab_rule k ON k.rule_id = coalesce(lf.reject_rule, 'F01')
             WHERE lf.status = 'rejected'""")
        # warnings, read back from the current versions just written (see `_stage_ytd`)
        _stage_ytd(con, relations, groups=incremental)
        flag_sql, flag_params = _flag_sql(relations)
        only = ("SEMI JOIN _clean_groups g ON g.kode_faskes = v.kode_faskes AND g.form = v.form "
                "AND g.year = substr(v.period, 1, 4)") if incremental else ""
        flag_parts = [f"""
            SELECT v.submission_id, v.kode_faskes, v.period, v.form, 'V13' AS rule_id,
                   v.data_element AS column_name, CAST(v.value AS VARCHAR) AS value_text, f.jenis_faskes AS jenis
              FROM clean.submission_value v
              JOIN reference.facility f ON f.kode_faskes = v.kode_faskes
              SEMI JOIN (
                  -- element × facility type pairs the catalogue does not expect
                  SELECT de.code, t.jenis_faskes
                    FROM _clean_catalogue de,
                         (SELECT DISTINCT jenis_faskes FROM reference.facility) t
                   WHERE NOT list_contains(string_split(replace(coalesce(de.expected_from, ''), ' ', ''), ';'),
                                           t.jenis_faskes)
              ) u ON u.code = v.data_element AND u.jenis_faskes = f.jenis_faskes
              {only}
             WHERE v.value > 0"""]
        if flag_sql:
            flag_parts.append(f"SELECT * FROM ({flag_sql}) AS rel")
        _insert(con, "clean.validation_flag", f"""
            SELECT g.submission_id, g.kode_faskes, g.period, g.form, g.rule_id, 'warning' AS severity,
                   g.column_name, g.value_text,
                   kolab_fill(k.template_id, g.value_text, g.column_name, g.kode_faskes, g.period, g.jenis, NULL) AS reason_id,
                   kolab_fill(k.template_en, g.value_text, g.column_name, g.kode_faskes, g.period, g.jenis, NULL) AS reason_en
              FROM ({" UNION ALL ".join(flag_parts)}) g
              LEFT JOIN _kolab_rule k ON k.rule_id = g.rule_id""", flag_params)
        dirty = "SEMI JOIN _clean_dirty USING (file_id)" if incremental else ""
        con.execute(f"""INSERT INTO {STATE} (file_id, signature, n_rows, fingerprint, cleaned_at)
                        SELECT file_id, signature, n_rows, ?, now() FROM _clean_file_now {dirty}""",
                    [fingerprint])


WORK_TABLES = ("_clean_file_now", "_clean_dirty", "_clean_scope", "_clean_keys", "_clean_groups",
               "_clean_map_period", "_clean_map_date", "_clean_map_nil", "_clean_map_fac", "_clean_rows",
               "_clean_cell", "_clean_err", "_clean_ok", "_clean_kept", "_clean_ytd", "_clean_form_element",
               "_clean_catalogue")


def build_clean(con: duckdb.DuckDBPyConnection, settings: Settings, full: bool = False) -> dict[str, Any]:
    """Bring the five clean tables up to date with `raw.*` and `reference.*` (idempotent).

    Incremental by default: only raw files new, changed or gone since the last build
    (`clean.build_state`) are cleaned, and the facility × period × form keys they touch are
    recomputed whole — a resubmission in a new file can change the versions of an older key — with
    the YTD warnings of the facility × form × years around them. The result equals a full rebuild
    exactly (tests/test_clean_incremental.py). A full rebuild happens with `full=True`, on the first
    build, and whenever the rules, the settings, the reference rows or this code changed.

    All heavy work is set-based DuckDB SQL: the parsers are SQL macros, cells are never looped
    over in Python. The tables are changed in one transaction, so readers never see a half-built
    clean layer. Returns a summary (counts of the whole clean layer, per rule, and what this build
    did: `mode`, `files_cleaned`, `rows_cleaned`, `keys_recomputed`).
    """
    ensure_schema(con)
    install_macros(con)
    _register_rules(con)
    _stage_catalogue(con)
    relations = [(r.rule_id, rel) for r in rules().values() if r.severity == "warning" for rel in r.relations]
    fingerprint = _fingerprint(con, settings, relations)
    _stage_files(con)
    why_full = "asked for (full=True)" if full else _needs_full(con, fingerprint)
    incremental = why_full is None
    if incremental:
        n_files = _stage_scope(con)
        _stage_rows(con, settings, scoped=True)
        _stage_errors(con)
        _widen_scope(con)
        _stage_rows(con, settings, scoped=True)
        _stage_errors(con)
    else:
        n_files = con.execute("SELECT count(*) FROM _clean_file_now").fetchone()[0]
        _stage_rows(con, settings, scoped=False)
        _stage_errors(con)
    _stage_kept(con)
    n_rows = con.execute("SELECT count(*) FROM _clean_rows").fetchone()[0]
    n_keys = con.execute("SELECT count(*) FROM _clean_kept WHERE version = n_versions").fetchone()[0]
    _write(con, relations, incremental, fingerprint)

    summary = summarise(con)
    summary.update(mode="incremental" if incremental else "full", full_reason=why_full,
                   files_cleaned=n_files, rows_cleaned=n_rows, keys_recomputed=n_keys)
    for name in WORK_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return summary


# Keys of `build_clean`'s summary that describe the build itself rather than the clean layer.
RUN_KEYS = ("mode", "full_reason", "files_cleaned", "rows_cleaned", "keys_recomputed")


def summarise(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts of the clean layer: rows kept / quarantined, and per rule (rows, not cells)."""
    one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    per_rule_q = dict(con.execute(
        "SELECT rule_id, count(DISTINCT coalesce(raw_row_id, source_path)) FROM clean.quarantine "
        "GROUP BY rule_id ORDER BY rule_id").fetchall())
    per_rule_f = dict(con.execute(
        "SELECT rule_id, count(*) FROM clean.validation_flag GROUP BY rule_id ORDER BY rule_id").fetchall())
    return {
        "raw_rows": one("SELECT count(*) FROM raw.submission_row"),
        "kept_rows": one("SELECT count(*) FROM clean.submission"),
        "current_submissions": one("SELECT count(*) FROM clean.submission WHERE is_current"),
        "resubmitted": one("SELECT count(*) FROM clean.submission WHERE version > 1"),
        "quarantined_rows": one("SELECT count(DISTINCT raw_row_id) FROM clean.quarantine"),
        "rejected_files": one("SELECT count(DISTINCT source_path) FROM clean.quarantine WHERE raw_row_id IS NULL"),
        "values": one("SELECT count(*) FROM clean.submission_value"),
        "history_values": one("SELECT count(*) FROM clean.submission_value_history"),
        "flags": one("SELECT count(*) FROM clean.validation_flag"),
        "quarantine_by_rule": per_rule_q,
        "flags_by_rule": per_rule_f,
    }


def accounting(con: duckdb.DuckDBPyConnection, sample_size: int = 10) -> dict[str, Any]:
    """Check the invariant: every raw row is kept exactly once (in `clean.submission`) or
    quarantined (≥1 `clean.quarantine` rows) — never both, never neither.

    Returns the counts and a sample of offending raw_row_ids; `ok` is the verdict.
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _clean_accounting AS
        WITH k AS (SELECT raw_row_id, count(*) AS n FROM clean.submission GROUP BY raw_row_id),
             q AS (SELECT raw_row_id, count(*) AS n FROM clean.quarantine
                    WHERE raw_row_id IS NOT NULL GROUP BY raw_row_id)
        SELECT r.raw_row_id, r.source_path, r.sheet, r.row_number,
               coalesce(k.n, 0) AS n_kept, coalesce(q.n, 0) AS n_quarantine
          FROM raw.submission_row r
          LEFT JOIN k ON k.raw_row_id = r.raw_row_id
          LEFT JOIN q ON q.raw_row_id = r.raw_row_id
    """)
    c = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE n_kept = 1 AND n_quarantine = 0),
               count(*) FILTER (WHERE n_kept = 0 AND n_quarantine > 0),
               count(*) FILTER (WHERE n_kept = 0 AND n_quarantine = 0),
               count(*) FILTER (WHERE n_kept > 0 AND n_quarantine > 0),
               count(*) FILTER (WHERE n_kept > 1)
          FROM _clean_accounting""").fetchone()
    orphans = con.execute("""
        SELECT count(*) FROM (
            SELECT raw_row_id FROM clean.submission
            UNION ALL SELECT raw_row_id FROM clean.quarantine WHERE raw_row_id IS NOT NULL
        ) x ANTI JOIN raw.submission_row r ON r.raw_row_id = x.raw_row_id""").fetchone()[0]
    sample = con.execute("""
        SELECT raw_row_id, source_path, sheet, row_number, n_kept, n_quarantine FROM _clean_accounting
         WHERE NOT ((n_kept = 1 AND n_quarantine = 0) OR (n_kept = 0 AND n_quarantine > 0))
         ORDER BY source_path, sheet, row_number LIMIT ?""", [sample_size]).df()
    con.execute("DROP TABLE _clean_accounting")
    out = {"raw_rows": c[0], "kept": c[1], "quarantined": c[2], "unaccounted": c[3],
           "kept_and_quarantined": c[4], "kept_twice": c[5], "orphans": orphans}
    out["ok"] = c[3] == 0 and c[4] == 0 and c[5] == 0 and orphans == 0
    out["sample"] = sample
    return out


# --- exact structural checks (SQL over whole tables; the Dagster checks wrap these) ---------------

def duplicate_current_versions(con: duckdb.DuckDBPyConnection, sample_size: int = 10) -> tuple[int, Any]:
    """Facility × period × form groups that do not have exactly one current version.
    Returns (number of such groups, sample DataFrame)."""
    sql = """
        SELECT kode_faskes, period, form, count(*) FILTER (WHERE is_current) AS n_current,
               count(*) AS n_versions
          FROM clean.submission GROUP BY kode_faskes, period, form
        HAVING count(*) FILTER (WHERE is_current) <> 1"""
    n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    sample = con.execute(f"{sql} ORDER BY kode_faskes, period, form LIMIT ?", [sample_size]).df()
    return n, sample


def unresolved_keys(con: duckdb.DuckDBPyConnection, sample_size: int = 10) -> tuple[int, Any]:
    """Kept submissions whose facility is not in the registry, whose period is not `YYYY-MM`, or
    whose form is unknown — and values whose submission is not a current one."""
    sql = f"""
        SELECT 'clean.submission' AS tbl, submission_id, kode_faskes, period, form,
               concat_ws('; ',
                 CASE WHEN kode_faskes IS NULL OR kode_faskes NOT IN (SELECT kode_faskes FROM reference.facility)
                      THEN 'kode_faskes not in registry' END,
                 CASE WHEN period IS NULL OR NOT regexp_full_match(period, '\\d{{4}}-(0[1-9]|1[0-2])')
                      THEN 'period not YYYY-MM' END,
                 CASE WHEN form IS NULL OR form NOT IN ({_sql_list(FORMS)}) THEN 'unknown form' END) AS problem
          FROM clean.submission
         WHERE kode_faskes IS NULL OR kode_faskes NOT IN (SELECT kode_faskes FROM reference.facility)
            OR period IS NULL OR NOT regexp_full_match(period, '\\d{{4}}-(0[1-9]|1[0-2])')
            OR form IS NULL OR form NOT IN ({_sql_list(FORMS)})
        UNION ALL
        SELECT 'clean.submission_value', v.submission_id, v.kode_faskes, v.period, v.form,
               'value of a submission that is not current' AS problem
          FROM clean.submission_value v
          ANTI JOIN (SELECT submission_id FROM clean.submission WHERE is_current) s
            ON s.submission_id = v.submission_id"""
    n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    sample = con.execute(f"SELECT * FROM ({sql}) ORDER BY ALL LIMIT ?", [sample_size]).df()
    return n, sample
