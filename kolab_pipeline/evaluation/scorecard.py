"""Evaluation scorecards: what the Dinkes evaluation meeting (rapat evaluasi) reads.

Tables written (grain in `catalog/tables.yaml`), each for month and year-to-date rows:

- `evaluation.key_indicator`: unit × period × period type × key indicator (long form);
- `evaluation.scorecard`: puskesmas network × period × period type (wide);
- `evaluation.wilayah_scorecard`: kecamatan / kab/kota × period × period type (wide).

Compliance counts are read from `compliance.reporting_rate` (kelengkapan = received ÷ expected,
ketepatan = on time ÷ expected, `docs/data_quality_anchors.md` §1), NULL when nothing was
expected; key indicators come from `kolab.yaml` `evaluation.key_indicators`, NULL when the
indicator layer has not computed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from kolab_pipeline import labels
from kolab_pipeline.calendar import month_end, month_start, year_start
from kolab_pipeline.config import Settings
from kolab_pipeline.judgement import meets_sql
from kolab_pipeline.reference import norm_sql
from kolab_pipeline.warehouse import Staging, bind, ident, replace_rows, table

# Program of an indicator when the indicator layer has no row for it yet (code prefix).
PROGRAM_BY_PREFIX = {"TB": "TB", "PTM": "PTM", "KIA": "KIA", "IMUN": "Imunisasi"}
# Programs of indicators.network_contribution → scorecard share columns.
SHARE_COLUMNS = {"TB": "share_tb_pct", "PTM": "share_ptm_pct", "KIA": "share_kia_pct",
                 "Imunisasi": "share_imun_pct"}
# jenis_faskes split of compliance.reporting_rate → column prefix.
JENIS_PREFIX = {"puskesmas": "pkm", "klinik_pratama": "klinik", "tpmd": "tpmd"}
# Temp tables of one build (warehouse.Staging prefix): `_eval_rates`, `_eval_indicators`,
# `_eval_contribution`, `_eval_counts` (inputs, aggregated once) and `_eval_rows` (output).
STAGE = "_eval"


@dataclass(frozen=True)
class Level:
    """How one scorecard level maps onto the input tables."""

    unit_level: str          # unit_level value in compliance/indicators tables
    facility_column: str     # reference.facility column holding the unit code
    key: str                 # output table


NETWORK = Level("puskesmas_network", "kode_jejaring", "evaluation.scorecard")
KECAMATAN = Level("kecamatan", "kode_kec", "evaluation.wilayah_scorecard")
KABKOTA = Level("kabkota", "kode_kabkota", "evaluation.wilayah_scorecard")


def program_of(code: str) -> str | None:
    return PROGRAM_BY_PREFIX.get(code.split("_", 1)[0])


def wide_indicator_columns(key: str, indicators: Sequence[str]) -> list[str]:
    """Key indicators that have `<code>_value` / `<code>_attainment` columns in the contract of
    `key`; the others are only in `evaluation.key_indicator` (the contract is static, the list is
    configuration)."""
    cols = set(table(key).column_names)
    return [c for c in indicators
            if f"{c.lower()}_value" in cols and f"{c.lower()}_attainment" in cols]


# --- evaluation.key_indicator ------------------------------------------------------------------

# Every key indicator × unit of the three levels × month/ytd, the measures NULL when missing.
# Units come from the registry (puskesmas open at some time in the month, and the kecamatan /
# kab/kota holding one). One query for all months, so indicator_value is scanned once.
KEY_INDICATOR_SQL = f"""
    WITH key_indicators AS (
        SELECT unnest($codes::VARCHAR[]) AS indicator_code,
               unnest($programs::VARCHAR[]) AS program_guess,
               unnest($directions::VARCHAR[]) AS direction,
               unnest(range(1, len($codes::VARCHAR[]) + 1))::INTEGER AS display_order
    ),
    months AS (
        SELECT unnest($periods::VARCHAR[]) AS period,
               unnest($month_firsts::DATE[]) AS month_first,
               unnest($month_lasts::DATE[]) AS month_last
    ),
    units AS (
        SELECT months.period, lvl.unit_level,
               CASE lvl.unit_level WHEN 'puskesmas_network' THEN f.kode_faskes
                    WHEN 'kecamatan' THEN f.kode_kec ELSE f.kode_kabkota END AS unit_code,
               any_value(f.kode_kabkota) AS kode_kabkota
        FROM reference.facility f
        CROSS JOIN (SELECT unnest(['puskesmas_network', 'kecamatan', 'kabkota'])
                    AS unit_level) lvl
        JOIN months ON (f.tanggal_buka IS NULL OR f.tanggal_buka <= months.month_last)
                   AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= months.month_first)
        WHERE f.jenis_faskes = 'puskesmas'
        GROUP BY ALL
        HAVING unit_code IS NOT NULL
    ),
    period_types AS (SELECT unnest(['month', 'ytd']) AS period_type),
    stored AS MATERIALIZED (  -- filtered before the joins (else DuckDB joins all rows first)
        SELECT period, unit_level, unit_code, period_type, indicator_code, program, numerator,
               denominator, value, target, pws_target, attainment, above_100
        FROM indicators.indicator_value
        WHERE list_contains($periods::VARCHAR[], period)
          AND unit_level IN ('puskesmas_network', 'kecamatan', 'kabkota')
          AND list_contains($codes::VARCHAR[], indicator_code)  -- the others join nothing
    )
    SELECT u.unit_level, u.unit_code, u.kode_kabkota, u.period, pt.period_type,
           ki.indicator_code, ki.display_order,
           coalesce(stored.program, ki.program_guess) AS program,
           stored.numerator, stored.denominator, stored.value, stored.target,
           stored.pws_target, stored.attainment, stored.above_100,
           {meets_sql("stored.value", "coalesce(stored.pws_target, stored.target)",
                      "ki.direction")} AS meets_target
    FROM units u CROSS JOIN period_types pt CROSS JOIN key_indicators ki
    LEFT JOIN stored ON stored.period = u.period
                    AND stored.unit_level = u.unit_level AND stored.unit_code = u.unit_code
                    AND stored.period_type = pt.period_type
                    AND stored.indicator_code = ki.indicator_code
