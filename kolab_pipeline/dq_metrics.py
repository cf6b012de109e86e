"""WHO Data Quality Review (DQR) metrics → `indicators.dq_flag`.

Grain of `indicators.dq_flag`: one facility or unit × period × subject (data element or relation)
× method that flagged it. Only flagged values are stored (no row = no flag). Each period P is
replaced as a whole, so re-running a month is idempotent. Thresholds come from kolab.yaml
`thresholds:`. Every flag is computed in DuckDB SQL (aggregates `avg`, `stddev_samp`, `median`,
`mad`, applied to each value's 12-month frame as a list); a vectorised numpy pass only preselects
the few frames that can be outliers, so those aggregates run on them alone. All periods of a call
are computed in one pass.

Definitions pinned here (data_quality_anchors.md §2.2–2.3, WHO DQ Tool):

**Outliers** — per facility × data element, on the value of month P, judged against the
facility's series of the **last 12 months ending at P** (P−11..P, P included; months not reported
are absent, zeros count). The window is the WHO DQ Tool dashboard's (last 12 months); it gives
January values a history, which a same-year window would not.

- `outlier_extreme_sd`: |x − mean| > `outlier_extreme_sd` (3) × SD, with SD the **sample** SD
  (n − 1), as the WHO DQ Tool's `getVariance`. Score = (x − mean) ÷ SD.
- `outlier_moderate_sd`: |x − mean| > `outlier_moderate_sd` (2) × SD and not extreme.
- `outlier_modified_z`: 0.6745 · |x − median| ÷ MAD > `outlier_modified_z` (3.5), MAD = median of
  |xᵢ − median| (unscaled). MAD = 0 ⇒ score 0, never flagged (the WHO tool's behaviour).
- Inequalities are **strict**: a value exactly on the threshold is not an outlier. Scores are
  rounded to 9 decimals before the comparison so that floating-point noise (0.6745 is not exact
  in binary) cannot push a value that is on the threshold over it.
- A series of one value (SD undefined) or with SD = 0 is never flagged.
- `*_ytd_unik` elements (cumulative by design) are not judged.

**Consistency between related indicators** (`related_indicators`) — per unit above facility
(puskesmas_network, kecamatan, kabkota, provinsi), on year-to-date sums Jan..P of the two elements
(a sum of 0 is treated as missing, as in the WHO tool). Relations: `catalog/dq_relations.csv`.
With c = `related_indicator_pct` / 100 and ratio = A ÷ B:
`eq` flags |ratio − 1| > c; `aGTb` (A should be ≥ B) flags 1 − ratio > c (both strict, on
deviations rounded to 9 decimals so that a ratio of exactly 1.10 with c = 10 % is not flagged).

**Negative drop-out** (`negative_dropout`, relation type `do`) — per facility and unit, YTD:
drop-out = (A − B) ÷ A × 100 (e.g. DPT1→DPT3); flagged when < 0 (strict; A = B gives 0).

**Consistency over time** (`consistency_over_time`) — per unit above facility × data element:
current = sum Jan..P of year Y; reference = mean of the same months' sums over the previous
years Y−3..Y−1 **that have at least one reported value** (no prior year ⇒ no check). Compared
with 1 (the WHO "expected constant" comparison, not the subunit ÷ national ratio): flagged when
|current ÷ reference − 1| > `consistency_over_time_pct` / 100.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators import create_facility_units
from kolab_pipeline.warehouse import ensure_schema, replace_rows

RELATIONS_FILE = catalog.DQ_RELATIONS
RELATION_TYPES = ("eq", "aGTb", "do")
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
OUTLIER_WINDOW_MONTHS = 12
PRIOR_YEARS = 3


@cache
def load_relations(path: Path = RELATIONS_FILE) -> tuple[tuple[str, str, str], ...]:
    """(element A, element B, type) rows of `catalog/dq_relations.csv`, validated."""
    known = catalog.element_codes()
    out = []
    for rowno, row in enumerate(catalog.read_rows(path), start=2):
        a, b, kind = row["element_a"], row["element_b"], row["type"]
        for col, code in (("element_a", a), ("element_b", b)):
            if code not in known:
                raise catalog.CatalogueError(
                    f"{path.name}: row {rowno}, column {col}: unknown data element {code!r}")
        if kind not in RELATION_TYPES:
            raise catalog.CatalogueError(
                f"{path.name}: row {rowno}, column type: {kind!r} not in {RELATION_TYPES}")
        out.append((a, b, kind))
    return tuple(out)


# One pass for all periods: the statements below run once per call, whatever the number of
# periods, and write temp tables `_dq_*` that the next statement reads. The old per-period loop
# re-read the same 12 months of values for each period and grouped them again (12 × the work
# for a year), with holistic median/MAD over 9 M rows per GROUP BY, which does not spill.

# Outliers, step 1: one row per facility × element series with one column per month of
# [first period − 11, last period] (`c0`, `c1`, …; NULL = not reported). One hash aggregate over
# the values replaces a window (DuckDB's windowed median/MAD over a million tiny partitions is
# several times slower) and a 12-fold self-join (12 × the rows into a holistic aggregate).
# `clean.submission_value` holds one row per facility × period × element (an element belongs to
# one form), so a month slot holds at most one value; `n_rows` lets the caller check that.
_SERIES_SQL = """
    CREATE OR REPLACE TEMP TABLE _dq_series AS
    SELECT kode_faskes, data_element, count(*) AS n_rows, {slots}
      FROM (SELECT kode_faskes, data_element, CAST(value AS DOUBLE) AS x,
                   CAST(substr(period, 1, 4) AS INTEGER) * 12 + CAST(substr(period, 6, 2) AS INTEGER)
                   - $first_month_no AS slot
              FROM clean.submission_value
             WHERE period BETWEEN $window_start AND $last_period AND value IS NOT NULL
               AND kode_faskes IS NOT NULL AND NOT list_contains($cumulative, data_element))
     GROUP BY kode_faskes, data_element
