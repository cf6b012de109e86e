"""WHO Data Quality Review (DQR) metrics. Three tables, each period replaced whole:

- `indicators.dq_flag`: one row per facility or unit × period × subject (data element or
  relation) × method that flagged a value — outliers (2a), related indicators and negative
  drop-out (2c), consistency over time (2b). Only flags are stored. A value flagged by two
  methods keeps a row per method (each with its score); it is one value — unit × period ×
  subject — and `indicators.dq_summary` counts it once.
- `indicators.dq_metric`: one row per unit × period × period type × metric × subject with the
  metric's value, flagged or not: content completeness (1c), consistency of reporting
  completeness over time (1d), denominators (4a official vs estimate, 4b reported live births vs
  sasaran); and per facility × month the values not judged for outliers (too few months).
- `indicators.dq_summary`: one row per kab/kota or provinsi × period × period type × subject
  (element or `semua`): the WHO subunit summary of outliers.

Thresholds from kolab.yaml `thresholds:`. Definitions and the design of the one-pass
computation: docs/design/indicators.md ("WHO DQR metrics").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.catalogue import load_relations, load_sasaran_formulas, stage_frame
from kolab_pipeline.indicators.sasaran import facility_units
from kolab_pipeline.judgement import meets_sql
from kolab_pipeline.warehouse import Staging, bind, ensure_schema, replace_rows

_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
OUTLIER_WINDOW_MONTHS = 12
PRIOR_YEARS = 3
# Relative margin of the numpy candidate test (rounding differences are ≤ ~1e-14).
CANDIDATE_MARGIN = 1e-6
_SERIES_ROWS_PER_CHUNK = 8 * 2048  # small: numpy temporaries stay in cache
# WHO DQR 4b: the reported element and the sasaran it should match (annualised).
LIVE_BIRTHS = ("kia_lahir_hidup", "lahir_hidup")
# Levels of the subunit summary (`indicators.dq_summary`).
SUMMARY_LEVELS = ("kabkota", "provinsi")

# The month of a month counter (`year × 12 + month`), as `YYYY-MM`.
_PERIOD_OF_MONTH_NO = "printf('%04d-%02d', (month_no - 1) // 12, (month_no - 1) % 12 + 1)"

# --- outliers (WHO DQR 2a) ----------------------------------------------------------------

# Step 1: one row per facility × element series, one column per month of [first judged month −
# 11, last period] (`c0`, `c1`, …; NULL = not reported); `n_rows` counts values.
SERIES_SQL = """
    SELECT kode_faskes, data_element, count(*) AS n_rows, {slots}
      FROM (SELECT kode_faskes, data_element, CAST(value AS DOUBLE) AS x,
                   CAST(substr(period, 1, 4) AS INTEGER) * 12
                   + CAST(substr(period, 6, 2) AS INTEGER) - $first_month_no AS slot
              FROM clean.submission_value
             WHERE period BETWEEN $window_start AND $last_period AND value IS NOT NULL
               AND kode_faskes IS NOT NULL AND NOT list_contains($cumulative, data_element))
     GROUP BY kode_faskes, data_element
"""

# P(a Poisson count with the frame's mean lies at least as far from it as x, on x's side): the
# terms e^−λ λ^k / k! summed over k = x … x + K (x above the mean) or x − K … x (below), with
# K = 20 + 10·√(λ + 1): the terms left out are below e^−50 of the largest.
POISSON_TAIL = """CASE WHEN mean <= 0 THEN 0.0
             WHEN x > mean THEN list_sum(list_transform(
                 range(CAST(x AS BIGINT),
                       CAST(x AS BIGINT) + 20 + CAST(ceil(10 * sqrt(mean + 1)) AS BIGINT)),
                 lambda k: exp(k * ln(mean) - mean - lgamma(k + 1))))
             WHEN x < mean THEN list_sum(list_transform(
                 range(greatest(CAST(x AS BIGINT) - 20
                                - CAST(ceil(10 * sqrt(mean + 1)) AS BIGINT), 0),
                       CAST(x AS BIGINT) + 1),
                 lambda k: exp(k * ln(mean) - mean - lgamma(k + 1))))
             ELSE 1.0 END"""

# Step 3 (after `_judge_frames`, step 2): per candidate frame (a value with at least
# `outlier_min_months` values in its 12-month window, kept by the numpy prefilter) n, mean,
# sample SD, median and MAD from DuckDB's list aggregates; the WHO rules; then, on the values a
# WHO rule flags, the count-data rule (deviation > `outlier_min_abs_deviation` and the Poisson
# tail below the rule's normal tail). One row per flag of every judged month (`month_no`).
OUTLIER_SQL = """
    WITH frames AS (
        SELECT series.kode_faskes, series.data_element, candidate.month_no,
               list_slice(list_value({slots}), candidate.slot - {before} + 1, candidate.slot + 1)
                   AS frame
          FROM {candidate} candidate JOIN {series} series ON series.rowid = candidate.series_row
    ), stats AS (
        SELECT kode_faskes, data_element, month_no, frame[{window}] AS x, list_count(frame) AS n,
               list_avg(frame) AS mean, list_stddev_samp(frame) AS sd,
               list_median(frame) AS med, list_mad(frame) AS mad
          FROM frames
    ), scored AS (
        SELECT *, CASE WHEN sd > 0 THEN round((x - mean) / sd, 9) END AS z,
               CASE WHEN mad > 0 THEN round(0.6745 * abs(x - med) / mad, 9) ELSE 0 END AS mz
          FROM stats
         WHERE n >= $min_months
    ), beyond AS (
        SELECT *, {poisson_tail} AS p_tail
          FROM scored WHERE abs(z) > $moderate OR mz > $modified_z
    ), judged AS MATERIALIZED (
        SELECT *, {period_of_month} AS period,
               coalesce(abs(z) > $extreme AND abs(x - mean) > $min_dev
                        AND p_tail < $alpha_extreme, false) AS is_extreme,
               coalesce(abs(z) > $moderate AND abs(x - mean) > $min_dev
                        AND p_tail < $alpha_moderate, false) AS is_moderate,
               coalesce(mz > $modified_z AND abs(x - med) > $min_dev
                        AND p_tail < $alpha_modified_z, false) AS is_modified_z
          FROM beyond
    )
    SELECT 'facility' AS unit_level, kode_faskes AS unit_code, period, data_element AS subject,
           'outlier_extreme_sd' AS method, x AS value, z AS score, $extreme AS threshold,
           mean AS reference,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, $extreme, mean, sd) AS message, month_no
      FROM judged WHERE is_extreme
    UNION ALL
    SELECT 'facility', kode_faskes, period, data_element, 'outlier_moderate_sd', x, z, $moderate,
           mean,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, $moderate, mean, sd), month_no
      FROM judged WHERE is_moderate AND NOT is_extreme
    UNION ALL
    SELECT 'facility', kode_faskes, period, data_element, 'outlier_modified_z', x, mz,
           $modified_z, med,
           printf('Nilai %s %.0f: modified z %.2f > %g (median 12 bulan %.1f, MAD %.1f)',
                  data_element, x, mz, $modified_z, med, mad), month_no
      FROM judged WHERE is_modified_z
