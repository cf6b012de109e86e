"""Network contribution → `indicators.network_contribution`: one row per unit × period × period
type × program × volume element × facility type, with the volume, the unit's total and the share
(puskesmas vs Klinik Pratama vs TPMD). Elements: `catalog/contribution_elements.csv`.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from kolab_pipeline.calendar import year_start
from kolab_pipeline.indicators.catalogue import contribution_elements, stage_frame
from kolab_pipeline.indicators.sasaran import facility_units
from kolab_pipeline.warehouse import Staging, replace_rows

# Month rows from `clean.submission_value`; YTD rows = stored month rows Jan..P−1 + P.
# Share = volume ÷ total × 100 (NULL when the total is 0).
CONTRIBUTION_SQL = """
    WITH month AS (
        SELECT unit.unit_level, unit.unit_code, element.program, submitted.data_element,
               unit.jenis_faskes, CAST(sum(submitted.value) AS DOUBLE) AS volume
          FROM clean.submission_value submitted
          JOIN {elements} element ON element.data_element = submitted.data_element
          JOIN {fac_unit} unit
            ON unit.kode_faskes = submitted.kode_faskes AND unit.unit_level <> 'facility'
         WHERE submitted.period = $period AND submitted.value IS NOT NULL
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


def write_contribution(stage: Staging, fac_unit: str, period: str) -> int:
    """Replace the rows of `period`, with facility units from the staged table `fac_unit`."""
    elements = stage_frame(stage, "elements",
                           pd.DataFrame(contribution_elements(),
                                        columns=["program", "data_element"]))
    return replace_rows(stage.con, "indicators.network_contribution",
                        CONTRIBUTION_SQL.format(elements=elements, fac_unit=fac_unit),
                        where="period = $period",
                        params={"period": period, "year_start": year_start(period)})


def compute_network_contribution(con: duckdb.DuckDBPyConnection, period: str) -> int:
    """Write `indicators.network_contribution` for one period: per unit (network, kecamatan,
    kab/kota, provinsi) × volume element, each facility type's volume and share of the total.
    Returns rows written."""
    with Staging(con, "_contrib") as stage:
        return write_contribution(stage, facility_units(stage), period)
