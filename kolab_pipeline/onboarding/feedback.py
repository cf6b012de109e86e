"""What a person reads after `kolab run` (and `kolab check` reads before it): how each report was
taken as received and from which source, which reports are late or missing, which rows were
quarantined and why (with "did you mean …" for unknown facility codes), and what was ignored.

Every function reads a warehouse connection (the real one after a run, the scratch one of
`kolab check`). Receipt sources are read from `clean.submission.received_source` and described
through `SOURCE_WORDS`; a value not listed there (a source added later) is shown as itself, so
the summary works for `tanggal_lapor | manifest | mtime | source_column | dhis2_completeDate` and
for `journal` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb

from kolab_pipeline import labels
from kolab_pipeline.config import Settings
from kolab_pipeline.reference import norm_sql
from kolab_pipeline.rules import rules

# received_source → what decided the receipt time, in words.
SOURCE_WORDS = {
    "manifest": "receipt log landing/_diterima.csv",
    "journal": "receipt journal (the file's date when first seen)",
    "tanggal_lapor": "tanggal_lapor written in the row",
    "mtime": "the file's date (mtime)",
    "source_column": "the SQL source's received_at",
    "dhis2_completeDate": "DHIS2 completeDate",
}
# Sources that are only a file's date: the receipt is lost when the file is copied or restored.
FILE_DATE_SOURCES = ("mtime", "journal")
LISTED = 10   # names listed per category before "… and N more"
EDITS = 1            # typos (Damerau-Levenshtein) from which a registered code is suggested
SIMILAR_NAME = 0.93  # jaro_winkler_similarity for a name ("Klinik Pratama Sehat" vs "… Medika"
                     # is already 0.91)


def source_words(source: str | None) -> str:
    return SOURCE_WORDS.get(source or "", source or "unknown")


# --- as_of per facility ------------------------------------------------------------------------

def stage_as_of(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """Temp table `_feedback_as_of` (tz, as_of): `as_of` in UTC per time zone (a date ends at
    midnight local time), for every zone of the registry and the configuration."""
    cfg = settings.config
    zones = sorted({*cfg.as_of_by_zone(), *(z for (z,) in con.execute(
        "SELECT DISTINCT timezone FROM reference.facility WHERE timezone IS NOT NULL"
    ).fetchall())})
    con.execute("CREATE OR REPLACE TEMP TABLE _feedback_as_of AS "
                "SELECT unnest($z::VARCHAR[]) AS tz, unnest($a::TIMESTAMPTZ[]) AS as_of",
                {"z": zones, "a": [cfg.as_of_utc(z) for z in zones]})
    return "_feedback_as_of"


# Versions received after as_of (per the facility's zone): compliance does not count them yet.
# `n_total`: how many there are in all (the list may be cut at $limit).
AFTER_AS_OF_SQL = """
    SELECT s.kode_faskes, f.nama_faskes, s.form, s.period, s.version, s.received_at,
           s.received_source, s.source_path, s.row_number, coalesce(f.timezone, $tz) AS tz,
           count(*) OVER () AS n_total
      FROM clean.submission s
      LEFT JOIN reference.facility f ON f.kode_faskes = s.kode_faskes
      JOIN _feedback_as_of zone ON zone.tz = coalesce(f.timezone, $tz)
     WHERE s.received_at > zone.as_of AND {periods}
     ORDER BY s.period DESC, s.kode_faskes, s.form, s.version
     LIMIT $limit
"""
NO_LIMIT = 2**62


def _periods_filter(periods: Sequence[str] | None, column: str = "period") -> str:
    return f"list_contains($periods::VARCHAR[], {column})" if periods is not None else "TRUE"


def _period_params(periods: Sequence[str] | None) -> dict:
    return {} if periods is None else {"periods": list(periods)}


def received_after_as_of(con: duckdb.DuckDBPyConnection, settings: Settings,
                         periods: Sequence[str] | None = None,
                         limit: int | None = None) -> list[dict]:
    """Versions received after `as_of` (each row carries `n_total`, the count before `limit`)."""
    stage_as_of(con, settings)
    params = {"tz": settings.config.timezones.default, "limit": limit or NO_LIMIT,
              **_period_params(periods)}
    return query_dicts(
        con, AFTER_AS_OF_SQL.format(periods=_periods_filter(periods, "s.period")), params)


def query_dicts(con: duckdb.DuckDBPyConnection, sql: str,
                params: dict | None = None) -> list[dict]:
    """The rows of `sql` as dicts keyed by column name."""
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- receipt sources and statuses --------------------------------------------------------------

# The source of each received report's receipt time: the version whose received_at decided it
# (the first valid version received by as_of = report_status.received_at).
DECIDING = """
      FROM compliance.report_status rs
      JOIN clean.submission s ON s.kode_faskes = rs.kode_faskes AND s.period = rs.period
                             AND s.form = rs.form AND s.received_at = rs.received_at
     WHERE rs.received_at IS NOT NULL AND {periods}