"""

# Outliers, step 2 (Python, `_select_outlier_candidates`): a vectorised numpy pass over
# `_dq_series` finds the frames that can be flagged at all — a few % of them — into
# `_dq_candidate` (series row, period). Step 3 below computes the definitions' statistics on those
# frames only. Why: list_median/list_mad cost ~1.5 µs per frame (a list allocated and sorted
# per row), which over every frame (~9 M at half-national) was most of the run; a row-wise numpy
# sort of small chunks costs ~0.3 µs. (A sorting network in SQL `least`/`greatest` was measured
# too: no faster than list_median/list_mad.)
#
# Outliers, step 3: per candidate frame, the value of month P and its frame (the 12 slots
# P−11..P, NULLs ignored) as a list; n, mean, sample SD, median and MAD come from DuckDB's own
# aggregates applied to that list (list_count, list_avg, list_stddev_samp, list_median, list_mad),
# i.e. the same functions, NULL handling and quantile interpolation as `GROUP BY` in the
# definitions, so stored scores and messages do not depend on the numpy pass. `scored` is
# MATERIALIZED: it is read three times, and DuckDB would otherwise inline it and compute every
# frame's statistics three times.
_OUTLIER_SQL = """
    CREATE OR REPLACE TEMP TABLE _dq_outlier AS
    WITH frames AS (
        SELECT s.kode_faskes, s.data_element, $periods[c.period_no + 1] AS period,
               list_slice(list_value({slots}), c.slot - {before} + 1, c.slot + 1) AS l
          FROM _dq_candidate c JOIN _dq_series s ON s.rowid = c.series_row
    ), stats AS (
        SELECT kode_faskes, data_element, period, l[{window}] AS x, list_count(l) AS n, list_avg(l) AS mean,
               list_stddev_samp(l) AS sd, list_median(l) AS med, list_mad(l) AS mad
          FROM frames
    ), scored AS MATERIALIZED (
        SELECT kode_faskes, data_element, period, x, mean, sd, med, mad,
               CASE WHEN sd > 0 THEN round((x - mean) / sd, 9) END AS z,
               CASE WHEN mad > 0 THEN round(0.6745 * abs(x - med) / mad, 9) ELSE 0 END AS mz
          FROM stats
         WHERE n > 1
    )
    SELECT 'facility' AS unit_level, kode_faskes AS unit_code, period, data_element AS subject,
           'outlier_extreme_sd' AS method, x AS value, z AS score, $extreme AS threshold, mean AS reference,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, $extreme, mean, sd) AS message
      FROM scored WHERE abs(z) > $extreme
    UNION ALL
    SELECT 'facility', kode_faskes, period, data_element, 'outlier_moderate_sd', x, z, $moderate, mean,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, $moderate, mean, sd)
      FROM scored WHERE abs(z) > $moderate AND NOT abs(z) > $extreme
    UNION ALL
    SELECT 'facility', kode_faskes, period, data_element, 'outlier_modified_z', x, mz, $modified_z, med,
           printf('Nilai %s %.0f: modified z %.2f > %g (median 12 bulan %.1f, MAD %.1f)',
                  data_element, x, mz, $modified_z, med, mad)
      FROM scored WHERE mz > $modified_z
