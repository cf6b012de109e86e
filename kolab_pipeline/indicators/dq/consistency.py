"""Internal consistency of units above facility: related indicators and negative drop-out (WHO
DQR 2c, `catalog/dq_relations.csv`) and consistency over time (2b), year to date per period.
Both read the unit × element × year month sums of `units.UNIT_YEAR_SQL`."""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.indicators.dq.months import months_as, year_month, ytd_exists, ytd_sum

# Expected ratio A ÷ B of the relations with a sasaran pair, per unit × year: sasaran_a ÷
# sasaran_b of the unit (`indicators.sasaran_resolved`), else of its kab/kota.
EXPECTED_RATIO_SQL = """
    WITH own AS (
        SELECT relation.relation_id, sas_a.tahun, sas_a.unit_level, sas_a.kode_unit AS unit_code,
               sas_a.nilai / sas_b.nilai AS expected,
               printf('%s %.0f / %s %.0f', relation.sasaran_a, sas_a.nilai, relation.sasaran_b,
                      sas_b.nilai) AS basis
          FROM {relations} relation
          JOIN indicators.sasaran_resolved sas_a ON sas_a.sasaran = relation.sasaran_a
          JOIN indicators.sasaran_resolved sas_b
            ON sas_b.sasaran = relation.sasaran_b AND sas_b.tahun = sas_a.tahun
           AND sas_b.unit_level = sas_a.unit_level AND sas_b.kode_unit = sas_a.kode_unit
         WHERE sas_a.tahun BETWEEN $first_year AND $last_year
           AND sas_a.nilai > 0 AND sas_b.nilai > 0
    )
    SELECT unit.unit_level, unit.unit_code, relation.relation_id, years.tahun,
           coalesce(own.expected, kab.expected) AS expected,
           coalesce(own.basis, 'kab/kota: ' || kab.basis) AS basis
      FROM {unit_parent} unit
     CROSS JOIN (SELECT relation_id FROM {relations} WHERE has_sasaran) relation
     CROSS JOIN (SELECT unnest(range($first_year, $last_year + 1)) AS tahun) years
      LEFT JOIN own
        ON own.relation_id = relation.relation_id AND own.tahun = years.tahun
       AND own.unit_level = unit.unit_level AND own.unit_code = unit.unit_code
      LEFT JOIN own kab
        ON kab.relation_id = relation.relation_id AND kab.tahun = years.tahun
       AND kab.unit_level = 'kabkota' AND kab.unit_code = unit.kabkota
     WHERE coalesce(own.expected, kab.expected) IS NOT NULL
"""