"""
SOURCES_SQL = f"""
    SELECT s.received_source, count(DISTINCT (rs.kode_faskes, rs.period, rs.form)) AS n
    {DECIDING}
     GROUP BY ALL ORDER BY n DESC, s.received_source
"""
FILE_DATE_SQL = f"""
    SELECT s.source_path, min(s.received_at) AS received_at, count(*) OVER () AS n_total
    {DECIDING}
       AND list_contains($file_date::VARCHAR[], s.received_source)
     GROUP BY ALL ORDER BY s.source_path LIMIT $limit
"""
STATUS_COUNTS_SQL = """
    SELECT status, count(*) AS n, count(*) FILTER (WHERE overdue) AS n_overdue
      FROM compliance.report_status rs WHERE {periods} GROUP BY ALL
"""
# The reports of one kind (`{condition}`) of the $limit facilities with most of them (then by
# code), and how many facilities have one (`n_facilities`).
STATUS_LIST_SQL = """
    WITH hit AS (
        SELECT rs.kode_faskes, rs.form, rs.period, rs.days_late
          FROM compliance.report_status rs WHERE {periods} AND {condition}
    ), facilities AS (
        SELECT kode_faskes, row_number() OVER (ORDER BY n DESC, kode_faskes) AS k
          FROM (SELECT kode_faskes, count(*) AS n FROM hit GROUP BY ALL)
    )
    SELECT hit.*, f.nama_faskes, facilities.k, (SELECT count(*) FROM facilities) AS n_facilities
      FROM hit JOIN facilities USING (kode_faskes)
      LEFT JOIN reference.facility f ON f.kode_faskes = hit.kode_faskes
     WHERE facilities.k <= $limit
     ORDER BY facilities.k, hit.form, hit.period
"""
ITEMS_PER_FACILITY = 4   # months listed per facility and form (the latest) before "(+N earlier)"
# status list name → which report_status rows (code constants, never user text)
STATUS_LISTS = {"late": "rs.status = 'late'", "missing": "rs.status = 'missing'",
                "overdue": "rs.status = 'pending' AND rs.overdue",
                "unexpected": "rs.status = 'unexpected'"}


@dataclass
class Quarantined:
    """One rejected raw row (or whole file) with every rule that rejected it."""

    source_path: str
    row_number: int | None
    rules: list[str]
    reason: str
    written: str | None = None
    suggestion: str | None = None

    def where(self) -> str:
        return self.source_path + (f" row {self.row_number}" if self.row_number else "")


@dataclass
class Feedback:
    """Everything the end-of-run summary says, read once from the warehouse: counts in full,
    lists cut at `LISTED` (each list knows its full length)."""

    periods: list[str] | None
    as_of: str
    counts: dict[str, int] = field(default_factory=dict)       # status → reports
    n_overdue: int = 0
    sources: list[tuple[str, int]] = field(default_factory=list)
    file_date_files: list[dict] = field(default_factory=list)
    lists: dict[str, list[dict]] = field(default_factory=dict)  # STATUS_LISTS name → rows
    quarantine_totals: dict[str, int] = field(default_factory=dict)
    quarantine_by_rule: list[tuple[str, str, int]] = field(default_factory=list)
    quarantined: dict[str, list[Quarantined]] = field(default_factory=dict)  # rule → first rows
    after_as_of: list[dict] = field(default_factory=list)
    duplicate_files: list[str] = field(default_factory=list)
    n_duplicate_files: int = 0


def _names(lines: Sequence[str], total: int | None = None, limit: int = LISTED) -> list[str]:
    out = [f"    {line}" for line in lines[:limit]]
    total = len(lines) if total is None else total
    if total > min(len(lines), limit):
        out.append(f"    … and {total - min(len(lines), limit)} more")
    return out


def facility_text(r: dict) -> str:
    """`P… Puskesmas X`: a row's facility code and name."""
    return f"{r['kode_faskes']} {r.get('nama_faskes') or ''}".rstrip()