"""

# Relative margin of the candidate test. The numpy statistics differ from DuckDB's by rounding
# only (≤ ~1e-14 relative: a two-pass instead of Welford's SD; median and MAD are the same order
# statistics), and the scores are compared after rounding to 9 decimals; 1e-6 is far wider than
# both, so every frame the definitions flag is a candidate.
CANDIDATE_MARGIN = 1e-6
_SERIES_ROWS_PER_CHUNK = 8 * 2048  # small: numpy temporaries stay in cache (3× faster than 100k rows)


def _month_no(period: str) -> int:
    """`YYYY-MM` → a month counter (consecutive months differ by 1)."""
    return int(period[:4]) * 12 + int(period[5:7])


def _first_slot_month(periods: Sequence[str]) -> int:
    """Month counter of slot `c0` of `_dq_series`: 11 months before the first period."""
    return _month_no(periods[0]) - (OUTLIER_WINDOW_MONTHS - 1)


def _outlier_sql(periods: Sequence[str]) -> tuple[str, str]:
    """`_SERIES_SQL` and `_OUTLIER_SQL` with their month columns spelled out for `periods`.

    Only integers (slot numbers) are put into the SQL text.
    """
    n_slots = _month_no(periods[-1]) - _first_slot_month(periods) + 1
    slots = ", ".join(f"max(x) FILTER (WHERE slot = {k}) AS c{k}" for k in range(n_slots))
    return (_SERIES_SQL.format(slots=slots),
            _OUTLIER_SQL.format(slots=", ".join(f"c{k}" for k in range(n_slots)),
                                before=OUTLIER_WINDOW_MONTHS - 1, window=OUTLIER_WINDOW_MONTHS))


def _sorted_median(sorted_rows: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of the first `n[i]` values of each row of `sorted_rows` (ascending, NaN last).

    `lo + (hi − lo) × 0.5` for an even count, as DuckDB's `median` interpolates.
    """
    lo = np.take_along_axis(sorted_rows, ((n - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(sorted_rows, (n // 2)[:, None], axis=1)[:, 0]
    return lo + (hi - lo) * 0.5


def outlier_candidates(frames: np.ndarray, extreme: float, moderate: float, modified_z: float) -> np.ndarray:
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
        sd = np.sqrt(np.where(reported, (frames - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1))
    keep = 1 - CANDIDATE_MARGIN
    by_sd = np.abs(x - mean) > min(extreme, moderate) * sd * keep
    by_mad = (mad > 0) & (0.6745 * np.abs(x - med) > modified_z * mad * keep)
    return (n > 1) & (by_sd | by_mad)


def _select_outlier_candidates(con: duckdb.DuckDBPyConnection, settings: Settings,
                               periods: Sequence[str]) -> None:
    """Temp table `_dq_candidate` (series_row = `_dq_series.rowid`, period_no, slot): the frames
    of `periods` that `outlier_candidates` keeps.

    `_dq_series` is read in chunks, so memory stays bounded whatever the warehouse size; each
    period's frame is a view on 12 consecutive month columns of the chunk.
    """
    t = settings.config.thresholds
    first = _first_slot_month(periods)
    slots = [_month_no(p) - first for p in periods]
    n_slots = slots[-1] + 1
    rows, period_nos = [], []
    result = con.execute(f"SELECT rowid, {', '.join(f'c{k}' for k in range(n_slots))} FROM _dq_series")
    while len(chunk := result.fetch_df_chunk(_SERIES_ROWS_PER_CHUNK // 2048)):
        series_row = chunk["rowid"].to_numpy()
        values = chunk.drop(columns="rowid").to_numpy(dtype=np.float64, na_value=np.nan)
        for period_no, k in enumerate(slots):
            frames = values[:, k - OUTLIER_WINDOW_MONTHS + 1:k + 1]
            judged = ~np.isnan(frames[:, -1])
            hit = np.flatnonzero(judged)[outlier_candidates(frames[judged], t.outlier_extreme_sd,
                                                            t.outlier_moderate_sd, t.outlier_modified_z)]
            rows.append(series_row[hit])
            period_nos.append(np.full(len(hit), period_no))
    candidates = pd.DataFrame({"series_row": np.concatenate(rows) if rows else np.array([], dtype=np.int64),
                               "period_no": np.concatenate(period_nos) if period_nos else np.array([], dtype=np.int64)})
    candidates["slot"] = np.array(slots, dtype=np.int64)[candidates["period_no"].to_numpy()]
    con.register("_dq_candidate_df", candidates)
    con.execute("CREATE OR REPLACE TEMP TABLE _dq_candidate AS SELECT * FROM _dq_candidate_df")
    con.unregister("_dq_candidate_df")


# Unit-level checks, step 1: one row per unit (every level) × element × year with the twelve
# monthly sums as columns m1..m12 (NULL = nothing reported that month). Relation elements are kept
# at every level (negative drop-out is judged per facility too), other non-cumulative elements
# above facility level (consistency over time); years Y−3..Y of the periods, months up to the
# last period. Facilities are first summed per set of units they count in (a network's
# facilities usually share the same set; sets are numbered so that the big GROUP BY has small
# keys), so the fan-out to the four unit levels runs on a few thousand sets instead of every
# facility. The values are summed per month first (one plain `sum`), and only those far fewer
# monthly sums are spread into the month columns (12 filtered sums per row are the expensive
# part). Sums of BIGINT are exact integers: adding monthly sums gives bit-identical
# year-to-date sums.
_UNIT_YEAR_SQL = """
    CREATE OR REPLACE TEMP TABLE _dq_unit_year AS
    WITH v AS NOT MATERIALIZED (
        SELECT kode_faskes, data_element, period, value, list_contains($relation_elements, data_element) AS is_relation
          FROM clean.submission_value
         WHERE value IS NOT NULL AND period BETWEEN $unit_year_start AND $last_period
           AND (list_contains($relation_elements, data_element) OR NOT list_contains($cumulative, data_element))
    ), unit_sets AS (
        SELECT kode_faskes, list(struct_pack(unit_level, unit_code) ORDER BY unit_level, unit_code) AS units
          FROM _fac_unit WHERE unit_level <> 'facility' GROUP BY kode_faskes
    ), set_ids AS (
        SELECT units, row_number() OVER () AS set_id FROM (SELECT DISTINCT units FROM unit_sets)
    ), fac_set AS (
        SELECT kode_faskes, set_id FROM unit_sets JOIN set_ids USING (units)
    ), set_month AS (
        SELECT s.set_id, v.data_element, v.period, sum(v.value) AS s
          FROM v JOIN fac_set s USING (kode_faskes) GROUP BY ALL
    ), by_set AS (
        SELECT set_id, data_element, tahun, {month_sums}
          FROM (SELECT *, {year_month} FROM set_month) GROUP BY ALL
    ), by_unit AS (
        SELECT u.unit_level, u.unit_code, b.* EXCLUDE (set_id)
          FROM by_set b JOIN (SELECT set_id, unnest(units, recursive := true) FROM set_ids) u USING (set_id)
    ), facility_month AS (
        SELECT f.unit_level, f.unit_code, v.data_element, v.period, sum(v.value) AS s
          FROM v JOIN _fac_unit f ON f.kode_faskes = v.kode_faskes AND f.unit_level = 'facility'
         WHERE v.is_relation
         GROUP BY ALL
    )
    SELECT unit_level, unit_code, data_element, tahun, {sum_months}
      FROM by_unit GROUP BY ALL
    UNION ALL
    SELECT unit_level, unit_code, data_element, tahun, {month_sums}
      FROM (SELECT *, {year_month} FROM facility_month) GROUP BY ALL
"""

# Step 2, relations: pairs are joined once per unit × year (not per period), then each period P
# of that year takes the year-to-date sums Jan..P of both elements; a pair exists when both
# elements have a value in Jan..P, as the inner join of the per-period sums did.
_RELATION_SQL = """
    CREATE OR REPLACE TEMP TABLE _dq_relation AS
    WITH pairs AS (
        SELECT r.a, r.b, r.kind, ya.unit_level, ya.unit_code, ya.tahun,
               {a_months}, {b_months}
          FROM _dq_rel r
          JOIN _dq_unit_year ya ON ya.data_element = r.a
          JOIN _dq_unit_year yb ON yb.data_element = r.b AND yb.unit_level = ya.unit_level
                               AND yb.unit_code = ya.unit_code AND yb.tahun = ya.tahun
         WHERE ya.tahun BETWEEN $first_year AND $last_year
    ), ytd AS ({ytd_pairs}
    ), judged AS (
        SELECT *, CASE WHEN sb > 0 AND sa > 0 THEN round(sa / sb, 9) END AS ratio,
               CASE WHEN sa > 0 THEN round((sa - sb) / sa * 100, 9) END AS dropout
          FROM ytd
    )
    SELECT unit_level, unit_code, period, a || '/' || b AS subject, 'related_indicators' AS method,
           sa AS value, ratio AS score, $c_rel AS threshold, sb AS reference,
           printf('%s/%s tahun berjalan = %.2f (%s %.0f, %s %.0f), di luar %s', a, b, ratio, a, sa, b, sb,
                  CASE kind WHEN 'eq' THEN '1 ± ' || $c_rel_text ELSE '≥ 1 − ' || $c_rel_text END) AS message
      FROM judged
     WHERE unit_level <> 'facility' AND ratio IS NOT NULL
       AND ((kind = 'eq' AND round(abs(ratio - 1), 9) > $c_rel) OR (kind = 'aGTb' AND round(1 - ratio, 9) > $c_rel))
    UNION ALL
    SELECT unit_level, unit_code, period, a || '/' || b, 'negative_dropout', sa, dropout, 0.0, sb,
           printf('Drop-out %s→%s negatif: %.1f %% (%s %.0f < %s %.0f)', a, b, dropout, a, sa, b, sb)
      FROM judged WHERE kind = 'do' AND dropout < 0
"""

# Step 2, consistency over time: each unit × element × year is joined once to its own previous
# years Y−3..Y−1 (no previous year with data ⇒ no row, nothing to compute); each period P of Y
# then compares the sums Jan..P, a previous year counting only if it has a value in Jan..P.
_TIME_SQL = """
    CREATE OR REPLACE TEMP TABLE _dq_time AS
    WITH years AS (
        SELECT * FROM _dq_unit_year
         WHERE unit_level <> 'facility' AND NOT list_contains($cumulative, data_element)
    ), pairs AS (
        SELECT c.unit_level, c.unit_code, c.data_element, c.tahun, {c_months}, {p_months}
          FROM years c JOIN years p
            ON p.unit_level = c.unit_level AND p.unit_code = c.unit_code
           AND p.data_element = c.data_element AND p.tahun BETWEEN c.tahun - $prior_years AND c.tahun - 1
         WHERE c.tahun BETWEEN $first_year AND $last_year
    ), ytd AS ({ytd_years}
    ), cmp AS (
        SELECT unit_level, unit_code, data_element, period, current,
               avg(prior) AS reference, count(prior) AS n_years
          FROM ytd GROUP BY ALL
    )
    SELECT unit_level, unit_code, period, data_element AS subject, 'consistency_over_time' AS method,
           current AS value, round(current / reference, 9) AS score, $c_time AS threshold, reference,
           printf('%s Jan–%s = %.0f, %.2f kali rata-rata %d tahun sebelumnya (%.1f); di luar 1 ± %g',
                  data_element, period, current, round(current / reference, 2), n_years, reference,
                  $c_time) AS message
      FROM cmp
     WHERE reference > 0 AND round(abs(current / reference - 1), 9) > $c_time
"""


def _ytd_sum(prefix: str, month: int) -> str:
    """SQL for the exact sum of columns `{prefix}1..{prefix}{month}` (NULL months count 0), as DOUBLE."""
    return "CAST(" + " + ".join(f"coalesce({prefix}{m}, 0)" for m in range(1, month + 1)) + " AS DOUBLE)"


def _ytd_exists(prefix: str, month: int) -> str:
    """SQL: at least one of `{prefix}1..{prefix}{month}` was reported."""
    return f"coalesce({', '.join(f'{prefix}{m}' for m in range(1, month + 1))}) IS NOT NULL"


def _unit_sql(periods: Sequence[str]) -> tuple[str, str, str]:
    """`_UNIT_YEAR_SQL`, `_RELATION_SQL` and `_TIME_SQL` with month columns and one branch per
    period spelled out (periods are validated `YYYY-MM`; only they and integers enter the text)."""
    months = range(1, 13)
    unit_year = _UNIT_YEAR_SQL.format(
        year_month="CAST(substr(period, 1, 4) AS INTEGER) AS tahun, CAST(substr(period, 6, 2) AS INTEGER) AS bulan",
        month_sums=", ".join(f"sum(s) FILTER (WHERE bulan = {m}) AS m{m}" for m in months),
        sum_months=", ".join(f"sum(m{m}) AS m{m}" for m in months))
    rel, time = [], []
    for period in periods:
        year, month = int(period[:4]), int(period[5:7])
        rel.append(f"SELECT a, b, kind, unit_level, unit_code, '{period}' AS period, "
                   f"{_ytd_sum('a', month)} AS sa, {_ytd_sum('b', month)} AS sb FROM pairs "
                   f"WHERE tahun = {year} AND {_ytd_exists('a', month)} AND {_ytd_exists('b', month)}")
        time.append(f"SELECT unit_level, unit_code, data_element, '{period}' AS period, "
                    f"{_ytd_sum('c', month)} AS current, {_ytd_sum('p', month)} AS prior FROM pairs "
                    f"WHERE tahun = {year} AND {_ytd_exists('c', month)} AND {_ytd_exists('p', month)}")
    relation = _RELATION_SQL.format(
        a_months=", ".join(f"ya.m{m} AS a{m}" for m in months),
        b_months=", ".join(f"yb.m{m} AS b{m}" for m in months),
        ytd_pairs="\n        UNION ALL ".join(rel))
    over_time = _TIME_SQL.format(
        c_months=", ".join(f"c.m{m} AS c{m}" for m in months),
        p_months=", ".join(f"p.m{m} AS p{m}" for m in months),
        ytd_years="\n        UNION ALL ".join(time))
    return unit_year, relation, over_time


_TEMP_TABLES = ("_dq_series", "_dq_candidate", "_dq_outlier", "_dq_unit_year", "_dq_relation", "_dq_time", "_dq_rel")


def dq_flags_sql(settings: Settings, periods: Sequence[str]) -> list[tuple[str, dict[str, object]]]:
    """The statements computing every flag of `periods`, in order, each with its named parameters.

    They build temp tables and assume `_fac_unit` and `_dq_rel` exist (as
    `compute_dq_flags` creates them); the flags end in `_dq_outlier`, `_dq_relation`, `_dq_time`.
    Between the first (`_dq_series`) and the second (`_dq_outlier`), `_select_outlier_candidates`
    must run. Profile one with `EXPLAIN ANALYZE` after running the ones before it.
    """
    periods = sorted(set(periods))
    bad = [p for p in periods if not _PERIOD.fullmatch(p)]
    if bad:
        raise ValueError(f"periods must be YYYY-MM: {bad}")
    t = settings.config.thresholds
    c_rel = t.related_indicator_pct / 100
    window_start = add_months(periods[0], -(OUTLIER_WINDOW_MONTHS - 1))
    values: dict[str, object] = {
        "last_period": periods[-1], "window_start": window_start, "first_month_no": _month_no(window_start),
        "prior_years": PRIOR_YEARS,
        "unit_year_start": f"{int(periods[0][:4]) - PRIOR_YEARS}-01", "first_year": int(periods[0][:4]), "last_year": int(periods[-1][:4]),
        "cumulative": [c for c, k in catalog.element_kinds().items() if k == "person_ytd"],
        "relation_elements": sorted({code for a, b, _ in load_relations() for code in (a, b)}),
        "periods": periods, "extreme": t.outlier_extreme_sd, "moderate": t.outlier_moderate_sd, "modified_z": t.outlier_modified_z,
        "c_rel": c_rel, "c_rel_text": f"{c_rel:g}", "c_time": t.consistency_over_time_pct / 100,
    }
    series_sql, outlier_sql = _outlier_sql(periods)
    steps = (series_sql, outlier_sql, *_unit_sql(periods))
    # DuckDB refuses named parameters that a statement does not use: give each only its own.
    return [(sql, {k: v for k, v in values.items() if f"${k}" in sql}) for sql in steps]


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
    steps = dq_flags_sql(settings, periods)
    create_facility_units(con)
    con.register("_dq_rel_df", pd.DataFrame(load_relations(), columns=["a", "b", "kind"]))
    con.execute("CREATE OR REPLACE TEMP TABLE _dq_rel AS SELECT * FROM _dq_rel_df")
    con.unregister("_dq_rel_df")
    try:
        for i, (sql, params) in enumerate(steps):
            con.execute(sql, params)
            if i == 0:
                _check_one_value_per_month(con)
                _select_outlier_candidates(con, settings, periods)
        replace_rows(con, "indicators.dq_flag",
                     "SELECT * FROM _dq_outlier UNION ALL SELECT * FROM _dq_relation UNION ALL SELECT * FROM _dq_time",
                     where="list_contains(?, period)", params=[periods])
        counts = dict(con.execute("""SELECT period, count(*) FROM indicators.dq_flag
                                      WHERE list_contains(?, period) GROUP BY period""", [periods]).fetchall())
    finally:
        for name in _TEMP_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    return {p: counts.get(p, 0) for p in periods}


def _check_one_value_per_month(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse to judge outliers if a series has two values in one month (the month columns of
    `_dq_series` keep one): that would break the grain of `clean.submission_value`."""
    slots = [c for c in (d[0] for d in con.execute("SELECT * FROM _dq_series LIMIT 0").description)
             if c.startswith("c") and c[1:].isdigit()]
    filled = " + ".join(f"({c} IS NOT NULL)::INTEGER" for c in slots)
    dup = con.execute(f"SELECT kode_faskes, data_element FROM _dq_series WHERE n_rows <> {filled} LIMIT 1").fetchone()
    if dup:
        raise ValueError(f"clean.submission_value: {dup[0]} × {dup[1]} has two values in one month")
