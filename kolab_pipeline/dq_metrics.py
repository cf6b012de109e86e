"""WHO Data Quality Review (DQR) metrics → `indicators.dq_flag`.

Grain of `indicators.dq_flag`: one facility or unit × period × subject (data element or relation)
× method that flagged it. Only flagged values are stored (no row = no flag). Each period P is
replaced as a whole, so re-running a month is idempotent. Thresholds come from kolab.yaml
`thresholds:`. All work is DuckDB SQL (aggregates `avg`, `stddev_samp`, `median`, `mad`).

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

import csv
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from kolab_pipeline.config import Settings, add_months
from kolab_pipeline.indicators import (
    create_facility_units,
    element_codes,
    element_kinds,
    year_start,
)
from kolab_pipeline.warehouse import ensure_schema, replace_rows

RELATIONS_FILE = Path(__file__).parent / "catalog" / "dq_relations.csv"
RELATION_TYPES = ("eq", "aGTb", "do")
OUTLIER_WINDOW_MONTHS = 12
PRIOR_YEARS = 3


@cache
def load_relations(path: Path = RELATIONS_FILE) -> tuple[tuple[str, str, str], ...]:
    """(element A, element B, type) rows of `catalog/dq_relations.csv`, validated."""
    known = element_codes()
    out = []
    with path.open(encoding="utf-8") as fh:
        for rowno, row in enumerate(csv.DictReader(fh), start=2):
            a, b, kind = row["element_a"].strip(), row["element_b"].strip(), row["type"].strip()
            for col, code in (("element_a", a), ("element_b", b)):
                if code not in known:
                    raise ValueError(f"{path.name}: row {rowno}, column {col}: unknown data element {code!r}")
            if kind not in RELATION_TYPES:
                raise ValueError(f"{path.name}: row {rowno}, column type: {kind!r} not in {RELATION_TYPES}")
            out.append((a, b, kind))
    return tuple(out)


_OUTLIER_SQL = """
    WITH win AS (
        SELECT kode_faskes, data_element, period, CAST(value AS DOUBLE) AS x
          FROM clean.submission_value
         WHERE period BETWEEN ? AND ? AND value IS NOT NULL AND NOT list_contains(?, data_element)
    ), stats AS (
        SELECT kode_faskes, data_element, count(*) AS n, avg(x) AS mean, stddev_samp(x) AS sd,
               median(x) AS med, mad(x) AS mad
          FROM win GROUP BY kode_faskes, data_element
    ), scored AS (
        SELECT w.kode_faskes, w.data_element, w.x, s.n, s.mean, s.sd, s.med, s.mad,
               CASE WHEN s.sd > 0 THEN round((w.x - s.mean) / s.sd, 9) END AS z,
               CASE WHEN s.mad > 0 THEN round(0.6745 * abs(w.x - s.med) / s.mad, 9) ELSE 0 END AS mz
          FROM win w JOIN stats s USING (kode_faskes, data_element)
         WHERE w.period = ? AND s.n > 1
    )
    SELECT 'facility' AS unit_level, kode_faskes AS unit_code, ? AS period, data_element AS subject,
           'outlier_extreme_sd' AS method, x AS value, z AS score, ? AS threshold, mean AS reference,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, ?, mean, sd) AS message
      FROM scored WHERE abs(z) > ?
    UNION ALL
    SELECT 'facility', kode_faskes, ?, data_element, 'outlier_moderate_sd', x, z, ?, mean,
           printf('Nilai %s %.0f lebih dari %g SD dari rata-rata 12 bulan (%.1f, SD %.1f)',
                  data_element, x, ?, mean, sd)
      FROM scored WHERE abs(z) > ? AND NOT abs(z) > ?
    UNION ALL
    SELECT 'facility', kode_faskes, ?, data_element, 'outlier_modified_z', x, mz, ?, med,
           printf('Nilai %s %.0f: modified z %.2f > %g (median 12 bulan %.1f, MAD %.1f)',
                  data_element, x, mz, ?, med, mad)
      FROM scored WHERE mz > ?
