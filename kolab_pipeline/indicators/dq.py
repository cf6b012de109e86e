"""WHO Data Quality Review (DQR) metrics → `indicators.dq_flag`: one row per facility or unit ×
period × subject (data element or relation) × method that flagged it; only flags are stored.
Each period is replaced whole; thresholds from kolab.yaml `thresholds:`. Definitions and the
design of the one-pass computation: docs/design/indicators.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.catalogue import load_relations, stage_frame
from kolab_pipeline.indicators.sasaran import facility_units
from kolab_pipeline.warehouse import Staging, bind, ensure_schema, replace_rows

_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
OUTLIER_WINDOW_MONTHS = 12
PRIOR_YEARS = 3
# Relative margin of the numpy candidate test (rounding differences are ≤ ~1e-14).
CANDIDATE_MARGIN = 1e-6
_SERIES_ROWS_PER_CHUNK = 8 * 2048  # small: numpy temporaries stay in cache

# Outliers, step 1: one row per facility × element series, one column per month of
# [first period − 11, last period] (`c0`, `c1`, …; NULL = not reported); `n_rows` counts values.
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

# Outliers, step 3 (after `_select_outlier_candidates`, step 2): per candidate frame, the value
# of month P and its 12-month frame as a list; n, mean, sample SD, median and MAD from DuckDB's
# list aggregates. `scored` is MATERIALIZED: it is read three times.
OUTLIER_SQL = """
    WITH frames AS (
        SELECT series.kode_faskes, series.data_element,
               $periods[candidate.period_no + 1] AS period,
               list_slice(list_value({slots}), candidate.slot - {before} + 1, candidate.slot + 1)
                   AS frame
          FROM {candidate} candidate JOIN {series} series ON series.rowid = candidate.series_row
    ), stats AS (
        SELECT kode_faskes, data_element, period, frame[{window}] AS x, list_count(frame) AS n,
               list_avg(frame) AS mean, list_stddev_samp(frame) AS sd,
               list_median(frame) AS med, list_mad(frame) AS mad
          FROM frames
    ), scored AS MATERIALIZED (
        SELECT kode_faskes, data_element, period, x, mean, sd, med, mad,
               CASE WHEN sd > 0 THEN round((x - mean) / sd, 9) END AS z,
               CASE WHEN mad > 0 THEN round(0.6745 * abs(x - med) / mad, 9) ELSE 0 END AS mz
          FROM stats
         WHERE n > 1
    )
    SELECT 'facility' AS unit_level, kode_faskes AS unit_code, period, data_element AS subject,
           'outlier_extreme_sd' AS method, x AS value, z AS score, $extreme AS threshold,
           mean AS reference,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, $extreme, mean, sd) AS message
      FROM scored WHERE abs(z) > $extreme
    UNION ALL
    SELECT 'facility', kode_faskes, period, data_element, 'outlier_moderate_sd', x, z, $moderate,
           mean,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, $moderate, mean, sd)
      FROM scored WHERE abs(z) > $moderate AND NOT abs(z) > $extreme
    UNION ALL
    SELECT 'facility', kode_faskes, period, data_element, 'outlier_modified_z', x, mz,
           $modified_z, med,
           printf('Nilai %s %.0f: modified z %.2f > %g (median 12 bulan %.1f, MAD %.1f)',
                  data_element, x, mz, $modified_z, med, mad)
      FROM scored WHERE mz > $modified_z
