"""Completeness (WHO DQR 1c, 1d): content completeness — values present ÷ values expected in
the reports received — per facility and unit, month and year to date; and the consistency of
reporting completeness over time (`compliance.reporting_rate`)."""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.indicators.dq.months import year_month, ytd_sum
from kolab_pipeline.judgement import meets_sql

# 1c step 1: in the reports received (current version), values present (not blank; 0 is a
# value) of the elements the facility's type must fill (`catalog/data_elements.csv`
# expected_from) and values expected; per unit × subject × year with the months as columns
# (x = expected, p = present). Subjects: facility and unit × form and `semua` (grain `form`);
# unit above facility × element (grain `element`). The values are read once, into one row per
# facility × element × year with the months present as bits; everything after works on those.
# A network counts the months a facility belonged to it (`moved`: the months outside the
# registry's network).
CONTENT_YEAR_SQL = """
    WITH received AS MATERIALIZED (
        SELECT s.kode_faskes, facility.jenis_faskes, facility.kode_jejaring, s.form,
               CAST(substr(s.period, 1, 4) AS INTEGER) AS tahun,
               bit_or(1 << (CAST(substr(s.period, 6, 2) AS INTEGER) - 1)) AS months
          FROM clean.submission s JOIN reference.facility facility USING (kode_faskes)
         WHERE s.is_current AND s.period BETWEEN $year_start AND $last_period
         GROUP BY ALL
    ), present AS MATERIALIZED (
        SELECT filled.kode_faskes, facility.kode_jejaring, expected.form, expected.data_element,
               filled.tahun, filled.months
          FROM (SELECT kode_faskes, data_element,
                       CAST(substr(period, 1, 4) AS INTEGER) AS tahun,
                       bit_or(1 << (CAST(substr(period, 6, 2) AS INTEGER) - 1)) AS months
                  FROM clean.submission_value
                 WHERE value IS NOT NULL AND period BETWEEN $year_start AND $last_period
                 GROUP BY ALL) filled
          JOIN reference.facility facility USING (kode_faskes)
          JOIN {expected_element} expected
            ON expected.data_element = filled.data_element
           AND expected.jenis_faskes = facility.jenis_faskes
    ), facility_year AS MATERIALIZED (
        SELECT received.kode_faskes, received.form, received.tahun, {facility_columns}
          FROM received
          JOIN (SELECT form, jenis_faskes, count(*) AS n_elements
                  FROM {expected_element} GROUP BY ALL) n
            ON n.form = received.form AND n.jenis_faskes = received.jenis_faskes
          LEFT JOIN (SELECT kode_faskes, form, tahun, {present_counts}
                       FROM present GROUP BY ALL) filled
            ON filled.kode_faskes = received.kode_faskes AND filled.form = received.form
           AND filled.tahun = received.tahun
    ), value_months AS (
        -- facility × element × year: the months a value was expected (x) and present (p)
        SELECT received.kode_faskes, received.kode_jejaring, expected.form,
               expected.data_element, received.tahun, received.months AS x_months, 0 AS p_months
          FROM received
          JOIN {expected_element} expected
            ON expected.form = received.form AND expected.jenis_faskes = received.jenis_faskes
        UNION ALL
        SELECT kode_faskes, kode_jejaring, form, data_element, tahun, 0, months FROM present
    ), moved_year AS (
        SELECT kode_faskes, form, CAST(substr(period, 1, 4) AS INTEGER) AS tahun, kode_jejaring,
               bit_or(1 << (CAST(substr(period, 6, 2) AS INTEGER) - 1)) AS months
          FROM {moved} GROUP BY ALL
    ), by_network AS (
        -- the same split by the network of each month: the registry's unless moved
        SELECT value_months.* REPLACE (
                   x_months & ~coalesce(moved_any.months, 0) AS x_months,
                   p_months & ~coalesce(moved_any.months, 0) AS p_months)
          FROM value_months
          LEFT JOIN (SELECT kode_faskes, form, tahun, bit_or(months) AS months
                       FROM moved_year GROUP BY ALL) moved_any
            ON moved_any.kode_faskes = value_months.kode_faskes
           AND moved_any.form = value_months.form AND moved_any.tahun = value_months.tahun
        UNION ALL
        SELECT value_months.* REPLACE (
                   moved_year.kode_jejaring AS kode_jejaring,
                   x_months & moved_year.months AS x_months,
                   p_months & moved_year.months AS p_months)
          FROM value_months
          JOIN moved_year
            ON moved_year.kode_faskes = value_months.kode_faskes
           AND moved_year.form = value_months.form AND moved_year.tahun = value_months.tahun
    ), set_year AS (
        SELECT fac_set.set_id, by_network.kode_jejaring, by_network.form,
               by_network.data_element, by_network.tahun, {bit_sums}
          FROM by_network LEFT JOIN {fac_set} fac_set USING (kode_faskes)
         GROUP BY ALL
    ), unit_element AS MATERIALIZED (
        SELECT set_unit.unit_level, set_unit.unit_code, set_year.form, set_year.data_element,
               set_year.tahun, {sum_columns}
          FROM set_year JOIN {set_unit} set_unit USING (set_id) GROUP BY ALL
        UNION ALL
        SELECT 'puskesmas_network', kode_jejaring, form, data_element, tahun, {sum_columns}
          FROM set_year WHERE kode_jejaring IS NOT NULL GROUP BY ALL
    )
    SELECT 'facility' AS unit_level, kode_faskes AS unit_code, 'form' AS grain,
           form AS subject, tahun, * EXCLUDE (kode_faskes, form, tahun)
      FROM facility_year
    UNION ALL
    SELECT 'facility', kode_faskes, 'form', 'semua', tahun, {sum_columns}
      FROM facility_year GROUP BY ALL
    UNION ALL
    SELECT unit_level, unit_code, 'element', data_element, tahun,
           * EXCLUDE (unit_level, unit_code, form, data_element, tahun)
      FROM unit_element
    UNION ALL
    SELECT unit_level, unit_code, 'form', form, tahun, {sum_columns}
      FROM unit_element GROUP BY ALL
    UNION ALL
    SELECT unit_level, unit_code, 'form', 'semua', tahun, {sum_columns}
      FROM unit_element GROUP BY ALL
"""