"""


def build_key_indicator(con: duckdb.DuckDBPyConnection, settings: Settings,
                        periods: Sequence[str]) -> int:
    """Write `evaluation.key_indicator` for `periods`: every configured key indicator × unit of
    the three levels × month/ytd, with NULL measures when the indicator is not computed."""
    codes = list(settings.config.evaluation.key_indicators)
    months = sorted(set(periods))
    params = {"codes": codes, "programs": [program_of(c) for c in codes],
              "directions": [labels.indicator_direction(c) for c in codes], "periods": months,
              "month_firsts": [month_start(p) for p in months],
              "month_lasts": [month_end(p) for p in months]}
    with Staging(con, STAGE) as stage:
        return _write(stage, "evaluation.key_indicator",
                      [(KEY_INDICATOR_SQL, params)] if months else [], periods)


# --- staged inputs of the scorecards ------------------------------------------------------------

def _rate_aggregates() -> list[str]:
    """Aggregates of `compliance.reporting_rate` (form 'semua') per unit × period type."""
    every = "jenis_faskes = 'semua'"
    cols = [f"max({m}) FILTER (WHERE {every}) AS {m}"
            for m in ("expected", "received", "on_time", "late", "missing", "pending")]
    cols += [f"100.0 * max(received) FILTER (WHERE {every}) "
             f"/ nullif(max(expected) FILTER (WHERE {every}), 0) AS completeness_pct",
             f"100.0 * max(on_time) FILTER (WHERE {every}) "
             f"/ nullif(max(expected) FILTER (WHERE {every}), 0) AS timeliness_pct"]
    # forwarding timeliness: did the network's reports reach the Dinkes by its due day
    cols += [f"max({m}) FILTER (WHERE {every}) AS {m}"
             for m in ("network_to_forward", "network_forwarded_on_time")]
    cols.append(f"100.0 * max(network_forwarded_on_time) FILTER (WHERE {every}) "
                f"/ nullif(max(network_to_forward) FILTER (WHERE {every}), 0) AS forwarding_pct")
    for jenis, prefix in JENIS_PREFIX.items():
        of_type = f"jenis_faskes = '{jenis}'"  # literal from the constant above, not data
        if prefix != "pkm":
            cols.append(f"coalesce(max(expected) FILTER (WHERE {of_type}), 0) AS {prefix}_expected")
        cols.append(f"100.0 * max(received) FILTER (WHERE {of_type}) "
                    f"/ nullif(max(expected) FILTER (WHERE {of_type}), 0) "
                    f"AS {prefix}_completeness_pct")
        cols.append(f"100.0 * max(on_time) FILTER (WHERE {of_type}) "
                    f"/ nullif(max(expected) FILTER (WHERE {of_type}), 0) "
                    f"AS {prefix}_timeliness_pct")
    return cols


def _check_codes(wide: Sequence[str]) -> None:
    for code in wide:  # codes come from config: refuse anything that is not a plain code
        if not code.replace("_", "").isalnum():
            raise ValueError(
                f"kolab.yaml evaluation.key_indicators: {code!r} is not an indicator code")


# The rows of the run's periods and levels (named parameters $periods, $levels).
_SELECTED = ("list_contains($periods::VARCHAR[], period) "
             "AND list_contains($levels::VARCHAR[], unit_level)")

# One rejected raw row (not one rule hit) with the facility whose file carried it: its own code
# (exact or an unambiguous alias), else the facility with most kept rows in the same file, else its
# name (an unambiguous alias); its period, else the file's most frequent one. So a typo'd code is
# counted for the puskesmas network that sent the file, not dropped.
QUARANTINE_BY_FILE = f"""
    WITH rejected AS (
        SELECT q.raw_row_id, any_value(q.file_id) AS file_id, any_value(q.period) AS period,
               any_value(q.kode_faskes) AS kode_written, any_value(r.nama_faskes) AS nama_written
        FROM clean.quarantine q LEFT JOIN raw.submission_row r ON r.raw_row_id = q.raw_row_id
        WHERE q.raw_row_id IS NOT NULL GROUP BY q.raw_row_id
    ), alias AS (
        SELECT alias_norm, min(kode_faskes) AS kode_faskes
        FROM reference.facility_alias GROUP BY ALL HAVING count(DISTINCT kode_faskes) = 1
    ), file_main AS (
        SELECT s.file_id, arg_max(s.kode_faskes, (s.n, s.kode_faskes)) AS kode_faskes,
               arg_max(s.period, (s.n_period, s.period)) AS period
        FROM (SELECT file_id, kode_faskes, period,
                     count(*) OVER (PARTITION BY file_id, kode_faskes) AS n,
                     count(*) OVER (PARTITION BY file_id, period) AS n_period
              FROM clean.submission
              WHERE file_id IN (SELECT file_id FROM clean.quarantine)) s
        GROUP BY s.file_id
    )
    SELECT coalesce(own.kode_faskes, code_alias.kode_faskes, file_main.kode_faskes,
                    name_alias.kode_faskes) AS kode_faskes,
           coalesce(rejected.period, file_main.period) AS period
    FROM rejected
    LEFT JOIN reference.facility own ON own.kode_faskes = rejected.kode_written
    LEFT JOIN alias code_alias ON code_alias.alias_norm = {norm_sql('rejected.kode_written')}
    LEFT JOIN file_main ON file_main.file_id = rejected.file_id
    LEFT JOIN alias name_alias ON name_alias.alias_norm = {norm_sql('rejected.nama_written')}
