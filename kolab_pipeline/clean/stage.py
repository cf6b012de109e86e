"""Staging the raw rows: the catalogue and rules the SQL joins, one normalised row per raw row
(`_clean_rows`), its data cells (`_clean_cell`, one row × element) and the errors that reject it
(`_clean_err`, one raw row × error rule). All tables are temp tables of the build's `Staging`.
"""

from __future__ import annotations

from kolab_pipeline import catalog
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.clean.lingkup import SCOPE_ERRORS
from kolab_pipeline.clean.parsers import sql_list
from kolab_pipeline.config import Settings
from kolab_pipeline.reference import norm_sql
from kolab_pipeline.rules import rules_rows
from kolab_pipeline.warehouse import Staging

# the temp-table prefix of a clean build: `stage.create("rows", …)` makes `_clean_rows`, the name
# the SQL below uses
PREFIX = "_clean"

RULE_TABLE = """SELECT NULL::VARCHAR AS rule_id, NULL::VARCHAR AS severity,
       NULL::VARCHAR AS message_id, NULL::VARCHAR AS message_en,
       NULL::VARCHAR AS template_id, NULL::VARCHAR AS template_en,
       NULL::VARCHAR AS applies_to
 LIMIT 0"""

CATALOGUE = """SELECT code, any_value(form) AS form, any_value(expected_from) AS expected_from,
       any_value(person_or_event) AS person_or_event
  FROM {source} GROUP BY code"""


def stage_rules(stage: Staging) -> None:
    """`_clean_rule`: the rule catalogue (messages and templates) for the SQL to join."""
    rule = stage.create("rule", RULE_TABLE)
    stage.con.executemany(f"INSERT INTO {rule} VALUES (?, ?, ?, ?, ?, ?, ?)", rules_rows())


def stage_catalogue(stage: Staging) -> None:
    """`_clean_catalogue` (one element code) and `_clean_form_element` (code × form): the element
    catalogue, which decides which cells are data. If `reference.data_element` has not been
    loaded, the shipped catalogue is used rather than silently treating every cell as unknown."""
    loaded = stage.con.execute("SELECT count(*) FROM reference.data_element").fetchone()[0] > 0
    source = ("reference.data_element" if loaded
              else f"read_csv('{catalog.DATA_ELEMENTS}', all_varchar=true)")
    stage.create("catalogue", CATALOGUE.format(source=source))
    stage.create("form_element", "SELECT DISTINCT code, form FROM _clean_catalogue")


# --- step 1: one normalised row per raw row -------------------------------------------------------

SCOPED_RAW_ROWS = """(SELECT * FROM raw.submission_row
                       SEMI JOIN _clean_scope USING (raw_row_id))"""

# each distinct text is parsed once and joined back
MAP_PERIOD = """SELECT periode, kolab_parse_period(periode) AS period
  FROM (SELECT DISTINCT periode FROM {src}) WHERE periode IS NOT NULL"""

MAP_DATE = """SELECT tanggal_lapor, kolab_parse_date(tanggal_lapor) AS d
  FROM (SELECT DISTINCT tanggal_lapor FROM {src}) WHERE tanggal_lapor IS NOT NULL"""

MAP_NIL = """SELECT laporan_nihil, kolab_is_nil(laporan_nihil) AS is_nil
  FROM (SELECT DISTINCT laporan_nihil FROM {src}) WHERE laporan_nihil IS NOT NULL"""

MAP_FACILITY = f"""
WITH alias AS (
    SELECT alias_norm, min(kode_faskes) AS kode_faskes
      FROM reference.facility_alias GROUP BY alias_norm
), written AS (
    SELECT kode_faskes AS kode_written, nama_faskes,
           nullif({norm_sql('kode_faskes')}, '') AS kode_norm,
           nullif({norm_sql('nama_faskes')}, '') AS nama_norm
      FROM (SELECT DISTINCT kode_faskes, nama_faskes FROM {{src}})
)
SELECT written.*, alias.kode_faskes, facility.jenis_faskes, facility.reporting_level,
       coalesce(facility.timezone, $default_tz) AS tz
  FROM written
  LEFT JOIN alias ON alias.alias_norm = coalesce(written.kode_norm, written.nama_norm)
  LEFT JOIN reference.facility facility ON facility.kode_faskes = alias.kode_faskes
"""