# 1c step 2: one branch per period P (`{branches}`): the month (grain `form`) and Jan..P.
CONTENT_SQL = """
    WITH counts AS ({branches}
    )
    SELECT unit_level, unit_code, period, period_type, 'content_completeness' AS metric, subject,
           100.0 * present / expected AS value, present AS numerator, expected AS denominator,
           CAST(NULL AS DOUBLE) AS reference, $content_pct AS threshold,
           NOT {meets} AS flagged,
           CASE WHEN NOT {meets}
                THEN printf('%.0f dari %.0f nilai yang diharapkan terisi (%.1f %%); '
                            'batas %g %%', present, expected, 100.0 * present / expected,
                            $content_pct) END AS message
      FROM counts WHERE expected > 0
"""

# 1d: reporting completeness year to date (compliance.reporting_rate, all facility types)
# ÷ the mean of the same months' completeness in up to three previous years; compared with the
# parent's ratio or with 1, like consistency over time.
COMPLETENESS_TIME_SQL = """
    WITH rate AS (
        SELECT unit_level, unit_code, form, period, completeness_pct,
               CAST(substr(period, 1, 4) AS INTEGER) AS tahun, substr(period, 6, 2) AS bulan
          FROM compliance.reporting_rate
         WHERE period_type = 'ytd' AND jenis_faskes = 'semua' AND unit_level <> 'facility'
           AND expected > 0 AND period BETWEEN $unit_year_start AND $last_period
    ), ratios AS MATERIALIZED (
        SELECT cur.unit_level, cur.unit_code, cur.form, cur.period,
               any_value(cur.completeness_pct) AS current,
               avg(prior.completeness_pct) AS prior_mean, count(*) AS n_years,
               any_value(cur.completeness_pct) / avg(prior.completeness_pct) AS ratio
          FROM rate cur
          JOIN rate prior
            ON prior.unit_level = cur.unit_level AND prior.unit_code = cur.unit_code
           AND prior.form = cur.form AND prior.bulan = cur.bulan
           AND prior.tahun BETWEEN cur.tahun - $prior_years AND cur.tahun - 1
         WHERE list_contains($periods, cur.period)
         GROUP BY cur.unit_level, cur.unit_code, cur.form, cur.period
        HAVING avg(prior.completeness_pct) > 0
    ), judged AS (
        SELECT ratios.*, unit.parent_level, unit.parent_code,
               CASE WHEN $compare_with_one THEN 1.0 ELSE parent.ratio END AS parent_ratio
          FROM ratios
          LEFT JOIN {unit_parent} unit
            ON unit.unit_level = ratios.unit_level AND unit.unit_code = ratios.unit_code
          LEFT JOIN ratios parent
            ON parent.unit_level = unit.parent_level AND parent.unit_code = unit.parent_code
           AND parent.form = ratios.form AND parent.period = ratios.period
    )
    SELECT unit_level, unit_code, period, 'ytd' AS period_type,
           'completeness_consistency' AS metric, form AS subject, ratio AS value,
           current AS numerator, prior_mean AS denominator, parent_ratio AS reference,
           $c_completeness AS threshold,
           CASE WHEN parent_ratio > 0
                THEN round(abs(ratio / parent_ratio - 1), 9) > $c_completeness END AS flagged,
           printf('Kelengkapan laporan %s tahun berjalan %.1f %% = %.2f kali rata-rata %d tahun '
                  'sebelumnya (%.1f %%); acuan %s', form, current, ratio, n_years, prior_mean,
                  CASE WHEN $compare_with_one THEN '1'
                       WHEN parent_ratio IS NULL THEN 'tidak ada (tidak dinilai)'
                       ELSE printf('%s %s %.2f', parent_level, parent_code, parent_ratio) END)
               AS message
      FROM judged
"""



