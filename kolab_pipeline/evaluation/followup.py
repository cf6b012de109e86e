"""The follow-up list: `evaluation.followup` (grain: facility × form with something to chase, per
`as_of_period`), read from `compliance.report_status`; each month of a run is taken as the
latest evaluated month L. A puskesmas uses it to chase the reports of its network.
"""

from __future__ import annotations

import duckdb

from kolab_pipeline.calendar import validate_periods
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import Staging, ensure_schema, replace_rows

# Keys of the per-facility CTEs below (each joined to `keys` on all three).
_KEY = ("kode_faskes", "form", "as_of_period")


def _on(alias: str) -> str:
    return " AND ".join(f"{alias}.{c} = k.{c}" for c in _KEY)


# `{months}`: the staged table of the run's months (column as_of_period).
# - months_missing / months_late: statuses `missing` / `late` in January..L of L's year;
# - consecutive_missing: months without a report ending at L, counted backwards over calendar
#   months: a month counts when it is `missing`, or `pending` and already overdue (for L itself
#   the cut-off has usually not passed yet, so a chronic non-reporter would otherwise always show
#   0). A month received, not yet due or not expected ends the streak; it may cross into last year;
# - missing_periods: the missing months of this year, comma-separated, ascending;
# - last_received_period / last_received_at: the latest month ≤ L with a report (first version);
# - latest_status / pending_overdue: status of L.
# Listed: facility × form with months_missing > 0, months_late > 0, or L pending and overdue.
FOLLOWUP_SQL = """
    WITH statuses AS (
        SELECT s.*, m.as_of_period,
               (CAST(substr(s.period, 1, 4) AS INTEGER) * 12
                + CAST(substr(s.period, 6, 2) AS INTEGER)) AS month_index,
               (CAST(substr(m.as_of_period, 1, 4) AS INTEGER) * 12
                + CAST(substr(m.as_of_period, 6, 2) AS INTEGER)) AS as_of_index
          FROM compliance.report_status s
          JOIN {months} m ON s.period <= m.as_of_period
    ), unreported AS (
        SELECT kode_faskes, form, as_of_period, month_index, as_of_index,
               row_number() OVER (PARTITION BY kode_faskes, form, as_of_period
                                  ORDER BY month_index DESC) AS months_back
          FROM statuses
         WHERE expected AND (status = 'missing' OR (status = 'pending' AND overdue))
    ), streak AS (
        SELECT kode_faskes, form, as_of_period, count(*) AS consecutive_missing
          FROM unreported WHERE month_index + months_back - 1 = as_of_index GROUP BY ALL
    ), year_counts AS (
        SELECT kode_faskes, form, as_of_period,
               count(*) FILTER (WHERE status = 'missing') AS months_missing,
               count(*) FILTER (WHERE status = 'late') AS months_late,
               string_agg(period, ', ' ORDER BY period) FILTER (WHERE status = 'missing')
                   AS missing_periods
          FROM statuses
         WHERE expected AND substr(period, 1, 4) = substr(as_of_period, 1, 4)
         GROUP BY ALL
    ), latest AS (
        SELECT kode_faskes, form, as_of_period, status AS latest_status,
               status = 'pending' AND overdue AS pending_overdue,
               kode_jejaring, kode_kabkota
          FROM statuses WHERE period = as_of_period AND expected
    ), received AS (
        SELECT kode_faskes, form, as_of_period,
               arg_max(period, period) AS last_received_period,
               arg_max(received_at, period) AS last_received_at
          FROM statuses WHERE received_at IS NOT NULL GROUP BY ALL
    ), keys AS (
        SELECT kode_faskes, form, as_of_period FROM year_counts
         WHERE months_missing > 0 OR months_late > 0
        UNION
        SELECT kode_faskes, form, as_of_period FROM latest WHERE pending_overdue
    )
    SELECT k.kode_faskes, fac.nama_faskes, fac.jenis_faskes,
           coalesce(l.kode_jejaring, fac.kode_jejaring, k.kode_faskes) AS kode_puskesmas_induk,
           induk.nama_faskes AS nama_puskesmas_induk,
           coalesce(l.kode_kabkota, fac.kode_kabkota) AS kode_kabkota,
           k.form, k.as_of_period,
           coalesce(y.months_missing, 0) AS months_missing,
           coalesce(y.months_late, 0) AS months_late,
           coalesce(streak.consecutive_missing, 0) AS consecutive_missing,
           y.missing_periods, r.last_received_period, r.last_received_at,
           l.latest_status, coalesce(l.pending_overdue, false) AS pending_overdue
      FROM keys k
      LEFT JOIN reference.facility fac ON fac.kode_faskes = k.kode_faskes
      LEFT JOIN latest l ON {on_latest}
      LEFT JOIN reference.facility induk
             ON induk.kode_faskes = coalesce(l.kode_jejaring, fac.kode_jejaring, k.kode_faskes)
      LEFT JOIN year_counts y ON {on_year}
      LEFT JOIN streak ON {on_streak}
      LEFT JOIN received r ON {on_received}
"""


def build_followup(con: duckdb.DuckDBPyConnection, settings: Settings,
                   periods: list[str]) -> int:
    """Write `evaluation.followup` for each month of `periods` taken as the latest evaluated
    month (rules beside `FOLLOWUP_SQL`). Reads `compliance.report_status`: build it first."""
    ensure_schema(con)
    with Staging(con, "_followup") as stage:
        months = stage.create("months", "SELECT unnest($periods::VARCHAR[]) AS as_of_period",
                              {"periods": validate_periods(periods)})
        sql = FOLLOWUP_SQL.format(months=months, on_latest=_on("l"), on_year=_on("y"),
                                  on_streak=_on("streak"), on_received=_on("r"))
        return replace_rows(con, "evaluation.followup", sql,
                            where=f"as_of_period IN (SELECT as_of_period FROM {months})")
