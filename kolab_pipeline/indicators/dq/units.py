"""The units DQ metrics are computed for: each facility's units (location units from the
registry, the puskesmas network of each month — `indicators.membership`), the sets of location
units facilities share, each unit's parent, and per unit × element × year the twelve monthly
sums every unit-level metric reads."""

from __future__ import annotations

from collections.abc import Sequence

from kolab_pipeline.indicators.membership import NETWORK_OF_MONTH, geo_units, moved_members
from kolab_pipeline.warehouse import Staging

# facility → every unit it counts in: its location units, its registry network and each network
# it belonged to in a month of the run (`moved`), so every network lists all its members.
FAC_UNIT_SQL = """
    SELECT kode_faskes, jenis_faskes, unit_level, unit_code FROM {geo_unit}
    UNION
    SELECT kode_faskes, jenis_faskes, 'puskesmas_network', kode_jejaring
      FROM reference.facility WHERE kode_jejaring IS NOT NULL
    UNION
    SELECT moved.kode_faskes, facility.jenis_faskes, 'puskesmas_network', moved.kode_jejaring
      FROM {moved} moved JOIN reference.facility facility USING (kode_faskes)
"""

# Facilities grouped by the set of location units (kecamatan, kab/kota, provinsi) they count in
# (`set_id`): sums fan out to units per set, not per facility; the network of the month is a
# second grouping key beside the set. `set_unit` lists the units of each set.
FAC_SET_SQL = """
    WITH unit_sets AS (
        SELECT kode_faskes,
               list(struct_pack(unit_level, unit_code) ORDER BY unit_level, unit_code) AS units
          FROM {fac_unit}
         WHERE unit_level NOT IN ('facility', 'puskesmas_network') GROUP BY kode_faskes
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
# summed per set of location units (`fac_set`) and network of the month before the fan-out.
UNIT_YEAR_SQL = """
    WITH submitted AS NOT MATERIALIZED (
        SELECT kode_faskes, form, data_element, period, value,
               list_contains($relation_elements, data_element) AS is_relation
          FROM clean.submission_value
         WHERE value IS NOT NULL AND period BETWEEN $unit_year_start AND $last_period
           AND (list_contains($relation_elements, data_element)
                OR NOT list_contains($cumulative, data_element))
    ), set_month AS (
        SELECT fac_set.set_id, {network} AS kode_jejaring, submitted.data_element,
               submitted.period, sum(submitted.value) AS month_total
          FROM submitted
          JOIN reference.facility facility ON facility.kode_faskes = submitted.kode_faskes
          LEFT JOIN {fac_set} fac_set ON fac_set.kode_faskes = submitted.kode_faskes
          LEFT JOIN {moved} moved
            ON moved.kode_faskes = submitted.kode_faskes AND moved.form = submitted.form
           AND moved.period = submitted.period
         GROUP BY ALL
    ), by_set AS (
        SELECT set_id, kode_jejaring, data_element, tahun, {month_sums}
          FROM (SELECT *, {year_month} FROM set_month) GROUP BY ALL
    ), by_unit AS (
        SELECT set_unit.unit_level, set_unit.unit_code, by_set.* EXCLUDE (set_id, kode_jejaring)
          FROM by_set JOIN {set_unit} set_unit USING (set_id)
        UNION ALL
        SELECT 'puskesmas_network', kode_jejaring, by_set.* EXCLUDE (set_id, kode_jejaring)
          FROM by_set WHERE kode_jejaring IS NOT NULL
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



def stage_units(stage: Staging, years: Sequence[int]) -> None:
    """`geo_unit` and `moved` (`indicators.membership`) for every month of `years`, and
    `fac_unit` (FAC_UNIT_SQL): the unit tables the DQ steps join."""
    geo, moved = geo_units(stage), moved_members(stage, [f"{y}-01" for y in years])
    stage.create("fac_unit", FAC_UNIT_SQL.format(geo_unit=geo, moved=moved))


def unit_steps(t: dict[str, str]) -> list[tuple[str, str]]:
    """FAC_SET_SQL, SET_UNIT_SQL, UNIT_YEAR_SQL, UNIT_PARENT_SQL with their month columns."""
    months = range(1, 13)
    year_month = ("CAST(substr(period, 1, 4) AS INTEGER) AS tahun, "
                  "CAST(substr(period, 6, 2) AS INTEGER) AS bulan")
    unit_year = UNIT_YEAR_SQL.format(
        year_month=year_month, network=NETWORK_OF_MONTH,
        month_sums=", ".join(f"sum(month_total) FILTER (WHERE bulan = {m}) AS m{m}"
                             for m in months),
        sum_months=", ".join(f"sum(m{m}) AS m{m}" for m in months), **t)
    first_month = " ".join(f"WHEN m{m} IS NOT NULL THEN {m}" for m in months)
    return [("fac_set", FAC_SET_SQL.format(**t)), ("set_unit", SET_UNIT_SQL.format(**t)),
            ("unit_year", unit_year),
            ("unit_parent", UNIT_PARENT_SQL.format(first_month=first_month, **t))]