"""

# Validation flags, quarantined rows and DQ flags per unit of one level × month, for the months
# $year_first..$period_last. Quarantined rows resolve their facility by exact code, else by an
# unambiguous alias; rows with no facility cannot be attributed and are not counted.
COUNTS_SQL = """
    WITH fac AS (SELECT kode_faskes, {unit_column} AS unit_code FROM reference.facility),
    -- an alias that points at two facilities is ambiguous: not used
    alias AS (
        SELECT alias_norm, min(kode_faskes) AS kode_faskes
        FROM reference.facility_alias GROUP BY ALL HAVING count(DISTINCT kode_faskes) = 1
    ),
    quarantine_resolved AS (
        SELECT q.period, coalesce(f.kode_faskes, a.kode_faskes) AS kode_faskes
        FROM clean.quarantine q
        LEFT JOIN reference.facility f ON f.kode_faskes = q.kode_faskes
        LEFT JOIN alias a
               ON a.alias_norm = upper(regexp_replace(q.kode_faskes, '[^A-Za-z0-9]', '', 'g'))
        WHERE q.period BETWEEN $year_first AND $period_last AND q.kode_faskes IS NOT NULL
    )
    SELECT $unit_level AS unit_level, unit_code, period, 'validation_flag' AS what,
           count(*) AS n
    FROM clean.validation_flag JOIN fac USING (kode_faskes)
    WHERE period BETWEEN $year_first AND $period_last GROUP BY ALL
    UNION ALL
    SELECT $unit_level AS unit_level, fac.unit_code, q.period, 'quarantine' AS what,
           count(*) AS n
    FROM quarantine_resolved q JOIN fac USING (kode_faskes)
    GROUP BY ALL
    UNION ALL
    SELECT $unit_level AS unit_level, fac.unit_code, q.period, 'quarantine_file' AS what,
           count(*) AS n
    FROM ({QUARANTINE_BY_FILE}) q JOIN fac USING (kode_faskes)
    WHERE q.period BETWEEN $year_first AND $period_last
    GROUP BY ALL
    UNION ALL
    SELECT $unit_level AS unit_level,
           coalesce(fac.unit_code, CASE WHEN d.unit_level = $unit_level THEN d.unit_code END)
           AS unit_code, d.period, 'dq_flag' AS what,
           count(DISTINCT (d.unit_level, d.unit_code, d.subject)) AS n  -- a value once
    FROM indicators.dq_flag d
    LEFT JOIN fac ON d.unit_level = 'facility' AND fac.kode_faskes = d.unit_code
    WHERE d.period BETWEEN $year_first AND $period_last
      AND (d.unit_level = 'facility' OR d.unit_level = $unit_level)
    GROUP BY ALL
