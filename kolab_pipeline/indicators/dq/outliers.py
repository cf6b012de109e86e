"""Outliers (WHO DQR 2a): per facility × element, each value against its 12-month window, with
the count-data rule; the numpy prefilter that keeps the SQL on few frames; the values not judged
(too short a history). Grain of the staged steps in the comment above each statement."""

from __future__ import annotations

import math
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.catalogue import stage_frame
from kolab_pipeline.indicators.dq.months import (
    OUTLIER_WINDOW_MONTHS,
    PERIOD_OF_MONTH_NO,
    month_no,
    year_month,
)
from kolab_pipeline.warehouse import Staging

# Relative margin of the numpy candidate test (rounding differences are ≤ ~1e-14).
CANDIDATE_MARGIN = 1e-6
SERIES_ROWS_PER_CHUNK = 8 * 2048  # small: numpy temporaries stay in cache

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

# Step 3 (after `judge_frames`, step 2): per candidate frame (a value with at least
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


def slot_columns(n_slots: int) -> str:
    """`c0, c1, …`: the month columns of a series."""
    return ", ".join(f"c{k}" for k in range(n_slots))


def sorted_median(sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
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
    med = sorted_median(ordered, np.maximum(n, 1))
    mad = sorted_median(np.sort(np.abs(ordered - med[:, None]), axis=1), np.maximum(n, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(reported, frames, 0.0).sum(axis=1) / n
        squares = np.where(reported, (frames - mean[:, None]) ** 2, 0.0)
        sd = np.sqrt(squares.sum(axis=1) / (n - 1))
    keep = 1 - CANDIDATE_MARGIN
    by_sd = np.abs(x - mean) > min(extreme, moderate) * sd * keep
    by_mad = (mad > 0) & (0.6745 * np.abs(x - med) > modified_z * mad * keep)
    return (n > 1) & (by_sd | by_mad)


def judge_frames(stage: Staging, series: str, settings: Settings, months: Sequence[int],
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
    result = stage.con.execute(f"SELECT rowid, {slot_columns(slots[-1] + 1)} FROM {series}")
    while len(chunk := result.fetch_df_chunk(SERIES_ROWS_PER_CHUNK // 2048)):
        series_row = chunk["rowid"].to_numpy()
        values = chunk.drop(columns="rowid").to_numpy(dtype=np.float64, na_value=np.nan)
        reported = ~np.isnan(values)
        counts = np.zeros((len(values), values.shape[1] + 1), dtype=np.int32)
        np.cumsum(reported, axis=1, out=counts[:, 1:])
        masks: dict[int, np.ndarray] = {}
        for counter, k in zip(months, slots, strict=True):
            n = counts[:, k + 1] - counts[:, k + 1 - window]
            short = reported[:, k] & (n < min_n)
            if short.any():
                year, bit = (counter - 1) // 12, (counter - 1) % 12
                masks.setdefault(year, np.zeros(len(values), dtype=np.int64))
                masks[year] |= short.astype(np.int64) << bit
            if counter not in judge:
                continue
            judged = np.flatnonzero(reported[:, k] & (n >= min_n))
            keep = outlier_candidates(values[judged, k - window + 1:k + 1], t.outlier_extreme_sd,
                                      t.outlier_moderate_sd, t.outlier_modified_z)
            cand_rows.append(series_row[judged[keep]])
            cand_months.append(np.full(int(keep.sum()), counter, dtype=np.int64))
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


def normal_tail(k: float) -> float:
    """P(Z > k) for a standard normal Z: the tail a rule of k SD allows."""
    return 0.5 * math.erfc(k / math.sqrt(2))


def outlier_steps(settings: Settings, periods: Sequence[str], months: Sequence[int],
                   first: int, t: dict[str, str]) -> list[tuple[str, str]]:
    """SERIES_SQL, OUTLIER_SQL, VALUE_YEAR_SQL and NOT_JUDGED_SQL with their month columns,
    period rows and the count-data rule spelled out (only integers, validated periods, fixed SQL
    fragments and staged table names enter the text). `first`: the month counter of slot c0."""
    n_slots = month_no(periods[-1]) - first + 1
    poisson = settings.config.thresholds.outlier_count_bounds == "poisson"
    series = SERIES_SQL.format(slots=", ".join(
        f"max(x) FILTER (WHERE slot = {k}) AS c{k}" for k in range(n_slots)))
    outlier = OUTLIER_SQL.format(
        slots=slot_columns(n_slots), before=OUTLIER_WINDOW_MONTHS - 1,
        window=OUTLIER_WINDOW_MONTHS, poisson_tail=POISSON_TAIL if poisson else "0.0",
        period_of_month=PERIOD_OF_MONTH_NO, **t)
    years = sorted({int(p[:4]) for p in periods})
    series_years = "\n        UNION ALL ".join(
        f"SELECT rowid AS series_row, kode_faskes, data_element, {year} AS tahun, ("
        + " | ".join(f"CASE WHEN c{year * 12 + m - first} IS NOT NULL THEN {1 << (m - 1)} "
                     "ELSE 0 END" for m in range(1, 13)
                     if 0 <= year * 12 + m - first < n_slots)
        + f") AS reported FROM {t['series']}" for year in years)
    value_year = VALUE_YEAR_SQL.format(series_years=series_years, **t)
    month_rows = []
    for p in periods:
        year, month = year_month(p)
        month_rows.append(f"('{p}', {year}, {1 << (month - 1)})")
    not_judged = NOT_JUDGED_SQL.format(month_rows=", ".join(month_rows), **t)
    return [("series", series), ("outlier", outlier), ("value_year", value_year),
            ("not_judged_metric", not_judged)]


def check_one_value_per_month(con: duckdb.DuckDBPyConnection, series: str) -> None:
    """Refuse to judge outliers if a series has two values in one month (the month columns of
    `series` keep one): that would break the grain of `clean.submission_value`."""
    slots = [c for c in (d[0] for d in con.execute(f"SELECT * FROM {series} LIMIT 0").description)
             if c.startswith("c") and c[1:].isdigit()]
    filled = " + ".join(f"({c} IS NOT NULL)::INTEGER" for c in slots)
    dup = con.execute(f"SELECT kode_faskes, data_element FROM {series} "
                      f"WHERE n_rows <> {filled} LIMIT 1").fetchone()
    if dup:
        raise ValueError(f"clean.submission_value: {dup[0]} × {dup[1]} has two values in one month")
