"""Network contribution → `indicators.network_contribution`: one row per unit × period × period
type × program × volume element × facility type, with the volume, the unit's total and the share
(puskesmas vs Klinik Pratama vs TPMD vs registered hospitals). Elements:
`catalog/contribution_elements.csv`. A facility's month counts in the network it belonged to
that month (`membership.py`); YTD rows sum the stored month rows, so a move keeps the past.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import year_start
from kolab_pipeline.indicators.catalogue import contribution_elements, stage_frame
from kolab_pipeline.indicators.membership import NETWORK_OF_MONTH, geo_units, moved_members
from kolab_pipeline.warehouse import Staging, replace_rows

# Month rows from `clean.submission_value` (location units + the network of the month); YTD rows
# = stored month rows Jan..P−1 + P. Share = volume ÷ total × 100 (NULL when the total is 0).
CONTRIBUTION_SQL = """
    WITH submitted AS (
        SELECT submitted.kode_faskes, element.program, element.form, submitted.data_element,
               submitted.value
          FROM clean.submission_value submitted
          JOIN {elements} element ON element.data_element = submitted.data_element
         WHERE submitted.period = $period AND submitted.value IS NOT NULL
    ), placed AS (
        SELECT unit.unit_level, unit.unit_code, submitted.program, submitted.data_element,
               unit.jenis_faskes, submitted.value
          FROM submitted JOIN {geo_unit} unit
            ON unit.kode_faskes = submitted.kode_faskes AND unit.unit_level <> 'facility'
        UNION ALL
        SELECT 'puskesmas_network', {network}, submitted.program, submitted.data_element,
               facility.jenis_faskes, submitted.value
          FROM submitted
          JOIN reference.facility facility ON facility.kode_faskes = submitted.kode_faskes
          LEFT JOIN {moved} moved ON moved.kode_faskes = submitted.kode_faskes
                                 AND moved.form = submitted.form AND moved.period = $period
    ), month AS (
        SELECT unit_level, unit_code, program, data_element, jenis_faskes,
               CAST(sum(value) AS DOUBLE) AS volume
          FROM placed WHERE unit_code IS NOT NULL
         GROUP BY ALL
    ), ytd AS (
        SELECT unit_level, unit_code, program, data_element, jenis_faskes, sum(volume) AS volume
          FROM (SELECT unit_level, unit_code, program, data_element, jenis_faskes, volume
                  FROM indicators.network_contribution
                 WHERE period_type = 'month' AND period >= $year_start AND period < $period
                UNION ALL SELECT * FROM month)
         GROUP BY ALL
    ), both_ AS (
        SELECT 'month' AS period_type, * FROM month UNION ALL SELECT 'ytd', * FROM ytd
    )
    SELECT unit_level, unit_code, $period AS period, period_type, program, data_element,
           jenis_faskes, volume, sum(volume) OVER unit_element AS total,
           volume / nullif(sum(volume) OVER unit_element, 0) * 100 AS share_pct
      FROM both_
    WINDOW unit_element AS (PARTITION BY period_type, unit_level, unit_code, data_element)
"""


def _elements_frame() -> pd.DataFrame:
    forms = catalog.element_forms()
    return pd.DataFrame([(program, code, forms[code]) for program, code in contribution_elements()],
                        columns=["program", "data_element", "form"])


def write_contribution(stage: Staging, geo_unit: str, moved: str, period: str) -> int:
    """Replace the rows of `period`, with location units from the staged table `geo_unit` and
    the dated network exceptions from `moved` (`membership.py`)."""
    elements = stage_frame(stage, "elements", _elements_frame())
    sql = CONTRIBUTION_SQL.format(elements=elements, geo_unit=geo_unit, moved=moved,
                                  network=NETWORK_OF_MONTH)
    return replace_rows(stage.con, "indicators.network_contribution", sql,
                        where="period = $period",
                        params={"period": period, "year_start": year_start(period)})


def compute_network_contribution(con: duckdb.DuckDBPyConnection, period: str) -> int:
    """Write `indicators.network_contribution` for one period: per unit (network, kecamatan,
    kab/kota, provinsi) × volume element, each facility type's volume and share of the total.
    Returns rows written."""
    with Staging(con, "_contrib") as stage:
        return write_contribution(stage, geo_units(stage), moved_members(stage, [period]),
                                  period)
