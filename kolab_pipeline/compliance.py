"""Compliance layer: expected reports, report status (+ history), reporting rates, follow-up list.

Every function takes a DuckDB connection, the `Settings` and the months (`YYYY-MM`) to compute,
does its work in DuckDB SQL and writes with `warehouse.replace_rows(..., where=<those months>)`,
so re-running a month gives the same table (idempotent).

Pinned definitions (data_quality_anchors.md §1.1, §2.2; domain.md §3, §8.9; docs/SAMPLE_DATA.md):

* **Expected** (`compliance.expected_report`, grain facility × period × form). `reporting.expected_rule`:
  - `whole_period` (default, DHIS2 `RestrictionsSqlClause`): the facility is open for the whole
    month — `tanggal_buka` NULL or ≤ the 1st, `tanggal_tutup` NULL or ≥ the last day — and the form
    is assigned on every day of the month. A facility that opens on the 15th is first expected the
    next month; one that closes on the 30th of June is still expected for June.
  - `period_end` (domain.md §8.9): open on the last day of the month, and the form assigned on
    that day.
  Form assignments (`reference.form_assignment`, `valid_from` inclusive, `valid_to` exclusive,
  NULL = open) of one facility × form are merged into continuous spells first, so a change of
  induk on the 15th (two adjacent rows) does not make the form look unassigned that month. The
  induk of the month is the one of the assignment in force on its last day.
  Due date = day `reporting.due_day[reporting_level]` of month M+1; cut-off = last day of month
  M + `cutoff_months_after_period`; both are *local* dates of the facility's kab/kota
  (`reference.facility.timezone`, end of that day local time).

* **Status** (`compliance.report_status`) from the **first** valid version received by `as_of`
  (`settings.config.reporting.as_of_utc()`; later versions are resubmissions and do not change
  timeliness), its `received_at` converted to the kab/kota's local date with DuckDB ICU
  `timezone()`:
  - `on_time`: local received date ≤ due date + `grace_days` (nil reports are reports);
  - `late`: received after that; `received_after_cutoff` when after the cut-off date;
  - `missing`: nothing received and the cut-off has passed at `as_of` (local date of `as_of` in the
    facility's zone > cut-off date: the deadline is the end of the local day);
  - `pending`: nothing received, cut-off not passed; `overdue` when due date + grace has passed;
  - `unexpected`: a valid submission for a facility × month × form that is not expected — kept
    and labelled (never silently dropped), and not counted in completeness.
  Submissions received after `as_of` are ignored (the status is "as of" that moment).

* **Rates** (`compliance.reporting_rate`): DHIS2 `REPORTING_RATE` (completeness) and
  `REPORTING_RATE_ON_TIME` (timeliness), as ratios of summed counts over the unit's facilities,
  never a mean of percentages:
  completeness % = received ÷ expected × 100 with received = expected reports received
  (on_time + late); timeliness % = on_time ÷ expected × 100; NULL when expected = 0. Unlike DHIS2
  there is **no cap at 100 %**: unexpected arrivals are excluded from the numerator, so the rate
  cannot exceed 100 % and a cap would only hide errors.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from kolab_pipeline import calendar
from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import ensure_schema, replace_rows

STATUSES = ("on_time", "late", "missing", "pending", "unexpected")
UNIT_LEVELS = {  # unit_level → column of compliance.report_status holding the unit's code
    "facility": "kode_faskes",
    "puskesmas_network": "kode_jejaring",
    "kecamatan": "kode_kec",
    "kabkota": "kode_kabkota",
    "provinsi": "kode_prov",
}
PERIODS_WHERE = "period IN (SELECT period FROM _compliance_periods)"
RATE_COUNTS = ("expected", "received", "on_time", "late", "missing", "pending", "unexpected")

# Facility open / form assigned for a month, per `reporting.expected_rule` (code constants, never
# user text). `ms` = first day, `me` = last day of the month; assignment ends are exclusive.
_OPEN_RULE = {
    "whole_period": "(f.tanggal_buka IS NULL OR f.tanggal_buka <= p.ms) "
                    "AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= p.me)",
    "period_end": "(f.tanggal_buka IS NULL OR f.tanggal_buka <= p.me) "
                  "AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= p.me)",
}
_ASSIGNED_RULE = {
    "whole_period": "m.vf <= p.ms AND m.vt > p.me",
    "period_end": "m.vf <= p.me AND m.vt > p.me",
}


def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str],
             as_of: datetime | None = None) -> datetime:
    """Temp tables `_compliance_periods` (the months of this run) and `_compliance_params`
    (as_of, grace, due days, cut-off months, default zone), read by every query below."""
    ensure_schema(con)
    rep = settings.config.reporting
    as_of = as_of or rep.as_of_utc()
    con.execute("CREATE OR REPLACE TEMP TABLE _compliance_periods AS "
                "SELECT period, CAST(period || '-01' AS DATE) AS ms, "
                "last_day(CAST(period || '-01' AS DATE)) AS me "
                "FROM (SELECT unnest(?::VARCHAR[]) AS period)", [calendar.validate_periods(periods)])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _compliance_params AS SELECT ?::TIMESTAMPTZ AS as_of, "
        "?::INTEGER AS grace_days, ?::INTEGER AS due_network, ?::INTEGER AS due_pkm, "
        "?::INTEGER AS cutoff_months, ?::VARCHAR AS default_tz",
        [as_of, rep.grace_days, rep.due_day.network_to_pkm, rep.due_day.pkm_to_dinkes,
         rep.cutoff_months_after_period, settings.config.timezones.default],
    )
    return as_of


def _due_sql(ms: str, level: str) -> str:
    """Due date of the month starting at `ms` for reporting level `level` (calendar rule)."""
    return calendar.due_date_sql(ms, level, "prm.due_network", "prm.due_pkm")


def _cutoff_sql(ms: str) -> str:
    return calendar.cutoff_date_sql(ms, "prm.cutoff_months")


# --- expected reports -------------------------------------------------------------------------

def build_expected_reports(con: duckdb.DuckDBPyConnection, settings: Settings,
                           periods: list[str]) -> int:
    """Write `compliance.expected_report` (grain: facility × period × form) for `periods`.

    Rule (see module docstring): facility open per `reporting.expected_rule` and the form assigned
    over the same span, using the merged assignment spells of `reference.form_assignment`.
    Returns the number of expected reports written.
    """
    _prepare(con, settings, periods)
    rule = settings.config.reporting.expected_rule
    sql = f"""
        WITH fa AS (
            SELECT kode_faskes, form, kode_puskesmas_induk,
                   coalesce(valid_from, DATE '0001-01-01') AS vf,
                   coalesce(valid_to, DATE '9999-12-31') AS vt
              FROM reference.form_assignment
             WHERE valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from
        ), ordered AS (
            SELECT *, max(vt) OVER (PARTITION BY kode_faskes, form ORDER BY vf, vt
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
              FROM fa
        ), islands AS (
            -- a new spell starts when an interval begins after every earlier one ended
            SELECT *, sum(CASE WHEN prev_end IS NULL OR vf > prev_end THEN 1 ELSE 0 END)
                          OVER (PARTITION BY kode_faskes, form ORDER BY vf, vt ROWS UNBOUNDED PRECEDING) AS spell
              FROM ordered
        ), merged AS (
            SELECT kode_faskes, form, min(vf) AS vf, max(vt) AS vt FROM islands GROUP BY kode_faskes, form, spell
        ), assigned AS (
            SELECT DISTINCT m.kode_faskes, m.form, p.period, p.ms, p.me
              FROM merged m JOIN _compliance_periods p ON {_ASSIGNED_RULE[rule]}
        ), induk AS (
            -- induk of the month: the assignment in force on its last day (else the latest overlapping)
            SELECT a.kode_faskes, a.form, a.period,
                   arg_max(fa.kode_puskesmas_induk, (fa.vf <= a.me AND fa.vt > a.me, fa.vf)) AS induk
              FROM assigned a JOIN fa ON fa.kode_faskes = a.kode_faskes AND fa.form = a.form
                                     AND fa.vf <= a.me AND fa.vt > a.ms
             GROUP BY ALL
        )
        SELECT f.kode_faskes, p.period, a.form, f.jenis_faskes,
               CASE WHEN f.jenis_faskes = 'puskesmas' THEN NULL
                    ELSE coalesce(i.induk, f.kode_puskesmas_induk) END AS kode_puskesmas_induk,
               CASE WHEN f.jenis_faskes = 'puskesmas' THEN f.kode_faskes
                    ELSE coalesce(i.induk, f.kode_jejaring) END AS kode_jejaring,
               f.kode_kec, f.kode_kabkota, f.kode_prov, f.reporting_level,
               {_due_sql('p.ms', 'f.reporting_level')} AS due_date,
               {_cutoff_sql('p.ms')} AS cutoff_date,
               coalesce(f.timezone, prm.default_tz) AS timezone
          FROM reference.facility f
          JOIN _compliance_periods p ON {_OPEN_RULE[rule]}
          JOIN assigned a ON a.kode_faskes = f.kode_faskes AND a.period = p.period
          LEFT JOIN induk i ON i.kode_faskes = f.kode_faskes AND i.form = a.form AND i.period = p.period
          CROSS JOIN _compliance_params prm
    """
    return replace_rows(con, "compliance.expected_report", sql, where=PERIODS_WHERE)


# --- report status ----------------------------------------------------------------------------

def build_report_status(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str],
                        as_of: datetime | None = None) -> int:
    """Write `compliance.report_status` (grain: facility × period × form expected, plus unexpected
    arrivals) for `periods`, then append status changes to `compliance.report_status_history`.

    Reads `compliance.expected_report` (build it first) and `clean.submission` (all versions).
    `as_of` overrides `settings.config.reporting.as_of_utc()` (used by tests and backfills).
    Returns the number of status rows written.
    """
    as_of = _prepare(con, settings, periods, as_of)
    sql = f"""
        WITH sub AS (
            -- first valid version received by as_of decides timeliness; the latest is current
            SELECT s.kode_faskes, s.period, s.form,
                   min(s.received_at) AS received_at,
                   count(*) AS n_versions,
                   arg_max(s.submission_id, (s.version, s.received_at)) AS submission_id,
                   arg_max(s.is_nil_report, (s.version, s.received_at)) AS is_nil_report
              FROM clean.submission s CROSS JOIN _compliance_params prm
             WHERE s.period IN (SELECT period FROM _compliance_periods) AND s.received_at <= prm.as_of
             GROUP BY ALL
        ), er AS (
            SELECT * FROM compliance.expected_report WHERE {PERIODS_WHERE}
        ), joined AS (
            SELECT coalesce(e.kode_faskes, s.kode_faskes) AS kode_faskes,
                   coalesce(e.period, s.period) AS period,
                   coalesce(e.form, s.form) AS form,
                   e.kode_faskes IS NOT NULL AS expected,
                   coalesce(e.jenis_faskes, f.jenis_faskes) AS jenis_faskes,
                   CASE WHEN e.kode_faskes IS NOT NULL THEN e.kode_puskesmas_induk ELSE f.kode_puskesmas_induk END AS kode_puskesmas_induk,
                   CASE WHEN e.kode_faskes IS NOT NULL THEN e.kode_jejaring ELSE f.kode_jejaring END AS kode_jejaring,
                   coalesce(e.kode_kec, f.kode_kec) AS kode_kec,
                   coalesce(e.kode_kabkota, f.kode_kabkota) AS kode_kabkota,
                   coalesce(e.kode_prov, f.kode_prov) AS kode_prov,
                   coalesce(e.due_date, {_due_sql("CAST(s.period || '-01' AS DATE)", "coalesce(f.reporting_level, 'network_to_pkm')")}) AS due_date,
                   coalesce(e.cutoff_date, {_cutoff_sql("CAST(s.period || '-01' AS DATE)")}) AS cutoff_date,
                   coalesce(e.timezone, f.timezone, prm.default_tz) AS tz,
                   s.received_at, s.n_versions, s.submission_id, s.is_nil_report,
                   prm.as_of, prm.grace_days
              FROM er e
              FULL OUTER JOIN sub s ON s.kode_faskes = e.kode_faskes AND s.period = e.period AND s.form = e.form
              LEFT JOIN reference.facility f ON f.kode_faskes = coalesce(e.kode_faskes, s.kode_faskes)
              CROSS JOIN _compliance_params prm
        ), dated AS (
            SELECT *, CAST(timezone(tz, received_at) AS DATE) AS received_local_date,
                   CAST(timezone(tz, as_of) AS DATE) AS as_of_local_date
              FROM joined
        ), judged AS (
            SELECT *, CASE
                       WHEN NOT expected THEN 'unexpected'
                       WHEN received_at IS NOT NULL AND received_local_date <= due_date + grace_days THEN 'on_time'
                       WHEN received_at IS NOT NULL THEN 'late'
                       WHEN as_of_local_date > cutoff_date THEN 'missing'
                       ELSE 'pending' END AS status
              FROM dated
        )
        SELECT kode_faskes, period, form, expected, status,
               status = 'pending' AND as_of_local_date > due_date + grace_days AS overdue,
               status = 'late' AND received_local_date > cutoff_date AS received_after_cutoff,
               coalesce(is_nil_report, false) AS is_nil_report,
               due_date, cutoff_date, received_at, received_local_date,
               CASE WHEN status = 'on_time' THEN 0
                    WHEN received_at IS NOT NULL
                    THEN greatest(date_diff('day', due_date, received_local_date), 0) END AS days_late,
               submission_id, coalesce(n_versions, 0) AS n_versions, jenis_faskes,
               kode_puskesmas_induk, kode_jejaring, kode_kec, kode_kabkota, kode_prov, as_of
          FROM judged
    """
    n = replace_rows(con, "compliance.report_status", sql, where=PERIODS_WHERE)
    _append_history(con)
    return n


def _append_history(con: duckdb.DuckDBPyConnection) -> int:
    """Append to `compliance.report_status_history` every facility × period × form whose status
    differs from its latest status recorded *before* this `as_of` (first_seen_at = as_of).

    Rows already recorded at this same `as_of` are replaced, so re-running at the same `as_of`
    adds nothing, and a corrected re-run at the same moment does not leave two competing rows.
    """
    sql = """
        WITH prev AS (
            SELECT kode_faskes, period, form, arg_max(status, first_seen_at) AS status
              FROM compliance.report_status_history h
             WHERE h.period IN (SELECT period FROM _compliance_periods)
               AND h.first_seen_at < (SELECT as_of FROM _compliance_params)
             GROUP BY ALL
        )
        SELECT s.kode_faskes, s.period, s.form, s.status, s.as_of AS first_seen_at
          FROM compliance.report_status s
          LEFT JOIN prev ON prev.kode_faskes = s.kode_faskes AND prev.period = s.period AND prev.form = s.form
         WHERE s.period IN (SELECT period FROM _compliance_periods)
           AND prev.status IS DISTINCT FROM s.status
    """
    return replace_rows(con, "compliance.report_status_history", sql,
                        where=f"{PERIODS_WHERE} AND first_seen_at = (SELECT as_of FROM _compliance_params)")


# --- reporting rates --------------------------------------------------------------------------

def _rate_sources(con: duckdb.DuckDBPyConnection, periods: list[str]) -> tuple[list[str], list[str]]:
    """The months whose statuses a rate run counts, and the stored YTD rows it carries forward.

    Per year: the YTD of the year's first requested month s needs January..s−1. When YTD rows of
    s−1 are stored (the previous month was run) they are carried forward instead of re-counting
    January..s−1, so one new month costs one month of statuses, not the whole year so far.
    """
    status_months: set[str] = set()
    carry: list[str] = []
    for year in sorted({p[:4] for p in periods}):
        in_year = sorted(p for p in periods if p[:4] == year)
        first, last = in_year[0], in_year[-1]
        prev = add_months(first, -1)
        start = f"{year}-01"
        if prev[:4] == year and con.execute(
                "SELECT count(*) FROM compliance.reporting_rate WHERE period = ? AND period_type = 'ytd'",
                [prev]).fetchone()[0] > 0:
            carry.append(prev)
            start = first
        month = start
        while month <= last:
            status_months.add(month)
            month = add_months(month, 1)
    return sorted(status_months), carry


def build_reporting_rates(con: duckdb.DuckDBPyConnection, settings: Settings,
                          periods: list[str]) -> int:
    """Write `compliance.reporting_rate` (grain: unit level × unit code × jenis_faskes × period ×
    period type × form) for `periods`: `month` rows from that month's stored statuses, `ytd` rows
    from the stored statuses of January..M of the same year (so re-run earlier months first).

    Every count is a plain sum over the unit's facility rows and every percentage is computed from
    those sums (DHIS2 hierarchy rule): never an average of lower-level percentages. Rows for
    `jenis_faskes = 'semua'` and `form = 'semua'` aggregate over all types / forms. Units whose code
    is unknown (NULL) are left out of that level (they still count in the levels above).

    How (cost linear in statuses, one month for one new month): statuses are counted once per
    unit × month (`_rate_month`), the 'semua' roll-ups are sums of those counts, and YTD is a
    running sum over the year's months (counts are additive, so this equals counting the status
    rows of January..M directly). The part of the year before the first requested month comes from
    the stored YTD rows of the month before it when they exist (`_rate_sources`). A unit with no
    row in month M but rows earlier in the year keeps a YTD row for M, as a direct count would.
    """
    _prepare(con, settings, periods)
    status_months, carry = _rate_sources(con, calendar.validate_periods(periods))
    flags = """count(*) FILTER (WHERE expected) AS expected,
               count(*) FILTER (WHERE expected AND status IN ('on_time', 'late')) AS received,
               count(*) FILTER (WHERE expected AND status = 'on_time') AS on_time,
               count(*) FILTER (WHERE expected AND status = 'late') AS late,
               count(*) FILTER (WHERE expected AND status = 'missing') AS missing,
               count(*) FILTER (WHERE expected AND status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'unexpected') AS unexpected"""
    counts = ", ".join(RATE_COUNTS)
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in RATE_COUNTS)
    running = ", ".join(f"CAST(sum({c}) OVER w AS BIGINT) AS {c}" for c in RATE_COUNTS)
    levels = " UNION ALL ".join(
        f"SELECT '{lvl}' AS unit_level, {col} AS unit_code, period, jenis_faskes, form, {flags} "
        f"FROM st WHERE {col} IS NOT NULL GROUP BY {col}, period, jenis_faskes, form"
        for lvl, col in UNIT_LEVELS.items()
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _rate_month AS
        WITH st AS (
            SELECT * FROM compliance.report_status WHERE list_contains(?::VARCHAR[], period)
        ), mc AS ({levels})
        SELECT unit_level, unit_code, period,
               CASE WHEN grouping(jenis_faskes) = 1 THEN 'semua' ELSE jenis_faskes END AS jenis_faskes,
               CASE WHEN grouping(form) = 1 THEN 'semua' ELSE form END AS form, {sums}
          FROM mc GROUP BY unit_level, unit_code, period, CUBE (jenis_faskes, form)
    """, [status_months])
    con.execute(f"""
        INSERT INTO _rate_month
        SELECT unit_level, unit_code, period, jenis_faskes, form, {counts}
          FROM compliance.reporting_rate
         WHERE period_type = 'ytd' AND list_contains(?::VARCHAR[], period)
    """, [carry])
    sql = f"""
        WITH last_month AS (SELECT substr(period, 1, 4) AS y, max(period) AS last FROM _compliance_periods GROUP BY 1),
        cum AS (  -- running YTD sums; they hold from the row's month until the unit's next row
            SELECT unit_level, unit_code, jenis_faskes, form, period, {running},
                   coalesce(strftime(CAST(lead(period) OVER w || '-01' AS DATE) - INTERVAL 1 MONTH, '%Y-%m'),
                            '9999-12') AS until_month
              FROM _rate_month
            WINDOW w AS (PARTITION BY unit_level, unit_code, jenis_faskes, form, substr(period, 1, 4)
                         ORDER BY period)
        ), spread AS (  -- usually one month; more when the unit has no row in the following months
            SELECT c.*, strftime(unnest(generate_series(
                       CAST(c.period || '-01' AS DATE),
                       CAST(least(l.last, c.until_month) || '-01' AS DATE),
                       INTERVAL 1 MONTH)), '%Y-%m') AS ytd_period
              FROM cum c JOIN last_month l ON l.y = substr(c.period, 1, 4)
        )
        SELECT unit_level, unit_code, jenis_faskes, period, 'month' AS period_type, form, {counts}
          FROM _rate_month WHERE period IN (SELECT period FROM _compliance_periods)
        UNION ALL
        SELECT unit_level, unit_code, jenis_faskes, ytd_period, 'ytd', form, {counts}
          FROM spread WHERE ytd_period IN (SELECT period FROM _compliance_periods)
    """
    rate_sql = f"""
        SELECT *,
               CASE WHEN expected > 0 THEN received * 100.0 / expected END AS completeness_pct,
               CASE WHEN expected > 0 THEN on_time * 100.0 / expected END AS timeliness_pct
          FROM ({sql})
    """
    n = replace_rows(con, "compliance.reporting_rate", rate_sql, where=PERIODS_WHERE)
    con.execute("DROP TABLE IF EXISTS _rate_month")
    return n


