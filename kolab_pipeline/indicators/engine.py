"""Indicator values → `indicators.indicator_value`: one row per indicator × unit (facility,
puskesmas_network, kecamatan, kabkota, provinsi) × period × period type (`month`, `ytd`).
Facility month rows come from `clean.submission_value`; every other row is a sum of stored
facility rows (docs/design/indicators.md).
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
from kolab_pipeline.indicators.sasaran import facility_units, resolve_sasaran
from kolab_pipeline.warehouse import Staging, ensure_schema, ident, replace_rows

# One row per facility reporting in $period, one column per element ($element_<n> = its code).
WIDE_SQL = """
    SELECT kode_faskes, {element_columns}
      FROM clean.submission_value
     WHERE period = $period AND value IS NOT NULL
     GROUP BY kode_faskes
"""

# One indicator's facility numerator (and element denominator) from the wide month table.
FACILITY_MONTH_SQL = """
    SELECT $indicator_{n} AS indicator_code, wide.kode_faskes,
           CAST({numerator} AS DOUBLE) AS numerator, CAST({denominator} AS DOUBLE) AS denominator
      FROM {wide} wide JOIN reference.facility facility ON facility.kode_faskes = wide.kode_faskes
     WHERE {reported}
"""

# January..P−1 for the facility YTD, three ways. (1) The YTD of the month before, still staged
# (a running sum, or max for UNIQUE_YTD): a year costs one pass instead of re-reading months.
EARLIER_FROM_PREVIOUS_YTD_SQL = """
    SELECT indicator_code, kode_faskes, numerator, denominator FROM {fac_ytd_prev}
"""

# (2) One new month after a stored year so far: the stored facility YTD of P−1; UCI facility YTD
# rows are not stored, so UCI re-reads its months.
EARLIER_FROM_STORED_YTD_SQL = """
    SELECT indicator_code, unit_code AS kode_faskes, numerator, denominator
      FROM indicators.indicator_value
     WHERE unit_level = 'facility' AND period_type = 'ytd' AND period = $previous_period
    UNION ALL
    SELECT indicator_code, unit_code, numerator, denominator
      FROM indicators.indicator_value
     WHERE unit_level = 'facility' AND period_type = 'month'
       AND period >= $year_start AND period < $period
       AND indicator_code IN (SELECT indicator_code FROM {cat} WHERE aggregation = 'UCI')
"""

# (3) Otherwise: the stored facility month rows of January..P−1.
EARLIER_FROM_STORED_MONTHS_SQL = """
    SELECT indicator_code, unit_code AS kode_faskes, numerator, denominator
      FROM indicators.indicator_value
     WHERE unit_level = 'facility' AND period_type = 'month'
       AND period >= $year_start AND period < $period
"""

# Facility YTD = January..P−1 + P: a sum, or the maximum for UNIQUE_YTD; none for SUM_MONTH.
FACILITY_YTD_SQL = """
    WITH months AS (
        {earlier}
        UNION ALL SELECT indicator_code, kode_faskes, numerator, denominator FROM {fac_month}
    )
    SELECT months.indicator_code, months.kode_faskes,
           CASE WHEN any_value(cat.aggregation) = 'UNIQUE_YTD' THEN max(months.numerator)
                ELSE sum(months.numerator) END AS numerator,
           sum(months.denominator) AS denominator
      FROM months JOIN {cat} cat USING (indicator_code)
     WHERE cat.aggregation <> 'SUM_MONTH'
     GROUP BY months.indicator_code, months.kode_faskes
