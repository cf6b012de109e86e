"""The WHO subunit summary of outliers (`indicators.dq_summary`): per kab/kota and provinsi ×
period (month, year to date) × element or `semua`."""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.indicators.dq.months import year_month

# Step 5, the WHO subunit summary per kab/kota and provinsi × period (month: bits of month P;
# ytd: Jan..P) × subject. Facilities sharing a kab/kota and the same bits are counted together
# (`patterns`), so the period fan-out runs on few rows. The WHO subunit rules hold per element
# (≥ 1 extreme; ≥ 2 moderate among its values, so never within one month); `semua` sums the
# values over elements and counts a facility once when any element meets the rule.
SUMMARY_SQL = """
    WITH periods AS (
        SELECT * FROM (VALUES {period_rows}) AS p(period, period_type, tahun, bits)
    ), located AS (
        SELECT value_year.*, kab.unit_code AS kabkota, prov.unit_code AS provinsi
          FROM {value_year} value_year
          LEFT JOIN {fac_unit} kab
            ON kab.kode_faskes = value_year.kode_faskes AND kab.unit_level = 'kabkota'
          LEFT JOIN {fac_unit} prov
            ON prov.kode_faskes = value_year.kode_faskes AND prov.unit_level = 'provinsi'
    ), patterns AS (
        SELECT kabkota, provinsi, data_element, tahun, reported, not_judged, extreme, moderate,
               count(*) AS n
          FROM located GROUP BY ALL
    ), facility_patterns AS (
        SELECT kabkota, provinsi, tahun, reported, not_judged, extreme, count(*) AS n
          FROM (SELECT kabkota, provinsi, kode_faskes, tahun, bit_or(reported) AS reported,
                       bit_or(not_judged) AS not_judged, bit_or(extreme) AS extreme
                  FROM located GROUP BY ALL)
         GROUP BY ALL
    ), moderate_twice AS (
        SELECT kabkota, provinsi, period, period_type, count(DISTINCT kode_faskes) AS n
          FROM located JOIN periods ON periods.tahun = located.tahun
         WHERE located.moderate <> 0 AND bit_count(located.moderate & periods.bits) >= 2
         GROUP BY ALL
    ), by_element AS (
        SELECT patterns.kabkota, patterns.provinsi, periods.period, periods.period_type,
               patterns.data_element AS subject,
               sum(patterns.n) AS n_units,
               coalesce(sum(patterns.n) FILTER (WHERE patterns.extreme & periods.bits <> 0), 0)
                   AS n_units_extreme,
               coalesce(sum(patterns.n)
                            FILTER (WHERE bit_count(patterns.moderate & periods.bits) >= 2), 0)
                   AS n_units_moderate,
               coalesce(sum(patterns.n)
                            FILTER (WHERE patterns.not_judged & periods.bits <> 0), 0)
                   AS n_units_not_judged,
               sum(patterns.n * bit_count(patterns.reported & periods.bits)) AS n_values,
               sum(patterns.n * bit_count((patterns.extreme | patterns.moderate) & periods.bits))
                   AS n_values_flagged,
               sum(patterns.n * bit_count(patterns.extreme & periods.bits)) AS n_values_extreme,
               sum(patterns.n * bit_count(patterns.moderate & periods.bits)) AS n_values_moderate,
               sum(patterns.n * bit_count(patterns.not_judged & periods.bits))
                   AS n_values_not_judged
          FROM patterns JOIN periods ON periods.tahun = patterns.tahun
         WHERE patterns.reported & periods.bits <> 0
         GROUP BY ALL
    ), all_units AS (
        SELECT facility_patterns.kabkota, facility_patterns.provinsi, periods.period,
               periods.period_type, sum(facility_patterns.n) AS n_units,
               coalesce(sum(facility_patterns.n)
                            FILTER (WHERE facility_patterns.extreme & periods.bits <> 0), 0)
                   AS n_units_extreme,
               coalesce(sum(facility_patterns.n)
                            FILTER (WHERE facility_patterns.not_judged & periods.bits <> 0), 0)
                   AS n_units_not_judged
          FROM facility_patterns JOIN periods ON periods.tahun = facility_patterns.tahun
         WHERE facility_patterns.reported & periods.bits <> 0
         GROUP BY ALL
    ), all_values AS (
        SELECT kabkota, provinsi, period, period_type, sum(n_values) AS n_values,
               sum(n_values_flagged) AS n_values_flagged, sum(n_values_extreme) AS n_values_extreme,
               sum(n_values_moderate) AS n_values_moderate,
               sum(n_values_not_judged) AS n_values_not_judged
          FROM by_element GROUP BY ALL
    ), summary_rows AS (
        SELECT * FROM by_element
        UNION ALL BY NAME
        SELECT all_units.*, 'semua' AS subject,
               coalesce(moderate_twice.n, 0) AS n_units_moderate,
               all_values.* EXCLUDE (kabkota, provinsi, period, period_type)
          FROM all_units
          JOIN all_values USING (kabkota, provinsi, period, period_type)
          LEFT JOIN moderate_twice USING (kabkota, provinsi, period, period_type)
    ), by_unit AS (
        SELECT 'kabkota' AS unit_level, kabkota AS unit_code, * EXCLUDE (kabkota, provinsi)
          FROM summary_rows WHERE kabkota IS NOT NULL
        UNION ALL
        SELECT 'provinsi', provinsi, period, period_type, subject,
               sum(n_units), sum(n_units_extreme), sum(n_units_moderate),
               sum(n_units_not_judged), sum(n_values), sum(n_values_flagged),
               sum(n_values_extreme), sum(n_values_moderate), sum(n_values_not_judged)
          FROM summary_rows WHERE provinsi IS NOT NULL GROUP BY ALL
    )
    SELECT unit_level, unit_code, period, period_type, subject,
           CAST(n_units AS BIGINT) AS n_units, CAST(n_units_extreme AS BIGINT) AS n_units_extreme,
           CAST(n_units_moderate AS BIGINT) AS n_units_moderate,
           CAST(n_units_not_judged AS BIGINT) AS n_units_not_judged,
           CAST(n_values AS BIGINT) AS n_values,
           CAST(n_values_flagged AS BIGINT) AS n_values_flagged,
           CAST(n_values_extreme AS BIGINT) AS n_values_extreme,
           CAST(n_values_moderate AS BIGINT) AS n_values_moderate,
           CAST(n_values_not_judged AS BIGINT) AS n_values_not_judged,
           100.0 * n_values_flagged / nullif(n_values, 0) AS pct_values_flagged,
           100.0 * n_values_extreme / nullif(n_values, 0) AS pct_values_extreme,
           100.0 * n_values_moderate / nullif(n_values, 0) AS pct_values_moderate,
           100.0 * n_units_extreme / nullif(n_units, 0) AS pct_units_extreme,
           100.0 * n_units_moderate / nullif(n_units, 0) AS pct_units_moderate
      FROM by_unit
"""



def summary_step(periods: Sequence[str], t: dict[str, str]) -> tuple[str, str]:
    """SUMMARY_SQL with one row per period × period type (the months as bits)."""
    period_rows = []
    for p in periods:
        year, month = year_month(p)
        period_rows += [f"('{p}', 'month', {year}, {1 << (month - 1)})",
                        f"('{p}', 'ytd', {year}, {(1 << month) - 1})"]
    return "summary", SUMMARY_SQL.format(period_rows=", ".join(period_rows), **t)