# Received time per reporting stage (README "Inputs"): a network facility's report is judged on
# the date it reported to its puskesmas (`tanggal_lapor`; never after the receipt at the Dinkes,
# which bounds it), else on the receipt at the Dinkes; a puskesmas's report on the receipt at the
# Dinkes only — the date it wrote itself is `declared_at`, never its receipt.
ROWS = f"""
SELECT *,
       CASE WHEN declared_decides THEN declared_at ELSE file_received_at END AS received_at,
       CASE WHEN declared_decides THEN 'tanggal_lapor' ELSE dinkes_source END
         AS received_source,
       CASE WHEN declared_decides THEN tanggal_lapor_date ELSE dinkes_local_date END
         AS received_local_date
  FROM (
SELECT *, tanggal_lapor_date IS NOT NULL
            AND coalesce(reporting_level, 'network_to_pkm') <> 'pkm_to_dinkes'
            AND (dinkes_local_date IS NULL OR tanggal_lapor_date <= dinkes_local_date)
          AS declared_decides
  FROM (
SELECT row_number() OVER () AS rk, hash(raw_row.file_id, coalesce(raw_row.sheet, '')) AS fk,
       raw_row.raw_row_id, raw_row.file_id, raw_row.source_kind, raw_row.source_path,
       coalesce(raw_row.sheet, '') AS sheet, raw_row.row_number,
       lower(trim(raw_row.form)) AS form, raw_row.periode, raw_row.kode_faskes AS kode_written,
       raw_row.nama_faskes, raw_row.tanggal_lapor, raw_row.received_at AS file_received_at,
       raw_row.lingkup_laporan AS lingkup_written,
       landing.status AS file_status, landing.reject_rule AS file_reject_rule,
       landing.reject_reason AS file_reject_reason,
       period_map.period, date_map.d AS tanggal_lapor_date,
       coalesce(nil_map.is_nil, false) AS is_nil,
       facility_map.kode_norm, facility_map.kode_faskes, facility_map.jenis_faskes,
       lower(trim(raw_row.form)) IN ({sql_list(FORMS)}) AS form_ok,
       facility_map.reporting_level,
       timezone(facility_map.tz, CAST(date_map.d AS TIMESTAMP)) AS declared_at,
       coalesce(raw_row.received_source, landing.received_source, 'raw') AS dinkes_source,
       CAST(timezone(facility_map.tz, raw_row.received_at) AS DATE) AS dinkes_local_date
  FROM {{src}} raw_row
  LEFT JOIN raw.landing_file landing ON landing.file_id = raw_row.file_id
  LEFT JOIN _clean_map_period period_map ON period_map.periode = raw_row.periode
  LEFT JOIN _clean_map_date date_map ON date_map.tanggal_lapor = raw_row.tanggal_lapor
  LEFT JOIN _clean_map_nil nil_map ON nil_map.laporan_nihil = raw_row.laporan_nihil
  LEFT JOIN _clean_map_fac facility_map
         ON facility_map.kode_written IS NOT DISTINCT FROM raw_row.kode_faskes
        AND facility_map.nama_faskes IS NOT DISTINCT FROM raw_row.nama_faskes
  ) AS staged_row
  ) AS judged_row
"""


def stage_rows(stage: Staging, settings: Settings, scoped: bool) -> None:
    """`_clean_rows`: each raw row (of `_clean_scope` when `scoped`) with its parsed period,
    resolved facility, form, nil flag and received time. Grain: one raw row. Period, date,
    nil-mark and facility texts repeat a lot, so each distinct text is parsed once
    (`_clean_map_*`) and joined back."""
    src = SCOPED_RAW_ROWS if scoped else "raw.submission_row"
    stage.create("map_period", MAP_PERIOD.format(src=src))
    stage.create("map_date", MAP_DATE.format(src=src))
    stage.create("map_nil", MAP_NIL.format(src=src))
    stage.create("map_fac", MAP_FACILITY.format(src=src),
                 {"default_tz": settings.config.timezones.default})
    stage.create("rows", ROWS.format(src=src))