"""

# Every unit row = the sum of its facilities' rows (facility rows kept as they are).
UNIT_ROWS_SQL = """
    WITH fac AS (
        SELECT 'month' AS period_type, * FROM {fac_month}
        UNION ALL SELECT 'ytd', * FROM {fac_ytd}
    )
    SELECT fac.period_type, fac.indicator_code, unit.unit_level, unit.unit_code,
           sum(fac.numerator) AS numerator, sum(fac.denominator) AS denominator,
           count(*) AS n_facilities
      FROM fac JOIN {fac_unit} unit ON unit.kode_faskes = fac.kode_faskes
      JOIN {cat} cat ON cat.indicator_code = fac.indicator_code
     WHERE unit.unit_level = 'facility'
        OR (list_contains(cat.levels, unit.unit_level)
            AND NOT (cat.aggregation = 'UNIQUE_YTD' AND fac.period_type = 'month')
            AND cat.aggregation <> 'UCI')
        -- networks' YTD numerators feed the UCI count
        OR (cat.aggregation = 'UCI' AND unit.unit_level = 'puskesmas_network'
            AND fac.period_type = 'ytd')
     GROUP BY ALL
"""

# Denominator, value, PWS target and attainment of every unit row.
VALUE_SQL = """
    WITH base AS (
        SELECT unit_row.period_type, unit_row.indicator_code, unit_row.unit_level,
               unit_row.unit_code, unit_row.numerator, unit_row.denominator AS elem_den,
               unit_row.n_facilities, cat.program, cat.factor, cat.target, cat.aggregation,
               cat.den_kind, cat.den_text, cat.sasaran_code,
               list_contains(cat.levels, unit_row.unit_level) AS meaningful,
               sas.nilai AS sasaran_nilai, sas.metode AS sasaran_metode
          FROM {unit_rows} unit_row JOIN {cat} cat USING (indicator_code)
          LEFT JOIN indicators.sasaran_resolved sas
            ON cat.den_kind = 'sasaran' AND sas.tahun = $year
           AND sas.unit_level = unit_row.unit_level AND sas.kode_unit = unit_row.unit_code
           AND sas.sasaran = cat.sasaran_code
    ), den AS (
        SELECT *,
               CASE den_kind WHEN 'element' THEN elem_den
                             WHEN 'sasaran' THEN sasaran_nilai END AS denominator,
               CASE WHEN den_kind = 'element' THEN 'data_element:' || den_text
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
                    WHEN den_kind = 'sasaran' AND period_type = 'month' THEN target / 12
                    WHEN aggregation = 'PWS' AND period_type = 'ytd' THEN target * $month / 12
               END AS pws_target
          FROM den
    )
    SELECT indicator_code, program, unit_level, unit_code, $period AS period, period_type,
           numerator, denominator, factor, value,
           CASE WHEN meaningful THEN target END AS target, pws_target,
           value / nullif(coalesce(pws_target, CASE WHEN meaningful THEN target END), 0) * 100
               AS attainment,
           denominator_method, coalesce(factor = 100 AND value > 100, false) AS above_100,
           CAST(n_facilities AS INTEGER) AS n_facilities
      FROM val
"""

# UCI: % of puskesmas networks of a unit whose YTD coverage reaches $uci_threshold.
UCI_SQL = """
    WITH coverage AS (  -- YTD coverage of each network, from the UCI numerator and sasaran
        SELECT unit_row.indicator_code, unit_row.unit_code AS kode_jejaring,
               unit_row.numerator / sas.nilai * cat.factor AS coverage
          FROM {unit_rows} unit_row JOIN {cat} cat USING (indicator_code)
          JOIN indicators.sasaran_resolved sas
            ON sas.tahun = $year AND sas.unit_level = 'puskesmas_network'
           AND sas.kode_unit = unit_row.unit_code AND sas.sasaran = cat.sasaran_code
           AND sas.nilai > 0
         WHERE cat.aggregation = 'UCI' AND unit_row.period_type = 'ytd'
           AND unit_row.unit_level = 'puskesmas_network'
    ), network_unit AS (
        SELECT coverage.*, unit.unit_level, unit.unit_code
          FROM coverage
          JOIN reference.facility puskesmas ON puskesmas.kode_faskes = coverage.kode_jejaring
          JOIN (SELECT kode_faskes, 'kecamatan' AS unit_level, kode_kec AS unit_code
                  FROM reference.facility
                UNION ALL SELECT kode_faskes, 'kabkota', kode_kabkota FROM reference.facility
                UNION ALL SELECT kode_faskes, 'provinsi', kode_prov FROM reference.facility) unit
            ON unit.kode_faskes = puskesmas.kode_faskes
    )
    SELECT network_unit.indicator_code, cat.program, network_unit.unit_level,
           network_unit.unit_code, $period AS period, 'ytd' AS period_type,
           CAST(count(*) FILTER (WHERE network_unit.coverage >= $uci_threshold) AS DOUBLE)
               AS numerator,
           CAST(count(*) AS DOUBLE) AS denominator, 100.0 AS factor,
           count(*) FILTER (WHERE network_unit.coverage >= $uci_threshold) * 100.0 / count(*)
               AS value,
           any_value(cat.target) AS target, NULL::DOUBLE AS pws_target,
           (count(*) FILTER (WHERE network_unit.coverage >= $uci_threshold) * 100.0 / count(*))
               / nullif(any_value(cat.target), 0) * 100 AS attainment,
           'puskesmas_network_idl_ytd>=' || $uci_threshold_text || '%' AS denominator_method,
           false AS above_100, CAST(count(*) AS INTEGER) AS n_facilities
      FROM network_unit JOIN {cat} cat USING (indicator_code)
     WHERE list_contains(cat.levels, network_unit.unit_level)
     GROUP BY network_unit.indicator_code, cat.program, network_unit.unit_level,
              network_unit.unit_code
