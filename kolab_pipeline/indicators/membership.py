"""Which units a facility's values count in, month by month.

Location units (facility, kecamatan, kab/kota, provinsi) come from the facility's own wilayah in
the registry. The puskesmas network is **dated**: for a facility × form × month it is the
puskesmas induk of `reference.form_assignment` in force that month — the history compliance
uses for the expected reports (`compliance.EXPECTED_SQL`): the assignment valid on the month's
last day, else the latest one overlapping the month. A month outside every assignment keeps the
registry's network (`reference.facility.kode_jejaring`); a puskesmas is its own network. So a
clinic moved to another network in July counts in its old network for January..June, and its
past does not move with it.

Only the exceptions are staged (`moved`: facility × form × month whose dated network differs
from the registry's), so the common case costs one LEFT JOIN on a tiny table.
"""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.calendar import add_months
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

# facility × form × month (of $periods) whose dated network is not the registry's. Assignments
# are taken as compliance takes them: the one in force on the month's last day, else the latest
# overlapping one; empty intervals are ignored.
MOVED_SQL = """
    WITH months AS (
        SELECT period, CAST(period || '-01' AS DATE) AS month_first,
               last_day(CAST(period || '-01' AS DATE)) AS month_last
          FROM (SELECT unnest($periods::VARCHAR[]) AS period)
    ), assignment AS (
        SELECT kode_faskes, form, kode_puskesmas_induk,
               coalesce(valid_from, DATE '0001-01-01') AS assigned_from,
               coalesce(valid_to, DATE '9999-12-31') AS assigned_until
          FROM reference.form_assignment
         WHERE valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from
    ), induk AS (
        SELECT assignment.kode_faskes, assignment.form, months.period,
               arg_max(assignment.kode_puskesmas_induk,
                       (assignment.assigned_from <= months.month_last
                        AND assignment.assigned_until > months.month_last,
                        assignment.assigned_from)) AS induk
          FROM assignment
          JOIN months ON assignment.assigned_from <= months.month_last
                     AND assignment.assigned_until > months.month_first
         GROUP BY ALL
    )
    SELECT induk.kode_faskes, induk.form, induk.period, induk.induk AS kode_jejaring
      FROM induk JOIN reference.facility facility ON facility.kode_faskes = induk.kode_faskes
     WHERE facility.jenis_faskes <> 'puskesmas'
       AND induk.induk IS DISTINCT FROM facility.kode_jejaring
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
    return stage.create("moved", MOVED_SQL, {"periods": year_months(periods)})