def _total(rows: Sequence[dict], key: str = "n_total") -> int:
    return rows[0][key] if rows else 0


QUARANTINE_TOTALS_SQL = """
    SELECT count(DISTINCT raw_row_id) AS n_rows,
           count(DISTINCT source_path) FILTER (WHERE raw_row_id IS NOT NULL) AS n_files,
           count(DISTINCT source_path) FILTER (WHERE raw_row_id IS NULL) AS n_rejected_files
      FROM clean.quarantine q WHERE {periods}
"""
QUARANTINE_RULES_SQL = """
    SELECT rule_id, count(DISTINCT coalesce(raw_row_id, source_path)) AS n
      FROM clean.quarantine q WHERE {periods} GROUP BY ALL ORDER BY n DESC, rule_id
"""


def collect(con: duckdb.DuckDBPyConnection, settings: Settings,
            periods: Sequence[str] | None = None, limit: int = LISTED) -> Feedback:
    """Read the feedback of `periods` (None = every month) from a warehouse connection."""
    fb = Feedback(periods=list(periods) if periods is not None else None,
                  as_of=settings.config.reporting.as_of_text())
    params = _period_params(periods)
    where = _periods_filter(periods, "rs.period")
    for status, n, n_overdue in con.execute(STATUS_COUNTS_SQL.format(periods=where),
                                            params).fetchall():
        fb.counts[status] = n
        fb.n_overdue += n_overdue
    fb.sources = [(src, n) for src, n in con.execute(SOURCES_SQL.format(periods=where),
                                                     params).fetchall()]
    fb.file_date_files = query_dicts(con, FILE_DATE_SQL.format(periods=where), {
        **params, "file_date": list(FILE_DATE_SOURCES), "limit": limit})
    for name, condition in STATUS_LISTS.items():
        fb.lists[name] = query_dicts(
            con, STATUS_LIST_SQL.format(periods=where, condition=condition),
            {**params, "limit": limit})
    q_where = ("(q.period IS NULL OR list_contains($periods::VARCHAR[], q.period))"
               if periods is not None else "TRUE")
    fb.quarantine_totals = query_dicts(con, QUARANTINE_TOTALS_SQL.format(periods=q_where),
                                       params)[0]
    messages = rules()
    for rule, n in con.execute(QUARANTINE_RULES_SQL.format(periods=q_where), params).fetchall():
        fb.quarantine_by_rule.append(
            (rule, messages[rule].message_en if rule in messages else rule, n))
    for rule, _, _ in fb.quarantine_by_rule[:5]:
        fb.quarantined[rule] = quarantined_rows(con, periods, rule=rule, limit=5)
    fb.after_as_of = received_after_as_of(con, settings, periods, limit=limit)
    dup = con.execute("SELECT source_path, count(*) OVER () FROM raw.landing_path "
                      "WHERE role = 'duplicate' ORDER BY source_path LIMIT $limit",
                      {"limit": limit}).fetchall()
    fb.duplicate_files = [p for p, _ in dup]
    fb.n_duplicate_files = dup[0][1] if dup else 0
    return fb


# --- quarantine with "did you mean" ------------------------------------------------------------

# One rejected raw row (or rejected file) with its rules, its first reason and what it wrote;
# `{having}` keeps the rows one rule rejected.
QUARANTINE_SQL = """
    SELECT q.source_path, q.row_number, list(DISTINCT q.rule_id ORDER BY q.rule_id) AS rules,
           min(q.reason_en) AS reason, any_value(q.kode_faskes) AS kode_faskes,
           any_value(r.kode_faskes) AS kode_written, any_value(r.nama_faskes) AS nama_written,
           bool_or(q.rule_id = 'V01') AS unknown_code
      FROM clean.quarantine q
      LEFT JOIN raw.submission_row r ON r.raw_row_id = q.raw_row_id
     WHERE {periods}
     GROUP BY q.source_path, q.raw_row_id, q.row_number
    HAVING {having}
     ORDER BY q.source_path, q.row_number NULLS FIRST
     LIMIT $limit
"""

