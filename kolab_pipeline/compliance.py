"""Compliance layer: expected reports, report status (+ history) and reporting rates.

Tables (grain in `catalog/tables.yaml`): `compliance.expected_report` (facility × period × form),
`compliance.report_status` (the same, plus unexpected arrivals), `compliance.report_status_history`
(status changes, stamped with the `as_of` they were first seen) and `compliance.reporting_rate`
(unit level × unit × jenis_faskes × period × period type × form). Every builder replaces the
months it is given, so a re-run gives the same table. Definitions: `docs/domain.md` §3 and §8.9,
`docs/data_quality_anchors.md` §1.1; due dates and cut-offs: `kolab_pipeline.calendar`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import duckdb

from kolab_pipeline import calendar, catalog, reference
from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings
from kolab_pipeline.judgement import meets_sql
from kolab_pipeline.warehouse import Staging, ensure_schema, replace_rows

STATUSES = ("on_time", "late", "missing", "pending", "unexpected")
UNIT_LEVELS = {  # unit_level → column of compliance.report_status holding the unit's code
    "facility": "kode_faskes",
    "puskesmas_network": "kode_jejaring",
    "kecamatan": "kode_kec",
    "kabkota": "kode_kabkota",
    "provinsi": "kode_prov",
}
RATE_COUNTS = ("expected", "received", "on_time", "late", "missing", "pending", "unexpected",
               "received_by_cutoff", "on_time_by_cutoff", "expected_cutoff_open",
               "network_to_forward", "network_forwarded_on_time")

# Temp tables of one build (warehouse.Staging prefix `_compliance`): `_compliance_periods` (the
# run's months with their first and last day), `_compliance_params` (one row of settings) and, for
# the rates, `_compliance_rate_month` (status counts per unit × month).
STAGE = "_compliance"
PERIODS_WHERE = "period IN (SELECT period FROM _compliance_periods)"

PERIODS_SQL = """
    SELECT period, CAST(period || '-01' AS DATE) AS month_first,
           last_day(CAST(period || '-01' AS DATE)) AS month_last
      FROM (SELECT unnest($periods::VARCHAR[]) AS period)
"""
PARAMS_SQL = """
    SELECT $as_of::TIMESTAMPTZ AS as_of, $grace_days::INTEGER AS grace_days,
           $due_network::INTEGER AS due_network, $due_pkm::INTEGER AS due_pkm,
           $cutoff_months::INTEGER AS cutoff_months, $default_tz::VARCHAR AS default_tz
"""
# `as_of` per time zone (`_compliance_as_of`): a date in kolab.yaml ends at midnight local time,
# so WITA's 2025-04-30 ends an hour before WIB's (config `ReportingConfig.as_of_utc`).
AS_OF_SQL = """
    SELECT unnest($zones::VARCHAR[]) AS tz, unnest($as_ofs::TIMESTAMPTZ[]) AS as_of
