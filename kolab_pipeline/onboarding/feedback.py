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
SIMILAR = 0.85       # jaro_winkler_similarity from which a registered code is suggested
SIMILAR_NAME = 0.93  # … and a name ("Klinik Pratama Sehat" vs "… Medika" is already 0.91)


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
AFTER_AS_OF_SQL = """
    SELECT s.kode_faskes, f.nama_faskes, s.form, s.period, s.version, s.received_at,
           s.received_source, s.source_path, s.row_number, coalesce(f.timezone, $tz) AS tz
      FROM clean.submission s
      LEFT JOIN reference.facility f ON f.kode_faskes = s.kode_faskes
      JOIN _feedback_as_of zone ON zone.tz = coalesce(f.timezone, $tz)
     WHERE s.received_at > zone.as_of AND {periods}
     ORDER BY s.period DESC, s.kode_faskes, s.form, s.version
"""


def _periods_filter(periods: Sequence[str] | None, column: str = "period") -> str:
    return f"list_contains($periods::VARCHAR[], {column})" if periods is not None else "TRUE"


def received_after_as_of(con: duckdb.DuckDBPyConnection, settings: Settings,
                         periods: Sequence[str] | None = None) -> list[dict]:
    stage_as_of(con, settings)
    params: dict = {"tz": settings.config.timezones.default}
    if periods is not None:
        params["periods"] = list(periods)
    return _dicts(con, AFTER_AS_OF_SQL.format(periods=_periods_filter(periods, "s.period")),
                  params)


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> list[dict]:
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- receipt sources and statuses --------------------------------------------------------------

# The source of each received report's receipt time: the version whose received_at decided it
# (the first valid version received by as_of = report_status.received_at).
SOURCES_SQL = """
    SELECT s.received_source, count(DISTINCT (rs.kode_faskes, rs.period, rs.form)) AS n
      FROM compliance.report_status rs
      JOIN clean.submission s ON s.kode_faskes = rs.kode_faskes AND s.period = rs.period
                             AND s.form = rs.form AND s.received_at = rs.received_at
     WHERE rs.received_at IS NOT NULL AND {periods}
     GROUP BY ALL ORDER BY n DESC, s.received_source
"""

FILE_DATE_SQL = """
    SELECT DISTINCT s.source_path, s.received_source, min(s.received_at) AS received_at
      FROM compliance.report_status rs
      JOIN clean.submission s ON s.kode_faskes = rs.kode_faskes AND s.period = rs.period
                             AND s.form = rs.form AND s.received_at = rs.received_at
     WHERE rs.received_at IS NOT NULL AND {periods}
       AND list_contains($file_date::VARCHAR[], s.received_source)
     GROUP BY ALL ORDER BY s.source_path
"""

STATUS_SQL = """
    SELECT rs.status, rs.kode_faskes, f.nama_faskes, rs.jenis_faskes, rs.form, rs.period,
           rs.days_late, rs.received_local_date, rs.overdue
      FROM compliance.report_status rs
      LEFT JOIN reference.facility f ON f.kode_faskes = rs.kode_faskes
     WHERE {periods}
     ORDER BY rs.period DESC, rs.kode_faskes, rs.form
"""


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
    """Everything the end-of-run summary says, read once from the warehouse."""

    periods: list[str] | None
    as_of: str
    sources: list[tuple[str, int]] = field(default_factory=list)
    file_date_files: list[dict] = field(default_factory=list)
    statuses: dict[str, list[dict]] = field(default_factory=dict)
    quarantine_by_rule: list[tuple[str, str, int]] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    after_as_of: list[dict] = field(default_factory=list)
    duplicate_files: list[str] = field(default_factory=list)
    rejected_files: list[tuple[str, str]] = field(default_factory=list)


def _names(rows: Sequence[dict], describe, limit: int = LISTED) -> list[str]:
    out = [f"    {describe(r)}" for r in rows[:limit]]
    if len(rows) > limit:
        out.append(f"    … and {len(rows) - limit} more")
    return out


