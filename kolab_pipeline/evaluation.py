"""Evaluation scorecards: one row per puskesmas network (and per kecamatan / kab/kota) × month and
year-to-date, combining reporting compliance, key indicators vs target, network contribution and
data-quality counts — the table the Dinkes evaluation meeting (rapat evaluasi) reads.

Tables written (grain in `catalog/tables.yaml`):

- `evaluation.key_indicator` — unit × period × period type × key indicator (long form).
- `evaluation.scorecard` — puskesmas network × period × period type (wide).
- `evaluation.wilayah_scorecard` — kecamatan / kab/kota × period × period type (wide).

Rules and why:

- Compliance counts are **read** from `compliance.reporting_rate` (never re-derived from report
  status) so the scorecard agrees with the compliance tables: `jenis_faskes='semua'`,
  `form='semua'` for the unit, and the `puskesmas` / `klinik_pratama` / `tpmd` rows for the split.
  Percentages are the ratio of those sums (kelengkapan = received ÷ expected × 100, ketepatan =
  on time ÷ expected × 100; DHIS2 / WHO DQR definition, data_quality_anchors.md §1), NULL when
  nothing was expected — a network without clinics has no clinic rate, not 0 %.
- Key indicators come from `kolab.yaml` `evaluation.key_indicators` (data, not code). An indicator
  that the indicator layer has not computed yet gives NULL, never 0 — a missing number must not
  look like a bad one.
- Counts of validation flags, quarantined rows and DQ flags are attributed to a unit through
  `reference.facility`; quarantined rows resolve their `kode_faskes` by exact code first, then
  through `reference.facility_alias` (codes are often mistyped). Rows with no resolvable facility
  or no parseable period cannot be attributed and are not counted here (they stay in
  `clean.quarantine`, and the report shows the kab/kota total).
- Year-to-date rows sum the months January..period of the same year.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from kolab_pipeline.calendar import month_end, month_start, year_start
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import ident, replace_rows, table

# Program of an indicator when the indicator layer has no row for it yet (code prefix).
PROGRAM_BY_PREFIX = {"TB": "TB", "PTM": "PTM", "KIA": "KIA", "IMUN": "Imunisasi"}
# Programs of indicators.network_contribution → scorecard share columns.
SHARE_COLUMNS = {"TB": "share_tb_pct", "PTM": "share_ptm_pct", "KIA": "share_kia_pct",
                 "Imunisasi": "share_imun_pct"}
# jenis_faskes split of compliance.reporting_rate → column prefix.
JENIS_PREFIX = {"puskesmas": "pkm", "klinik_pratama": "klinik", "tpmd": "tpmd"}


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

def build_key_indicator(con: duckdb.DuckDBPyConnection, settings: Settings,
                        periods: Sequence[str]) -> int:
    """Write `evaluation.key_indicator` for `periods`: every configured key indicator × unit of
    the three levels × month/ytd, with NULL measures when the indicator is not computed.

    Units come from the registry (puskesmas open at some time in the month, and the kecamatan /
    kab/kota holding one), so a network whose indicator is missing still gets its row.

    One query for all `periods` (a month table joined to the registry), so
    `indicators.indicator_value` is scanned once, not once per month."""
    codes = list(settings.config.evaluation.key_indicators)
    sql = """
        WITH ki AS (
            SELECT unnest($codes::VARCHAR[]) AS indicator_code,
                   unnest($programs::VARCHAR[]) AS program_guess,
                   unnest(range(1, len($codes::VARCHAR[]) + 1))::INTEGER AS display_order
        ),
        per AS (
            SELECT unnest($ps::VARCHAR[]) AS period, unnest($mss::DATE[]) AS ms,
                   unnest($mes::DATE[]) AS me
        ),
        units AS (
            SELECT per.period, lvl.unit_level,
                   CASE lvl.unit_level WHEN 'puskesmas_network' THEN f.kode_faskes
                        WHEN 'kecamatan' THEN f.kode_kec ELSE f.kode_kabkota END AS unit_code,
                   any_value(f.kode_kabkota) AS kode_kabkota
            FROM reference.facility f
            CROSS JOIN (SELECT unnest(['puskesmas_network', 'kecamatan', 'kabkota']) AS unit_level) lvl
            JOIN per ON (f.tanggal_buka IS NULL OR f.tanggal_buka <= per.me)
                    AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= per.ms)
            WHERE f.jenis_faskes = 'puskesmas'
            GROUP BY ALL
            HAVING unit_code IS NOT NULL
        ),
        pt AS (SELECT unnest(['month', 'ytd']) AS period_type),
        iv AS MATERIALIZED (  -- filtered before the joins (else DuckDB joins all rows first)
            SELECT period, unit_level, unit_code, period_type, indicator_code, program, numerator,
                   denominator, value, target, pws_target, attainment, above_100
            FROM indicators.indicator_value
            WHERE list_contains($ps::VARCHAR[], period)
              AND unit_level IN ('puskesmas_network', 'kecamatan', 'kabkota')
              AND list_contains($codes::VARCHAR[], indicator_code)  -- the others join nothing
        )
        SELECT u.unit_level, u.unit_code, u.kode_kabkota, u.period, pt.period_type,
               ki.indicator_code, ki.display_order,
               coalesce(iv.program, ki.program_guess) AS program,
               iv.numerator, iv.denominator, iv.value, iv.target, iv.pws_target, iv.attainment,
               iv.above_100,
               CASE WHEN iv.attainment IS NULL THEN NULL ELSE iv.attainment >= 100 END AS meets_target
        FROM units u CROSS JOIN pt CROSS JOIN ki
        LEFT JOIN iv ON iv.period = u.period
                    AND iv.unit_level = u.unit_level AND iv.unit_code = u.unit_code
                    AND iv.period_type = pt.period_type AND iv.indicator_code = ki.indicator_code
    """
    ps = sorted(set(periods))
    queries = [(sql, {"codes": codes, "programs": [program_of(c) for c in codes], "ps": ps,
                      "mss": [month_start(p) for p in ps], "mes": [month_end(p) for p in ps]})]
    return _write(con, "evaluation.key_indicator", queries if ps else [], periods)


# --- scorecards --------------------------------------------------------------------------------

def _rate_aggregates() -> list[str]:
    """Aggregates of `compliance.reporting_rate` (form 'semua') per unit × period type."""
    cols = [f"max({m}) FILTER (WHERE jenis_faskes = 'semua') AS {m}"
            for m in ("expected", "received", "on_time", "late", "missing", "pending")]
    cols += ["100.0 * max(received) FILTER (WHERE jenis_faskes = 'semua') "
             "/ nullif(max(expected) FILTER (WHERE jenis_faskes = 'semua'), 0) AS completeness_pct",
             "100.0 * max(on_time) FILTER (WHERE jenis_faskes = 'semua') "
             "/ nullif(max(expected) FILTER (WHERE jenis_faskes = 'semua'), 0) AS timeliness_pct"]
    for jenis, prefix in JENIS_PREFIX.items():
        jf = f"jenis_faskes = '{jenis}'"  # literal from the constant above, not data
        if prefix != "pkm":
            cols.append(f"coalesce(max(expected) FILTER (WHERE {jf}), 0) AS {prefix}_expected")
        cols.append(f"100.0 * max(received) FILTER (WHERE {jf}) "
                    f"/ nullif(max(expected) FILTER (WHERE {jf}), 0) AS {prefix}_completeness_pct")
        cols.append(f"100.0 * max(on_time) FILTER (WHERE {jf}) "
                    f"/ nullif(max(expected) FILTER (WHERE {jf}), 0) AS {prefix}_timeliness_pct")
    return cols


def _check_codes(wide: Sequence[str]) -> None:
    for code in wide:  # codes come from config: refuse anything that is not a plain code
        if not code.replace("_", "").isalnum():
            raise ValueError(f"kolab.yaml evaluation.key_indicators: {code!r} is not an indicator code")


def _stage_inputs(con: duckdb.DuckDBPyConnection, levels: Sequence[Level], wide: Sequence[str],
                  periods: Sequence[str]) -> None:
    """Aggregate the big inputs once for every period and level of a build, into temp tables the
    per-month queries of `_measures_sql` read (one scan of `compliance.reporting_rate` /
    `indicators.indicator_value` / `indicators.network_contribution` instead of one per month and
    level; the month-by-month aggregates are the same groups, so the same numbers):

    - `_eval_rr`, `_eval_iv`, `_eval_nc`: unit_level × unit_code × period × period type;
    - `_eval_mc`: validation flags / quarantined rows / DQ flags per unit_level × unit_code ×
      month × kind, for the months Jan of the first year .. last period (year-to-date ranges)."""
    _check_codes(wide)
    lvls = [lv.unit_level for lv in levels]
    ind_cols = []
    for code in wide:
        c = ident(code.lower())
        ind_cols.append(f"max(value) FILTER (WHERE indicator_code = '{code}') AS {c}_value")
        ind_cols.append(f"max(attainment) FILTER (WHERE indicator_code = '{code}') AS {c}_attainment")
    share_cols = [
        f"100.0 * sum(volume) FILTER (WHERE program = '{prog}' AND jenis_faskes <> 'puskesmas') "
        f"/ nullif(sum(volume) FILTER (WHERE program = '{prog}'), 0) AS {col}"
        for prog, col in SHARE_COLUMNS.items()
    ]
    sel = "list_contains($periods::VARCHAR[], period) AND list_contains($lvls::VARCHAR[], unit_level)"
    params = {"periods": list(periods), "lvls": lvls}
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _eval_rr AS
        SELECT unit_level, unit_code, period, period_type, {", ".join(_rate_aggregates())}
        FROM compliance.reporting_rate
        WHERE {sel} AND form = 'semua'
        GROUP BY ALL""", params)
    # only the rows of the wide indicators: any other row adds nothing to the pivot
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _eval_iv AS
        SELECT unit_level, unit_code, period, period_type{"".join(", " + c for c in ind_cols)}
        FROM indicators.indicator_value
        WHERE {sel} AND list_contains($wide::VARCHAR[], indicator_code)
        GROUP BY ALL""", {**params, "wide": list(wide)})
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _eval_nc AS
        SELECT unit_level, unit_code, period, period_type,
               100.0 * sum(volume) FILTER (WHERE jenis_faskes <> 'puskesmas')
                     / nullif(sum(volume), 0) AS network_share_pct,
               {", ".join(share_cols)}
        FROM indicators.network_contribution
        WHERE {sel}
        GROUP BY ALL""", params)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _eval_mc (unit_level VARCHAR, unit_code VARCHAR,
                                               period VARCHAR, what VARCHAR, n BIGINT)""")
    ys, p_last = year_start(min(periods)), max(periods)
    for level in levels:
        fcol = ident(level.facility_column)
        con.execute(f"""
            INSERT INTO _eval_mc
            WITH fac AS (SELECT kode_faskes, {fcol} AS unit_code FROM reference.facility),
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
                WHERE q.period BETWEEN $ys AND $p AND q.kode_faskes IS NOT NULL
            )
            SELECT $lvl AS unit_level, unit_code, period, 'vf' AS what, count(*) AS n
            FROM clean.validation_flag JOIN fac USING (kode_faskes)
            WHERE period BETWEEN $ys AND $p GROUP BY ALL
            UNION ALL
            SELECT $lvl AS unit_level, fac.unit_code, q.period, 'q' AS what, count(*) AS n
            FROM quarantine_resolved q JOIN fac USING (kode_faskes)
            GROUP BY ALL
            UNION ALL
            SELECT $lvl AS unit_level,
                   coalesce(fac.unit_code, CASE WHEN d.unit_level = $lvl THEN d.unit_code END)
                   AS unit_code, d.period, 'dq' AS what, count(*) AS n
            FROM indicators.dq_flag d
            LEFT JOIN fac ON d.unit_level = 'facility' AND fac.kode_faskes = d.unit_code
            WHERE d.period BETWEEN $ys AND $p AND (d.unit_level = 'facility' OR d.unit_level = $lvl)
            GROUP BY ALL""", {"lvl": level.unit_level, "ys": ys, "p": p_last})


def _drop_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for t in ("_eval_rr", "_eval_iv", "_eval_nc", "_eval_mc"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _measures_sql(level: Level, wide: Sequence[str]) -> str:
    """SELECT of every shared measure for the units of one level and one month (both period
    types). Expects a CTE `units(unit_code, ...)` in scope, the temp tables of `_stage_inputs`
    (for this level, with `wide`, and the month) and named params $p, $ys, $ms, $me, $lvl, $tc,
    $tt."""
    fcol = ident(level.facility_column)
    _check_codes(wide)
    staged = "WHERE unit_level = $lvl AND period = $p"
    return f"""
        pt AS (SELECT unnest(['month', 'ytd']) AS period_type),
        rr AS (SELECT * EXCLUDE (unit_level, period) FROM _eval_rr {staged}),
        iv AS (SELECT * EXCLUDE (unit_level, period) FROM _eval_iv {staged}),
        nc AS (SELECT * EXCLUDE (unit_level, period) FROM _eval_nc {staged}),
        counts AS (
            SELECT unit_code, pt.period_type,
                   coalesce(sum(n) FILTER (WHERE what = 'vf'), 0) AS n_validation_flags,
                   coalesce(sum(n) FILTER (WHERE what = 'q'), 0) AS n_quarantined_rows,
                   coalesce(sum(n) FILTER (WHERE what = 'dq'), 0) AS n_dq_flags
            FROM _eval_mc CROSS JOIN pt
            WHERE unit_level = $lvl AND period BETWEEN $ys AND $p
              AND (pt.period_type = 'ytd' OR period = $p)
            GROUP BY ALL
        ),
        fu AS (
            SELECT f.{fcol} AS unit_code, count(*) AS n_followup
            FROM evaluation.followup fu JOIN reference.facility f
              ON f.kode_faskes = fu.kode_puskesmas_induk
            WHERE fu.as_of_period = $p
            GROUP BY ALL
        ),
        measures AS (
            SELECT u.unit_code, $p AS period, pt.period_type,
                   rr.* EXCLUDE (unit_code, period_type),
                   CASE WHEN rr.completeness_pct IS NULL THEN NULL
                        ELSE rr.completeness_pct >= $tc END AS meets_completeness,
                   CASE WHEN rr.timeliness_pct IS NULL THEN NULL
                        ELSE rr.timeliness_pct >= $tt END AS meets_timeliness,
                   coalesce(fu.n_followup, 0) AS n_followup,
                   iv.* EXCLUDE (unit_code, period_type),
                   nc.* EXCLUDE (unit_code, period_type),
                   coalesce(counts.n_validation_flags, 0) AS n_validation_flags,
                   coalesce(counts.n_quarantined_rows, 0) AS n_quarantined_rows,
                   coalesce(counts.n_dq_flags, 0) AS n_dq_flags
            FROM units u CROSS JOIN pt
            LEFT JOIN rr ON rr.unit_code = u.unit_code AND rr.period_type = pt.period_type
            LEFT JOIN iv ON iv.unit_code = u.unit_code AND iv.period_type = pt.period_type
            LEFT JOIN nc ON nc.unit_code = u.unit_code AND nc.period_type = pt.period_type
            LEFT JOIN counts ON counts.unit_code = u.unit_code AND counts.period_type = pt.period_type
            LEFT JOIN fu ON fu.unit_code = u.unit_code
        )
    """


def _level_params(settings: Settings, level: Level, period: str) -> dict[str, object]:
    th = settings.config.thresholds
    return {"p": period, "ys": year_start(period), "ms": month_start(period),
            "me": month_end(period), "lvl": level.unit_level,
            "tc": th.completeness_pct, "tt": th.timeliness_pct}


def _network_sql(wide: Sequence[str]) -> str:
    return f"""
        WITH units AS (
            SELECT kode_faskes AS unit_code, nama_faskes AS nama_puskesmas, kode_kec, kode_kabkota
            FROM reference.facility
            WHERE jenis_faskes = 'puskesmas'
              AND (tanggal_buka IS NULL OR tanggal_buka <= $me)
              AND (tanggal_tutup IS NULL OR tanggal_tutup >= $ms)
        ),
        {_measures_sql(NETWORK, wide)}
        SELECT u.unit_code AS kode_jejaring, u.nama_puskesmas, u.kode_kec, u.kode_kabkota,
               m.* EXCLUDE (unit_code)
        FROM units u JOIN measures m USING (unit_code)
    """


def _wilayah_sql(level: Level, wide: Sequence[str]) -> str:
    fcol = ident(level.facility_column)
    return f"""
        WITH units AS (
            SELECT f.{fcol} AS unit_code, any_value(w.nama) AS nama_unit,
                   any_value(f.kode_kabkota) AS kode_kabkota, count(*) AS n_puskesmas
            FROM reference.facility f
            LEFT JOIN reference.wilayah w ON w.kode = f.{fcol}
            WHERE f.jenis_faskes = 'puskesmas' AND f.{fcol} IS NOT NULL
              AND (f.tanggal_buka IS NULL OR f.tanggal_buka <= $me)
              AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= $ms)
            GROUP BY ALL
        ),
        {_measures_sql(level, wide)}
        SELECT $lvl AS unit_level, u.unit_code, u.nama_unit, u.kode_kabkota, u.n_puskesmas,
               m.* EXCLUDE (unit_code)
        FROM units u JOIN measures m USING (unit_code)
    """


def _write(con: duckdb.DuckDBPyConnection, key: str, queries: list[tuple[str, dict]],
           periods: Sequence[str]) -> int:
    """Run each (sql, params) into a staging table, then replace the periods in one transaction."""
    cols = ", ".join(table(key).column_names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _eval_stage AS SELECT * FROM {table(key).qualified} LIMIT 0")
    for sql, params in queries:
        con.execute(f"INSERT INTO _eval_stage BY NAME SELECT * FROM ({sql}) s", params)
    n = replace_rows(con, key, f"SELECT {cols} FROM _eval_stage",
                     "list_contains(?::VARCHAR[], period)", [list(periods)])
    con.execute("DROP TABLE IF EXISTS _eval_stage")
    return n


def build_scorecard(con: duckdb.DuckDBPyConnection, settings: Settings,
                    periods: Sequence[str]) -> int:
    """Write `evaluation.scorecard` (puskesmas network × period × month/ytd) for `periods`.

    Returns the rows written. Idempotent: the periods are replaced in one transaction."""
    wide = wide_indicator_columns(NETWORK.key, settings.config.evaluation.key_indicators)
    sql = _network_sql(wide)
    if not periods:
        return _write(con, NETWORK.key, [], periods)
    _stage_inputs(con, [NETWORK], wide, periods)
    try:
        return _write(con, NETWORK.key,
                      [(sql, _level_params(settings, NETWORK, p)) for p in periods], periods)
    finally:
        _drop_inputs(con)


def build_wilayah_scorecard(con: duckdb.DuckDBPyConnection, settings: Settings,
                            periods: Sequence[str]) -> int:
    """Write `evaluation.wilayah_scorecard` (kecamatan and kab/kota × period × month/ytd)."""
    key = KECAMATAN.key
    wide = wide_indicator_columns(key, settings.config.evaluation.key_indicators)
    queries = [(_wilayah_sql(level, wide), _level_params(settings, level, p))
               for p in periods for level in (KECAMATAN, KABKOTA)]
    if not periods:
        return _write(con, key, queries, periods)
    _stage_inputs(con, [KECAMATAN, KABKOTA], wide, periods)
    try:
        return _write(con, key, queries, periods)
    finally:
        _drop_inputs(con)


def build_all(con: duckdb.DuckDBPyConnection, settings: Settings,
              periods: Sequence[str]) -> dict[str, int]:
    """The three evaluation tables for `periods` (rows written per table)."""
    return {
        "evaluation.key_indicator": build_key_indicator(con, settings, periods),
        "evaluation.scorecard": build_scorecard(con, settings, periods),
        "evaluation.wilayah_scorecard": build_wilayah_scorecard(con, settings, periods),
    }
