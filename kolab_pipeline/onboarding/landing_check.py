"""`kolab check` on the landing folder: the receipt log (`landing/_diterima.csv`), files it does
not list, and what a scratch ingest + clean of the files says (receipt sources, reports after
`as_of`, rejected files, quarantined rows)."""

from __future__ import annotations

import csv
import difflib
import io

import duckdb

from kolab_pipeline.config import Settings
from kolab_pipeline.onboarding import feedback
from kolab_pipeline.onboarding.findings import Report
from kolab_pipeline.raw.dhis2 import DHIS2_DIR
from kolab_pipeline.raw.landing import RECEIPT_MANIFEST, is_ignored, list_landing, manifest_key
from kolab_pipeline.raw.readers import decode_text, parse_timestamp, sniff_delimiter


def check_receipt_log(settings: Settings, report: Report) -> tuple[set[str], list[str]]:
    """Rows of `landing/_diterima.csv` that are unreadable or name no landing file; returns the
    paths it lists and the landing files (relative paths, submissions only)."""
    landing = settings.paths.landing
    files = [e.rel for e in list_landing(landing) if not is_ignored(e.rel)]
    existing = set(files)
    listed: set[str] = set()
    path = landing / RECEIPT_MANIFEST
    rel = f"landing/{RECEIPT_MANIFEST}"
    if not path.exists():
        return listed, files
    try:
        text, _ = decode_text(path.read_bytes())
    except Exception as exc:  # FileRejected: unreadable encoding
        report.add("receipt_log_unreadable", rel, f"unreadable ({exc}); file dates are used")
        return listed, files
    tz = settings.config.timezones.default
    records = csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(text))
    closest = _Closest(files)
    for i, rec in enumerate(records, start=2):
        written = (rec.get("file") or "").strip()
        name = manifest_key(written)
        try:
            ts = parse_timestamp(rec.get("received_at"), tz)
        except ValueError:
            ts = None
        if not name or ts is None:
            report.add("receipt_log_unreadable", rel,
                       f"file {written!r}, received_at {rec.get('received_at')!r}: "
                       "both are needed (received_at as 2025-04-08 or 2025-04-08T09:30+07:00)",
                       i, "received_at" if name else "file")
            continue
        listed.add(name)
        if name not in existing:
            report.add("receipt_log_missing_file", rel,
                       f"{written!r} is not in the landing folder; paths are relative to "
                       f"KOLAB_HOME/landing{closest.hint(name)}", i, "file")
    return listed, files


class _Closest:
    """"; did you mean …?" for a receipt-log path that names no landing file: a file with the
    same name elsewhere, else the closest path (difflib). difflib compares the path with every
    landing file (0.15–0.36 s over a national folder of 23,000 files), so only the first
    `FUZZY_LIMIT` paths of one log get a fuzzy suggestion; the same-name one is a dict lookup."""

    FUZZY_LIMIT = 20

    def __init__(self, files: list[str]) -> None:
        self.files = files
        self.by_name: dict[str, str] = {}
        for f in files:
            self.by_name.setdefault(f.rsplit("/", 1)[-1], f)
        self.fuzzy_left = self.FUZZY_LIMIT

    def hint(self, name: str) -> str:
        same = self.by_name.get(name.rsplit("/", 1)[-1])
        if same is None and self.fuzzy_left > 0:
            self.fuzzy_left -= 1
            close = difflib.get_close_matches(name, self.files, n=1, cutoff=0.85)
            same = close[0] if close else None
        return f"; did you mean {same!r}?" if same else ""


def unlisted_files(settings: Settings, report: Report, listed: set[str],
                   files: list[str]) -> None:
    """Quick form (no reading): landing files the receipt log does not list."""
    by_rel = {e.rel: e for e in list_landing(settings.paths.landing)}
    tz = settings.config.timezones.default
    for rel in files:
        if rel in listed or rel.split("/", 1)[0] == DHIS2_DIR:
            continue
        mtime = feedback.local_text(by_rel[rel].mtime, tz)
        report.add("receipt_from_file_date", f"landing/{rel}",
                   f"not in landing/{RECEIPT_MANIFEST}: its receipt at the Dinkes is the file's "
                   f"date ({mtime}) unless its rows carry tanggal_lapor of a network facility; "
                   f"add a line `{rel},<received_at>`")


def content_findings(con: duckdb.DuckDBPyConnection, settings: Settings,
                     report: Report) -> None:
    """What the scratch ingest + clean of the landing files says (receipt sources, after
    as_of, rejected files, quarantined rows)."""
    tz = settings.config.timezones.default
    for r in feedback.query_dicts(con, """
            SELECT source_path, any_value(received_source) AS source, count(*) AS n,
                   min(received_at) AS received_at, list(row_number ORDER BY row_number) AS rows
              FROM clean.submission WHERE list_contains($sources::VARCHAR[], received_source)
             GROUP BY source_path ORDER BY source_path""",
            {"sources": list(feedback.FILE_DATE_SOURCES)}):
        which = (f"row {_rows(r['rows'])} takes its" if r["n"] == 1
                 else f"rows {_rows(r['rows'])} take their")
        report.add("receipt_from_file_date", f"landing/{r['source_path']}",
                   f"{which} receipt time from "
                   f"{feedback.source_words(r['source'])}: "
                   f"{feedback.local_text(r['received_at'], tz)}; add a line "
                   f"`{r['source_path']},<received_at>` to landing/{RECEIPT_MANIFEST}")
    for r in feedback.received_after_as_of(con, settings):
        report.add("received_after_as_of", f"landing/{r['source_path']}",
                   f"{feedback.facility_text(r)} {r['form']} {r['period']}: received "
                   f"{feedback.local_text(r['received_at'], r['tz'])} "
                   f"({feedback.source_words(r['received_source'])}), after as_of "
                   f"{settings.config.reporting.as_of_text()}: not counted by this run",
                   r["row_number"])
    for path, rule, reason in con.execute(
            "SELECT source_path, reject_rule, reject_reason FROM raw.landing_file "
            "WHERE status = 'rejected' ORDER BY source_path").fetchall():
        report.add("file_rejected", f"landing/{path}", f"{rule}: {reason}")
    columns = dict(((p, n), c) for p, n, c in con.execute(
        "SELECT source_path, row_number, any_value(column_name) FROM clean.quarantine "
        "WHERE row_number IS NOT NULL GROUP BY ALL").fetchall())
    for q in feedback.quarantined_rows(con):
        if q.row_number is None:
            continue
        text = f"{'/'.join(q.rules)}: {q.reason}"
        if q.suggestion:
            text += f"; did you mean {q.suggestion}?"
        report.add("row_quarantined", f"landing/{q.source_path}", text, q.row_number,
                   columns.get((q.source_path, q.row_number)))


def _rows(rows: list[int]) -> str:
    return ", ".join(str(r) for r in rows[:8]) + (", …" if len(rows) > 8 else "")
