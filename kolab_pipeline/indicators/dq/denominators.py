"""Denominators (WHO DQR 4a, 4b): official sasaran against their formula estimate, and reported
live births (annualised) against the sasaran lahir_hidup."""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.indicators.dq.months import year_month, ytd_exists, ytd_sum

# WHO DQR 4b: the reported element and the sasaran it should match (annualised).
LIVE_BIRTHS = ("kia_lahir_hidup", "lahir_hidup")

# 4a: each official sasaran in use (indicators.sasaran_resolved that equals a reference.sasaran
# row) ÷ its estimate: the formula of catalog/sasaran_formulas.csv applied to the unit's
# resolved base; for the kab/kota population, the Dukcapil figure of reference.wilayah.
DENOMINATOR_SQL = """
    WITH official AS (
        SELECT resolved.* FROM indicators.sasaran_resolved resolved
         WHERE resolved.tahun BETWEEN $first_year AND $last_year
           AND EXISTS (SELECT 1 FROM reference.sasaran o
                        WHERE o.tahun = resolved.tahun AND o.unit_level = resolved.unit_level
                          AND o.kode_unit = resolved.kode_unit AND o.sasaran = resolved.sasaran
                          AND o.nilai = resolved.nilai)
    ), estimate AS (
        SELECT formula.sasaran, base.tahun, base.unit_level, base.kode_unit,
               base.nilai * formula.coefficient AS estimate,
               printf('%s: %s %.0f × %g', formula.metode, formula.base, base.nilai,
                      formula.coefficient) AS basis
          FROM {formulas} formula
          JOIN indicators.sasaran_resolved base ON base.sasaran = formula.base
         WHERE base.tahun BETWEEN $first_year AND $last_year
        UNION ALL
        SELECT 'pend_total', years.tahun, 'kabkota', wilayah.kode, wilayah.penduduk,
               'penduduk Dukcapil (reference.wilayah)'
          FROM (SELECT kode, CAST(max(penduduk) AS DOUBLE) AS penduduk FROM reference.wilayah
                 WHERE level = 'kabkota' AND penduduk IS NOT NULL GROUP BY kode) wilayah
         CROSS JOIN (SELECT unnest(range($first_year, $last_year + 1)) AS tahun) years
    ), compared AS (
        SELECT official.tahun, official.unit_level, official.kode_unit, official.sasaran,
               official.nilai AS official, estimate.estimate, estimate.basis
          FROM official JOIN estimate USING (sasaran, tahun, unit_level, kode_unit)
         WHERE estimate.estimate > 0
    )
    SELECT compared.unit_level, compared.kode_unit AS unit_code, periods.period,
           'year' AS period_type, 'denominator_official_vs_estimate' AS metric,
           compared.sasaran AS subject, compared.official / compared.estimate AS value,
           compared.official AS numerator, compared.estimate AS denominator,
           1.0 AS reference, $c_denominator AS threshold,
           round(abs(compared.official / compared.estimate - 1), 9) > $c_denominator AS flagged,
           printf('%s resmi %.0f = %.2f kali perkiraan %.0f (%s); batas 1 ± %g',
                  compared.sasaran, compared.official, compared.official / compared.estimate,
                  compared.estimate, compared.basis, $c_denominator) AS message
      FROM compared
      JOIN (SELECT unnest($periods) AS period) periods
        ON CAST(substr(periods.period, 1, 4) AS INTEGER) = compared.tahun
"""

# 4b: reported live births Jan..P annualised (× 12 ÷ P's month) ÷ the sasaran lahir_hidup of
# the unit and year; one branch per period (`{branches}`).
LIVE_BIRTHS_SQL = """
    WITH reported AS ({branches}
    )
    SELECT reported.unit_level, reported.unit_code, reported.period, 'ytd' AS period_type,
           'denominator_live_births' AS metric, $live_births_subject AS subject,
           reported.births * 12.0 / reported.months / sasaran.nilai AS value,
           reported.births * 12.0 / reported.months AS numerator, sasaran.nilai AS denominator,
           1.0 AS reference, $c_denominator AS threshold,
           round(abs(reported.births * 12.0 / reported.months / sasaran.nilai - 1), 9)
               > $c_denominator AS flagged,
           printf('Lahir hidup dilaporkan Jan–%s %.0f, disetahunkan %.0f = %.2f kali sasaran '
                  'lahir hidup %.0f; batas 1 ± %g', reported.period, reported.births,
                  reported.births * 12.0 / reported.months,
                  reported.births * 12.0 / reported.months / sasaran.nilai, sasaran.nilai,
                  $c_denominator) AS message
      FROM reported
      JOIN indicators.sasaran_resolved sasaran
        ON sasaran.unit_level = reported.unit_level AND sasaran.kode_unit = reported.unit_code
       AND sasaran.tahun = reported.tahun AND sasaran.sasaran = $live_births_sasaran
     WHERE sasaran.nilai > 0
"""



def denominator_steps(periods: Sequence[str], t: dict[str, str]) -> list[tuple[str, str]]:
    """DENOMINATOR_SQL and LIVE_BIRTHS_SQL (one branch per period spelled out)."""
    births = []
    for period in periods:
        year, month = year_month(period)
        births.append(
            f"SELECT unit_level, unit_code, tahun, '{period}' AS period, {month} AS months, "
            f"{ytd_sum('m', month)} AS births FROM {t['unit_year']} "
            f"WHERE tahun = {year} AND data_element = $live_births_element "
            f"AND unit_level <> 'facility' AND {ytd_exists('m', month)}")
    union = "\n        UNION ALL "
    return [("denominator", DENOMINATOR_SQL.format(**t)),
            ("live_births", LIVE_BIRTHS_SQL.format(branches=union.join(births)))]
