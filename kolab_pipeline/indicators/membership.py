"""Which units a facility's values count in, month by month.

Location units (facility, kecamatan, kab/kota, provinsi) come from the facility's own wilayah in
the registry. The puskesmas network is dated: the network of the month
(`reference.network_of_month_sql`, the rule compliance and the clean layer use too), so a clinic
moved to another network in July counts in its old network for January..June. Only the
exceptions are staged (`moved`: facility × form × month whose network differs from the
registry's), so the common case costs one LEFT JOIN on a tiny table.
"""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.calendar import add_months
from kolab_pipeline.reference import ASSIGNMENT_INTERVALS_SQL, network_of_month_sql
from kolab_pipeline.warehouse import Staging

# facility → its location units (the network is joined per month, `NETWORK_OF_MONTH`).
GEO_UNITS_SQL = """
    SELECT kode_faskes, jenis_faskes, 'facility' AS unit_level, kode_faskes AS unit_code
      FROM reference.facility
    UNION ALL
    SELECT kode_faskes, jenis_faskes, 'kecamatan', kode_kec
      FROM reference.facility WHERE length(kode_kec) = 8
    UNION ALL
    SELECT kode_faskes, jenis_faskes, 'kabkota', kode_kabkota
      FROM reference.facility WHERE length(kode_kabkota) = 5
    UNION ALL
    SELECT kode_faskes, jenis_faskes, 'provinsi', kode_prov
      FROM reference.facility WHERE length(kode_prov) = 2
"""

# facility × form × month (of $periods) whose network that month (`reference.network_of_month_sql`)
# is not the registry's. Only keys with an assignment to another induk overlapping the month can
# differ, so only those are judged.
MOVED_SQL = """
    WITH months AS (
        SELECT period, CAST(period || '-01' AS DATE) AS month_first,
               last_day(CAST(period || '-01' AS DATE)) AS month_last
          FROM (SELECT unnest($periods::VARCHAR[]) AS period)
    ), candidate AS (
        SELECT DISTINCT assignment.kode_faskes, assignment.form, months.period
          FROM ({intervals}) assignment
          JOIN reference.facility facility ON facility.kode_faskes = assignment.kode_faskes
          JOIN months ON assignment.assigned_from <= months.month_last
                     AND assignment.assigned_until > months.month_first
         WHERE facility.jenis_faskes <> 'puskesmas'
           AND assignment.kode_puskesmas_induk IS DISTINCT FROM facility.kode_jejaring
           AND assignment.kode_puskesmas_induk IS NOT NULL
    )
    SELECT network.kode_faskes, network.form, network.period, network.kode_jejaring
      FROM ({network_of_month}) network
      JOIN reference.facility facility ON facility.kode_faskes = network.kode_faskes
     WHERE network.kode_jejaring IS DISTINCT FROM facility.kode_jejaring
"""

# The network of a facility in a month, given `facility` (reference.facility) and `moved` (the
# staged exceptions, LEFT JOINed on facility × form × month).
NETWORK_OF_MONTH = ("CASE WHEN moved.kode_faskes IS NOT NULL THEN moved.kode_jejaring "
                    "ELSE facility.kode_jejaring END")


def geo_units(stage: Staging) -> str:
    """Temp table `<prefix>_geo_unit` (kode_faskes, jenis_faskes, unit_level, unit_code): each
    facility × its location units (itself, kecamatan, kab/kota, provinsi)."""
    return stage.create("geo_unit", GEO_UNITS_SQL)


def year_months(periods: Sequence[str]) -> list[str]:
    """Every month January..December of the years of `periods`."""
    years = sorted({p[:4] for p in periods})
    return [add_months(f"{y}-01", i) for y in years for i in range(12)]


def moved_members(stage: Staging, periods: Sequence[str]) -> str:
    """Temp table `<prefix>_moved` (kode_faskes, form, period, kode_jejaring) for every month of
    the years of `periods`: the facility × form × months whose network differs from the
    registry's. Returns its name."""
    sql = MOVED_SQL.format(intervals=ASSIGNMENT_INTERVALS_SQL,
                           network_of_month=network_of_month_sql("candidate"))
    return stage.create("moved", sql, {"periods": year_months(periods)})