# Relations: one row per relation × unit × year with the monthly sums of A and B (`a1..a12`,
# `b1..b12`) and of the flows added to them (`fa`, `fb`: summed per side, NULL when none),
# then one branch per period P of that year (`{ytd_pairs}`) with the year-to-date sums Jan..P.
# score = (A ÷ B) ÷ expected ratio.
RELATION_SQL = """
    WITH flows AS MATERIALIZED (
        SELECT side.relation_id, side.side, unit_year.unit_level, unit_year.unit_code,
               unit_year.tahun, {side_sums}
          FROM {relation_side} side
          JOIN {unit_year} unit_year ON unit_year.data_element = side.data_element
         WHERE side.side IN ('fa', 'fb') AND unit_year.tahun BETWEEN $first_year AND $last_year
         GROUP BY ALL
    ), pairs AS (
        SELECT relation.relation_id, relation.kind, relation.subject, relation.has_sasaran,
               relation.tolerance, relation.a_text, relation.b_text, a.unit_level, a.unit_code,
               a.tahun, {side_columns}
          FROM {relations} relation
          JOIN {unit_year} a ON a.data_element = relation.a
          JOIN {unit_year} b
            ON b.data_element = relation.b AND b.unit_level = a.unit_level
           AND b.unit_code = a.unit_code AND b.tahun = a.tahun
          LEFT JOIN flows fa
            ON fa.relation_id = relation.relation_id AND fa.side = 'fa'
           AND fa.unit_level = a.unit_level AND fa.unit_code = a.unit_code AND fa.tahun = a.tahun
          LEFT JOIN flows fb
            ON fb.relation_id = relation.relation_id AND fb.side = 'fb'
           AND fb.unit_level = a.unit_level AND fb.unit_code = a.unit_code AND fb.tahun = a.tahun
         WHERE a.tahun BETWEEN $first_year AND $last_year
    ), ytd AS ({ytd_pairs}
    ), judged AS (
        SELECT ytd.*, ytd.main_a + ytd.flow_a AS ytd_a, ytd.main_b + ytd.flow_b AS ytd_b,
               CASE WHEN ytd.has_sasaran THEN expected.expected ELSE 1.0 END AS expected,
               coalesce(expected.basis, 'tanpa sasaran') AS basis
          FROM ytd
          LEFT JOIN {expected_ratio} expected
            ON expected.relation_id = ytd.relation_id AND expected.tahun = ytd.tahun
           AND expected.unit_level = ytd.unit_level AND expected.unit_code = ytd.unit_code
    ), scored AS (
        SELECT *, CASE WHEN ytd_a > 0 AND ytd_b > 0 AND expected > 0
                       THEN round(ytd_a / ytd_b / expected, 9) END AS score,
               CASE WHEN ytd_a > 0 THEN round((ytd_a - ytd_b) / ytd_a * 100, 9) END AS dropout
          FROM judged
    )
    SELECT unit_level, unit_code, period, subject, 'related_indicators' AS method,
           ytd_a AS value, score, tolerance AS threshold, ytd_b AS reference,
           printf('%s tahun berjalan: %s %.0f, %s %.0f, rasio %.3f; rasio yang diharapkan %.3f '
                  '(%s); rasio ÷ yang diharapkan %.3f di luar %s',
                  subject, a_text, ytd_a, b_text, ytd_b, ytd_a / ytd_b, expected, basis, score,
                  CASE kind WHEN 'eq' THEN printf('1 ± %g', tolerance)
                            ELSE printf('≥ 1 − %g', tolerance) END) AS message
      FROM scored
     WHERE unit_level <> 'facility' AND score IS NOT NULL
       AND ((kind = 'eq' AND round(abs(score - 1), 9) > tolerance)
            OR (kind = 'aGTb' AND round(1 - score, 9) > tolerance))
    UNION ALL
    SELECT unit_level, unit_code, period, subject, 'negative_dropout', ytd_a, dropout, 0.0,
           ytd_b,
           printf('Drop-out %s→%s negatif: %.1f %% (%s %.0f < %s %.0f)',
                  a_text, b_text, dropout, a_text, ytd_a, b_text, ytd_b)
      FROM scored WHERE kind = 'do' AND dropout < 0
"""

# Each unit × element × year joined once to its previous years Y−3..Y−1 — a previous year only
# when the unit's kab/kota had data from its January on (`first_month_no`) — then one branch
# per period P (`{ytd_years}`) compares the sums Jan..P: ratio = current ÷ mean of the previous
# years that have a value in Jan..P.
TIME_RATIO_SQL = """
    WITH years AS (
        SELECT unit_year.*, unit.first_month_no
          FROM {unit_year} unit_year
          JOIN {unit_parent} unit
            ON unit.unit_level = unit_year.unit_level AND unit.unit_code = unit_year.unit_code
         WHERE NOT list_contains($cumulative, unit_year.data_element)
    ), pairs AS (
        SELECT cur.unit_level, cur.unit_code, cur.data_element, cur.tahun, {c_months}, {p_months}
          FROM years cur
          JOIN years prior
            ON prior.unit_level = cur.unit_level AND prior.unit_code = cur.unit_code
           AND prior.data_element = cur.data_element
           AND prior.tahun BETWEEN cur.tahun - $prior_years AND cur.tahun - 1
         WHERE cur.tahun BETWEEN $first_year AND $last_year
           AND prior.tahun * 12 + 1 >= prior.first_month_no
    ), ytd AS ({ytd_years}
    )
    SELECT unit_level, unit_code, data_element, period, current, avg(prior) AS prior_mean,
           count(prior) AS n_years, current / avg(prior) AS ratio
      FROM ytd GROUP BY unit_level, unit_code, data_element, period, current
    HAVING avg(prior) > 0
"""