# --- follow-up list ---------------------------------------------------------------------------

def build_followup(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str]) -> int:
    """Write `evaluation.followup` (grain: facility × form with something to chase, per
    `as_of_period`) for each month of `periods` taken as the latest evaluated month L.

    - months_missing / months_late: statuses `missing` / `late` in January..L of L's year;
    - consecutive_missing: months without a report ending at L, counted backwards over calendar
      months: a month counts when it is `missing`, or `pending` and already overdue (nothing
      received and the due date has passed: for L itself the cut-off has usually not passed yet, so
      a chronic non-reporter would otherwise always show 0). A month that is received, not yet due,
      or not expected ends the streak. The streak may cross into last year;
    - missing_periods: the missing months of this year, comma-separated, ascending;
    - last_received_period / last_received_at: the latest month ≤ L with a report (first version);
    - latest_status / pending_overdue: status of L, so an overdue pending report of the latest month
      is on the list.
    Only facility × form with months_missing > 0, months_late > 0 or L pending+overdue are listed.
    """
    _prepare(con, settings, periods)

    def on(alias: str) -> str:
        return " AND ".join(f"{alias}.{c} = k.{c}" for c in ("kode_faskes", "form", "as_of_period"))

    sql = f"""
        WITH st AS (
            SELECT s.*, p.period AS as_of_period,
                   (CAST(substr(s.period, 1, 4) AS INTEGER) * 12 + CAST(substr(s.period, 6, 2) AS INTEGER)) AS idx,
                   (CAST(substr(p.period, 1, 4) AS INTEGER) * 12 + CAST(substr(p.period, 6, 2) AS INTEGER)) AS l_idx
              FROM compliance.report_status s
              JOIN _compliance_periods p ON s.period <= p.period
        ), unreported AS (
            SELECT kode_faskes, form, as_of_period, idx, l_idx,
                   row_number() OVER (PARTITION BY kode_faskes, form, as_of_period ORDER BY idx DESC) AS rn
              FROM st
             WHERE expected AND (status = 'missing' OR (status = 'pending' AND overdue))
        ), streak AS (
            SELECT kode_faskes, form, as_of_period, count(*) AS consecutive_missing
              FROM unreported WHERE idx + rn - 1 = l_idx GROUP BY ALL
        ), year_counts AS (
            SELECT kode_faskes, form, as_of_period,
                   count(*) FILTER (WHERE status = 'missing') AS months_missing,
                   count(*) FILTER (WHERE status = 'late') AS months_late,
                   string_agg(period, ', ' ORDER BY period) FILTER (WHERE status = 'missing') AS missing_periods
              FROM st
             WHERE expected AND substr(period, 1, 4) = substr(as_of_period, 1, 4)
             GROUP BY ALL
        ), latest AS (
            SELECT kode_faskes, form, as_of_period, status AS latest_status,
                   status = 'pending' AND overdue AS pending_overdue,
                   kode_jejaring, kode_kabkota
              FROM st WHERE period = as_of_period AND expected
        ), received AS (
            SELECT kode_faskes, form, as_of_period,
                   arg_max(period, period) AS last_received_period,
                   arg_max(received_at, period) AS last_received_at
              FROM st WHERE received_at IS NOT NULL GROUP BY ALL
        ), keys AS (
            SELECT kode_faskes, form, as_of_period FROM year_counts
             WHERE months_missing > 0 OR months_late > 0
            UNION
            SELECT kode_faskes, form, as_of_period FROM latest WHERE pending_overdue
        )
        SELECT k.kode_faskes, f.nama_faskes, f.jenis_faskes,
               coalesce(l.kode_jejaring, f.kode_jejaring, k.kode_faskes) AS kode_puskesmas_induk,
               pk.nama_faskes AS nama_puskesmas_induk,
               coalesce(l.kode_kabkota, f.kode_kabkota) AS kode_kabkota,
               k.form, k.as_of_period,
               coalesce(y.months_missing, 0) AS months_missing,
               coalesce(y.months_late, 0) AS months_late,
               coalesce(sk.consecutive_missing, 0) AS consecutive_missing,
               y.missing_periods, r.last_received_period, r.last_received_at,
               l.latest_status, coalesce(l.pending_overdue, false) AS pending_overdue
          FROM keys k
          LEFT JOIN reference.facility f ON f.kode_faskes = k.kode_faskes
          LEFT JOIN latest l ON {on('l')}
          LEFT JOIN reference.facility pk ON pk.kode_faskes = coalesce(l.kode_jejaring, f.kode_jejaring, k.kode_faskes)
          LEFT JOIN year_counts y ON {on('y')}
          LEFT JOIN streak sk ON {on('sk')}
          LEFT JOIN received r ON {on('r')}
    """
    return replace_rows(con, "evaluation.followup", sql,
                        where="as_of_period IN (SELECT period FROM _compliance_periods)")