"""

# The rows written for a period: UCI values come from UCI_SQL only (above facility, YTD).
INDICATOR_ROWS_SQL = """
    SELECT * FROM ({value_sql}) value_row
     WHERE NOT (value_row.indicator_code IN (SELECT indicator_code FROM {cat}
                                              WHERE aggregation = 'UCI')
                AND (value_row.unit_level <> 'facility' OR value_row.period_type = 'ytd'))
    UNION ALL SELECT * FROM ({uci_sql}) uci_row
"""

_SUBMITTED_MONTHS_SQL = """
    SELECT DISTINCT period FROM clean.submission_value
     WHERE period >= $year_start AND period < $last_period
"""

_STORED_MONTHS_SQL = """
    SELECT DISTINCT period FROM indicators.indicator_value
     WHERE unit_level = 'facility' AND period_type = 'month'
       AND period >= $year_start AND period < $last_period
"""

_HAS_FACILITY_YTD_SQL = """
    SELECT count(*) > 0 FROM (SELECT 1 FROM indicators.indicator_value
                               WHERE period = $period AND period_type = 'ytd'
                                 AND unit_level = 'facility' LIMIT 1)
"""


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


def _wide_sql(codes: Sequence[str]) -> tuple[str, dict[str, object]]:
    """`WIDE_SQL` with one column per element code, and the codes as named parameters."""
    cols = sorted(set(codes))
    columns = ", ".join(f"max(value) FILTER (WHERE data_element = $element_{n}) AS {ident(c)}"
                        for n, c in enumerate(cols))
    return (WIDE_SQL.format(element_columns=columns),
            {f"element_{n}": c for n, c in enumerate(cols)})


def _facility_month_sql(indicators: Sequence[Indicator],
                        wide: str) -> tuple[str, dict[str, object]]:
    """SQL for the facility × indicator numerators (and element denominators) of `wide`."""
    parts, params = [], {}
    for n, ind in enumerate(indicators):
        num = ind.numerator.sql("wide.")
        if ind.aggregation == "SHARE":
            # the network's part: a puskesmas contributes 0, never NULL, when it reported
            num = (f"CASE WHEN {num} IS NULL THEN NULL "
                   f"WHEN facility.jenis_faskes = 'puskesmas' THEN 0 ELSE {num} END")
        den = ind.denominator.sql("wide.") if ind.denominator else "NULL"
        reported = f"{num} IS NOT NULL" + (f" AND {den} IS NOT NULL" if ind.denominator else "")
        parts.append(FACILITY_MONTH_SQL.format(n=n, numerator=num, denominator=den, wide=wide,
                                               reported=reported))
        params[f"indicator_{n}"] = ind.code
    return "\nUNION ALL\n".join(parts), params


def _earlier_months_sql(con: duckdb.DuckDBPyConnection, period: str,
                        previous: str | None) -> str:
    """Which of the three `EARLIER_*` sources stands for January..P−1 of `period`."""
    if int(period[5:7]) == 1:
        return EARLIER_FROM_STORED_MONTHS_SQL   # January: nothing earlier
    if previous == add_months(period, -1):
        return EARLIER_FROM_PREVIOUS_YTD_SQL
    if _has_facility_ytd(con, add_months(period, -1)):
        return EARLIER_FROM_STORED_YTD_SQL
    return EARLIER_FROM_STORED_MONTHS_SQL


def _ensure_sasaran(con: duckdb.DuckDBPyConnection, settings: Settings,
                    periods: Sequence[str]) -> None:
    """Resolve the sasaran of each year of `periods` that has none yet."""
    for year in sorted({int(p[:4]) for p in periods}):
        n = con.execute("SELECT count(*) FROM indicators.sasaran_resolved WHERE tahun = $year",
                        {"year": year}).fetchone()[0]
        if n == 0:
            resolve_sasaran(con, settings, [year])


def compute_indicator_values(con: duckdb.DuckDBPyConnection, settings: Settings,
                             periods: Sequence[str],
                             indicators: Sequence[Indicator] | None = None) -> dict[str, int]:
    """Write `indicators.indicator_value` and `indicators.network_contribution` for `periods`.

    Per period P (YYYY-MM): facility month rows from `clean.submission_value`; YTD facility rows =
    stored facility month rows Jan..P−1 + P (sum, or max for UNIQUE_YTD); every unit row = sum of
    its facilities' rows. Each period is replaced as a whole (delete-then-insert in one
    transaction), so re-running a month gives the same rows. Earlier months of the year that were
    never computed are computed first. Sasaran of the year are resolved if absent.
    Returns rows written per period.
    """
    ensure_schema(con)
    indicators = list(indicators or load_catalogue())
    codes = [c for i in indicators
             for c in (i.numerator.codes + (i.denominator.codes if i.denominator else []))]
    threshold = settings.config.thresholds.uci_threshold_pct
    written: dict[str, int] = {}
    with Staging(con, "_ind") as stage:
        tables = {"cat": stage_frame(stage, "cat", catalogue_frame(indicators)),
                  "fac_unit": facility_units(stage),
                  "fac_ytd_prev": stage.adopt("fac_ytd_prev")}
        wide_sql, wide_params = _wide_sql(codes)
        tables["wide"] = stage.name("wide")
        fac_sql, fac_params = _facility_month_sql(indicators, tables["wide"])
        _ensure_sasaran(con, settings, periods)
        previous: str | None = None
        for period in _expand_periods(con, periods):
            params: dict[str, object] = {
                "period": period, "previous_period": add_months(period, -1),
                "year_start": year_start(period), "year": int(period[:4]),
                "month": int(period[5:7]), "uci_threshold": threshold,
                "uci_threshold_text": f"{threshold:g}"}
            stage.create("wide", wide_sql, {**wide_params, **params})
            tables["fac_month"] = stage.create("fac_month", fac_sql, fac_params)
            earlier = _earlier_months_sql(con, period, previous).format(**tables)
            tables["fac_ytd"] = stage.create(
                "fac_ytd", FACILITY_YTD_SQL.format(earlier=earlier, **tables), params)
            tables["unit_rows"] = stage.create("unit_rows", UNIT_ROWS_SQL.format(**tables))
            rows_sql = INDICATOR_ROWS_SQL.format(value_sql=VALUE_SQL.format(**tables),
                                                 uci_sql=UCI_SQL.format(**tables), **tables)
            written[period] = replace_rows(con, "indicators.indicator_value", rows_sql,
                                           where="period = $period", params=params)
            write_contribution(stage, tables["fac_unit"], period)
            con.execute(f"DROP TABLE IF EXISTS {tables['fac_ytd_prev']}")
            con.execute(f"ALTER TABLE {tables['fac_ytd']} RENAME TO {tables['fac_ytd_prev']}")
            previous = period
    return written