"""

# Facility open / form assigned for a month, per `reporting.expected_rule` (code constants, never
# user text). Assignment ends (`assigned_until`) are exclusive.
_OPEN_RULE = {
    "whole_period": "(f.tanggal_buka IS NULL OR f.tanggal_buka <= p.month_first) "
                    "AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= p.month_last)",
    "period_end": "(f.tanggal_buka IS NULL OR f.tanggal_buka <= p.month_last) "
                  "AND (f.tanggal_tutup IS NULL OR f.tanggal_tutup >= p.month_last)",
}
_ASSIGNED_RULE = {
    "whole_period": "spell.assigned_from <= p.month_first AND spell.assigned_until > p.month_last",
    "period_end": "spell.assigned_from <= p.month_last AND spell.assigned_until > p.month_last",
}


@contextmanager
def _staged(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str],
            as_of: datetime | None = None) -> Iterator[Staging]:
    """`_compliance_periods` and `_compliance_params` for the statements of one build step,
    dropped when the step ends."""
    ensure_schema(con)
    rep = settings.config.reporting
    cfg = settings.config
    if as_of is None and rep.as_of is None:
        as_of = datetime.now(UTC)  # one "now" for every zone
    zones = sorted({*cfg.as_of_by_zone(), *(z for (z,) in con.execute(
        "SELECT DISTINCT timezone FROM reference.facility WHERE timezone IS NOT NULL").fetchall())})
    with Staging(con, STAGE) as stage:
        stage.create("periods", PERIODS_SQL, {"periods": calendar.validate_periods(periods)})
        stage.create("as_of", AS_OF_SQL, {
            "zones": zones, "as_ofs": [as_of or cfg.as_of_utc(z) for z in zones]})
        stage.create("params", PARAMS_SQL, {
            "as_of": as_of or cfg.as_of_utc(), "grace_days": rep.grace_days,
            "due_network": rep.due_day.network_to_pkm, "due_pkm": rep.due_day.pkm_to_dinkes,
            "cutoff_months": rep.cutoff_months_after_period,
            "default_tz": settings.config.timezones.default})
        yield stage


def _due_sql(month_first: str, level: str) -> str:
    """Due date of the month starting at `month_first` for reporting level `level`."""
    return calendar.due_date_sql(month_first, level, "setting.due_network", "setting.due_pkm")


def _cutoff_sql(month_first: str) -> str:
    return calendar.cutoff_date_sql(month_first, "setting.cutoff_months")


# --- expected reports -------------------------------------------------------------------------

# Form assignments of one facility × form are merged into continuous spells first, so a change of
# induk on the 15th (two adjacent rows) does not make the form look unassigned that month. A report
# is expected only of the facility types the form is assigned to (`_compliance_form_type`), so a
# hospital listing a form counts in the numerators but is never expected. The network of the
# month: `reference.network_of_month_sql`.
FORM_TYPE_SQL = """
    SELECT unnest($forms::VARCHAR[]) AS form, unnest($types::VARCHAR[]) AS jenis_faskes