"""

# Step 4: one row per series (facility × element) × year of a requested period, the months as
# bits (bit m − 1 = month m): reported, not judged (too few months), flagged extreme (by
# outlier_extreme_sd), flagged moderate (by another outlier method only). A value flagged by
# several methods is one bit: counted once. The flags of months judged in an earlier run
# (`$stored_periods`) are read from indicators.dq_flag, as the engine reads stored months.
VALUE_YEAR_SQL = """
    WITH reported AS ({series_years}
    ), tiers AS (
        SELECT unit_code AS kode_faskes, subject AS data_element, month_no,
               bool_or(method = 'outlier_extreme_sd') AS is_extreme
          FROM (SELECT unit_code, subject, method, month_no FROM {outlier}
                UNION ALL
                SELECT unit_code, subject, method,
                       CAST(substr(period, 1, 4) AS INTEGER) * 12
                       + CAST(substr(period, 6, 2) AS INTEGER)
                  FROM indicators.dq_flag
                 WHERE list_contains($stored_periods, period) AND unit_level = 'facility'
                   AND list_contains(['outlier_extreme_sd', 'outlier_moderate_sd',
                                      'outlier_modified_z'], method))
         GROUP BY ALL
    ), tier_bits AS (
        SELECT kode_faskes, data_element, (month_no - 1) // 12 AS tahun,
               bit_or(CASE WHEN is_extreme THEN 1 << ((month_no - 1) % 12) ELSE 0 END)
                   AS extreme,
               bit_or(CASE WHEN NOT is_extreme THEN 1 << ((month_no - 1) % 12) ELSE 0 END)
                   AS moderate
          FROM tiers GROUP BY ALL
    )
    SELECT reported.kode_faskes, reported.data_element, reported.tahun,
           CAST(reported.reported AS BIGINT) AS reported,
           CAST(coalesce(short.mask, 0) AS BIGINT) AS not_judged,
           CAST(coalesce(tier_bits.extreme, 0) AS BIGINT) AS extreme,
           CAST(coalesce(tier_bits.moderate, 0) AS BIGINT) AS moderate
      FROM reported
      LEFT JOIN {not_judged} short
        ON short.series_row = reported.series_row AND short.tahun = reported.tahun
      LEFT JOIN tier_bits
        ON tier_bits.kode_faskes = reported.kode_faskes
       AND tier_bits.data_element = reported.data_element AND tier_bits.tahun = reported.tahun
     WHERE reported.reported <> 0
"""

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

# Per facility × month with a value not judged (fewer than `outlier_min_months` values in its
# 12-month window): how many of its values, and which elements. No row = every value judged.
NOT_JUDGED_SQL = """
    WITH months AS (
        SELECT * FROM (VALUES {month_rows}) AS p(period, tahun, bits)
    ), marked AS (
        SELECT DISTINCT value_year.kode_faskes, months.period, months.tahun, months.bits
          FROM {value_year} value_year JOIN months ON months.tahun = value_year.tahun
         WHERE value_year.not_judged & months.bits <> 0
    )
    SELECT 'facility' AS unit_level, marked.kode_faskes AS unit_code, marked.period,
           'month' AS period_type, 'outlier_not_judged' AS metric, 'semua' AS subject,
           100.0 * sum(bit_count(value_year.not_judged & marked.bits))
               / sum(bit_count(value_year.reported & marked.bits)) AS value,
           sum(bit_count(value_year.not_judged & marked.bits)) AS numerator,
           sum(bit_count(value_year.reported & marked.bits)) AS denominator,
           CAST(NULL AS DOUBLE) AS reference, $min_months AS threshold, true AS flagged,
           printf('%d dari %d nilai tidak dinilai pencilannya: kurang dari %d bulan dilaporkan '
                  'dalam 12 bulan terakhir (%s)',
                  sum(bit_count(value_year.not_judged & marked.bits)),
                  sum(bit_count(value_year.reported & marked.bits)), $min_months,
                  string_agg(value_year.data_element, ', ' ORDER BY value_year.data_element)
                      FILTER (WHERE value_year.not_judged & marked.bits <> 0)) AS message
      FROM marked
      JOIN {value_year} value_year
        ON value_year.kode_faskes = marked.kode_faskes AND value_year.tahun = marked.tahun
     WHERE value_year.reported & marked.bits <> 0
     GROUP BY marked.kode_faskes, marked.period