"""

# Unit-level checks, step 1: one row per unit (every level) × element × year with the twelve
# monthly sums as columns m1..m12 (NULL = nothing reported). Relation elements at every level,
# other non-cumulative elements above facility level; years Y−3..Y, months up to the last
# period. Facilities are summed per set of units they count in before the fan-out to units.
UNIT_YEAR_SQL = """
    WITH submitted AS NOT MATERIALIZED (
        SELECT kode_faskes, data_element, period, value,
               list_contains($relation_elements, data_element) AS is_relation
          FROM clean.submission_value
         WHERE value IS NOT NULL AND period BETWEEN $unit_year_start AND $last_period
           AND (list_contains($relation_elements, data_element)
                OR NOT list_contains($cumulative, data_element))
    ), unit_sets AS (
        SELECT kode_faskes,
               list(struct_pack(unit_level, unit_code) ORDER BY unit_level, unit_code) AS units
          FROM {fac_unit} WHERE unit_level <> 'facility' GROUP BY kode_faskes
    ), set_ids AS (
        SELECT units, row_number() OVER () AS set_id FROM (SELECT DISTINCT units FROM unit_sets)
    ), fac_set AS (
        SELECT kode_faskes, set_id FROM unit_sets JOIN set_ids USING (units)
    ), set_month AS (
        SELECT fac_set.set_id, submitted.data_element, submitted.period,
               sum(submitted.value) AS month_total
          FROM submitted JOIN fac_set USING (kode_faskes) GROUP BY ALL
    ), by_set AS (
        SELECT set_id, data_element, tahun, {month_sums}
          FROM (SELECT *, {year_month} FROM set_month) GROUP BY ALL
    ), by_unit AS (
        SELECT set_unit.unit_level, set_unit.unit_code, by_set.* EXCLUDE (set_id)
          FROM by_set
          JOIN (SELECT set_id, unnest(units, recursive := true) FROM set_ids) set_unit
            USING (set_id)
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

# Step 2, relations: pairs joined once per unit × year, then one branch per period P of that
# year (`{ytd_pairs}`) with the year-to-date sums Jan..P of both elements.
RELATION_SQL = """
    WITH pairs AS (
        SELECT relation.a, relation.b, relation.kind, year_a.unit_level, year_a.unit_code,
               year_a.tahun, {a_months}, {b_months}
          FROM {relations} relation
          JOIN {unit_year} year_a ON year_a.data_element = relation.a
          JOIN {unit_year} year_b
            ON year_b.data_element = relation.b AND year_b.unit_level = year_a.unit_level
           AND year_b.unit_code = year_a.unit_code AND year_b.tahun = year_a.tahun
         WHERE year_a.tahun BETWEEN $first_year AND $last_year
    ), ytd AS ({ytd_pairs}
    ), judged AS (
        SELECT *, CASE WHEN ytd_b > 0 AND ytd_a > 0 THEN round(ytd_a / ytd_b, 9) END AS ratio,
               CASE WHEN ytd_a > 0 THEN round((ytd_a - ytd_b) / ytd_a * 100, 9) END AS dropout
          FROM ytd
    )
    SELECT unit_level, unit_code, period, a || '/' || b AS subject, 'related_indicators' AS method,
           ytd_a AS value, ratio AS score, $c_rel AS threshold, ytd_b AS reference,
           printf('%s/%s tahun berjalan = %.2f (%s %.0f, %s %.0f), di luar %s',
                  a, b, ratio, a, ytd_a, b, ytd_b,
                  CASE kind WHEN 'eq' THEN '1 ± ' || $c_rel_text
                            ELSE '≥ 1 − ' || $c_rel_text END) AS message
      FROM judged
     WHERE unit_level <> 'facility' AND ratio IS NOT NULL
       AND ((kind = 'eq' AND round(abs(ratio - 1), 9) > $c_rel)
            OR (kind = 'aGTb' AND round(1 - ratio, 9) > $c_rel))
    UNION ALL
    SELECT unit_level, unit_code, period, a || '/' || b, 'negative_dropout', ytd_a, dropout, 0.0,
           ytd_b,
           printf('Drop-out %s→%s negatif: %.1f %% (%s %.0f < %s %.0f)',
                  a, b, dropout, a, ytd_a, b, ytd_b)
      FROM judged WHERE kind = 'do' AND dropout < 0
"""

# Step 2, consistency over time: each unit × element × year joined once to its previous years
# Y−3..Y−1; one branch per period P (`{ytd_years}`) compares the sums Jan..P.
TIME_SQL = """
    WITH years AS (
        SELECT * FROM {unit_year}
         WHERE unit_level <> 'facility' AND NOT list_contains($cumulative, data_element)
    ), pairs AS (
        SELECT cur.unit_level, cur.unit_code, cur.data_element, cur.tahun, {c_months}, {p_months}
          FROM years cur JOIN years prior
            ON prior.unit_level = cur.unit_level AND prior.unit_code = cur.unit_code
           AND prior.data_element = cur.data_element
           AND prior.tahun BETWEEN cur.tahun - $prior_years AND cur.tahun - 1
         WHERE cur.tahun BETWEEN $first_year AND $last_year
    ), ytd AS ({ytd_years}
    ), cmp AS (
        SELECT unit_level, unit_code, data_element, period, current,
               avg(prior) AS reference, count(prior) AS n_years
          FROM ytd GROUP BY ALL
    )
    SELECT unit_level, unit_code, period, data_element AS subject,
           'consistency_over_time' AS method, current AS value,
           round(current / reference, 9) AS score, $c_time AS threshold, reference,
           printf(
               '%s Jan–%s = %.0f, %.2f kali rata-rata %d tahun sebelumnya (%.1f); di luar 1 ± %g',
               data_element, period, current, round(current / reference, 2), n_years, reference,
               $c_time) AS message

      FROM cmp
     WHERE reference > 0 AND round(abs(current / reference - 1), 9) > $c_time
"""

FLAGS_SQL = """
    SELECT * FROM {outlier} UNION ALL SELECT * FROM {relation} UNION ALL SELECT * FROM {time}
"""

_COUNTS_SQL = """
    SELECT period, count(*) FROM indicators.dq_flag
     WHERE list_contains($periods, period) GROUP BY period
"""


def _month_no(period: str) -> int:
    """`YYYY-MM` → a month counter (consecutive months differ by 1)."""
    return int(period[:4]) * 12 + int(period[5:7])


def _first_slot_month(periods: Sequence[str]) -> int:
    """Month counter of slot `c0` of the series table: 11 months before the first period."""
    return _month_no(periods[0]) - (OUTLIER_WINDOW_MONTHS - 1)


def _slot_columns(n_slots: int) -> str:
    return ", ".join(f"c{k}" for k in range(n_slots))


def _outlier_sql(periods: Sequence[str], tables: dict[str, str]) -> tuple[str, str]:
    """`SERIES_SQL` and `OUTLIER_SQL` with their month columns spelled out for `periods`.

    Only integers (slot numbers) and staged table names are put into the SQL text.
    """
    n_slots = _month_no(periods[-1]) - _first_slot_month(periods) + 1
    slots = ", ".join(f"max(x) FILTER (WHERE slot = {k}) AS c{k}" for k in range(n_slots))
    return (SERIES_SQL.format(slots=slots),
            OUTLIER_SQL.format(slots=_slot_columns(n_slots), before=OUTLIER_WINDOW_MONTHS - 1,
                               window=OUTLIER_WINDOW_MONTHS, **tables))


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
    month not reported; x must be reported. True for every frame the definitions flag (a
    superset: `CANDIDATE_MARGIN` absorbs rounding differences) and for few others. Median and
    MAD come from a row-wise sort (NaN sorts last); mean and SD by two passes.
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


def _select_outlier_candidates(stage: Staging, series: str, settings: Settings,
                               periods: Sequence[str]) -> str:
    """Temp table `<prefix>_candidate` (series_row = rowid of `series`, period_no, slot): the
    frames of `periods` that `outlier_candidates` keeps. Returns its name.

    `series` is read in chunks, so memory stays bounded whatever the warehouse size; each
    period's frame is a view on 12 consecutive month columns of the chunk.
    """
    t = settings.config.thresholds
    first = _first_slot_month(periods)
    slots = [_month_no(p) - first for p in periods]
    rows, period_nos = [], []
    result = stage.con.execute(f"SELECT rowid, {_slot_columns(slots[-1] + 1)} FROM {series}")
    while len(chunk := result.fetch_df_chunk(_SERIES_ROWS_PER_CHUNK // 2048)):
        series_row = chunk["rowid"].to_numpy()
        values = chunk.drop(columns="rowid").to_numpy(dtype=np.float64, na_value=np.nan)
        for period_no, k in enumerate(slots):
            frames = values[:, k - OUTLIER_WINDOW_MONTHS + 1:k + 1]
            judged = ~np.isnan(frames[:, -1])
            keep = outlier_candidates(frames[judged], t.outlier_extreme_sd,
                                      t.outlier_moderate_sd, t.outlier_modified_z)
            hit = np.flatnonzero(judged)[keep]
            rows.append(series_row[hit])
            period_nos.append(np.full(len(hit), period_no))
    empty = np.array([], dtype=np.int64)
    candidates = pd.DataFrame({"series_row": np.concatenate(rows) if rows else empty,
                               "period_no": np.concatenate(period_nos) if period_nos else empty})
    candidates["slot"] = np.array(slots, dtype=np.int64)[candidates["period_no"].to_numpy()]
    return stage_frame(stage, "candidate", candidates)


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


def _unit_sql(periods: Sequence[str], tables: dict[str, str]) -> tuple[str, str, str]:
    """`UNIT_YEAR_SQL`, `RELATION_SQL` and `TIME_SQL` with month columns and one branch per
    period spelled out (periods are validated `YYYY-MM`; only they, integers and staged table
    names enter the text)."""
    months = range(1, 13)
    unit_year = UNIT_YEAR_SQL.format(
        year_month="CAST(substr(period, 1, 4) AS INTEGER) AS tahun, "
                   "CAST(substr(period, 6, 2) AS INTEGER) AS bulan",
        month_sums=", ".join(f"sum(month_total) FILTER (WHERE bulan = {m}) AS m{m}"
                             for m in months),
        sum_months=", ".join(f"sum(m{m}) AS m{m}" for m in months), **tables)
    rel, time = [], []
    for period in periods:
        year, month = int(period[:4]), int(period[5:7])
        rel.append(f"SELECT a, b, kind, unit_level, unit_code, '{period}' AS period, "
                   f"{_ytd_sum('a', month)} AS ytd_a, {_ytd_sum('b', month)} AS ytd_b "
                   f"FROM pairs WHERE tahun = {year} "
                   f"AND {_ytd_exists('a', month)} AND {_ytd_exists('b', month)}")
        time.append(f"SELECT unit_level, unit_code, data_element, '{period}' AS period, "
                    f"{_ytd_sum('c', month)} AS current, {_ytd_sum('p', month)} AS prior "
                    f"FROM pairs WHERE tahun = {year} "
                    f"AND {_ytd_exists('c', month)} AND {_ytd_exists('p', month)}")
    relation = RELATION_SQL.format(
        a_months=_months_as("year_a", "a"), b_months=_months_as("year_b", "b"),
        ytd_pairs="\n        UNION ALL ".join(rel), **tables)
    over_time = TIME_SQL.format(
        c_months=_months_as("cur", "c"), p_months=_months_as("prior", "p"),
        ytd_years="\n        UNION ALL ".join(time), **tables)
    return unit_year, relation, over_time


def dq_flags_sql(settings: Settings, periods: Sequence[str],
                 stage: Staging) -> list[tuple[str, str, dict[str, object]]]:
    """The steps computing every flag of `periods`, in order: (short name of the temp table in
    `stage`, its SELECT, its named parameters).

    The steps read the stage's `fac_unit` and `relations` tables (as `compute_dq_flags` creates
    them); `_select_outlier_candidates` must run between the first (`series`) and the second
    (`outlier`); the flags end in `outlier`, `relation`, `time`. Profile one with
    `EXPLAIN ANALYZE` after running the ones before it.
    """
    periods = sorted(set(periods))
    bad = [p for p in periods if not _PERIOD.fullmatch(p)]
    if bad:
        raise ValueError(f"periods must be YYYY-MM: {bad}")
    t = settings.config.thresholds
    c_rel = t.related_indicator_pct / 100
    window_start = add_months(periods[0], -(OUTLIER_WINDOW_MONTHS - 1))
    values: dict[str, object] = {
        "last_period": periods[-1], "window_start": window_start,
        "first_month_no": _month_no(window_start), "prior_years": PRIOR_YEARS,
        "unit_year_start": f"{int(periods[0][:4]) - PRIOR_YEARS}-01",
        "first_year": int(periods[0][:4]), "last_year": int(periods[-1][:4]),
        "cumulative": [c for c, k in catalog.element_kinds().items() if k == "person_ytd"],
        "relation_elements": sorted({code for a, b, _ in load_relations() for code in (a, b)}),
        "periods": periods, "extreme": t.outlier_extreme_sd, "moderate": t.outlier_moderate_sd,
        "modified_z": t.outlier_modified_z, "c_rel": c_rel, "c_rel_text": f"{c_rel:g}",
        "c_time": t.consistency_over_time_pct / 100,
    }
    shorts = ("series", "outlier", "unit_year", "relation", "time")
    tables = {short: stage.name(short)
              for short in ("fac_unit", "relations", "candidate", *shorts)}
    steps = (*_outlier_sql(periods, tables), *_unit_sql(periods, tables))
    return [(short, sql, dict(bind(sql, values))) for short, sql in zip(shorts, steps, strict=True)]


def compute_dq_flags(con: duckdb.DuckDBPyConnection, settings: Settings,
                     periods: Sequence[str]) -> dict[str, int]:
    """Write `indicators.dq_flag` for each period (replaced whole, all periods in one transaction).

    Returns flags per period. All periods are computed in one pass (`dq_flags_sql`); the flags of
    a period do not depend on which other periods are computed with it.
    """
    periods = sorted(set(periods))
    ensure_schema(con)
    if not periods:
        return {}
    with Staging(con, "_dq") as stage:
        steps = dq_flags_sql(settings, periods, stage)
        facility_units(stage)
        stage_frame(stage, "relations",
                    pd.DataFrame(load_relations(), columns=["a", "b", "kind"]))
        for short, sql, params in steps:
            name = stage.create(short, sql, params)
            if short == "series":
                _check_one_value_per_month(con, name)
                _select_outlier_candidates(stage, name, settings, periods)
        flags_sql = FLAGS_SQL.format(**{s: stage.name(s) for s in ("outlier", "relation", "time")})
        replace_rows(con, "indicators.dq_flag", flags_sql,
                     where="list_contains($periods, period)", params={"periods": periods})
        counts = dict(con.execute(_COUNTS_SQL, {"periods": periods}).fetchall())
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