# --- whole layer ------------------------------------------------------------------------------

def run_compliance(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str],
                   as_of: datetime | None = None) -> dict[str, int]:
    """Expected → status (+ history) → rates → follow-up for `periods`, in that order."""
    return {
        "expected_report": build_expected_reports(con, settings, periods),
        "report_status": build_report_status(con, settings, periods, as_of),
        "reporting_rate": build_reporting_rates(con, settings, periods),
        "followup": build_followup(con, settings, periods),
    }


# --- checks and deadlines (used by data_quality/ and sensors/) --------------------------------

def missing_after_cutoff(con: duckdb.DuckDBPyConnection, period: str) -> list[tuple]:
    """Expected reports of `period` still `missing` (nothing received by the cut-off):
    (kode_faskes, nama_faskes, form, kode_jejaring, kode_kabkota, cutoff_date), sorted."""
    return con.execute("""
        SELECT s.kode_faskes, f.nama_faskes, s.form, s.kode_jejaring, s.kode_kabkota, s.cutoff_date
          FROM compliance.report_status s
          LEFT JOIN reference.facility f USING (kode_faskes)
         WHERE s.period = ? AND s.status = 'missing'
         ORDER BY s.kode_kabkota, s.kode_jejaring, s.kode_faskes, s.form""", [period]).fetchall()