"""
EXPECTED_SQL = """
    WITH assignment AS ({intervals}
    ), ordered AS (
        SELECT *, max(assigned_until) OVER (
                      PARTITION BY kode_faskes, form ORDER BY assigned_from, assigned_until
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
          FROM assignment
    ), islands AS (
        -- a new spell starts when an interval begins after every earlier one ended
        SELECT *, sum(CASE WHEN previous_end IS NULL OR assigned_from > previous_end
                           THEN 1 ELSE 0 END)
                      OVER (PARTITION BY kode_faskes, form ORDER BY assigned_from, assigned_until
                            ROWS UNBOUNDED PRECEDING) AS spell_no
          FROM ordered
    ), spell AS (
        SELECT kode_faskes, form, min(assigned_from) AS assigned_from,
               max(assigned_until) AS assigned_until
          FROM islands GROUP BY kode_faskes, form, spell_no
    ), assigned AS (
        SELECT DISTINCT spell.kode_faskes, spell.form, p.period, p.month_first, p.month_last
          FROM spell JOIN _compliance_periods p ON {assigned_rule}
    ), network AS ({network_of_month}
    )
    SELECT f.kode_faskes, p.period, a.form, f.jenis_faskes,
           CASE WHEN f.jenis_faskes <> 'puskesmas' THEN network.kode_jejaring
                END AS kode_puskesmas_induk,
           network.kode_jejaring,
           f.kode_kec, f.kode_kabkota, f.kode_prov, f.reporting_level,
           {due_date} AS due_date,
           {cutoff_date} AS cutoff_date,
           coalesce(f.timezone, setting.default_tz) AS timezone
      FROM reference.facility f
      JOIN _compliance_periods p ON {open_rule}
      JOIN assigned a ON a.kode_faskes = f.kode_faskes AND a.period = p.period
      SEMI JOIN _compliance_form_type by_type
        ON by_type.form = a.form AND by_type.jenis_faskes = f.jenis_faskes
      JOIN network ON network.kode_faskes = f.kode_faskes AND network.form = a.form
                  AND network.period = p.period
      CROSS JOIN _compliance_params setting
"""


def build_expected_reports(con: duckdb.DuckDBPyConnection, settings: Settings,
                           periods: list[str]) -> int:
    """Write `compliance.expected_report` for `periods`; returns the rows written.

    `reporting.expected_rule`:
    - `whole_period` (default, DHIS2 `RestrictionsSqlClause`): the facility is open for the whole
      month (`tanggal_buka` NULL or ≤ the 1st, `tanggal_tutup` NULL or ≥ the last day) and the
      form is assigned on every day of it;
    - `period_end` (`docs/domain.md` §8.9): open on the last day, the form assigned that day.
    Only of the facility types the form is assigned to (`catalog/forms.csv` `assigned_to`).
    Due date and cut-off are local dates of the facility's kab/kota (`reference.facility.timezone`).
    """
    rule = settings.config.reporting.expected_rule
    sql = EXPECTED_SQL.format(intervals=reference.ASSIGNMENT_INTERVALS_SQL,
                              network_of_month=reference.network_of_month_sql("assigned"),
                              assigned_rule=_ASSIGNED_RULE[rule], open_rule=_OPEN_RULE[rule],
                              due_date=_due_sql("p.month_first", "f.reporting_level"),
                              cutoff_date=_cutoff_sql("p.month_first"))
    pairs = [(form, jenis) for form, types in catalog.form_facility_types().items()
             for jenis in types]
    with _staged(con, settings, periods) as stage:
        stage.create("form_type", FORM_TYPE_SQL, {"forms": [f for f, _ in pairs],
                                                  "types": [j for _, j in pairs]})
        return replace_rows(con, "compliance.expected_report", sql, where=PERIODS_WHERE)


# --- report status ----------------------------------------------------------------------------

STATUS_SQL = """
    WITH received AS (
        -- versions that had reached the Dinkes by as_of; the first received at its reporting
        -- stage decides timeliness, the latest is current, the earliest at the Dinkes is what
        -- the Dinkes knew (forwarding, cut-off view)
        SELECT s.kode_faskes, s.period, s.form,
               min(s.received_at) AS received_at,
               arg_min(s.received_source, (s.received_at, s.version)) AS received_source,
               arg_min(s.declared_at, (s.received_at, s.version)) AS declared_at,
               min(coalesce(s.received_dinkes_at, s.received_at)) AS received_dinkes_at,
               count(*) AS n_versions,
               arg_max(s.submission_id, (s.version, s.received_at)) AS submission_id,
               arg_max(s.is_nil_report, (s.version, s.received_at)) AS is_nil_report
          FROM clean.submission s CROSS JOIN _compliance_params setting
          LEFT JOIN reference.facility f ON f.kode_faskes = s.kode_faskes
          LEFT JOIN _compliance_as_of zone ON zone.tz = coalesce(f.timezone, setting.default_tz)
         WHERE s.period IN (SELECT period FROM _compliance_periods)
           AND coalesce(s.received_dinkes_at, s.received_at) <= coalesce(zone.as_of, setting.as_of)
         GROUP BY ALL
    ), expected AS (
        SELECT * FROM compliance.expected_report
         WHERE period IN (SELECT period FROM _compliance_periods)
    ), joined AS (
        SELECT coalesce(e.kode_faskes, r.kode_faskes) AS kode_faskes,
               coalesce(e.period, r.period) AS period,
               coalesce(e.form, r.form) AS form,
               e.kode_faskes IS NOT NULL AS expected,
               coalesce(e.jenis_faskes, f.jenis_faskes) AS jenis_faskes,
               CASE WHEN e.kode_faskes IS NOT NULL THEN e.kode_puskesmas_induk
                    ELSE f.kode_puskesmas_induk END AS kode_puskesmas_induk,
               CASE WHEN e.kode_faskes IS NOT NULL THEN e.kode_jejaring
                    ELSE f.kode_jejaring END AS kode_jejaring,
               coalesce(e.kode_kec, f.kode_kec) AS kode_kec,
               coalesce(e.kode_kabkota, f.kode_kabkota) AS kode_kabkota,
               coalesce(e.kode_prov, f.kode_prov) AS kode_prov,
               coalesce(e.due_date, {due_date}) AS due_date,
               coalesce(e.cutoff_date, {cutoff_date}) AS cutoff_date,
               coalesce(e.timezone, f.timezone, setting.default_tz) AS tz,
               coalesce(e.reporting_level, f.reporting_level, 'network_to_pkm')
                 = 'network_to_pkm' AS in_network,
               {forward_due} AS forward_due_on_level,
               r.received_at, r.received_source, r.declared_at, r.received_dinkes_at,
               r.n_versions, r.submission_id, r.is_nil_report,
               setting.as_of, setting.grace_days
          FROM expected e
          FULL OUTER JOIN received r
            ON r.kode_faskes = e.kode_faskes AND r.period = e.period AND r.form = e.form
          LEFT JOIN reference.facility f ON f.kode_faskes = coalesce(e.kode_faskes, r.kode_faskes)
          CROSS JOIN _compliance_params setting
    ), dated AS (
        SELECT joined.*, CAST(timezone(joined.tz, received_at) AS DATE) AS received_local_date,
               CAST(timezone(joined.tz, received_dinkes_at) AS DATE) AS dinkes_local_date,
               CAST(timezone(joined.tz, coalesce(zone.as_of, joined.as_of)) AS DATE)
                 AS as_of_local_date,
               CASE WHEN in_network THEN forward_due_on_level END AS forward_due_date
          FROM joined LEFT JOIN _compliance_as_of zone ON zone.tz = joined.tz
    ), judged AS (
        SELECT *, CASE
                   WHEN NOT expected THEN 'unexpected'
                   WHEN received_at IS NOT NULL
                        AND received_local_date <= due_date + grace_days THEN 'on_time'
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
           kode_puskesmas_induk, kode_jejaring, kode_kec, kode_kabkota, kode_prov, as_of,
           received_source, declared_at, received_dinkes_at, forward_due_date,
           -- a network report its puskesmas had by the Dinkes due date: at the Dinkes by then?
           CASE WHEN expected AND forward_due_date IS NOT NULL
                     AND received_local_date <= forward_due_date + grace_days
                THEN dinkes_local_date <= forward_due_date + grace_days END AS forwarded_on_time,
           coalesce(expected AND dinkes_local_date <= cutoff_date, false) AS received_by_cutoff,
           as_of_local_date > cutoff_date AS cutoff_passed
      FROM judged
"""

# Status changes since the latest status recorded *before* this as_of (first_seen_at = as_of).
HISTORY_SQL = """
    WITH previous AS (
        SELECT kode_faskes, period, form, arg_max(status, first_seen_at) AS status
          FROM compliance.report_status_history h
         WHERE h.period IN (SELECT period FROM _compliance_periods)
           AND h.first_seen_at < (SELECT as_of FROM _compliance_params)
         GROUP BY ALL
    )
    SELECT s.kode_faskes, s.period, s.form, s.status, s.as_of AS first_seen_at
      FROM compliance.report_status s
      LEFT JOIN previous ON previous.kode_faskes = s.kode_faskes
                        AND previous.period = s.period AND previous.form = s.form
     WHERE s.period IN (SELECT period FROM _compliance_periods)
       AND previous.status IS DISTINCT FROM s.status
"""


def build_report_status(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str],
                        as_of: datetime | None = None) -> int:
    """Write `compliance.report_status` for `periods`, then append the status changes to
    `compliance.report_status_history`; returns the status rows written.

    Reads `compliance.expected_report` (build it first) and `clean.submission`. Versions count
    once they had reached the Dinkes by `as_of` (default `reporting.as_of_utc()`); the **first**
    received at the facility's reporting stage decides (`received_at` of the clean layer: a
    network facility's `tanggal_lapor`, else — always for a puskesmas — the receipt at the
    Dinkes; `received_source` says which), taken as a local date of the facility's kab/kota:
    - `on_time`: received ≤ due date + `grace_days` (nil reports are reports);
    - `late`: received after that (`received_after_cutoff` when after the cut-off date);
    - `missing`: nothing received and the cut-off passed at `as_of` (end of the local day);
    - `pending`: nothing received, cut-off not passed (`overdue` once due date + grace passed);
    - `unexpected`: a submission nobody expected, kept and labelled, not counted in rates.
    Besides: `forwarded_on_time` (a network report its puskesmas had by the puskesmas → Dinkes
    due date: at the Dinkes by then?) and `received_by_cutoff` (at the Dinkes by the end of the
    local cut-off day), with `declared_at`, `received_dinkes_at`, `cutoff_passed`.
    """
    month_first = "CAST(r.period || '-01' AS DATE)"
    sql = STATUS_SQL.format(
        due_date=_due_sql(month_first, "coalesce(f.reporting_level, 'network_to_pkm')"),
        cutoff_date=_cutoff_sql(month_first),
        forward_due=_due_sql("CAST(coalesce(e.period, r.period) || '-01' AS DATE)",
                             "'pkm_to_dinkes'"))
    with _staged(con, settings, periods, as_of):
        n = replace_rows(con, "compliance.report_status", sql, where=PERIODS_WHERE)
        # rows already recorded at this same as_of are replaced: a re-run adds nothing
        replace_rows(con, "compliance.report_status_history", HISTORY_SQL,
                     where=f"{PERIODS_WHERE} AND first_seen_at = "
                           "(SELECT as_of FROM _compliance_params)")
    return n


# --- reporting rates --------------------------------------------------------------------------

def _rate_sources(con: duckdb.DuckDBPyConnection,
                  periods: list[str]) -> tuple[list[str], list[str]]:
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
                "SELECT count(*) FROM compliance.reporting_rate "
                "WHERE period = $period AND period_type = 'ytd'",
                {"period": prev}).fetchone()[0] > 0:
            carry.append(prev)
            start = first
        month = start
        while month <= last:
            status_months.add(month)
            month = add_months(month, 1)
    return sorted(status_months), carry


STATUS_COUNTS = """count(*) FILTER (WHERE expected) AS expected,
           count(*) FILTER (WHERE expected AND status IN ('on_time', 'late')) AS received,
           count(*) FILTER (WHERE expected AND status = 'on_time') AS on_time,
           count(*) FILTER (WHERE expected AND status = 'late') AS late,
           count(*) FILTER (WHERE expected AND status = 'missing') AS missing,
           count(*) FILTER (WHERE expected AND status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'unexpected') AS unexpected,
           count(*) FILTER (WHERE received_by_cutoff) AS received_by_cutoff,
           count(*) FILTER (WHERE received_by_cutoff AND status = 'on_time') AS on_time_by_cutoff,
           count(*) FILTER (WHERE expected AND NOT cutoff_passed) AS expected_cutoff_open,
           count(*) FILTER (WHERE forwarded_on_time IS NOT NULL) AS network_to_forward,
           count(*) FILTER (WHERE forwarded_on_time) AS network_forwarded_on_time"""

# Status counts per unit × month (`{per_level}`: one SELECT per unit level above the facility),
# rolled up to jenis_faskes / form 'semua' by CUBE. A facility has one type, so its rows are
# jenis_faskes 'semua' only (a typed row would repeat it): per form and for form 'semua'.
RATE_MONTH_SQL = """
    WITH statuses AS (
        SELECT * FROM compliance.report_status
         WHERE list_contains($status_months::VARCHAR[], period)
    ), unit_counts AS ({per_level})
    SELECT unit_level, unit_code, period,
           CASE WHEN grouping(jenis_faskes) = 1 THEN 'semua' ELSE jenis_faskes END
               AS jenis_faskes,
           CASE WHEN grouping(form) = 1 THEN 'semua' ELSE form END AS form, {sums}
      FROM unit_counts GROUP BY unit_level, unit_code, period, CUBE (jenis_faskes, form)
    UNION ALL
    SELECT 'facility' AS unit_level, kode_faskes AS unit_code, period, 'semua' AS jenis_faskes,
           CASE WHEN grouping(form) = 1 THEN 'semua' ELSE form END AS form, {status_counts}
      FROM statuses WHERE kode_faskes IS NOT NULL
     GROUP BY kode_faskes, period, ROLLUP (form)
"""
# Stored YTD rows of the month before a run's first month, carried forward.
RATE_CARRY_SQL = """
    INSERT INTO _compliance_rate_month
    SELECT unit_level, unit_code, period, jenis_faskes, form, {counts}
      FROM compliance.reporting_rate
     WHERE period_type = 'ytd' AND list_contains($carry::VARCHAR[], period)
       AND (unit_level <> 'facility' OR jenis_faskes = 'semua')  -- typed rows of older builds
"""
# `month` rows of the run's months, and `ytd` rows as running sums over the year's months.
RATES_SQL = """
    WITH year_end AS (
        SELECT substr(period, 1, 4) AS year, max(period) AS last_period
          FROM _compliance_periods GROUP BY 1
    ), running AS (  -- running YTD sums; they hold from the row's month until the unit's next row
        SELECT unit_level, unit_code, jenis_faskes, form, period, {running},
               coalesce(strftime(CAST(lead(period) OVER w || '-01' AS DATE) - INTERVAL 1 MONTH,
                                 '%Y-%m'), '9999-12') AS until_month
          FROM _compliance_rate_month
        WINDOW w AS (PARTITION BY unit_level, unit_code, jenis_faskes, form, substr(period, 1, 4)
                     ORDER BY period)
    ), spread AS (  -- usually one month; more when the unit has no row in the following months
        SELECT running.*, strftime(unnest(generate_series(
                   CAST(running.period || '-01' AS DATE),
                   CAST(least(year_end.last_period, running.until_month) || '-01' AS DATE),
                   INTERVAL 1 MONTH)), '%Y-%m') AS ytd_period
          FROM running JOIN year_end ON year_end.year = substr(running.period, 1, 4)
    ), counted AS (
        SELECT unit_level, unit_code, jenis_faskes, period, 'month' AS period_type, form,
               {counts}
          FROM _compliance_rate_month WHERE period IN (SELECT period FROM _compliance_periods)
        UNION ALL
        SELECT unit_level, unit_code, jenis_faskes, ytd_period, 'ytd', form, {counts}
          FROM spread WHERE ytd_period IN (SELECT period FROM _compliance_periods)
    )
    SELECT *,
           CASE WHEN expected > 0 THEN received * 100.0 / expected END AS completeness_pct,
           CASE WHEN expected > 0 THEN on_time * 100.0 / expected END AS timeliness_pct,
           CASE WHEN expected > 0 THEN received_by_cutoff * 100.0 / expected END
             AS completeness_at_cutoff_pct,
           CASE WHEN expected > 0 THEN on_time_by_cutoff * 100.0 / expected END
             AS timeliness_at_cutoff_pct,
           CASE WHEN network_to_forward > 0
                THEN network_forwarded_on_time * 100.0 / network_to_forward END AS forwarding_pct
      FROM counted
"""


def build_reporting_rates(con: duckdb.DuckDBPyConnection, settings: Settings,
                          periods: list[str]) -> int:
    """Write `compliance.reporting_rate` for `periods`: `month` rows from that month's stored
    statuses, `ytd` rows from January..M of the same year (so run earlier months first).

    DHIS2 `REPORTING_RATE` / `REPORTING_RATE_ON_TIME`: completeness % = received (on_time +
    late) ÷ expected × 100, timeliness % = on_time ÷ expected × 100, NULL when expected = 0;
    every count is a sum over the unit's facility rows and every percentage a ratio of those sums,
    never a mean of percentages. Beside them, completeness and timeliness as known at the
    cut-off (`received_by_cutoff`, `on_time_by_cutoff` ÷ expected; `expected_cutoff_open` > 0 =
    still provisional) and forwarding timeliness (`network_forwarded_on_time` ÷
    `network_to_forward`). Unexpected arrivals are not in the numerator (no cap at 100 %).
    `jenis_faskes` / `form` = 'semua' aggregate over all types / forms; a facility's rows are
    `jenis_faskes` 'semua' only (its type is `reference.facility.jenis_faskes`); units whose code
    is NULL are left out of that level (they count in the levels above).
    """
    per_level = " UNION ALL ".join(
        f"SELECT '{level}' AS unit_level, {column} AS unit_code, period, jenis_faskes, form, "
        f"{STATUS_COUNTS} FROM statuses WHERE {column} IS NOT NULL "
        f"GROUP BY {column}, period, jenis_faskes, form"
        for level, column in UNIT_LEVELS.items() if level != "facility")
    counts = ", ".join(RATE_COUNTS)
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in RATE_COUNTS)
    running = ", ".join(f"CAST(sum({c}) OVER w AS BIGINT) AS {c}" for c in RATE_COUNTS)
    with _staged(con, settings, periods) as stage:
        status_months, carry = _rate_sources(con, calendar.validate_periods(periods))
        stage.create("rate_month", RATE_MONTH_SQL.format(per_level=per_level, sums=sums,
                                                         status_counts=STATUS_COUNTS),
                     {"status_months": status_months})
        con.execute(RATE_CARRY_SQL.format(counts=counts), {"carry": carry})
        return replace_rows(con, "compliance.reporting_rate",
                            RATES_SQL.format(counts=counts, running=running),
                            where=PERIODS_WHERE)


# --- whole layer ------------------------------------------------------------------------------

def run_compliance(con: duckdb.DuckDBPyConnection, settings: Settings, periods: list[str],
                   as_of: datetime | None = None) -> dict[str, int]:
    """Expected → status (+ history) → rates for `periods`, in that order. The follow-up list
    that reads them is built by the evaluation layer (`evaluation.build_followup`)."""
    return {
        "expected_report": build_expected_reports(con, settings, periods),
        "report_status": build_report_status(con, settings, periods, as_of),
        "reporting_rate": build_reporting_rates(con, settings, periods),
    }


# --- checks (used by data_quality/) -----------------------------------------------------------

MISSING_SQL = """
    SELECT s.kode_faskes, f.nama_faskes, s.form, s.kode_jejaring, s.kode_kabkota, s.cutoff_date
      FROM compliance.report_status s
      LEFT JOIN reference.facility f USING (kode_faskes)
     WHERE s.period = $period AND s.status = 'missing'
     ORDER BY s.kode_kabkota, s.kode_jejaring, s.kode_faskes, s.form
"""

# `{received}`: the status condition of the numerator (a code constant); `{meets}`: the one
# judgement rule (`judgement.meets_sql`) on the unit's percentage.
BELOW_THRESHOLD_SQL = """
    WITH long AS (
        SELECT 'kabkota' AS unit_level, kode_kabkota AS unit_code, status
          FROM compliance.report_status
         WHERE period = $period AND expected AND kode_kabkota IS NOT NULL
        UNION ALL
        SELECT 'puskesmas_network', kode_jejaring, status FROM compliance.report_status
         WHERE period = $period AND expected AND kode_jejaring IS NOT NULL
    ), per_unit AS (
        SELECT unit_level, unit_code, count(*) AS expected,
               count(*) FILTER (WHERE {received}) AS n
          FROM long GROUP BY ALL
    )
    SELECT unit_level, unit_code, expected, n, round(n * 100.0 / expected, 1) AS pct
      FROM per_unit WHERE NOT {meets}
     ORDER BY unit_level, pct, unit_code
"""
_NUMERATOR = {"completeness": "status IN ('on_time', 'late')", "timeliness": "status = 'on_time'"}


def missing_after_cutoff(con: duckdb.DuckDBPyConnection, period: str) -> list[tuple]:
    """Expected reports of `period` still `missing` (nothing received by the cut-off):
    (kode_faskes, nama_faskes, form, kode_jejaring, kode_kabkota, cutoff_date), sorted."""
    return con.execute(MISSING_SQL, {"period": period}).fetchall()


def units_below_threshold(con: duckdb.DuckDBPyConnection, period: str, metric: str,
                          threshold: float) -> list[tuple]:
    """Kab/kota and puskesmas networks whose `metric` (`completeness` | `timeliness`) for `period`
    (all forms, all facility types) does not meet `threshold` % by the one judgement rule
    (`judgement.meets`: value ≥ threshold, so a unit exactly on the threshold meets it and is
    not listed). Computed from `compliance.report_status` (ratio of sums), so the check does not
    depend on `reporting_rate` being materialised.
    Returns (unit_level, unit_code, expected, numerator, pct) sorted by level, pct."""
    if metric not in _NUMERATOR:
        raise ValueError(f"metric {metric!r}: expected completeness or timeliness")
    sql = BELOW_THRESHOLD_SQL.format(received=_NUMERATOR[metric],
                                     meets=meets_sql("n * 100.0 / expected", "$threshold"))
    return con.execute(sql, {"period": period, "threshold": threshold}).fetchall()
