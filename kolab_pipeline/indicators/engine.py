"""Indicator values → `indicators.indicator_value`: one row per indicator × unit (facility,
puskesmas_network, kecamatan, kabkota, provinsi) × period × period type (`month`, `ytd`).
Facility month rows come from `clean.submission_value`; every other row is a sum of stored
facility rows (docs/design/indicators.md). The facility rows of every indicator are kept in
`indicators.facility_base` (numerator, denominator); `indicator_value` holds facility rows only
for the indicators meaningful for one facility. A facility counts in the network it belonged to in
each month (`membership.py`), so its year-to-date is split into one part per network.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from kolab_pipeline.calendar import add_months, year_start
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.catalogue import (
    Indicator,
    catalogue_frame,
    load_catalogue,
    stage_frame,
)
from kolab_pipeline.indicators.contribution import write_contribution
from kolab_pipeline.indicators.membership import NETWORK_OF_MONTH, geo_units, moved_members
from kolab_pipeline.indicators.sasaran import resolve_sasaran
from kolab_pipeline.judgement import meets_sql
from kolab_pipeline.warehouse import Staging, ensure_schema, ident, replace_rows

# One row per facility reporting in $<period>, one column per element code (DuckDB's PIVOT with
# the codes listed: a column even for a code nobody reported; measured 5× faster than one
# `max(value) FILTER (...)` per code).
WIDE_SQL = """
    PIVOT (SELECT kode_faskes, data_element, value FROM clean.submission_value
            WHERE period = ${period} AND value IS NOT NULL)
       ON data_element IN ({element_codes})
    USING max(value)
    GROUP BY kode_faskes
"""

# Per facility, its type and its network this month for each form (`network_<form>`), so each
# indicator joins one row per facility.
NETWORK_MONTH_SQL = """
    SELECT facility.kode_faskes, any_value(facility.jenis_faskes) AS jenis_faskes,
           {form_columns}
      FROM reference.facility facility
      LEFT JOIN {moved} moved ON moved.kode_faskes = facility.kode_faskes
                             AND moved.period = $period
     GROUP BY facility.kode_faskes
"""
NETWORK_FORM_COLUMN = """CASE WHEN bool_or(moved.form = $network_form_{n})
                THEN any_value(moved.kode_jejaring) FILTER (WHERE moved.form = $network_form_{n})
                ELSE any_value(facility.kode_jejaring) END AS {column}"""

# One indicator's facility numerator (and element denominator) from the wide month table, with
# the network of the month. COHORT indicators read their denominator from the wide table of the
# cohort's month (`lag.`, $lag_months earlier). SHARE counts the numerator only from network
# members other than the puskesmas (0, never NULL, from the puskesmas and from facilities in no
# network, such as a hospital).
FACILITY_MONTH_SQL = """
    SELECT $indicator_{n} AS indicator_code, wide.kode_faskes, {network} AS kode_jejaring,
           CAST({numerator} AS DOUBLE) AS numerator, CAST({denominator} AS DOUBLE) AS denominator
      FROM {wide} wide JOIN {network_month} facility ON facility.kode_faskes = wide.kode_faskes
      {lag_join}
     WHERE {reported}