def _facility(r: dict) -> str:
    return f"{r['kode_faskes']} {r.get('nama_faskes') or ''}".rstrip()


def collect(con: duckdb.DuckDBPyConnection, settings: Settings,
            periods: Sequence[str] | None = None) -> Feedback:
    """Read the feedback of `periods` (None = every month) from a warehouse connection."""
    fb = Feedback(periods=list(periods) if periods is not None else None,
                  as_of=settings.config.reporting.as_of_text())
    params: dict = {} if periods is None else {"periods": list(periods)}
    where = _periods_filter(periods, "rs.period")
    fb.sources = [(s, n) for s, n in con.execute(SOURCES_SQL.format(periods=where),
                                                   params).fetchall()]
    fb.file_date_files = _dicts(con, FILE_DATE_SQL.format(periods=where),
                                {**params, "file_date": list(FILE_DATE_SOURCES)})
    for row in _dicts(con, STATUS_SQL.format(periods=where), params):
        fb.statuses.setdefault(row["status"], []).append(row)
    fb.quarantined = quarantined_rows(con, periods)
    by_rule: dict[str, int] = {}
    for q in fb.quarantined:
        for rule in q.rules:
            by_rule[rule] = by_rule.get(rule, 0) + 1
    messages = rules()
    fb.quarantine_by_rule = sorted(
        ((r, messages[r].message_en if r in messages else r, n) for r, n in by_rule.items()),
        key=lambda t: (-t[2], t[0]))
    fb.after_as_of = received_after_as_of(con, settings, periods)
    fb.duplicate_files = [p for (p,) in con.execute(
        "SELECT source_path FROM raw.landing_path WHERE role = 'duplicate' "
        "ORDER BY source_path").fetchall()]
    fb.rejected_files = con.execute(
        "SELECT source_path, reject_rule FROM raw.landing_file WHERE status = 'rejected' "
        "ORDER BY source_path").fetchall()
    return fb


# --- quarantine with "did you mean" ------------------------------------------------------------

# One rejected raw row (or rejected file) with its rules, its first reason and what it wrote.
QUARANTINE_SQL = """
    SELECT q.source_path, q.row_number, list(DISTINCT q.rule_id ORDER BY q.rule_id) AS rules,
           min(q.reason_en) AS reason, any_value(q.kode_faskes) AS kode_faskes,
           any_value(r.kode_faskes) AS kode_written, any_value(r.nama_faskes) AS nama_written,
           bool_or(q.rule_id = 'V01') AS unknown_code
      FROM clean.quarantine q
      LEFT JOIN raw.submission_row r ON r.raw_row_id = q.raw_row_id
     WHERE {periods}
     GROUP BY q.source_path, q.raw_row_id, q.row_number
     ORDER BY q.source_path, q.row_number NULLS FIRST
"""

# The registered facility an unknown code most likely meant: its name written in the row when
# that name is a registered alias, else the registered code (or local code) closest to the
# written code (Jaro-Winkler ≥ $similar), else the registered name closest to the written name
# (≥ $similar_name: names of one kind share long prefixes).
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
        UNION ALL
        SELECT n.kode, n.nama, a.kode_faskes, 1,
               jaro_winkler_similarity(a.alias_norm, n.nama_norm)
          FROM normed n JOIN reference.facility_alias a
            ON a.alias_type = 'nama' AND n.nama_norm <> ''
    )
    SELECT c.kode, c.nama, arg_max(c.kode_faskes, (c.strength, c.score)) AS suggestion,
           arg_max(f.nama_faskes, (c.strength, c.score)) AS suggestion_name
      FROM candidates c JOIN reference.facility f ON f.kode_faskes = c.kode_faskes
     WHERE c.score >= CASE WHEN c.strength = 1 THEN $similar_name ELSE $similar END
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
                                     "similar": SIMILAR,
                                     "similar_name": SIMILAR_NAME}).fetchall()
    return {(k, n): f"{s} ({name})" for k, n, s, name in rows}