"""


def _stage_inputs(stage: Staging, levels: Sequence[Level], wide: Sequence[str],
                  periods: Sequence[str]) -> None:
    """Aggregate the big inputs once for every period and level of a build (one scan each of
    `compliance.reporting_rate`, `indicators.indicator_value`, `indicators.network_contribution`
    instead of one per month and level; the same groups, so the same numbers):

    - `_eval_rates`, `_eval_indicators`, `_eval_contribution`: unit_level × unit_code × period ×
      period type;
    - `_eval_counts`: validation flags / quarantined rows / DQ flags per unit_level × unit_code
      × month × kind, for January of the first year .. the last period (year-to-date ranges)."""
    _check_codes(wide)
    ind_cols = []
    for code in wide:
        col = ident(code.lower())
        ind_cols.append(f"max(value) FILTER (WHERE indicator_code = '{code}') AS {col}_value")
        ind_cols.append(
            f"max(attainment) FILTER (WHERE indicator_code = '{code}') AS {col}_attainment")
    share_cols = [
        f"100.0 * sum(volume) FILTER (WHERE program = '{prog}' AND jenis_faskes <> 'puskesmas') "
        f"/ nullif(sum(volume) FILTER (WHERE program = '{prog}'), 0) AS {col}"
        for prog, col in SHARE_COLUMNS.items()
    ]
    params = {"periods": list(periods), "levels": [lv.unit_level for lv in levels],
              "wide": list(wide)}
    stage.create("rates", f"""
        SELECT unit_level, unit_code, period, period_type, {", ".join(_rate_aggregates())}
        FROM compliance.reporting_rate
        WHERE {_SELECTED} AND form = 'semua'
        GROUP BY ALL""", params)
    # only the rows of the wide indicators: any other row adds nothing to the pivot
    stage.create("indicators", f"""
        SELECT unit_level, unit_code, period, period_type{"".join(", " + c for c in ind_cols)}
        FROM indicators.indicator_value
        WHERE {_SELECTED} AND list_contains($wide::VARCHAR[], indicator_code)
        GROUP BY ALL""", params)
    stage.create("contribution", f"""
        SELECT unit_level, unit_code, period, period_type,
               100.0 * sum(volume) FILTER (WHERE jenis_faskes <> 'puskesmas')
                     / nullif(sum(volume), 0) AS network_share_pct,
               {", ".join(share_cols)}
        FROM indicators.network_contribution
        WHERE {_SELECTED}
        GROUP BY ALL""", params)
    counts = stage.create("counts", "SELECT NULL::VARCHAR AS unit_level, "
                          "NULL::VARCHAR AS unit_code, NULL::VARCHAR AS period, "
                          "NULL::VARCHAR AS what, NULL::BIGINT AS n LIMIT 0")
    first_year, last = year_start(min(periods)), max(periods)
    for level in levels:
        sql = COUNTS_SQL.format(unit_column=ident(level.facility_column),
                                QUARANTINE_BY_FILE=QUARANTINE_BY_FILE)
        stage.con.execute(f"INSERT INTO {counts} {sql}", {
            "unit_level": level.unit_level, "year_first": first_year, "period_last": last})


# --- scorecards ----------------------------------------------------------------------------------

# Every shared measure for the units of one level and one month (both period types). Expects a
# CTE `units(unit_code, ...)` before it, the staged inputs, and the named parameters $period,
# $year_first, $unit_level, $target_completeness, $target_timeliness.
MEASURES_SQL = """
    period_types AS (SELECT unnest(['month', 'ytd']) AS period_type),
    rates AS (SELECT * EXCLUDE (unit_level, period) FROM _eval_rates {staged}),
    key_values AS (SELECT * EXCLUDE (unit_level, period) FROM _eval_indicators {staged}),
    contribution AS (SELECT * EXCLUDE (unit_level, period) FROM _eval_contribution {staged}),
    counts AS (
        SELECT unit_code, pt.period_type,
               coalesce(sum(n) FILTER (WHERE what = 'validation_flag'), 0) AS n_validation_flags,
               coalesce(sum(n) FILTER (WHERE what = 'quarantine'), 0) AS n_quarantined_rows,
               coalesce(sum(n) FILTER (WHERE what = 'quarantine_file'), 0)
                   AS n_quarantined_file_rows,
               coalesce(sum(n) FILTER (WHERE what = 'dq_flag'), 0) AS n_dq_flags
        FROM _eval_counts CROSS JOIN period_types pt
        WHERE unit_level = $unit_level AND period BETWEEN $year_first AND $period
          AND (pt.period_type = 'ytd' OR period = $period)
        GROUP BY ALL
    ),
    followups AS (
        SELECT f.{unit_column} AS unit_code, count(*) AS n_followup
        FROM evaluation.followup fu JOIN reference.facility f
          ON f.kode_faskes = fu.kode_puskesmas_induk
        WHERE fu.as_of_period = $period
        GROUP BY ALL
    ),
    measures AS (
        SELECT u.unit_code, $period AS period, pt.period_type,
               rates.* EXCLUDE (unit_code, period_type),
               {meets_completeness} AS meets_completeness,
               {meets_timeliness} AS meets_timeliness,
               coalesce(followups.n_followup, 0) AS n_followup,
               key_values.* EXCLUDE (unit_code, period_type),
               contribution.* EXCLUDE (unit_code, period_type),
               coalesce(counts.n_validation_flags, 0) AS n_validation_flags,
               coalesce(counts.n_quarantined_rows, 0) AS n_quarantined_rows,
               coalesce(counts.n_quarantined_file_rows, 0) AS n_quarantined_file_rows,
               coalesce(counts.n_dq_flags, 0) AS n_dq_flags
        FROM units u CROSS JOIN period_types pt
        LEFT JOIN rates
               ON rates.unit_code = u.unit_code AND rates.period_type = pt.period_type
        LEFT JOIN key_values
               ON key_values.unit_code = u.unit_code AND key_values.period_type = pt.period_type
        LEFT JOIN contribution
               ON contribution.unit_code = u.unit_code
              AND contribution.period_type = pt.period_type
        LEFT JOIN counts
               ON counts.unit_code = u.unit_code AND counts.period_type = pt.period_type
        LEFT JOIN followups ON followups.unit_code = u.unit_code
    )