# The registered facility an unknown code most likely meant: its name written in the row when
# that name is a registered alias, else a registered code (or local code) one typo away from the
# written code (Damerau-Levenshtein ≤ $edits: one character left out, added, changed or two
# swapped; codes share long prefixes, so Jaro-Winkler alone rates KP3328X01 0.94 against
# KP33280013), the closest by Jaro-Winkler first, else the registered name closest to the written
# name (Jaro-Winkler ≥ $similar_name: names of one kind share long prefixes too).
SUGGEST_SQL = f"""
    WITH written AS (
        SELECT unnest($codes::VARCHAR[]) AS kode, unnest($names::VARCHAR[]) AS nama
    ), normed AS (
        SELECT kode, nama, {norm_sql('kode')} AS kode_norm, {norm_sql('nama')} AS nama_norm
          FROM written
    ), candidates AS (
        SELECT n.kode, n.nama, a.kode_faskes, 3 AS strength, 1.0 AS score
          FROM normed n JOIN reference.facility_alias a
            ON a.alias_type = 'nama' AND a.alias_norm = n.nama_norm AND n.nama_norm <> ''
        UNION ALL
        SELECT n.kode, n.nama, a.kode_faskes, 2,
               jaro_winkler_similarity(a.alias_norm, n.kode_norm)
          FROM normed n JOIN reference.facility_alias a
            ON a.alias_type IN ('kode', 'kode_lokal') AND n.kode_norm <> ''
           AND damerau_levenshtein(a.alias_norm, n.kode_norm) <= $edits
        UNION ALL
        SELECT n.kode, n.nama, a.kode_faskes, 1,
               jaro_winkler_similarity(a.alias_norm, n.nama_norm)
          FROM normed n JOIN reference.facility_alias a
            ON a.alias_type = 'nama' AND n.nama_norm <> ''
    )
    SELECT c.kode, c.nama, arg_max(c.kode_faskes, (c.strength, c.score)) AS suggestion,
           arg_max(f.nama_faskes, (c.strength, c.score)) AS suggestion_name
      FROM candidates c JOIN reference.facility f ON f.kode_faskes = c.kode_faskes
     WHERE c.strength > 1 OR c.score >= $similar_name
     GROUP BY c.kode, c.nama
"""


def suggestions(con: duckdb.DuckDBPyConnection,
                written: Sequence[tuple[str | None, str | None]]) -> dict[tuple, str]:
    """(code, name) as written → "KP36729001 (Klinik Pratama Sehat)" for the pairs where a
    registered facility is close enough."""
    pairs = sorted({(k or "", n or "") for k, n in written})
    if not pairs:
        return {}
    rows = con.execute(SUGGEST_SQL, {"codes": [k for k, _ in pairs],
                                     "names": [n for _, n in pairs],
                                     "edits": EDITS,
                                     "similar_name": SIMILAR_NAME}).fetchall()
    return {(k, n): f"{s} ({name})" for k, n, s, name in rows}


def quarantined_rows(con: duckdb.DuckDBPyConnection, periods: Sequence[str] | None = None,
                     rule: str | None = None, limit: int | None = None) -> list[Quarantined]:
    """Quarantined rows (rows without a period and rejected files included; those of `rule`
    only when given; the first `limit`), with a suggestion for unknown facility codes."""
    where = ("(q.period IS NULL OR list_contains($periods::VARCHAR[], q.period))"
             if periods is not None else "TRUE")
    having = "list_contains(rules, $rule)" if rule else "TRUE"
    params: dict = {**_period_params(periods), "limit": limit or NO_LIMIT}
    if rule:
        params["rule"] = rule
    rows = query_dicts(con, QUARANTINE_SQL.format(periods=where, having=having), params)
    unknown = [(r["kode_written"], r["nama_written"]) for r in rows if r["unknown_code"]]
    suggested = suggestions(con, unknown)
    out = []
    for r in rows:
        key = (r["kode_written"] or "", r["nama_written"] or "")
        out.append(Quarantined(r["source_path"], r["row_number"], list(r["rules"]), r["reason"],
                               r["kode_written"], suggested.get(key) if r["unknown_code"]
                               else None))
    return out


# --- the text ----------------------------------------------------------------------------------

def local_text(moment: datetime | None, tz: str | None) -> str:
    """`2025-04-30 10:00 WIB`: a stored UTC moment in the facility's local time."""
    if moment is None:
        return "–"
    if not tz:
        return moment.isoformat(timespec="minutes")
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local:%Y-%m-%d %H:%M} {labels.zone_abbrev(tz)}"