def quarantined_rows(con: duckdb.DuckDBPyConnection,
                     periods: Sequence[str] | None = None) -> list[Quarantined]:
    """Every quarantined row (rows without a period and rejected files included) with a
    suggestion for unknown facility codes."""
    where = ("(q.period IS NULL OR list_contains($periods::VARCHAR[], q.period))"
             if periods is not None else "TRUE")
    rows = _dicts(con, QUARANTINE_SQL.format(periods=where),
                  {} if periods is None else {"periods": list(periods)})
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
    for r in sorted(rows, key=lambda r: (r["kode_faskes"], r["form"], r["period"])):
        grouped.setdefault(_facility(r), {}).setdefault(r["form"], []).append(describe(r))
    lines = [f"{who}: " + "; ".join(f"{form} {', '.join(items)}" for form, items in forms.items())
             for who, forms in grouped.items()]
    return _names(lines, lambda line: line)


def summary_lines(fb: Feedback) -> list[str]:
    """The feedback as the lines `kolab run` prints (English, with the codes people search)."""
    st = fb.statuses
    n = {k: len(v) for k, v in st.items()}
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
        lines.append(f"  {len(fb.file_date_files)} file(s) whose receipt time is only the file's "
                     "date: list them in landing/_diterima.csv (file,received_at):")
        lines += _names(fb.file_date_files, lambda r: r["source_path"])
    if st.get("late"):
        lines.append(f"  late ({n['late']}; days after the due date):")
        lines += _by_facility(st["late"], lambda r: f"{r['period']} ({r['days_late']} d)")
    if st.get("missing"):
        lines.append(f"  missing ({n['missing']}; evaluation.followup lists them per "
                     "puskesmas):")
        lines += _by_facility(st["missing"], lambda r: r["period"])
    overdue = [r for r in st.get("pending", []) if r["overdue"]]
    if overdue:
        lines.append(f"  pending and past the due date ({len(overdue)}):")
        lines += _by_facility(overdue, lambda r: r["period"])
    rows = [q for q in fb.quarantined if q.row_number is not None]
    files = {q.source_path for q in rows}
    lines.append(f"quarantined: {len(rows)} row(s) in {len(files)} file(s), "
                 f"{len(fb.rejected_files)} file(s) rejected whole (clean.quarantine)")
    for rule, message, count in fb.quarantine_by_rule[:5]:
        lines.append(f"  {rule} ({count}): {message}")
        hits = [q for q in fb.quarantined if rule in q.rules]
        lines += _names(hits, _quarantine_line, limit=5)
    ignored = []
    if fb.after_as_of:
        ignored.append(f"  {len(fb.after_as_of)} report version(s) received after as_of "
                       f"{fb.as_of}: not counted until as_of is later")
        ignored += _names(fb.after_as_of, lambda r: (
            f"{_facility(r)} {r['form']} {r['period']} ({r['source_path']}"
            f"{' row ' + str(r['row_number']) if r['row_number'] else ''}): received "
            f"{local_text(r['received_at'], r['tz'])} from "
            f"{source_words(r['received_source'])}"))
    if st.get("unexpected"):
        ignored.append(f"  {n['unexpected']} report(s) nobody expected (form not assigned or "
                       "facility closed that month): kept, not counted in the rates")
        ignored += _names(st["unexpected"],
                          lambda r: f"{_facility(r)} {r['form']} {r['period']}")
    if fb.duplicate_files:
        ignored.append(f"  {len(fb.duplicate_files)} file(s) with the same content as another "
                       "file (read once):")
        ignored += _names(fb.duplicate_files, lambda p: p)
    lines.append("ignored:" + ("" if ignored else " nothing"))
    lines += ignored
    return lines


def _quarantine_line(q: Quarantined) -> str:
    text = f"{q.where()}: {q.reason}"
    if q.suggestion:
        text += f" — did you mean {q.suggestion}?"
    return text