"""

# Puskesmas open at some time in the month: the networks of the scorecard.
NETWORK_SQL = """
    WITH units AS (
        SELECT kode_faskes AS unit_code, nama_faskes AS nama_puskesmas, kode_kec, kode_kabkota
        FROM reference.facility
        WHERE jenis_faskes = 'puskesmas'
          AND (tanggal_buka IS NULL OR tanggal_buka <= $month_last)
          AND (tanggal_tutup IS NULL OR tanggal_tutup >= $month_first)
    ),
    {measures}
    SELECT u.unit_code AS kode_jejaring, u.nama_puskesmas, u.kode_kec, u.kode_kabkota,
           m.* EXCLUDE (unit_code)
    FROM units u JOIN measures m USING (unit_code)
"""

# Kecamatan / kab/kota holding a puskesmas open at some time in the month.
WILAYAH_SQL = """
    WITH units AS (
        SELECT f.{unit_column} AS unit_code, any_value(w.nama) AS nama_unit,
               any_value(f.kode_kabkota) AS kode_kabkota, count(*) AS n_puskesmas
        FROM reference.facility f
        LEFT JOIN reference.wilayah w ON w.kode = f.{unit_column}
        WHERE f.jenis_faskes = 'puskesmas' AND f.{unit_column} IS NOT NULL
          AND (f.tanggal_buka IS NULL OR f.tanggal_buka <= $month_last)
          AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= $month_first)
        GROUP BY ALL
    ),
    {measures}
    SELECT $unit_level AS unit_level, u.unit_code, u.nama_unit, u.kode_kabkota, u.n_puskesmas,
           m.* EXCLUDE (unit_code)
    FROM units u JOIN measures m USING (unit_code)