"""

# January..P−1 as parts (indicator × facility × network of the months), from the stored facility
# month rows of $year_start ≤ month < $months_before: sums per network of the month; for
# UNIQUE_YTD the increments of the running maximum (so a facility's parts add up to its maximum,
# each network keeping the persons counted while the facility belonged to it). `{only}` limits
# the facilities / indicators.
PARTS_FROM_MONTHS_SQL = """
    WITH months AS (
        SELECT stored.indicator_code, stored.kode_faskes, stored.period,
               stored.numerator, stored.denominator, cat.aggregation, cat.form
          FROM indicators.facility_base stored JOIN {cat} cat USING (indicator_code)
         WHERE stored.period_type = 'month'
           AND stored.period >= $year_start AND stored.period < $months_before AND {only}
    ), increments AS (
        SELECT *, CASE WHEN aggregation <> 'UNIQUE_YTD' THEN numerator
                       ELSE greatest(numerator - coalesce(max(numerator) OVER (
                                PARTITION BY indicator_code, kode_faskes ORDER BY period
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)
                  END AS part_numerator
          FROM months
    )
    SELECT increments.indicator_code, increments.kode_faskes, {network} AS kode_jejaring,
           sum(increments.part_numerator) AS numerator, sum(increments.denominator) AS denominator
      FROM increments
      JOIN reference.facility facility ON facility.kode_faskes = increments.kode_faskes
      LEFT JOIN {moved} moved ON moved.kode_faskes = increments.kode_faskes
                             AND moved.form = increments.form AND moved.period = increments.period
     GROUP BY ALL
"""

# Sources of January..P−1. (1) The parts of the month before, still staged (a running sum): a
# year costs one pass instead of re-reading months.
EARLIER_FROM_PREVIOUS_YTD_SQL = """
    SELECT indicator_code, kode_faskes, kode_jejaring, numerator, denominator FROM {fac_ytd_prev}
"""

# (2) One new month after a stored year so far: the stored facility YTD of P−1, in the network
# the facility had all year; facilities that changed network in January..P−1, and UCI indicators
# (whose facility YTD rows are not stored), from their stored months.
EARLIER_FROM_STORED_YTD_SQL = """
    SELECT stored.indicator_code, stored.kode_faskes, {network} AS kode_jejaring,
           stored.numerator, stored.denominator
      FROM indicators.facility_base stored JOIN {cat} cat USING (indicator_code)
      JOIN reference.facility facility ON facility.kode_faskes = stored.kode_faskes
      LEFT JOIN {moved} moved ON moved.kode_faskes = stored.kode_faskes AND moved.form = cat.form
                             AND moved.period = $previous_period
     WHERE stored.period_type = 'ytd' AND stored.period = $previous_period
       AND NOT EXISTS (SELECT 1 FROM {movers} mover
                        WHERE mover.kode_faskes = stored.kode_faskes AND mover.form = cat.form)
    UNION ALL
    SELECT * FROM ({from_months})
"""

# Facility × form with more than one network in $year_start ≤ month < $period.
MOVERS_SQL = """
    SELECT kode_faskes, form FROM {moved}
     WHERE period >= $year_start AND period < $period
     GROUP BY kode_faskes, form
    HAVING count(DISTINCT coalesce(kode_jejaring, '')) > 1 OR count(*) < $month - 1
"""

# Facility YTD parts = January..P−1 + P (for UNIQUE_YTD, P adds what it raises the maximum by);
# none for SUM_MONTH.
FACILITY_YTD_SQL = """
    WITH earlier AS (
        {earlier}
    ), earlier_total AS (
        SELECT indicator_code, kode_faskes, sum(numerator) AS numerator
          FROM earlier GROUP BY indicator_code, kode_faskes
    ), this_month AS (
        SELECT fac_month.indicator_code, fac_month.kode_faskes, fac_month.kode_jejaring,
               CASE WHEN cat.aggregation = 'UNIQUE_YTD'
                    THEN greatest(fac_month.numerator - coalesce(earlier_total.numerator, 0), 0)
                    ELSE fac_month.numerator END AS numerator,
               fac_month.denominator
          FROM {fac_month} fac_month JOIN {cat} cat USING (indicator_code)
          LEFT JOIN earlier_total USING (indicator_code, kode_faskes)
    )
    SELECT part.indicator_code, part.kode_faskes, part.kode_jejaring,
           sum(part.numerator) AS numerator, sum(part.denominator) AS denominator
      FROM (SELECT * FROM earlier UNION ALL SELECT * FROM this_month) part
      JOIN {cat} cat USING (indicator_code)
     WHERE cat.aggregation <> 'SUM_MONTH'
     GROUP BY ALL
"""

# A facility's whole YTD: the sum of its parts (one row per indicator × facility).
FACILITY_YTD_TOTAL_SQL = """
    SELECT indicator_code, kode_faskes, sum(numerator) AS numerator,
           sum(denominator) AS denominator
      FROM {fac_ytd} GROUP BY indicator_code, kode_faskes
"""

# Every unit row = the sum of its facilities' rows (facility rows kept as they are): location
# units by the facility's wilayah (from the facility totals), networks by the network of each
# month's part (a facility has one part per network, so count(*) counts facilities).
UNIT_ROWS_SQL = """
    WITH fac AS (
        SELECT 'month' AS period_type, indicator_code, kode_faskes, numerator, denominator
          FROM {fac_month}
        UNION ALL SELECT 'ytd', * FROM {fac_ytd_total}
    ), parts AS (
        SELECT 'month' AS period_type, * FROM {fac_month}
        UNION ALL SELECT 'ytd', * FROM {fac_ytd}
    )
    SELECT fac.period_type, fac.indicator_code, unit.unit_level, unit.unit_code,
           sum(fac.numerator) AS numerator, sum(fac.denominator) AS denominator,
           count(*) AS n_facilities
      FROM fac JOIN {geo_unit} unit ON unit.kode_faskes = fac.kode_faskes
      JOIN {cat} cat ON cat.indicator_code = fac.indicator_code
     WHERE unit.unit_level = 'facility'
        OR (list_contains(cat.levels, unit.unit_level)
            AND NOT (cat.aggregation = 'UNIQUE_YTD' AND fac.period_type = 'month')
            AND cat.aggregation NOT IN ('UCI', 'UCI_DESA'))
     GROUP BY ALL
    UNION ALL
    SELECT parts.period_type, parts.indicator_code, 'puskesmas_network', parts.kode_jejaring,
           sum(parts.numerator), sum(parts.denominator), count(*)
      FROM parts JOIN {cat} cat ON cat.indicator_code = parts.indicator_code
     WHERE parts.kode_jejaring IS NOT NULL
       AND ((list_contains(cat.levels, 'puskesmas_network')
             AND NOT (cat.aggregation = 'UNIQUE_YTD' AND parts.period_type = 'month')
             AND cat.aggregation NOT IN ('UCI', 'UCI_DESA'))
            -- networks' YTD numerators feed the UCI proxy
            OR (cat.aggregation = 'UCI' AND parts.period_type = 'ytd'))
     GROUP BY ALL
"""

# Denominator, value, pro-rata target, attainment and on_track of every unit row.
VALUE_SQL = """
    WITH base AS (
        SELECT unit_row.period_type, unit_row.indicator_code, unit_row.unit_level,
               unit_row.unit_code, unit_row.numerator, unit_row.denominator AS elem_den,
               unit_row.n_facilities, cat.program, cat.target, cat.aggregation, cat.direction,
               cat.den_kind, cat.den_text, cat.sasaran_code, cat.pro_rata, cat.lag_months,
               CASE WHEN cat.aggregation = 'ANNUALISED'
                    THEN cat.factor * 12.0 / CASE unit_row.period_type WHEN 'month' THEN 1
                                                  ELSE $month END
                    ELSE cat.factor END AS factor,
               list_contains(cat.levels, unit_row.unit_level) AS meaningful,
               sas.nilai AS sasaran_nilai, sas.metode AS sasaran_metode
          FROM {unit_rows} unit_row JOIN {cat} cat USING (indicator_code)
          LEFT JOIN indicators.sasaran_resolved sas
            ON cat.den_kind = 'sasaran' AND sas.tahun = $year
           AND sas.unit_level = unit_row.unit_level AND sas.kode_unit = unit_row.unit_code
           AND sas.sasaran = cat.sasaran_code
         -- facility rows of indicators not meaningful for one facility: facility_base only
         WHERE unit_row.unit_level <> 'facility' OR list_contains(cat.levels, 'facility')
    ), den AS (
        SELECT *,
               CASE den_kind WHEN 'element' THEN elem_den
                             WHEN 'sasaran' THEN sasaran_nilai END AS denominator,
               CASE WHEN den_kind = 'element' AND aggregation = 'COHORT'
                    THEN 'data_element:' || den_text || ' (kohort ' || lag_months || ' bulan)'
                    WHEN den_kind = 'element' THEN 'data_element:' || den_text
                    WHEN den_kind = 'none' THEN 'count'
                    WHEN unit_level = 'facility' THEN 'sasaran:not_defined_for_facility'
                    ELSE sasaran_code || ':' || coalesce(sasaran_metode, 'missing')
               END AS denominator_method
          FROM base
    ), val AS (
        SELECT *,
               CASE WHEN NOT meaningful THEN NULL
                    WHEN den_kind = 'none' THEN numerator * factor
                    WHEN denominator > 0 THEN numerator / denominator * factor END AS value,
               CASE WHEN NOT meaningful THEN NULL
                    WHEN pro_rata AND period_type = 'month' THEN target / 12
                    WHEN pro_rata AND period_type = 'ytd' THEN target * $month / 12
               END AS pws_target
          FROM den
    ), judged AS (
        SELECT *, CASE WHEN meaningful THEN target END AS shown_target,
               coalesce(pws_target, CASE WHEN meaningful THEN target END) AS compared_with
          FROM val
    )
    SELECT indicator_code, program, unit_level, unit_code, $period AS period, period_type,
           numerator, denominator, factor, value, shown_target AS target, pws_target,
           value / nullif(compared_with, 0) * 100 AS attainment,
           denominator_method, coalesce(factor = 100 AND value > 100, false) AS above_100,
           CAST(n_facilities AS INTEGER) AS n_facilities,
           {on_track} AS on_track,
           unit_level = 'provinsi' AND list_contains($partial::VARCHAR[], unit_code) AS partial
      FROM judged
"""

# Desa judged for UCI this year: desa with a resolved sasaran (bayi) and their IDL coverage
# year-to-date from the facilities located in them (0 when none reported).
UCI_DESA_COVERAGE_SQL = """
    WITH uci AS (SELECT * FROM {cat} WHERE aggregation = 'UCI_DESA'),
    desa AS (
        SELECT uci.indicator_code, uci.factor, sas.kode_unit AS kode_desa, sas.nilai
          FROM uci JOIN indicators.sasaran_resolved sas
            ON sas.tahun = $year AND sas.unit_level = 'desa' AND sas.sasaran = uci.sasaran_code
         WHERE sas.nilai > 0
    ), reported AS (
        SELECT fac.indicator_code, facility.kode_wilayah AS kode_desa,
               sum(fac.numerator) AS numerator
          FROM {fac_ytd_total} fac
          JOIN reference.facility facility ON facility.kode_faskes = fac.kode_faskes
         WHERE fac.indicator_code IN (SELECT indicator_code FROM uci)
         GROUP BY ALL
    )
    SELECT desa.indicator_code, desa.kode_desa,
           coalesce(reported.numerator, 0) / desa.nilai * desa.factor AS coverage
      FROM desa LEFT JOIN reported USING (indicator_code, kode_desa)
"""

# Units judged by their desa (the others get the network proxy).
DESA_UNITS_SQL = """
    SELECT DISTINCT level.unit_level,
           substr(coverage.kode_desa, 1, level.code_length) AS unit_code
      FROM {desa_coverage} coverage
     CROSS JOIN (VALUES ('kecamatan', 8), ('kabkota', 5), ('provinsi', 2))
                level(unit_level, code_length)
"""

# % of judged subunits (desa, or networks for the proxy) of a unit reaching the UCI threshold
# pro rata: uci_threshold × m / 12 (the full threshold in December).
UCI_ROWS_SQL = """
    SELECT judged.indicator_code, cat.program, judged.unit_level, judged.unit_code,
           $period AS period, 'ytd' AS period_type,
           CAST(count(*) FILTER (WHERE round(judged.coverage, 9) >= $uci_now) AS DOUBLE)
               AS numerator,
           CAST(count(*) AS DOUBLE) AS denominator, 100.0 AS factor,
           count(*) FILTER (WHERE round(judged.coverage, 9) >= $uci_now) * 100.0 / count(*)
               AS value,
           any_value(cat.target) AS target, NULL::DOUBLE AS pws_target,
           (count(*) FILTER (WHERE round(judged.coverage, 9) >= $uci_now) * 100.0 / count(*))
               / nullif(any_value(cat.target), 0) * 100 AS attainment,
           '{method_prefix}_idl_ytd>=' || $uci_now_text || '% (' || $uci_text || '% x '
               || $month || '/12)' AS denominator_method,
           false AS above_100, CAST(count(*) AS INTEGER) AS n_facilities,
           {on_track} AS on_track,
           judged.unit_level = 'provinsi' AND list_contains($partial::VARCHAR[], judged.unit_code)
               AS partial
      FROM ({judged}) judged JOIN {cat} cat USING (indicator_code)
     WHERE list_contains(cat.levels, judged.unit_level)
     GROUP BY judged.indicator_code, cat.program, judged.unit_level, judged.unit_code
"""

# UCI desa: each desa in its kecamatan, kab/kota and provinsi.
UCI_DESA_JUDGED_SQL = """
    SELECT coverage.indicator_code, coverage.coverage, level.unit_level,
           substr(coverage.kode_desa, 1, level.code_length) AS unit_code
      FROM {desa_coverage} coverage
     CROSS JOIN (VALUES ('kecamatan', 8), ('kabkota', 5), ('provinsi', 2))
                level(unit_level, code_length)
"""

# UCI proxy: every network with a sasaran (bayi) this year, its YTD IDL coverage (0 without a
# report), in the kecamatan / kab/kota / provinsi of its puskesmas; only units without desa.
UCI_PROXY_JUDGED_SQL = """
    WITH uci AS (SELECT * FROM {cat} WHERE aggregation = 'UCI'),
    network AS (
        SELECT uci.indicator_code, sas.kode_unit AS kode_jejaring,
               coalesce(unit_row.numerator, 0) / sas.nilai * uci.factor AS coverage
          FROM uci JOIN indicators.sasaran_resolved sas
            ON sas.tahun = $year AND sas.unit_level = 'puskesmas_network'
           AND sas.sasaran = uci.sasaran_code AND sas.nilai > 0
          LEFT JOIN {unit_rows} unit_row
            ON unit_row.indicator_code = uci.indicator_code AND unit_row.period_type = 'ytd'
           AND unit_row.unit_level = 'puskesmas_network' AND unit_row.unit_code = sas.kode_unit
    )
    SELECT network.indicator_code, network.coverage, unit.unit_level, unit.unit_code
      FROM network
      JOIN {geo_unit} unit ON unit.kode_faskes = network.kode_jejaring
                          AND unit.unit_level IN ('kecamatan', 'kabkota', 'provinsi')
     WHERE NOT EXISTS (SELECT 1 FROM {desa_units} desa_unit
                        WHERE desa_unit.unit_level = unit.unit_level
                          AND desa_unit.unit_code = unit.unit_code)
"""

# The rows written for a period: UCI values come from the UCI statements only (above facility,
# YTD).
INDICATOR_ROWS_SQL = """
    SELECT * FROM ({value_sql}) value_row
     WHERE NOT (value_row.indicator_code IN (SELECT indicator_code FROM {cat}
                                              WHERE aggregation IN ('UCI', 'UCI_DESA'))
                AND (value_row.unit_level <> 'facility' OR value_row.period_type = 'ytd'))
    UNION ALL SELECT * FROM ({uci_desa_sql})
    UNION ALL SELECT * FROM ({uci_proxy_sql})
"""

_SUBMITTED_MONTHS_SQL = """
    SELECT DISTINCT period FROM clean.submission_value
     WHERE period >= $year_start AND period < $last_period
"""

_STORED_MONTHS_SQL = """
    SELECT DISTINCT period FROM indicators.facility_base
     WHERE period_type = 'month' AND period >= $year_start AND period < $last_period
"""

_HAS_FACILITY_YTD_SQL = """
    SELECT count(*) > 0 FROM (SELECT 1 FROM indicators.facility_base
                               WHERE period = $period AND period_type = 'ytd' LIMIT 1)
"""

# The facility rows of a period (every indicator): the base of the next month's YTD and of the
# roll-up check. UCI facility YTD rows are not stored (UCI is judged above the facility).
FACILITY_BASE_SQL = """
    SELECT unit_row.indicator_code, unit_row.unit_code AS kode_faskes, $period AS period,
           unit_row.period_type, unit_row.numerator, unit_row.denominator
      FROM {unit_rows} unit_row JOIN {cat} cat USING (indicator_code)
     WHERE unit_row.unit_level = 'facility'
       AND NOT (cat.aggregation IN ('UCI', 'UCI_DESA') AND unit_row.period_type = 'ytd')
"""

# Provinces the registry holds only some kab/kota of (their rows are `partial`).
_PARTIAL_PROVINCES_SQL = """
    SELECT registry.kode_prov
      FROM (SELECT kode_prov, count(DISTINCT kode_kabkota) AS n FROM reference.facility
             WHERE length(kode_kabkota) = 5 GROUP BY kode_prov) registry
      JOIN (SELECT kode_prov, count(*) AS n FROM reference.wilayah
             WHERE level = 'kabkota' GROUP BY kode_prov) wilayah USING (kode_prov)
     WHERE wilayah.n > registry.n
"""

ON_TRACK = meets_sql("value", "compared_with", "direction")
UCI_ON_TRACK = meets_sql(
    "count(*) FILTER (WHERE round(judged.coverage, 9) >= $uci_now) * 100.0 / count(*)",
    "any_value(cat.target)", "any_value(cat.direction)")


def _expand_periods(con: duckdb.DuckDBPyConnection, periods: Sequence[str]) -> list[str]:
    """The requested periods plus any earlier month of the same year that has submissions but no
    stored facility rows yet, so YTD always sums complete months (in month order)."""
    if not periods:
        return []
    window = {"year_start": year_start(min(periods)), "last_period": max(periods)}
    submitted = {m for (m,) in con.execute(_SUBMITTED_MONTHS_SQL, window).fetchall()}
    stored = {m for (m,) in con.execute(_STORED_MONTHS_SQL, window).fetchall()}
    out = set(periods)
    for p in periods:
        out.update(m for m in submitted - stored if year_start(p) <= m < p)
    return sorted(out)


def _has_facility_ytd(con: duckdb.DuckDBPyConnection, period: str) -> bool:
    return con.execute(_HAS_FACILITY_YTD_SQL, {"period": period}).fetchone()[0]


def _wide_sql(codes: Sequence[str], period_param: str) -> tuple[str, dict[str, object]]:
    """`WIDE_SQL` with one column per element code (PIVOT takes its list as constants: each code
    is checked by `ident`, so it is a safe literal)."""
    listed = ", ".join(f"'{ident(c)}'" for c in sorted(set(codes)))
    return WIDE_SQL.format(element_codes=listed, period=period_param), {}


def _lags(indicators: Sequence[Indicator]) -> dict[int, list[str]]:
    """Cohort lag (months) → the denominator codes read at that lag."""
    out: dict[int, list[str]] = {}
    for ind in indicators:
        if ind.lag_months and ind.denominator:
            out.setdefault(ind.lag_months, []).extend(ind.denominator.codes)
    return out


def _facility_month_sql(indicators: Sequence[Indicator], tables: dict[str, str]
                        ) -> tuple[str, dict[str, object]]:
    """SQL for the facility × indicator numerators (and element denominators) of the month."""
    parts, params = [], {}
    for n, ind in enumerate(indicators):
        num = ind.numerator.sql("wide.")
        network = f"facility.{_network_column(ind.form)}"
        if ind.aggregation == "SHARE":
            num = (f"CASE WHEN {num} IS NULL THEN NULL "
                   f"WHEN facility.jenis_faskes = 'puskesmas' OR {network} IS NULL "
                   f"THEN 0 ELSE {num} END")
        lag_join, den = "", "NULL"
        if ind.denominator and ind.lag_months:
            lag_join = (f"JOIN {tables[f'wide_lag_{ind.lag_months}']} lag "
                        "ON lag.kode_faskes = wide.kode_faskes")
            den = ind.denominator.sql("lag.")
        elif ind.denominator:
            den = ind.denominator.sql("wide.")
        reported = f"{num} IS NOT NULL" + (f" AND {den} IS NOT NULL" if ind.denominator else "")
        parts.append(FACILITY_MONTH_SQL.format(
            n=n, numerator=num, denominator=den, wide=tables["wide"], lag_join=lag_join,
            network_month=tables["network_month"], network=network, reported=reported))
        params[f"indicator_{n}"] = ind.code
    return "\nUNION ALL\n".join(parts), params


def _network_column(form: str) -> str:
    return ident(f"network_{form}")


def _network_month_sql(forms: Sequence[str], moved: str) -> tuple[str, dict[str, object]]:
    """`NETWORK_MONTH_SQL` with one network column per form, and the forms as parameters."""
    columns = ",\n           ".join(NETWORK_FORM_COLUMN.format(n=n, column=_network_column(f))
                                    for n, f in enumerate(forms))
    return (NETWORK_MONTH_SQL.format(form_columns=columns, moved=moved),
            {f"network_form_{n}": f for n, f in enumerate(forms)})


def _earlier_months_sql(con: duckdb.DuckDBPyConnection, period: str, previous: str | None,
                        tables: dict[str, str]) -> str:
    """Which of the `EARLIER_*` sources stands for January..P−1 of `period`."""
    every_month = PARTS_FROM_MONTHS_SQL.format(only="TRUE", network=NETWORK_OF_MONTH, **tables)
    if int(period[5:7]) == 1:
        return every_month   # January: nothing earlier, the statement reads no row
    if previous == add_months(period, -1):
        return EARLIER_FROM_PREVIOUS_YTD_SQL.format(**tables)
    if _has_facility_ytd(con, add_months(period, -1)):
        only = ("(cat.aggregation IN ('UCI', 'UCI_DESA') OR EXISTS (SELECT 1 FROM "
                f"{tables['movers']} mover WHERE mover.kode_faskes = stored.kode_faskes "
                "AND mover.form = cat.form))")
        from_months = PARTS_FROM_MONTHS_SQL.format(only=only, network=NETWORK_OF_MONTH,
                                                   **tables)
        return EARLIER_FROM_STORED_YTD_SQL.format(network=NETWORK_OF_MONTH,
                                                  from_months=from_months, **tables)
    return every_month


def _ensure_sasaran(con: duckdb.DuckDBPyConnection, settings: Settings,
                    periods: Sequence[str]) -> None:
    """Resolve the sasaran of each year of `periods` that has none yet."""
    for year in sorted({int(p[:4]) for p in periods}):
        n = con.execute("SELECT count(*) FROM indicators.sasaran_resolved WHERE tahun = $year",
                        {"year": year}).fetchone()[0]
        if n == 0:
            resolve_sasaran(con, settings, [year])


def _rows_sql(tables: dict[str, str]) -> str:
    """The SELECT of one period's `indicators.indicator_value` rows."""
    uci_desa = UCI_ROWS_SQL.format(judged=UCI_DESA_JUDGED_SQL.format(**tables),
                                   on_track=UCI_ON_TRACK, method_prefix="desa", **tables)
    uci_proxy = UCI_ROWS_SQL.format(judged=UCI_PROXY_JUDGED_SQL.format(**tables),
                                    on_track=UCI_ON_TRACK,
                                    method_prefix="proksi_jejaring_puskesmas", **tables)
    return INDICATOR_ROWS_SQL.format(
        value_sql=VALUE_SQL.format(on_track=ON_TRACK, **tables), uci_desa_sql=uci_desa,
        uci_proxy_sql=uci_proxy, **tables)


def compute_indicator_values(con: duckdb.DuckDBPyConnection, settings: Settings,
                             periods: Sequence[str],
                             indicators: Sequence[Indicator] | None = None) -> dict[str, int]:
    """Write `indicators.indicator_value` and `indicators.network_contribution` for `periods`.

    Per period P (YYYY-MM): facility month rows from `clean.submission_value` (with the network
    of P); YTD facility parts = January..P−1 + P per network of the month (sum, or the
    increments of the maximum for UNIQUE_YTD); every unit row = sum of its facilities' rows.
    Each period is replaced as a whole (delete-then-insert in one transaction), so re-running a
    month gives the same rows. Earlier months of the year that were never computed are computed
    first. Sasaran of the year are resolved if absent. Returns rows written per period.
    """
    ensure_schema(con)
    indicators = list(indicators or load_catalogue())
    thresholds = settings.config.thresholds
    codes = [c for i in indicators if not i.lag_months
             for c in (i.numerator.codes + (i.denominator.codes if i.denominator else []))]
    codes += [c for i in indicators if i.lag_months for c in i.numerator.codes]
    uci = thresholds.uci_threshold_pct
    partial = [p for (p,) in con.execute(_PARTIAL_PROVINCES_SQL).fetchall()]
    written: dict[str, int] = {}
    expanded = _expand_periods(con, periods)
    with Staging(con, "_ind") as stage:
        tables = {"cat": stage_frame(stage, "cat", catalogue_frame(indicators, thresholds)),
                  "geo_unit": geo_units(stage), "moved": moved_members(stage, expanded),
                  "fac_ytd_prev": stage.adopt("fac_ytd_prev"), "wide": stage.name("wide")}
        wide_sql, wide_params = _wide_sql(codes, "period")
        lag_sql = {}
        for lag, lag_codes in _lags(indicators).items():
            tables[f"wide_lag_{lag}"] = stage.name(f"wide_lag_{lag}")
            lag_sql[lag] = _wide_sql(lag_codes, f"lag_period_{lag}")
        tables["network_month"] = stage.name("network_month")
        net_sql, net_params = _network_month_sql(sorted({i.form for i in indicators}),
                                                 tables["moved"])
        fac_sql, fac_params = _facility_month_sql(indicators, tables)
        _ensure_sasaran(con, settings, expanded)
        previous: str | None = None
        for period in expanded:
            month = int(period[5:7])
            params: dict[str, object] = {
                "period": period, "previous_period": add_months(period, -1),
                "months_before": period, "year_start": year_start(period),
                "year": int(period[:4]), "month": month, "partial": partial,
                "uci_now": uci * month / 12, "uci_now_text": f"{uci * month / 12:.4g}",
                "uci_text": f"{uci:g}"}
            stage.create("wide", wide_sql, {**wide_params, **params})
            stage.create("network_month", net_sql, {**net_params, **params})
            for lag, (sql, lag_params) in lag_sql.items():
                stage.create(f"wide_lag_{lag}", sql,
                             {**lag_params, f"lag_period_{lag}": add_months(period, -lag)})
            tables["fac_month"] = stage.create("fac_month", fac_sql, {**fac_params, **params})
            tables["movers"] = stage.create("movers", MOVERS_SQL.format(**tables), params)
            earlier = _earlier_months_sql(con, period, previous, tables)
            tables["fac_ytd"] = stage.create(
                "fac_ytd", FACILITY_YTD_SQL.format(earlier=earlier, **tables), params)
            tables["fac_ytd_total"] = stage.create("fac_ytd_total",
                                                   FACILITY_YTD_TOTAL_SQL.format(**tables))
            tables["unit_rows"] = stage.create("unit_rows", UNIT_ROWS_SQL.format(**tables))
            tables["desa_coverage"] = stage.create(
                "desa_coverage", UCI_DESA_COVERAGE_SQL.format(**tables), params)
            tables["desa_units"] = stage.create("desa_units", DESA_UNITS_SQL.format(**tables))
            written[period] = replace_rows(con, "indicators.indicator_value", _rows_sql(tables),
                                           where="period = $period", params=params)
            replace_rows(con, "indicators.facility_base", FACILITY_BASE_SQL.format(**tables),
                         where="period = $period", params=params)
            write_contribution(stage, tables["geo_unit"], tables["moved"], period)
            con.execute(f"DROP TABLE IF EXISTS {tables['fac_ytd_prev']}")
            con.execute(f"ALTER TABLE {tables['fac_ytd']} RENAME TO {tables['fac_ytd_prev']}")
            previous = period
    return written