def _by_facility(rows: Sequence[dict], describe) -> list[str]:
    """One line per facility: `P… Puskesmas X: tb 2025-01, 2025-02; kia 2025-02`."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        grouped.setdefault(facility_text(r), {}).setdefault(r["form"], []).append(describe(r))

    def listed(items: list[str]) -> str:
        more = len(items) - ITEMS_PER_FACILITY
        return ", ".join(items[-ITEMS_PER_FACILITY:]) if more <= 0 else (
            f"(+{more} earlier) " + ", ".join(items[-ITEMS_PER_FACILITY:]))

    lines = [f"{who}: " + "; ".join(f"{form} {listed(items)}" for form, items in forms.items())
             for who, forms in grouped.items()]
    return _names(lines, _total(rows, "n_facilities"))


def summary_lines(fb: Feedback) -> list[str]:
    """The feedback as the lines `kolab run` prints (English, with the codes people search)."""
    n = fb.counts
    expected = sum(n.get(k, 0) for k in ("on_time", "late", "missing", "pending"))
    received = n.get("on_time", 0) + n.get("late", 0)
    lines = [f"reports (as_of {fb.as_of}): {expected} expected, {received} received "
             f"({n.get('on_time', 0)} on time, {n.get('late', 0)} late), "
             f"{n.get('missing', 0)} missing, {n.get('pending', 0)} pending "
             "(compliance.report_status)"]
    if fb.sources:
        lines.append("  taken as received at the time given by:")
        lines += [f"    {count:>6,}  {source_words(source)}" for source, count in fb.sources]
    if fb.file_date_files:
        lines.append(f"  {_total(fb.file_date_files)} file(s) whose receipt time is only the "
                     "file's date: list them in landing/_diterima.csv (file,received_at):")
        lines += _names([r["source_path"] for r in fb.file_date_files],
                        _total(fb.file_date_files))
    if fb.lists.get("late"):
        lines.append(f"  late ({n['late']}; days after the due date):")
        lines += _by_facility(fb.lists["late"], lambda r: f"{r['period']} ({r['days_late']} d)")
    if fb.lists.get("missing"):
        lines.append(f"  missing ({n['missing']}; evaluation.followup lists them per "
                     "puskesmas):")
        lines += _by_facility(fb.lists["missing"], lambda r: r["period"])
    if fb.lists.get("overdue"):
        lines.append(f"  pending and past the due date ({fb.n_overdue}):")
        lines += _by_facility(fb.lists["overdue"], lambda r: r["period"])
    t = fb.quarantine_totals
    lines.append(f"quarantined: {t.get('n_rows', 0)} row(s) in {t.get('n_files', 0)} file(s), "
                 f"{t.get('n_rejected_files', 0)} file(s) rejected whole (clean.quarantine)")
    for rule, message, count in fb.quarantine_by_rule[:5]:
        lines.append(f"  {rule} ({count}): {message}")
        lines += _names([_quarantine_line(q) for q in fb.quarantined.get(rule, [])], count,
                        limit=5)
    ignored = []
    if fb.after_as_of:
        ignored.append(f"  {_total(fb.after_as_of)} report version(s) received after as_of "
                       f"{fb.as_of}: not counted until as_of is later")
        ignored += _names([
            f"{facility_text(r)} {r['form']} {r['period']} ({r['source_path']}"
            f"{' row ' + str(r['row_number']) if r['row_number'] else ''}): received "
            f"{local_text(r['received_at'], r['tz'])} from "
            f"{source_words(r['received_source'])}" for r in fb.after_as_of],
            _total(fb.after_as_of))
    if fb.lists.get("unexpected"):
        ignored.append(f"  {n['unexpected']} report(s) nobody expected (form not assigned or "
                       "facility closed that month): kept, not counted in the rates")
        ignored += _by_facility(fb.lists["unexpected"], lambda r: r["period"])
    if fb.duplicate_files:
        ignored.append(f"  {fb.n_duplicate_files} file(s) with the same content as another "
                       "file (read once):")
        ignored += _names(fb.duplicate_files, fb.n_duplicate_files)
    lines.append("ignored:" + ("" if ignored else " nothing"))
    lines += ignored
    return lines


def _quarantine_line(q: Quarantined) -> str:
    text = f"{q.where()}: {q.reason}"
    if q.suggestion:
        text += f" — did you mean {q.suggestion}?"
    return text