"""

# --- units: sets, parents, years -----------------------------------------------------------

# Facilities grouped by the set of units (network, kecamatan, kab/kota, provinsi) they count in
# (`set_id`; a network's facilities usually share one set): sums fan out to units per set, not
# per facility. `set_unit` lists the units of each set.
FAC_SET_SQL = """
    WITH unit_sets AS (
        SELECT kode_faskes,
               list(struct_pack(unit_level, unit_code) ORDER BY unit_level, unit_code) AS units
          FROM {fac_unit} WHERE unit_level <> 'facility' GROUP BY kode_faskes
    ), set_ids AS (
        SELECT units, row_number() OVER () AS set_id FROM (SELECT DISTINCT units FROM unit_sets)
    )
    SELECT unit_sets.kode_faskes, set_ids.set_id, set_ids.units
      FROM unit_sets JOIN set_ids USING (units)
"""
SET_UNIT_SQL = """
    SELECT set_id, unnest(units, recursive := true)
      FROM (SELECT set_id, any_value(units) AS units FROM {fac_set} GROUP BY set_id)
"""

# Every unit above facility: its kab/kota; the unit it is compared with for consistency over
# time (network, kecamatan → kab/kota; kab/kota → provinsi; provinsi → none); the first month
# with a value of its kab/kota among the years of `unit_year` (a provinsi: the latest first
# month of its kab/kota).
UNIT_PARENT_SQL = """
    WITH kab_start AS (
        SELECT unit_code AS kode_kabkota,
               min(tahun * 12 + CASE {first_month} END) AS first_month_no
          FROM {unit_year} WHERE unit_level = 'kabkota' GROUP BY ALL
    ), units AS (
        SELECT unit.unit_level, unit.unit_code,
               coalesce(any_value(puskesmas.kode_kabkota), min(member.kode_kabkota))
                   AS network_kabkota,
               max(kab_start.first_month_no) AS first_month_no
          FROM {fac_unit} unit
          JOIN reference.facility member ON member.kode_faskes = unit.kode_faskes
          LEFT JOIN reference.facility puskesmas
            ON unit.unit_level = 'puskesmas_network' AND puskesmas.kode_faskes = unit.unit_code
          LEFT JOIN kab_start ON kab_start.kode_kabkota = member.kode_kabkota
         WHERE unit.unit_level <> 'facility'
         GROUP BY unit.unit_level, unit.unit_code
    )
    SELECT unit_level, unit_code,
           CASE unit_level WHEN 'puskesmas_network' THEN network_kabkota
                           WHEN 'kecamatan' THEN substr(unit_code, 1, 5)
                           WHEN 'kabkota' THEN unit_code END AS kabkota,
           CASE WHEN unit_level IN ('puskesmas_network', 'kecamatan') THEN 'kabkota'
                WHEN unit_level = 'kabkota' THEN 'provinsi' END AS parent_level,
           CASE unit_level WHEN 'puskesmas_network' THEN network_kabkota
                           WHEN 'kecamatan' THEN substr(unit_code, 1, 5)
                           WHEN 'kabkota' THEN substr(unit_code, 1, 2) END AS parent_code,
           first_month_no
      FROM units
"""

# One row per unit (every level) × element × year with the twelve monthly sums as columns
# m1..m12 (NULL = nothing reported). Relation elements at every level, other non-cumulative
# elements above facility level; years Y−3..Y, months up to the last period. Facilities are
# summed per set of units (`fac_set`) before the fan-out to units.
UNIT_YEAR_SQL = """
    WITH submitted AS NOT MATERIALIZED (
        SELECT kode_faskes, data_element, period, value,
               list_contains($relation_elements, data_element) AS is_relation
          FROM clean.submission_value
         WHERE value IS NOT NULL AND period BETWEEN $unit_year_start AND $last_period
           AND (list_contains($relation_elements, data_element)
                OR NOT list_contains($cumulative, data_element))
    ), set_month AS (
        SELECT fac_set.set_id, submitted.data_element, submitted.period,
               sum(submitted.value) AS month_total
          FROM submitted JOIN {fac_set} fac_set USING (kode_faskes) GROUP BY ALL
    ), by_set AS (
        SELECT set_id, data_element, tahun, {month_sums}
          FROM (SELECT *, {year_month} FROM set_month) GROUP BY ALL
    ), by_unit AS (
        SELECT set_unit.unit_level, set_unit.unit_code, by_set.* EXCLUDE (set_id)
          FROM by_set JOIN {set_unit} set_unit USING (set_id)
    ), facility_month AS (
        SELECT unit.unit_level, unit.unit_code, submitted.data_element, submitted.period,
               sum(submitted.value) AS month_total
          FROM submitted
          JOIN {fac_unit} unit
            ON unit.kode_faskes = submitted.kode_faskes AND unit.unit_level = 'facility'
         WHERE submitted.is_relation
         GROUP BY ALL
    )
    SELECT unit_level, unit_code, data_element, tahun, {sum_months}
      FROM by_unit GROUP BY ALL
    UNION ALL
    SELECT unit_level, unit_code, data_element, tahun, {month_sums}
      FROM (SELECT *, {year_month} FROM facility_month) GROUP BY ALL