# --- step 2: errors (one row per raw row × rule) --------------------------------------------------

# one staged row × catalogue element cell: the parsed count (`{where}`: which cells)
CELLS = """
SELECT rk, fk, column_index, data_element, is_nil, value,
       coalesce(norm = '#' OR (value IS NULL AND norm IS NOT NULL), false) AS bad,
       -- verbatim text only where needed (errors), to keep this table small
       CASE WHEN is_nil OR norm = '#' OR (value IS NULL AND norm IS NOT NULL)
            THEN value_text END AS value_text
  FROM (
    SELECT *, TRY_CAST(norm AS BIGINT) AS value
      FROM (
        SELECT staged.rk, staged.fk, cell.column_index, cell.data_element, cell.value_text,
               staged.is_nil, kolab_count_norm(cell.value_text) AS norm
          FROM raw.submission_cell cell
          JOIN _clean_rows staged ON staged.raw_row_id = cell.raw_row_id
          JOIN _clean_form_element element
            ON element.code = cell.data_element AND element.form = staged.form
         {where}
      )
  )
"""

# DHIS2: a data element's value is the sum over its category option combos × attribute option
# combos (DHIS2's own total; several mapped pairs of one code are summed too); a value the import
# ignored as a duplicate key is left out. One cell per row × element replaces the combos.
DHIS2_ROWS = "SELECT rk FROM _clean_rows WHERE source_kind = 'dhis2'"
DHIS2_TOTALS = f"""
SELECT rk, any_value(fk) AS fk, min(column_index) AS column_index, data_element,
       bool_or(is_nil) AS is_nil, CAST(sum(value) AS BIGINT) AS value, bool_or(bad) AS bad,
       string_agg(value_text, ' | ' ORDER BY column_index) AS value_text
  FROM ({CELLS.format(where="WHERE staged.source_kind = 'dhis2' "
                            "AND cell.ignore_reason IS DISTINCT FROM 'duplicate'")})
 GROUP BY rk, data_element
"""
DROP_DHIS2_CELLS = "DELETE FROM _clean_cell WHERE rk IN (SELECT rk FROM _clean_dhis2_rows)"

# Two columns of one row mapped to the same element: the leftmost is the value (raw keeps both).
# A row-by-row window over every cell is the slow way to find them; in a template file an element
# sits in one column for all rows, so only (file × sheet × element) groups spread over several
# columns (duplicated headers, DHIS2 payloads) need the window.
DROP_SHADOWED_CELLS = """
DELETE FROM _clean_cell AS cell USING (
    SELECT rk, data_element, column_index
      FROM _clean_cell
      SEMI JOIN (SELECT fk, data_element FROM _clean_cell GROUP BY fk, data_element
                  HAVING min(column_index) <> max(column_index)) spread USING (fk, data_element)
    QUALIFY row_number() OVER (PARTITION BY rk, data_element ORDER BY column_index) > 1
) shadowed
WHERE cell.rk = shadowed.rk AND cell.data_element = shadowed.data_element
  AND cell.column_index = shadowed.column_index
"""