def units_at_or_below(con: duckdb.DuckDBPyConnection, period: str, metric: str,
                      threshold: float) -> list[tuple]:
    """Kab/kota and puskesmas networks whose `metric` (`completeness` | `timeliness`) for `period`
    (all forms, all facility types) is **≤** `threshold` % — the WHO DQ Tool flags a unit sitting
    exactly on the threshold. Computed from `compliance.report_status` (ratio of sums), so the
    check does not depend on `reporting_rate` being materialised.
    Returns (unit_level, unit_code, expected, numerator, pct) sorted by level, pct."""
    if metric not in ("completeness", "timeliness"):
        raise ValueError(f"metric {metric!r}: expected completeness or timeliness")
    num = "status IN ('on_time', 'late')" if metric == "completeness" else "status = 'on_time'"
    return con.execute(f"""
        WITH long AS (
            SELECT 'kabkota' AS unit_level, kode_kabkota AS unit_code, status FROM compliance.report_status
             WHERE period = ? AND expected AND kode_kabkota IS NOT NULL
            UNION ALL
            SELECT 'puskesmas_network', kode_jejaring, status FROM compliance.report_status
             WHERE period = ? AND expected AND kode_jejaring IS NOT NULL
        ), agg AS (
            SELECT unit_level, unit_code, count(*) AS expected, count(*) FILTER (WHERE {num}) AS n
              FROM long GROUP BY ALL
        )
        SELECT unit_level, unit_code, expected, n, round(n * 100.0 / expected, 1) AS pct
          FROM agg WHERE n * 100.0 / expected <= ?
         ORDER BY unit_level, pct, unit_code""", [period, period, threshold]).fetchall()