"""

# --- related indicators (WHO DQR 2c) -------------------------------------------------------

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

# --- consistency over time (WHO DQR 2b) ----------------------------------------------------

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

# --- completeness (WHO DQR 1c, 1d) ---------------------------------------------------------

# 1c step 1: in the reports received (current version), values present (not blank; 0 is a
# value) of the elements the facility's type must fill (`catalog/data_elements.csv`
# expected_from) and values expected; per unit × subject × year with the months as columns
# (x = expected, p = present). Subjects: facility and unit × form and `semua` (grain `form`);
# unit above facility × element (grain `element`). The values are read once, into one row per
# facility × element × year with the months present as bits; everything after works on those.
CONTENT_YEAR_SQL = """
    WITH received AS MATERIALIZED (
        SELECT s.kode_faskes, facility.jenis_faskes, s.form,
               CAST(substr(s.period, 1, 4) AS INTEGER) AS tahun,
               bit_or(1 << (CAST(substr(s.period, 6, 2) AS INTEGER) - 1)) AS months
          FROM clean.submission s JOIN reference.facility facility USING (kode_faskes)
         WHERE s.is_current AND s.period BETWEEN $year_start AND $last_period
         GROUP BY ALL
    ), present AS MATERIALIZED (
        SELECT filled.kode_faskes, expected.form, expected.data_element, filled.tahun,
               filled.months
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
    ), set_year AS (
        SELECT set_id, form, data_element, tahun, {sum_columns}
          FROM (SELECT fac_set.set_id, expected.form, expected.data_element, received.tahun,
                       {expected_bits}
                  FROM received JOIN {fac_set} fac_set USING (kode_faskes)
                  JOIN {expected_element} expected
                    ON expected.form = received.form
                   AND expected.jenis_faskes = received.jenis_faskes
                UNION ALL
                SELECT fac_set.set_id, present.form, present.data_element, present.tahun,
                       {present_bits}
                  FROM present JOIN {fac_set} fac_set USING (kode_faskes))
         GROUP BY ALL
    ), unit_element AS MATERIALIZED (
        SELECT set_unit.unit_level, set_unit.unit_code, set_year.form, set_year.data_element,
               set_year.tahun, {sum_columns}
          FROM set_year JOIN {set_unit} set_unit USING (set_id) GROUP BY ALL
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

# --- denominators (WHO DQR 4a, 4b) ---------------------------------------------------------

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

FLAGS_SQL = """
    SELECT * EXCLUDE (month_no) FROM {outlier} WHERE list_contains($periods, period)
    UNION ALL SELECT * FROM {relation}
    UNION ALL SELECT * FROM {time}
"""

METRICS_SQL = """
    SELECT * FROM {content} UNION ALL BY NAME SELECT * FROM {completeness_time}
    UNION ALL BY NAME SELECT * FROM {denominator} UNION ALL BY NAME SELECT * FROM {live_births}
    UNION ALL BY NAME SELECT * FROM {not_judged_metric}
"""

_COUNTS_SQL = """
    SELECT period, count(*) FROM indicators.dq_flag
     WHERE list_contains($periods, period) GROUP BY period
"""


# --- months and SQL text helpers -----------------------------------------------------------

def _month_no(period: str) -> int:
    """`YYYY-MM` → a month counter (consecutive months differ by 1): year × 12 + month."""
    return int(period[:4]) * 12 + int(period[5:7])


def _period(month_no: int) -> str:
    return f"{(month_no - 1) // 12:04d}-{(month_no - 1) % 12 + 1:02d}"


def judged_months(periods: Sequence[str]) -> list[int]:
    """Month counters whose outliers are judged for `periods`: every month Jan..P of each
    period P (the year-to-date summary counts the flags of every month of the year so far)."""
    months: set[int] = set()
    for p in periods:
        months.update(range(_month_no(p) - int(p[5:7]) + 1, _month_no(p) + 1))
    return sorted(months)


def _slot_columns(n_slots: int) -> str:
    return ", ".join(f"c{k}" for k in range(n_slots))


def _ytd_sum(prefix: str, month: int) -> str:
    """SQL: the exact sum of `{prefix}1..{prefix}{month}` (NULL months count 0), as DOUBLE."""
    terms = " + ".join(f"coalesce({prefix}{m}, 0)" for m in range(1, month + 1))
    return f"CAST({terms} AS DOUBLE)"


def _ytd_exists(prefix: str, month: int) -> str:
    """SQL: at least one of `{prefix}1..{prefix}{month}` was reported."""
    return f"coalesce({', '.join(f'{prefix}{m}' for m in range(1, month + 1))}) IS NOT NULL"


def _months_as(source: str, prefix: str) -> str:
    """`source.m1 AS {prefix}1, …, source.m12 AS {prefix}12`."""
    return ", ".join(f"{source}.m{m} AS {prefix}{m}" for m in range(1, 13))


def _year_month(period: str) -> tuple[int, int]:
    return int(period[:4]), int(period[5:7])


# --- outliers: numpy prefilter -------------------------------------------------------------

def _sorted_median(sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of the first `n[i]` values of each row of `sorted_rows` (ascending, NaN last).

    `lo + (hi − lo) × 0.5` for an even count, as DuckDB's `median` interpolates.
    """
    lo = np.take_along_axis(sorted_rows, ((n - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(sorted_rows, (n // 2)[:, None], axis=1)[:, 0]
    return lo + (hi - lo) * 0.5


def outlier_candidates(frames: np.ndarray, extreme: float, moderate: float,
                       modified_z: float) -> np.ndarray:
    """Which frames can be outliers: boolean per row of `frames`.

    `frames` holds one frame per row, oldest month first and the judged value x last, NaN for a
    month not reported; x must be reported. True for every frame the WHO rules flag (a
    superset: `CANDIDATE_MARGIN` absorbs rounding differences; the count-data rule only removes
    flags) and for few others. Median and MAD come from a row-wise sort (NaN sorts last); mean
    and SD by two passes.
    """
    reported = ~np.isnan(frames)
    n = reported.sum(axis=1)
    x = frames[:, -1]
    ordered = np.sort(frames, axis=1)
    med = _sorted_median(ordered, np.maximum(n, 1))
    mad = _sorted_median(np.sort(np.abs(ordered - med[:, None]), axis=1), np.maximum(n, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(reported, frames, 0.0).sum(axis=1) / n
        squares = np.where(reported, (frames - mean[:, None]) ** 2, 0.0)
        sd = np.sqrt(squares.sum(axis=1) / (n - 1))
    keep = 1 - CANDIDATE_MARGIN
    by_sd = np.abs(x - mean) > min(extreme, moderate) * sd * keep
    by_mad = (mad > 0) & (0.6745 * np.abs(x - med) > modified_z * mad * keep)
    return (n > 1) & (by_sd | by_mad)


def _judge_frames(stage: Staging, series: str, settings: Settings, months: Sequence[int],
                  judge: Sequence[int], first_month_no: int) -> None:
    """Temp tables `<prefix>_candidate` (series_row = rowid of `series`, month_no, slot): the
    frames of the months `judge` that `outlier_candidates` keeps among those with at least
    `outlier_min_months` values; and `<prefix>_not_judged` (series_row, tahun, mask): the
    `months` (bit m − 1) whose value has fewer values in its window — not judged.

    `series` is read in chunks, so memory stays bounded whatever the warehouse size; each
    month's frame is a view on 12 consecutive month columns of the chunk.
    """
    t = settings.config.thresholds
    min_n = max(t.outlier_min_months, 2)
    slots = [m - first_month_no for m in months]
    judge = set(judge)
    window = OUTLIER_WINDOW_MONTHS
    cand_rows, cand_months = [], []
    short_rows, short_years, short_masks = [], [], []
    result = stage.con.execute(f"SELECT rowid, {_slot_columns(slots[-1] + 1)} FROM {series}")
    while len(chunk := result.fetch_df_chunk(_SERIES_ROWS_PER_CHUNK // 2048)):
        series_row = chunk["rowid"].to_numpy()
        values = chunk.drop(columns="rowid").to_numpy(dtype=np.float64, na_value=np.nan)
        reported = ~np.isnan(values)
        counts = np.zeros((len(values), values.shape[1] + 1), dtype=np.int32)
        np.cumsum(reported, axis=1, out=counts[:, 1:])
        masks: dict[int, np.ndarray] = {}
        for month_no, k in zip(months, slots, strict=True):
            n = counts[:, k + 1] - counts[:, k + 1 - window]
            short = reported[:, k] & (n < min_n)
            if short.any():
                year, bit = (month_no - 1) // 12, (month_no - 1) % 12
                masks.setdefault(year, np.zeros(len(values), dtype=np.int64))
                masks[year] |= short.astype(np.int64) << bit
            if month_no not in judge:
                continue
            judged = np.flatnonzero(reported[:, k] & (n >= min_n))
            keep = outlier_candidates(values[judged, k - window + 1:k + 1], t.outlier_extreme_sd,
                                      t.outlier_moderate_sd, t.outlier_modified_z)
            cand_rows.append(series_row[judged[keep]])
            cand_months.append(np.full(int(keep.sum()), month_no, dtype=np.int64))
        for year, mask in masks.items():
            hit = np.flatnonzero(mask)
            short_rows.append(series_row[hit])
            short_years.append(np.full(len(hit), year, dtype=np.int64))
            short_masks.append(mask[hit])
    empty = np.array([], dtype=np.int64)

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else empty

    candidates = pd.DataFrame({"series_row": joined(cand_rows), "month_no": joined(cand_months)})
    candidates["slot"] = candidates["month_no"] - first_month_no
    stage_frame(stage, "candidate", candidates)
    stage_frame(stage, "not_judged", pd.DataFrame({
        "series_row": joined(short_rows), "tahun": joined(short_years),
        "mask": joined(short_masks)}))


# --- the steps -----------------------------------------------------------------------------

def _normal_tail(k: float) -> float:
    """P(Z > k) for a standard normal Z: the tail a rule of k SD allows."""
    return 0.5 * math.erfc(k / math.sqrt(2))


def _outlier_steps(settings: Settings, periods: Sequence[str], months: Sequence[int],
                   first: int, t: dict[str, str]) -> list[tuple[str, str]]:
    """SERIES_SQL, OUTLIER_SQL, VALUE_YEAR_SQL, SUMMARY_SQL and NOT_JUDGED_SQL with their month
    columns, period rows and the count-data rule spelled out (only integers, validated periods,
    fixed SQL fragments and staged table names enter the text)."""
    n_slots = _month_no(periods[-1]) - first + 1
    poisson = settings.config.thresholds.outlier_count_bounds == "poisson"
    series = SERIES_SQL.format(slots=", ".join(
        f"max(x) FILTER (WHERE slot = {k}) AS c{k}" for k in range(n_slots)))
    outlier = OUTLIER_SQL.format(
        slots=_slot_columns(n_slots), before=OUTLIER_WINDOW_MONTHS - 1,
        window=OUTLIER_WINDOW_MONTHS, poisson_tail=POISSON_TAIL if poisson else "0.0",
        period_of_month=_PERIOD_OF_MONTH_NO, **t)
    years = sorted({int(p[:4]) for p in periods})
    series_years = "\n        UNION ALL ".join(
        f"SELECT rowid AS series_row, kode_faskes, data_element, {year} AS tahun, ("
        + " | ".join(f"CASE WHEN c{year * 12 + m - first} IS NOT NULL THEN {1 << (m - 1)} "
                     "ELSE 0 END" for m in range(1, 13)
                     if 0 <= year * 12 + m - first < n_slots)
        + f") AS reported FROM {t['series']}" for year in years)
    value_year = VALUE_YEAR_SQL.format(series_years=series_years, **t)
    period_rows, month_rows = [], []
    for p in periods:
        year, month = _year_month(p)
        period_rows += [f"('{p}', 'month', {year}, {1 << (month - 1)})",
                        f"('{p}', 'ytd', {year}, {(1 << month) - 1})"]
        month_rows.append(f"('{p}', {year}, {1 << (month - 1)})")
    summary = SUMMARY_SQL.format(period_rows=", ".join(period_rows), **t)
    not_judged = NOT_JUDGED_SQL.format(month_rows=", ".join(month_rows), **t)
    return [("series", series), ("outlier", outlier), ("value_year", value_year),
            ("summary", summary), ("not_judged_metric", not_judged)]


def _unit_steps(periods: Sequence[str], t: dict[str, str]) -> list[tuple[str, str]]:
    """The unit-level steps with month columns and one branch per period spelled out."""
    months = range(1, 13)
    year_month = ("CAST(substr(period, 1, 4) AS INTEGER) AS tahun, "
                  "CAST(substr(period, 6, 2) AS INTEGER) AS bulan")
    unit_year = UNIT_YEAR_SQL.format(
        year_month=year_month,
        month_sums=", ".join(f"sum(month_total) FILTER (WHERE bulan = {m}) AS m{m}"
                             for m in months),
        sum_months=", ".join(f"sum(m{m}) AS m{m}" for m in months), **t)
    side_sums = ", ".join(f"sum(unit_year.m{m}) AS m{m}" for m in months)
    side_columns = ", ".join(_months_as(side, side) for side in ("a", "b", "fa", "fb"))
    rel, time, content, births = [], [], [], []
    for period in periods:
        year, month = _year_month(period)
        rel.append(
            "SELECT relation_id, kind, subject, has_sasaran, tolerance, a_text, b_text, "
            f"unit_level, unit_code, tahun, '{period}' AS period, "
            f"{_ytd_sum('a', month)} AS main_a, {_ytd_sum('fa', month)} AS flow_a, "
            f"{_ytd_sum('b', month)} AS main_b, {_ytd_sum('fb', month)} AS flow_b "
            f"FROM pairs WHERE tahun = {year} "
            f"AND {_ytd_exists('a', month)} AND {_ytd_exists('b', month)}")
        time.append(f"SELECT unit_level, unit_code, data_element, '{period}' AS period, "
                    f"{_ytd_sum('c', month)} AS current, {_ytd_sum('p', month)} AS prior "
                    f"FROM pairs WHERE tahun = {year} "
                    f"AND {_ytd_exists('c', month)} AND {_ytd_exists('p', month)}")
        content.append(
            f"SELECT unit_level, unit_code, '{period}' AS period, 'month' AS period_type, "
            f"subject, x{month} AS expected, p{month} AS present FROM {t['content_year']} "
            f"WHERE tahun = {year} AND grain = 'form' AND x{month} > 0 "
            f"UNION ALL SELECT unit_level, unit_code, '{period}', 'ytd', subject, "
            f"{_ytd_sum('x', month)}, {_ytd_sum('p', month)} FROM {t['content_year']} "
            f"WHERE tahun = {year}")
        births.append(
            f"SELECT unit_level, unit_code, tahun, '{period}' AS period, {month} AS months, "
            f"{_ytd_sum('m', month)} AS births FROM {t['unit_year']} "
            f"WHERE tahun = {year} AND data_element = $live_births_element "
            f"AND unit_level <> 'facility' AND {_ytd_exists('m', month)}")
    union = "\n        UNION ALL "
    relation = RELATION_SQL.format(side_sums=side_sums, side_columns=side_columns,
                                   ytd_pairs=union.join(rel), **t)
    time_ratio = TIME_RATIO_SQL.format(c_months=_months_as("cur", "c"),
                                       p_months=_months_as("prior", "p"),
                                       ytd_years=union.join(time), **t)
    bit = {m: f"((months >> {m - 1}) & 1)" for m in months}
    content_year = CONTENT_YEAR_SQL.format(
        facility_columns=", ".join(
            f"{bit[m]} * n.n_elements AS x{m}, {bit[m]} * coalesce(filled.p{m}, 0) AS p{m}"
            for m in months),
        present_counts=", ".join(f"sum({bit[m]}) AS p{m}" for m in months),
        expected_bits=", ".join(f"{bit[m]} AS x{m}, 0 AS p{m}" for m in months),
        present_bits=", ".join(f"0 AS x{m}, {bit[m]} AS p{m}" for m in months),
        sum_columns=", ".join(f"sum(x{m}) AS x{m}, sum(p{m}) AS p{m}" for m in months), **t)
    meets = meets_sql("100.0 * present / expected", "$content_pct")
    first_month = " ".join(f"WHEN m{m} IS NOT NULL THEN {m}" for m in months)
    return [("fac_set", FAC_SET_SQL.format(**t)), ("set_unit", SET_UNIT_SQL.format(**t)),
            ("unit_year", unit_year),
            ("unit_parent", UNIT_PARENT_SQL.format(first_month=first_month, **t)),
            ("expected_ratio", EXPECTED_RATIO_SQL.format(**t)), ("relation", relation),
            ("time_ratio", time_ratio), ("time", TIME_SQL.format(**t)),
            ("content_year", content_year),
            ("content", CONTENT_SQL.format(branches=union.join(content), meets=meets)),
            ("completeness_time", COMPLETENESS_TIME_SQL.format(**t)),
            ("denominator", DENOMINATOR_SQL.format(**t)),
            ("live_births", LIVE_BIRTHS_SQL.format(branches=union.join(births)))]


STAGED = ("fac_unit", "relations", "relation_side", "expected_element", "formulas", "candidate",
          "not_judged", "series", "outlier", "value_year", "summary", "not_judged_metric",
          "fac_set", "set_unit", "unit_year", "unit_parent", "expected_ratio", "relation",
          "time_ratio", "time", "content_year", "content", "completeness_time", "denominator",
          "live_births")


def dq_sql(settings: Settings, periods: Sequence[str], stage: Staging,
           judge: Sequence[int] | None = None) -> list[tuple[str, str, dict[str, object]]]:
    """The steps computing every DQ row of `periods`, in order: (short name of the temp table in
    `stage`, its SELECT, its named parameters). `judge`: the months (counters) whose outliers
    this pass judges (default: every month of `judged_months`); the flags of the others are
    read from `indicators.dq_flag`.

    The steps read the stage's catalogue tables (`fac_unit`, `relations`, `relation_side`,
    `expected_element`, `formulas`, as `compute_dq_flags` stages them); `_judge_frames` must run
    right after the first step (`series`). Profile one with `EXPLAIN ANALYZE` after running the
    ones before it.
    """
    periods = sorted(set(periods))
    bad = [p for p in periods if not _PERIOD.fullmatch(p)]
    if bad:
        raise ValueError(f"periods must be YYYY-MM: {bad}")
    th = settings.config.thresholds
    months = judged_months(periods)
    first = months[0] - (OUTLIER_WINDOW_MONTHS - 1)
    first_year = int(periods[0][:4])
    values: dict[str, object] = {
        "last_period": periods[-1], "window_start": _period(first), "first_month_no": first,
        "prior_years": PRIOR_YEARS, "unit_year_start": f"{first_year - PRIOR_YEARS}-01",
        "year_start": f"{first_year}-01", "first_year": first_year,
        "last_year": int(periods[-1][:4]), "periods": periods,
        "cumulative": [c for c, k in catalog.element_kinds().items() if k == "person_ytd"],
        "relation_elements": sorted({c for r in load_relations() for c in r.elements}),
        "extreme": float(th.outlier_extreme_sd), "moderate": float(th.outlier_moderate_sd),
        "modified_z": float(th.outlier_modified_z), "min_months": max(th.outlier_min_months, 2),
        "min_dev": float(th.outlier_min_abs_deviation),
        "alpha_extreme": _normal_tail(th.outlier_extreme_sd),
        "alpha_moderate": _normal_tail(th.outlier_moderate_sd),
        "alpha_modified_z": _normal_tail(th.outlier_modified_z),
        "c_time": th.consistency_over_time_pct / 100,
        "compare_with_one": th.consistency_compare_with == "one",
        "content_pct": float(th.content_completeness_pct),
        "c_completeness": th.completeness_consistency_pct / 100,
        "c_denominator": th.denominator_consistency_pct / 100,
        "live_births_element": LIVE_BIRTHS[0], "live_births_sasaran": LIVE_BIRTHS[1],
        "live_births_subject": "/".join(LIVE_BIRTHS),
        "stored_periods": [_period(m) for m in months
                           if judge is not None and m not in set(judge)],
    }
    tables = {short: stage.name(short) for short in STAGED}
    steps = [*_outlier_steps(settings, periods, months, first, tables),
             *_unit_steps(periods, tables)]
    return [(short, sql, dict(bind(sql, values))) for short, sql in steps]


def _stage_catalogues(stage: Staging, settings: Settings) -> None:
    """The catalogue slices the steps join: relations and their sides, the elements each facility
    type must report, the sasaran formulas with their coefficients."""
    th = settings.config.thresholds
    relations = load_relations()
    stage_frame(stage, "relations", pd.DataFrame({
        "relation_id": range(len(relations)), "a": [r.a for r in relations],
        "b": [r.b for r in relations],
        "kind": [r.kind for r in relations], "subject": [r.subject for r in relations],
        "a_text": [" + ".join((r.a, *r.add_to_a)) for r in relations],
        "b_text": [" + ".join((r.b, *r.add_to_b)) for r in relations],
        "sasaran_a": pd.Series([r.sasaran_a for r in relations], dtype="string"),
        "sasaran_b": pd.Series([r.sasaran_b for r in relations], dtype="string"),
        "has_sasaran": [r.sasaran_a is not None for r in relations],
        "tolerance": [(r.tolerance_pct if r.tolerance_pct is not None
                       else th.related_indicator_pct) / 100 for r in relations]}))
    sides = [(i, side, code) for i, r in enumerate(relations)
             for side, codes in (("a", (r.a,)), ("fa", r.add_to_a), ("b", (r.b,)),
                                 ("fb", r.add_to_b)) for code in codes]
    stage_frame(stage, "relation_side",
                pd.DataFrame(sides, columns=["relation_id", "side", "data_element"]))
    elements = catalog.data_elements()
    expected = [(row.form, row.code, jenis.strip()) for row in elements.itertuples()
                for jenis in str(row.expected_from or "").split(";") if jenis.strip()]
    stage_frame(stage, "expected_element",
                pd.DataFrame(expected, columns=["form", "data_element", "jenis_faskes"]))
    formulas = [(f.sasaran, f.base, f.metode, f.coefficient(settings.config.sasaran)[0])
                for f in load_sasaran_formulas()]
    stage_frame(stage, "formulas",
                pd.DataFrame(formulas, columns=["sasaran", "base", "metode", "coefficient"]))


def months_to_judge(con: duckdb.DuckDBPyConnection, periods: Sequence[str]) -> list[int]:
    """The months whose outliers a run for `periods` judges: the periods themselves, and the
    earlier months of their years (the year-to-date summary counts their flags) that have no
    stored month rows in `indicators.dq_summary` — never computed. The flags of the other
    earlier months are read back from `indicators.dq_flag` (a new month costs one month of
    outlier work, not a year's)."""
    months = judged_months(periods)
    stored = {p for (p,) in con.execute(
        "SELECT DISTINCT period FROM indicators.dq_summary "
        "WHERE period_type = 'month' AND list_contains($months, period)",
        {"months": [_period(m) for m in months]}).fetchall()}
    requested = {_month_no(p) for p in periods}
    return [m for m in months if m in requested or _period(m) not in stored]


def compute_dq_flags(con: duckdb.DuckDBPyConnection, settings: Settings,
                     periods: Sequence[str]) -> dict[str, int]:
    """Write `indicators.dq_flag`, `indicators.dq_metric` and `indicators.dq_summary` for each
    period (each table's periods replaced whole in one transaction). Returns flags per period.

    Reads clean values and submissions, the registry, `indicators.sasaran_resolved` and
    `compliance.reporting_rate` (as the benchmark and the assets order them), and the stored
    outlier flags of earlier months of the year (`months_to_judge`). All periods are computed
    in one pass (`dq_sql`); the rows of a period do not depend on which other periods are
    computed with it.
    """
    periods = sorted(set(periods))
    ensure_schema(con)
    if not periods:
        return {}
    months = judged_months(periods)
    judge = months_to_judge(con, periods)
    with Staging(con, "_dq") as stage:
        steps = dq_sql(settings, periods, stage, judge)
        facility_units(stage)
        _stage_catalogues(stage, settings)
        for short, sql, params in steps:
            name = stage.create(short, sql, params)
            if short == "series":
                _check_one_value_per_month(con, name)
                _judge_frames(stage, name, settings, months, judge,
                              months[0] - (OUTLIER_WINDOW_MONTHS - 1))
        where, params = "list_contains($periods, period)", {"periods": periods}
        names = {s: stage.name(s) for s in STAGED}
        replace_rows(con, "indicators.dq_flag", FLAGS_SQL.format(**names), where=where,
                     params=params)
        replace_rows(con, "indicators.dq_metric", METRICS_SQL.format(**names), where=where,
                     params=params)
        replace_rows(con, "indicators.dq_summary", f"SELECT * FROM {names['summary']}",
                     where=where, params=params)
        counts = dict(con.execute(_COUNTS_SQL, params).fetchall())
    return {p: counts.get(p, 0) for p in periods}


def _check_one_value_per_month(con: duckdb.DuckDBPyConnection, series: str) -> None:
    """Refuse to judge outliers if a series has two values in one month (the month columns of
    `series` keep one): that would break the grain of `clean.submission_value`."""
    slots = [c for c in (d[0] for d in con.execute(f"SELECT * FROM {series} LIMIT 0").description)
             if c.startswith("c") and c[1:].isdigit()]
    filled = " + ".join(f"({c} IS NOT NULL)::INTEGER" for c in slots)
    dup = con.execute(f"SELECT kode_faskes, data_element FROM {series} "
                      f"WHERE n_rows <> {filled} LIMIT 1").fetchone()
    if dup:
        raise ValueError(f"clean.submission_value: {dup[0]} × {dup[1]} has two values in one month")


