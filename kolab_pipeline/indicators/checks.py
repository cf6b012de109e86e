"""Checks on `indicators.indicator_value` (pure SQL; wrapped as asset checks by
`data_quality/indicator_checks.py`): the hierarchy adds up, and coverage above 100 %.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from kolab_pipeline.indicators.sasaran import facility_units
from kolab_pipeline.warehouse import Staging

# Unit rows whose numerator (or element denominator) is not the sum of their facilities' rows.
RECONCILE_SQL = """
    WITH fac AS (
        SELECT stored.indicator_code, stored.period_type, unit.unit_level, unit.unit_code,
               sum(stored.numerator) AS fac_numerator,
               sum(stored.denominator) FILTER (WHERE stored.denominator_method
                                               LIKE 'data_element:%') AS fac_denominator
          FROM indicators.indicator_value stored
          JOIN {fac_unit} unit ON unit.kode_faskes = stored.unit_code
         WHERE stored.period = $period AND stored.unit_level = 'facility'
           AND unit.unit_level <> 'facility'
         GROUP BY ALL
    )
    SELECT stored.indicator_code, stored.period_type, stored.unit_level, stored.unit_code,
           stored.numerator, fac.fac_numerator, stored.denominator, fac.fac_denominator
      FROM indicators.indicator_value stored
      LEFT JOIN fac USING (indicator_code, period_type, unit_level, unit_code)
     WHERE stored.period = $period AND stored.unit_level <> 'facility'
       AND stored.denominator_method NOT LIKE 'puskesmas_network_idl%'
       AND (fac.fac_numerator IS NULL OR abs(stored.numerator - fac.fac_numerator) > 1e-6
            OR (stored.denominator_method LIKE 'data_element:%'
                AND abs(stored.denominator - fac.fac_denominator) > 1e-6))
     ORDER BY ALL
"""

ABOVE_100_SQL = """
    SELECT indicator_code, unit_level, unit_code, period_type, numerator, denominator,
           round(value, 1) AS value, denominator_method
      FROM indicators.indicator_value
     WHERE period = $period AND above_100
     ORDER BY indicator_code, unit_level, unit_code, period_type
"""


def reconcile_totals(con: duckdb.DuckDBPyConnection, period: str) -> pd.DataFrame:
    """Units whose numerator (or element denominator) differs from the sum of their facilities'
    stored rows for `period` (month and YTD). Empty = the hierarchy adds up. UCI (a count of
    networks) is excluded."""
    with Staging(con, "_check") as stage:
        sql = RECONCILE_SQL.format(fac_unit=facility_units(stage))
        return con.execute(sql, {"period": period}).df()


def coverage_above_100(con: duckdb.DuckDBPyConnection, period: str) -> pd.DataFrame:
    """Rows of `period` whose coverage is above 100 % (flagged, not clipped)."""
    return con.execute(ABOVE_100_SQL, {"period": period}).df()