"""

_RELATION_SQL = """
    WITH ytd AS (
        SELECT u.unit_level, u.unit_code, v.data_element, sum(v.value) AS s
          FROM clean.submission_value v JOIN _fac_unit u ON u.kode_faskes = v.kode_faskes
         WHERE v.period BETWEEN ? AND ? AND v.value IS NOT NULL
         GROUP BY ALL
    ), pairs AS (
        SELECT r.a, r.b, r.kind, ya.unit_level, ya.unit_code,
               CAST(ya.s AS DOUBLE) AS sa, CAST(yb.s AS DOUBLE) AS sb
          FROM _dq_rel r
          JOIN ytd ya ON ya.data_element = r.a
          JOIN ytd yb ON yb.data_element = r.b AND yb.unit_level = ya.unit_level AND yb.unit_code = ya.unit_code
    ), judged AS (
        SELECT *, CASE WHEN sb > 0 AND sa > 0 THEN round(sa / sb, 9) END AS ratio,
               CASE WHEN sa > 0 THEN round((sa - sb) / sa * 100, 9) END AS dropout
          FROM pairs
    )
    SELECT unit_level, unit_code, ? AS period, a || '/' || b AS subject, 'related_indicators' AS method,
           sa AS value, ratio AS score, ? AS threshold, sb AS reference,
           printf('%s/%s tahun berjalan = %.2f (%s %.0f, %s %.0f), di luar %s', a, b, ratio, a, sa, b, sb,
                  CASE kind WHEN 'eq' THEN '1 ± ' || ? ELSE '≥ 1 − ' || ? END) AS message
      FROM judged
     WHERE unit_level <> 'facility' AND ratio IS NOT NULL
       AND ((kind = 'eq' AND round(abs(ratio - 1), 9) > ?) OR (kind = 'aGTb' AND round(1 - ratio, 9) > ?))
    UNION ALL
    SELECT unit_level, unit_code, ?, a || '/' || b, 'negative_dropout', sa, dropout, 0.0, sb,
           printf('Drop-out %s→%s negatif: %.1f %% (%s %.0f < %s %.0f)', a, b, dropout, a, sa, b, sb)
      FROM judged WHERE kind = 'do' AND dropout < 0
"""

_TIME_SQL = """
    WITH sums AS (
        SELECT u.unit_level, u.unit_code, v.data_element, CAST(substr(v.period, 1, 4) AS INTEGER) AS tahun,
               CAST(sum(v.value) AS DOUBLE) AS s
          FROM clean.submission_value v JOIN _fac_unit u ON u.kode_faskes = v.kode_faskes
         WHERE u.unit_level <> 'facility' AND v.value IS NOT NULL
           AND CAST(substr(v.period, 1, 4) AS INTEGER) BETWEEN ? AND ?
           AND CAST(substr(v.period, 6, 2) AS INTEGER) <= ?
           AND NOT list_contains(?, v.data_element)
         GROUP BY ALL
    ), cmp AS (
        SELECT c.unit_level, c.unit_code, c.data_element, c.s AS current,
               avg(p.s) AS reference, count(p.s) AS n_years
          FROM sums c JOIN sums p
            ON p.unit_level = c.unit_level AND p.unit_code = c.unit_code
           AND p.data_element = c.data_element AND p.tahun < c.tahun
         WHERE c.tahun = ?
         GROUP BY ALL
    )
    SELECT unit_level, unit_code, ? AS period, data_element AS subject, 'consistency_over_time' AS method,
           current AS value, round(current / reference, 9) AS score, ? AS threshold, reference,
           printf('%s Jan–%s = %.0f, %.2f kali rata-rata %d tahun sebelumnya (%.1f); di luar 1 ± %g',
                  data_element, ?, current, round(current / reference, 2), n_years, reference, ?) AS message
      FROM cmp
     WHERE reference > 0 AND round(abs(current / reference - 1), 9) > ?
"""


def dq_flags_sql(settings: Settings, period: str) -> tuple[str, list[object]]:
    """The SELECT producing every flag of `period`, and its parameters."""
    t = settings.config.thresholds
    cumulative = [c for c, k in element_kinds().items() if k == "person_ytd"]
    start = add_months(period, -(OUTLIER_WINDOW_MONTHS - 1))
    c_rel = t.related_indicator_pct / 100
    c_time = t.consistency_over_time_pct / 100
    year, month = int(period[:4]), int(period[5:7])
    outlier_params = [start, period, cumulative, period,
                      period, t.outlier_extreme_sd, t.outlier_extreme_sd, t.outlier_extreme_sd,
                      period, t.outlier_moderate_sd, t.outlier_moderate_sd, t.outlier_moderate_sd, t.outlier_extreme_sd,
                      period, t.outlier_modified_z, t.outlier_modified_z, t.outlier_modified_z]
    relation_params = [year_start(period), period, period, c_rel, f"{c_rel:g}", f"{c_rel:g}",
                       c_rel, c_rel, period]
    time_params = [year - PRIOR_YEARS, year, month, cumulative, year, period, c_time, period, c_time, c_time]
    sql = f"({_OUTLIER_SQL})\nUNION ALL ({_RELATION_SQL})\nUNION ALL ({_TIME_SQL})"
    return sql, outlier_params + relation_params + time_params


def compute_dq_flags(con: duckdb.DuckDBPyConnection, settings: Settings,
                     periods: Sequence[str]) -> dict[str, int]:
    """Write `indicators.dq_flag` for each period (replaced whole). Returns flags per period."""
    ensure_schema(con)
    create_facility_units(con)
    con.register("_dq_rel_df", pd.DataFrame(load_relations(), columns=["a", "b", "kind"]))
    con.execute("CREATE OR REPLACE TEMP TABLE _dq_rel AS SELECT * FROM _dq_rel_df")
    con.unregister("_dq_rel_df")
    out = {}
    for period in sorted(set(periods)):
        sql, params = dq_flags_sql(settings, period)
        out[period] = replace_rows(con, "indicators.dq_flag", sql, where="period = ?",
                                   params=[period, *params])
    return out