def completeness_steps(periods: Sequence[str], t: dict[str, str]) -> list[tuple[str, str]]:
    """CONTENT_YEAR_SQL, CONTENT_SQL and COMPLETENESS_TIME_SQL with the month columns and one
    branch per period spelled out."""
    months = range(1, 13)
    content = []
    for period in periods:
        year, month = year_month(period)
        content.append(
            f"SELECT unit_level, unit_code, '{period}' AS period, 'month' AS period_type, "
            f"subject, x{month} AS expected, p{month} AS present FROM {t['content_year']} "
            f"WHERE tahun = {year} AND grain = 'form' AND x{month} > 0 "
            f"UNION ALL SELECT unit_level, unit_code, '{period}', 'ytd', subject, "
            f"{ytd_sum('x', month)}, {ytd_sum('p', month)} FROM {t['content_year']} "
            f"WHERE tahun = {year}")
    bit = {m: f"((months >> {m - 1}) & 1)" for m in months}
    content_year = CONTENT_YEAR_SQL.format(
        facility_columns=", ".join(
            f"{bit[m]} * n.n_elements AS x{m}, {bit[m]} * coalesce(filled.p{m}, 0) AS p{m}"
            for m in months),
        present_counts=", ".join(f"sum({bit[m]}) AS p{m}" for m in months),
        bit_sums=", ".join(f"sum((x_months >> {m - 1}) & 1) AS x{m}, "
                           f"sum((p_months >> {m - 1}) & 1) AS p{m}" for m in months),
        sum_columns=", ".join(f"sum(x{m}) AS x{m}, sum(p{m}) AS p{m}" for m in months), **t)
    meets = meets_sql("100.0 * present / expected", "$content_pct")
    union = "\n        UNION ALL "
    return [("content_year", content_year),
            ("content", CONTENT_SQL.format(branches=union.join(content), meets=meets)),
            ("completeness_time", COMPLETENESS_TIME_SQL.format(**t))]
