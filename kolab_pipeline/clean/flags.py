"""Warnings on current submissions: the SELECT behind `clean.validation_flag` (one kept current
submission × warning rule × relation/element) — V13 (element not expected from the facility
type), V05D (a declared `tanggal_lapor` after the receipt at the Dinkes), L04 (a non-puskesmas
row declaring an area recap) and the catalogue's year-to-date relations (V07, V08, V09, V11)
over `_clean_ytd` (one current submission of a year complete so far). V13 and the relations
judge what was reported (`reported_value`); the scope warnings that depend on other
facilities' reports (L02, L03) are `lingkup.derive`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.clean.parsers import sql_list
from kolab_pipeline.rules import Relation
from kolab_pipeline.warehouse import Params, Staging, ident

Relations = Sequence[tuple[str, Relation]]


def in_touched_groups(alias: str) -> str:
    """A SEMI JOIN keeping the rows of `alias` in the facility × form × year groups an
    incremental build touched (`_clean_groups`)."""
    a = ident(alias)
    return (f"SEMI JOIN _clean_groups touched_group ON touched_group.kode_faskes = {a}.kode_faskes"
            f" AND touched_group.form = {a}.form AND touched_group.year = substr({a}.period, 1, 4)")


def relation_codes(relations: Relations) -> list[str]:
    """Every element code of the relations, sorted."""
    return sorted({c for _, rel in relations for c in (rel.lhs, *rel.rhs)})


# per current submission of one form: running YTD sums of its elements (`{running}`), kept where
# every month since January has a current report
YTD_OF_FORM = """
SELECT * EXCLUDE (n_months) FROM (
    SELECT current_sub.submission_id, current_sub.kode_faskes, current_sub.period,
           current_sub.form, {running}, count(*) OVER year_so_far AS n_months
      FROM (SELECT submission_id, kode_faskes, period, form
              FROM clean.submission submission {only_submission}
             WHERE is_current AND form = $form_{i}) current_sub
      LEFT JOIN (SELECT submission_id, {pivot}
                   FROM clean.submission_value submission_value {only_value}
                  WHERE form = $form_{i} AND data_element IN ({codes})
                  GROUP BY submission_id) pivoted
        ON pivoted.submission_id = current_sub.submission_id
    WINDOW year_so_far AS (PARTITION BY current_sub.kode_faskes, substr(current_sub.period, 1, 4)
                           ORDER BY current_sub.period
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
 WHERE n_months = CAST(substr(period, 6, 2) AS INTEGER)
"""


def stage_ytd(stage: Staging, relations: Relations, groups: bool) -> None:
    """`_clean_ytd`: per current submission whose year is complete so far (a current report of
    the form for every month since January), the year-to-date sums of the relation elements.
    Grain: one current submission. Read from the clean tables as just written, so a full and an
    incremental build judge the same data; `groups` limits it to `_clean_groups`. An element
    only has values in submissions of its own form (`_clean_form_element`), so each form's
    running sums cover that form's elements only (the others are NULL, as they would be)."""
    codes = relation_codes(relations)
    if not codes:
        stage.create("ytd", "SELECT NULL::VARCHAR AS submission_id LIMIT 0")
        return
    by_form = stage.con.execute(
        "SELECT form, list(code ORDER BY code) FROM _clean_form_element "
        "WHERE list_contains($codes, code) GROUP BY form ORDER BY form",
        {"codes": codes}).fetchall()
    selects: list[str] = []
    params: dict[str, object] = {}
    for i, (form, form_codes) in enumerate(by_form):
        # element codes are catalogue identifiers (checked by `ident`), like the column names
        pivot = ", ".join(f"sum(reported_value) FILTER (WHERE data_element = '{ident(c)}') "
                          f"AS {ident(c)}"
                          for c in form_codes)
        running = ", ".join(f"sum({ident(c)}) OVER year_so_far AS {ident(c)}" if c in form_codes
                            else f"NULL::HUGEINT AS {ident(c)}" for c in codes)
        selects.append(YTD_OF_FORM.format(
            running=running, pivot=pivot, i=i, codes=sql_list(map(ident, form_codes)),
            only_submission=in_touched_groups("submission") if groups else "",
            only_value=in_touched_groups("submission_value") if groups else ""))
        params[f"form_{i}"] = form
    if not selects:
        cols = ", ".join(f"NULL::HUGEINT AS {ident(c)}" for c in codes)
        selects.append(f"SELECT NULL::VARCHAR AS submission_id, NULL::VARCHAR AS kode_faskes, "
                       f"NULL::VARCHAR AS period, NULL::VARCHAR AS form, {cols} LIMIT 0")
    stage.create("ytd", " UNION ALL ".join(selects), params)


RELATION_FLAGS = """
SELECT submission_id, kode_faskes, period, form, $rule_{i} AS rule_id,
       $columns_{i} AS column_name,
       printf('%s = %d > %s = %d', $lhs_{i}, {lhs}, $rhs_{i}, {rhs_sum}) AS value_text,
       NULL AS jenis, NULL::DATE AS received
  FROM _clean_ytd
 WHERE {lhs} IS NOT NULL AND ({rhs_any}) AND {lhs} > {rhs_sum}
"""


def relation_flags(relations: Relations) -> tuple[str, dict[str, object]]:
    """SQL (and named params) for the YTD relation warnings over `_clean_ytd`: one SELECT per
    relation; empty SQL when there is no relation."""
    params: dict[str, object] = {}
    selects = []
    for i, (rule_id, rel) in enumerate(relations):
        selects.append(RELATION_FLAGS.format(
            i=i, lhs=ident(rel.lhs),
            rhs_sum=" + ".join(f"coalesce({ident(c)}, 0)" for c in rel.rhs),
            rhs_any=" OR ".join(f"{ident(c)} IS NOT NULL" for c in rel.rhs)))
        params |= {f"rule_{i}": rule_id, f"columns_{i}": ", ".join((rel.lhs, *rel.rhs)),
                   f"lhs_{i}": rel.lhs, f"rhs_{i}": " + ".join(rel.rhs)}
    return " UNION ALL ".join(selects), params


UNEXPECTED_ELEMENTS = """
SELECT current_value.submission_id, current_value.kode_faskes, current_value.period,
       current_value.form, 'V13' AS rule_id, current_value.data_element AS column_name,
       CAST(current_value.reported_value AS VARCHAR) AS value_text,
       facility.jenis_faskes AS jenis, NULL::DATE AS received
  FROM clean.submission_value current_value
  JOIN reference.facility facility ON facility.kode_faskes = current_value.kode_faskes
  SEMI JOIN (
      -- element × facility type pairs the catalogue does not expect
      SELECT element.code, facility_type.jenis_faskes
        FROM _clean_catalogue element,
             (SELECT DISTINCT jenis_faskes FROM reference.facility) facility_type
       WHERE NOT list_contains(
               string_split(replace(coalesce(element.expected_from, ''), ' ', ''), ';'),
               facility_type.jenis_faskes)
  ) unexpected ON unexpected.code = current_value.data_element
              AND unexpected.jenis_faskes = facility.jenis_faskes
  {only}
 WHERE current_value.reported_value > 0
"""

# L04: a row of a facility other than a puskesmas declares `wilayah` (only a puskesmas reports
# for an area): counted as its own services
SCOPE_NOT_PUSKESMAS = """
SELECT submission.submission_id, submission.kode_faskes, submission.period, submission.form,
       'L04' AS rule_id, 'lingkup_laporan' AS column_name, raw_row.lingkup_laporan AS value_text,
       facility.jenis_faskes AS jenis, NULL::DATE AS received
  FROM clean.submission submission
  JOIN reference.facility facility ON facility.kode_faskes = submission.kode_faskes
  JOIN raw.submission_row raw_row ON raw_row.raw_row_id = submission.raw_row_id
  {only}
 WHERE submission.is_current AND submission.lingkup_source = 'column'
   AND facility.jenis_faskes <> 'puskesmas'
   AND kolab_report_scope(raw_row.lingkup_laporan) = 'wilayah'
"""

FLAGS = """
SELECT flag.submission_id, flag.kode_faskes, flag.period, flag.form, flag.rule_id,
       'warning' AS severity, flag.column_name, flag.value_text,
       kolab_fill(rule.template_id, flag.value_text, flag.column_name, flag.kode_faskes,
                  flag.period, flag.jenis, flag.received) AS reason_id,
       kolab_fill(rule.template_en, flag.value_text, flag.column_name, flag.kode_faskes,
                  flag.period, flag.jenis, flag.received) AS reason_en
  FROM ({flags}) flag
  LEFT JOIN _clean_rule rule ON rule.rule_id = flag.rule_id
"""


# V05D: the date a report declares (tanggal_lapor) is after it reached the Dinkes — impossible
# for a file that carried it; the declared date never decides the status (README "Inputs").
DECLARED_AFTER_RECEIPT = """
SELECT submission.submission_id, submission.kode_faskes, submission.period, submission.form,
       'V05D' AS rule_id, 'tanggal_lapor' AS column_name,
       strftime(timezone(local_zone.tz, submission.declared_at), '%Y-%m-%d') AS value_text,
       NULL AS jenis, CAST(timezone(local_zone.tz, submission.received_dinkes_at) AS DATE)
         AS received
  FROM clean.submission submission
  JOIN (SELECT kode_faskes, coalesce(timezone, $default_tz) AS tz FROM reference.facility)
       local_zone ON local_zone.kode_faskes = submission.kode_faskes
  {only}
 WHERE submission.is_current
   AND CAST(timezone(local_zone.tz, submission.declared_at) AS DATE)
       > CAST(timezone(local_zone.tz, submission.received_dinkes_at) AS DATE)
"""


def validation_flags(relations: Relations, groups: bool,
                     default_tz: str = "Asia/Jakarta") -> tuple[str, Params]:
    """The SELECT (and params) of `clean.validation_flag` rows: V13 on the current values, V05D
    on the current submissions, the relations on `_clean_ytd`; `groups` limits V13 and V05D to
    `_clean_groups`. `default_tz`: the zone of a facility without one in the registry."""
    parts = [UNEXPECTED_ELEMENTS.format(
        only=in_touched_groups("current_value") if groups else ""),
        DECLARED_AFTER_RECEIPT.format(only=in_touched_groups("submission") if groups else ""),
        SCOPE_NOT_PUSKESMAS.format(only=in_touched_groups("submission") if groups else "")]
    relation_sql, params = relation_flags(relations)
    params = {**params, "default_tz": default_tz}
    if relation_sql:
        parts.append(f"SELECT * FROM ({relation_sql}) AS rel")
    return FLAGS.format(flags=" UNION ALL ".join(parts)), params