# Consistency over time judged: a unit's ratio compared with its parent's ratio (network,
# kecamatan → kab/kota; kab/kota → provinsi; a provinsi has none and is not judged) or, with
# `consistency_compare_with: one`, with 1 at every level.
TIME_SQL = """
    WITH judged AS (
        SELECT ratios.*, unit.parent_level, unit.parent_code,
               CASE WHEN $compare_with_one THEN 1.0 ELSE parent.ratio END AS parent_ratio
          FROM {time_ratio} ratios
          JOIN {unit_parent} unit
            ON unit.unit_level = ratios.unit_level AND unit.unit_code = ratios.unit_code
          LEFT JOIN {time_ratio} parent
            ON parent.unit_level = unit.parent_level AND parent.unit_code = unit.parent_code
           AND parent.data_element = ratios.data_element AND parent.period = ratios.period
    )
    SELECT unit_level, unit_code, period, data_element AS subject,
           'consistency_over_time' AS method, current AS value,
           round(ratio / parent_ratio, 9) AS score, $c_time AS threshold,
           prior_mean * parent_ratio AS reference,
           printf('%s Jan–%s = %.0f, %.2f kali rata-rata %d tahun sebelumnya (%.1f)%s; '
                  'di luar 1 ± %g', data_element, period, current, round(ratio, 2), n_years,
                  prior_mean,
                  CASE WHEN $compare_with_one THEN ''
                       ELSE printf('; %s %s %.2f kali, jadi %.2f kali yang diharapkan',
                                   parent_level, parent_code, parent_ratio,
                                   ratio / parent_ratio) END,
                  $c_time) AS message
      FROM judged
     WHERE parent_ratio > 0 AND round(abs(ratio / parent_ratio - 1), 9) > $c_time
"""



def consistency_steps(periods: Sequence[str], t: dict[str, str]) -> list[tuple[str, str]]:
    """EXPECTED_RATIO_SQL, RELATION_SQL, TIME_RATIO_SQL, TIME_SQL with their month columns and
    one branch per period spelled out."""
    months = range(1, 13)
    side_sums = ", ".join(f"sum(unit_year.m{m}) AS m{m}" for m in months)
    side_columns = ", ".join(months_as(side, side) for side in ("a", "b", "fa", "fb"))
    rel, time = [], []
    for period in periods:
        year, month = year_month(period)
        rel.append(
            "SELECT relation_id, kind, subject, has_sasaran, tolerance, a_text, b_text, "
            f"unit_level, unit_code, tahun, '{period}' AS period, "
            f"{ytd_sum('a', month)} AS main_a, {ytd_sum('fa', month)} AS flow_a, "
            f"{ytd_sum('b', month)} AS main_b, {ytd_sum('fb', month)} AS flow_b "
            f"FROM pairs WHERE tahun = {year} "
            f"AND {ytd_exists('a', month)} AND {ytd_exists('b', month)}")
        time.append(f"SELECT unit_level, unit_code, data_element, '{period}' AS period, "
                    f"{ytd_sum('c', month)} AS current, {ytd_sum('p', month)} AS prior "
                    f"FROM pairs WHERE tahun = {year} "
                    f"AND {ytd_exists('c', month)} AND {ytd_exists('p', month)}")
    union = "\n        UNION ALL "
    relation = RELATION_SQL.format(side_sums=side_sums, side_columns=side_columns,
                                   ytd_pairs=union.join(rel), **t)
    time_ratio = TIME_RATIO_SQL.format(c_months=months_as("cur", "c"),
                                       p_months=months_as("prior", "p"),
                                       ytd_years=union.join(time), **t)
    return [("expected_ratio", EXPECTED_RATIO_SQL.format(**t)), ("relation", relation),
            ("time_ratio", time_ratio), ("time", TIME_SQL.format(**t))]
