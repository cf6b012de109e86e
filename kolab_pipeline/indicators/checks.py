"""Checks on `indicators.indicator_value` (pure SQL; wrapped as asset checks by
`data_quality/indicator_checks.py`): the hierarchy adds up, and coverage above 100 %.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from kolab_pipeline.calendar import add_months, year_start
from kolab_pipeline.indicators.catalogue import catalogue_frame, load_catalogue, stage_frame
from kolab_pipeline.indicators.engine import PARTS_FROM_MONTHS_SQL
from kolab_pipeline.indicators.membership import NETWORK_OF_MONTH, geo_units, moved_members
from kolab_pipeline.warehouse import Staging

# What each unit row should hold, from the stored facility rows (`indicators.facility_base`):
# location units sum the facility rows of the period (month and YTD); networks sum the facility
# month rows by the network of each month — the month itself, and January..P for YTD (UNIQUE_YTD:
# increments of the maximum).
EXPECTED_SQL = """
    WITH stored AS (
        SELECT stored.*, cat.form, cat.aggregation, cat.den_kind
          FROM indicators.facility_base stored JOIN {cat} cat USING (indicator_code)
         WHERE stored.period = $period
    ), location AS (
        SELECT stored.indicator_code, stored.period_type, unit.unit_level, unit.unit_code,
               sum(stored.numerator) AS fac_numerator,
               sum(stored.denominator) FILTER (WHERE stored.den_kind = 'element')
                   AS fac_denominator
          FROM stored JOIN {geo_unit} unit ON unit.kode_faskes = stored.kode_faskes
         WHERE unit.unit_level <> 'facility'
         GROUP BY ALL
    ), network_month AS (
        SELECT stored.indicator_code, 'month' AS period_type,
               'puskesmas_network' AS unit_level, {network} AS unit_code,
               sum(stored.numerator) AS fac_numerator,
               sum(stored.denominator) FILTER (WHERE stored.den_kind = 'element')
                   AS fac_denominator
          FROM stored JOIN reference.facility facility ON facility.kode_faskes = stored.kode_faskes
          LEFT JOIN {moved} moved ON moved.kode_faskes = stored.kode_faskes
                                 AND moved.form = stored.form AND moved.period = $period
         WHERE stored.period_type = 'month'
         GROUP BY ALL
    ), network_ytd AS (
        SELECT parts.indicator_code, 'ytd' AS period_type, 'puskesmas_network' AS unit_level,
               parts.kode_jejaring AS unit_code, sum(parts.numerator) AS fac_numerator,
               sum(parts.denominator) AS fac_denominator
          FROM ({parts}) parts GROUP BY ALL
    )
    SELECT * FROM location
    UNION ALL SELECT * FROM network_month WHERE unit_code IS NOT NULL
    UNION ALL SELECT * FROM network_ytd WHERE unit_code IS NOT NULL
"""

# Unit rows whose numerator (or element denominator) is not the expected sum.
RECONCILE_SQL = """
    SELECT stored.indicator_code, stored.period_type, stored.unit_level, stored.unit_code,
           stored.numerator, expected.fac_numerator, stored.denominator,
           expected.fac_denominator
      FROM indicators.indicator_value stored
      JOIN {cat} cat USING (indicator_code)
      LEFT JOIN {expected} expected USING (indicator_code, period_type, unit_level, unit_code)
     WHERE stored.period = $period AND stored.unit_level <> 'facility'
       AND cat.aggregation NOT IN ('UCI', 'UCI_DESA')
       AND (expected.fac_numerator IS NULL
            OR abs(stored.numerator - expected.fac_numerator) > 1e-6
            OR (stored.denominator_method LIKE 'data_element:%'
                AND abs(stored.denominator - expected.fac_denominator) > 1e-6))
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
    stored rows for `period` (month and YTD; a network by the network of each month). Empty =
    the hierarchy adds up. UCI (a count of desa or networks) is excluded."""
    with Staging(con, "_check") as stage:
        tables = {"cat": stage_frame(stage, "cat", catalogue_frame(load_catalogue())),
                  "geo_unit": geo_units(stage), "moved": moved_members(stage, [period])}
        parts = PARTS_FROM_MONTHS_SQL.format(
            only="cat.aggregation NOT IN ('SUM_MONTH', 'UCI', 'UCI_DESA')",
            network=NETWORK_OF_MONTH, **tables)
        expected = stage.create("expected", EXPECTED_SQL.format(
            parts=parts, network=NETWORK_OF_MONTH, **tables),
            {"period": period, "year_start": year_start(period),
             "months_before": add_months(period, 1)})
        return con.execute(RECONCILE_SQL.format(expected=expected, **tables),
                           {"period": period}).df()


def coverage_above_100(con: duckdb.DuckDBPyConnection, period: str) -> pd.DataFrame:
    """Rows of `period` whose coverage is above 100 % (flagged, not clipped)."""
    return con.execute(ABOVE_100_SQL, {"period": period}).df()