ERRORS = """
-- rows of a file the raw layer rejected as a whole carry the file's rule
SELECT raw_row_id, coalesce(file_reject_rule, 'F01') AS rule_id, NULL AS column_name,
       NULL AS value_text
  FROM _clean_rows WHERE file_status = 'rejected'
UNION ALL
SELECT raw_row_id, 'V16', 'form', form FROM _clean_rows WHERE NOT coalesce(form_ok, false)
UNION ALL
SELECT raw_row_id, 'V01',
       CASE WHEN kode_norm IS NULL THEN 'nama_faskes' ELSE 'kode_faskes' END,
       CASE WHEN kode_norm IS NULL THEN nama_faskes ELSE kode_written END
  FROM _clean_rows WHERE kode_faskes IS NULL
UNION ALL
SELECT raw_row_id, 'V05', 'periode', periode FROM _clean_rows WHERE period IS NULL
UNION ALL
SELECT raw_row_id, 'V05F',
       CASE WHEN tanggal_lapor_date IS NOT NULL THEN 'periode, tanggal_lapor'
            ELSE 'periode' END,
       periode
  FROM _clean_rows
 WHERE period IS NOT NULL AND CAST(period || '-01' AS DATE) > received_local_date
UNION ALL
-- both rows of a duplicated facility × period × form inside one file: we cannot know which
-- one the clerk meant, so neither is kept (a GROUP BY finds the rare duplicates, no window)
SELECT staged.raw_row_id, 'V15', 'kode_faskes, periode',
       string_agg(CAST(staged.row_number AS VARCHAR), ', '
                  ORDER BY staged.sheet, staged.row_number)
         OVER (PARTITION BY staged.file_id, staged.kode_faskes, staged.period, staged.form)
  FROM _clean_rows staged
  SEMI JOIN (SELECT file_id, kode_faskes, period, form
               FROM _clean_rows
              WHERE kode_faskes IS NOT NULL AND period IS NOT NULL AND form_ok
              GROUP BY file_id, kode_faskes, period, form HAVING count(*) > 1) duplicated
    ON duplicated.file_id IS NOT DISTINCT FROM staged.file_id
   AND duplicated.kode_faskes = staged.kode_faskes
   AND duplicated.period = staged.period AND duplicated.form = staged.form
UNION ALL
SELECT staged.raw_row_id, bad_cell.rule_id,
       string_agg(bad_cell.data_element, ', ' ORDER BY bad_cell.column_index) AS column_name,
       string_agg(coalesce(bad_cell.value_text, ''), ' | ' ORDER BY bad_cell.column_index)
         AS value_text
  FROM (SELECT rk, column_index, data_element, value_text,
               CASE WHEN bad THEN 'V06' ELSE 'V06N' END AS rule_id
          FROM _clean_cell WHERE bad OR (is_nil AND value <> 0)) bad_cell
  JOIN _clean_rows staged ON staged.rk = bad_cell.rk
 GROUP BY staged.raw_row_id, bad_cell.rule_id
UNION ALL
-- a DHIS2 value whose data element is not mapped would vanish: the row waits for the mapping.
-- (Unknown columns of a template file — notes, totals — are ignored; they stay in raw. So is a
-- combo the mapping leaves out of a pair-mapped element: reported by the import summary.)
SELECT cell.raw_row_id, 'V17', string_agg(cell.header, ', ' ORDER BY cell.column_index),
       string_agg(cell.value_text, ' | ' ORDER BY cell.column_index)
  FROM raw.submission_cell cell
  JOIN _clean_rows staged ON staged.raw_row_id = cell.raw_row_id
 WHERE cell.data_element IS NULL AND cell.value_text IS NOT NULL
   AND staged.source_kind = 'dhis2'
   AND cell.ignore_reason IS DISTINCT FROM 'combo_not_mapped'
 GROUP BY cell.raw_row_id
"""


def stage_errors(stage: Staging) -> None:
    """`_clean_cell` (one staged row × catalogue element: the parsed count; a DHIS2 row's
    combos summed per element) and `_clean_err`
    (one raw row × error rule that fired, with the offending column and value verbatim; cell
    errors V06/V06N are aggregated per row and rule, columns listed). Every rule looks at one
    row or one file only — never at another file — which is what lets an incremental build
    leave the verdicts of unchanged files alone."""
    stage.create("cell", CELLS.format(where=""))
    dhis2 = stage.create("dhis2_rows", DHIS2_ROWS)
    if stage.con.execute(f"SELECT count(*) FROM {dhis2}").fetchone()[0]:
        totals = stage.create("dhis2_totals", DHIS2_TOTALS)
        stage.con.execute(DROP_DHIS2_CELLS)
        stage.con.execute(f"INSERT INTO _clean_cell SELECT * FROM {totals}")
    stage.con.execute(DROP_SHADOWED_CELLS)
    stage.create("err", ERRORS)
    stage.con.execute(SCOPE_ERRORS)  # L01: an unreadable lingkup_laporan (clean/lingkup.py)