"""


def _measures_sql(level: Level, wide: Sequence[str]) -> str:
    _check_codes(wide)
    return MEASURES_SQL.format(staged="WHERE unit_level = $unit_level AND period = $period",
                               unit_column=ident(level.facility_column),
                               meets_completeness=meets_sql("rates.completeness_pct",
                                                            "$target_completeness"),
                               meets_timeliness=meets_sql("rates.timeliness_pct",
                                                          "$target_timeliness"))


def _level_params(settings: Settings, level: Level, period: str) -> dict[str, object]:
    th = settings.config.thresholds
    return {"period": period, "year_first": year_start(period),
            "month_first": month_start(period), "month_last": month_end(period),
            "unit_level": level.unit_level, "target_completeness": th.completeness_pct,
            "target_timeliness": th.timeliness_pct}


def _network_sql(wide: Sequence[str]) -> str:
    return NETWORK_SQL.format(measures=_measures_sql(NETWORK, wide))


def _wilayah_sql(level: Level, wide: Sequence[str]) -> str:
    return WILAYAH_SQL.format(measures=_measures_sql(level, wide),
                              unit_column=ident(level.facility_column))


def _write(stage: Staging, key: str, queries: list[tuple[str, dict]],
           periods: Sequence[str]) -> int:
    """Run each (sql, params) into the staged output rows, then replace the periods in one
    transaction."""
    t = table(key)
    rows = stage.create("rows", f"SELECT * FROM {t.qualified} LIMIT 0")
    for sql, params in queries:
        insert = f"INSERT INTO {rows} BY NAME SELECT * FROM ({sql}) s"
        stage.con.execute(insert, bind(insert, params))
    return replace_rows(stage.con, key, f"SELECT {', '.join(t.column_names)} FROM {rows}",
                        "list_contains($periods::VARCHAR[], period)",
                        {"periods": list(periods)})


def _build(con: duckdb.DuckDBPyConnection, key: str, levels: Sequence[Level],
           queries: list[tuple[str, dict]], wide: Sequence[str], periods: Sequence[str]) -> int:
    with Staging(con, STAGE) as stage:
        if periods:
            _stage_inputs(stage, levels, wide, periods)
        return _write(stage, key, queries, periods)


def build_scorecard(con: duckdb.DuckDBPyConnection, settings: Settings,
                    periods: Sequence[str]) -> int:
    """Write `evaluation.scorecard` (puskesmas network × period × month/ytd) for `periods`.

    Returns the rows written. Idempotent: the periods are replaced in one transaction."""
    wide = wide_indicator_columns(NETWORK.key, settings.config.evaluation.key_indicators)
    sql = _network_sql(wide)
    queries = [(sql, _level_params(settings, NETWORK, p)) for p in periods]
    return _build(con, NETWORK.key, [NETWORK], queries, wide, periods)


def build_wilayah_scorecard(con: duckdb.DuckDBPyConnection, settings: Settings,
                            periods: Sequence[str]) -> int:
    """Write `evaluation.wilayah_scorecard` (kecamatan and kab/kota × period × month/ytd)."""
    key = KECAMATAN.key
    wide = wide_indicator_columns(key, settings.config.evaluation.key_indicators)
    queries = [(_wilayah_sql(level, wide), _level_params(settings, level, p))
               for p in periods for level in (KECAMATAN, KABKOTA)]
    return _build(con, key, [KECAMATAN, KABKOTA], queries, wide, periods)


def build_all(con: duckdb.DuckDBPyConnection, settings: Settings,
              periods: Sequence[str]) -> dict[str, int]:
    """The three scorecard tables for `periods` (rows written per table); `evaluation.followup`
    is read, not built (`followup.build_followup`, after the compliance layer)."""
    return {
        "evaluation.key_indicator": build_key_indicator(con, settings, periods),
        "evaluation.scorecard": build_scorecard(con, settings, periods),
        "evaluation.wilayah_scorecard": build_wilayah_scorecard(con, settings, periods),
    }
