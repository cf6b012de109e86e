"""Ingestion runs: every new landing file (`ingest_landing`) or one SQL pull (`ingest_sql`) into
`raw.landing_file`, `raw.landing_path`, `raw.submission_row` and `raw.submission_cell`.

A content (sha256 = `file_id`) is ingested once; a bad file becomes a `rejected` landing_file row
with a file rule (F01…F10) and the run goes on.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from kolab_pipeline.config import Settings
from kolab_pipeline.raw.dhis2 import DHIS2_DIR, load_dhis2_mapping, parse_dhis2
from kolab_pipeline.raw.fast_csv import CsvBatcher
from kolab_pipeline.raw.landing import (
    LandingEntry,
    detect_format,
    is_ignored,
    list_landing,
    read_manifest,
    sha256_file,
)
from kolab_pipeline.raw.model import (
    ROW_COLUMNS,
    FileRejected,
    IngestSummary,
    Parsed,
    new_run_id,
    reject_reason,
)
from kolab_pipeline.raw.readers import close_reader
from kolab_pipeline.raw.sql_source import fetch_sql_rows, parse_sql_rows, pull_id, sql_label
from kolab_pipeline.raw.template import parse_template_csv, parse_template_xlsx
from kolab_pipeline.raw.writer import Writer, file_row, migrate, path_row

_KNOWN_PATHS = "SELECT source_path, size_bytes, file_mtime FROM raw.landing_path"
_KNOWN_IDS = "SELECT file_id, reject_rule, reject_reason FROM raw.landing_file"
_KNOWN_PAIRS = "SELECT source_path, file_id FROM raw.landing_path"
_PULL_SEEN = "SELECT count(*) FROM raw.landing_file WHERE file_id = $file_id"


def _stamp_lineage(rows: pd.DataFrame, file_id: str, kind: str, rel: str, run_id: str) -> None:
    rows["file_id"] = file_id
    rows["source_kind"] = kind
    rows["source_path"] = rel
    rows["run_id"] = run_id


@dataclass
class _LandingRun:
    """What every file of one `ingest_landing` run shares: the run's identity, the receipt
    manifest, the CSV reader, the writer and batcher, and what the warehouse already holds."""

    settings: Settings
    run_id: str
    now: datetime
    manifest: dict[str, datetime]
    reader: duckdb.DuckDBPyConnection
    writer: Writer
    # file_id → (rule, reason) when that content was rejected, else None
    known_ids: dict[str, tuple[str, str] | None]
    known_pairs: set[tuple[str, str]]    # (source_path, file_id) already on record
    batcher: CsvBatcher | None = None

    @property
    def max_bytes(self) -> int:
        return int(self.settings.config.ingest.max_file_mb * 1024 * 1024)

    def received(self, entry: LandingEntry) -> tuple[datetime, str]:
        """When the file arrived and how we know: the receipt manifest, else its mtime."""
        received = self.manifest.get(entry.rel)
        return (received, "manifest") if received else (entry.mtime, "mtime")

    def file_base(self, entry: LandingEntry) -> dict[str, Any]:
        received_at, received_source = self.received(entry)
        return dict(kind="file", rel=entry.rel, size=entry.size, mtime=entry.mtime,
                    received_at=received_at, received_source=received_source,
                    run_id=self.run_id, now=self.now)

    def one_by_one(self, entry: LandingEntry, into: IngestSummary,
                   prehashed: tuple[str, bytes, int]) -> None:
        """The per-file path for a file the batcher gave back (already read)."""
        self.ingest_file(entry, into, prehashed=prehashed, batch=False)

    def ingest_file(self, entry: LandingEntry, summary: IngestSummary,
                    prehashed: tuple[str, bytes, int] | None = None, batch: bool = True) -> None:
        """One landing file: hash, skip/record duplicates, then parse it (or hand a plain CSV to
        the batcher) and queue its rows. `prehashed` = (file_id, bytes, size) already read."""
        rel = entry.rel
        batcher = self.batcher if batch else None
        if entry.symlink_target is not None:
            file_id = hashlib.sha256(f"symlink:{rel}".encode()).hexdigest()
            if file_id not in self.known_ids:
                self.reject(entry, summary, file_id, None, "F10",
                            f"a symbolic link to {entry.symlink_target}; copy the file into the "
                            "landing folder instead")
            return
        try:
            file_id, data, size = (prehashed if prehashed is not None
                                   else sha256_file(entry.path, self.max_bytes))
        except OSError as exc:
            key = f"unreadable:{rel}:{entry.size}:{entry.mtime}"
            file_id = hashlib.sha256(key.encode()).hexdigest()
            if file_id not in self.known_ids:
                self.reject(entry, summary, file_id, None, "F01",
                            f"cannot be opened ({exc.strerror or exc})")
            return
        if file_id in self.known_ids:
            self.seen_again(entry, summary, file_id, batcher)
            return
        summary.bytes_read += size
        fmt: str | None = None
        try:
            if size == 0:
                raise FileRejected("F02", "the file is empty (0 bytes)")
            if size > self.max_bytes:
                raise FileRejected("F03", f"{size} bytes ({size / 1048576:.2f} MB); the limit is "
                                          f"{self.settings.config.ingest.max_file_mb:g} MB "
                                          "(ingest.max_file_mb in kolab.yaml)")
            assert data is not None
            fmt = detect_format(rel, data)
            if (fmt == "csv" and batcher is not None
                    and batcher.offer(entry, file_id, data, *self.received(entry))):
                return  # written with its batch (or, should the batch fail, one by one)
            parsed = self.parse(rel, file_id, fmt, data)
        except FileRejected as exc:
            self.reject(entry, summary, file_id, fmt, exc.rule, exc.detail)
            return
        except Exception as exc:  # never let one file stop the run: F01 with what happened
            rule = "F07" if fmt and fmt.startswith("dhis2") else "F01"
            detail = f"could not be read ({type(exc).__name__}: {exc})".splitlines()[0]
            self.reject(entry, summary, file_id, fmt, rule, detail)
            return
        self.accept(entry, summary, file_id, parsed)

    def parse(self, rel: str, file_id: str, fmt: str, data: bytes) -> Parsed:
        if fmt == "csv":
            return parse_template_csv(self.reader, data, file_id, rel, self.settings)
        if fmt == "xlsx":
            return parse_template_xlsx(data, file_id, rel, self.settings)
        return parse_dhis2(self.reader, data, file_id, fmt, self.settings.paths.landing,
                           self.settings)

    def seen_again(self, entry: LandingEntry, summary: IngestSummary, file_id: str,
                   batcher: CsvBatcher | None) -> None:
        """Same content as a file already ingested (or rejected): record the name, ingest
        nothing."""
        rel = entry.rel
        self.writer.add_path(path_row(entry, file_id, "duplicate", self.run_id, self.now))
        if batcher is not None:
            batcher.note_duplicate(file_id, rel)
        if (rel, file_id) in self.known_pairs:
            summary.files_skipped += 1      # same path, same content, only touched
            return
        summary.files_duplicate += 1
        if self.known_ids[file_id] is not None:  # the sender of this copy must hear why, too
            rule, why = self.known_ids[file_id]
            summary.rejected.append((rel, rule, f"{rel}: same content as a rejected file — {why}"))

    def reject(self, entry: LandingEntry, summary: IngestSummary, file_id: str, fmt: str | None,
               rule: str, detail: str) -> None:
        reason = reject_reason(entry.rel, rule, detail)
        kind = "dhis2" if fmt and fmt.startswith("dhis2") else "file"
        self.writer.add(file_row(file_id, fmt=fmt, status="rejected", reject_rule=rule,
                                 reject_reason=reason, n_rows_read=0, n_rows_rejected=0,
                                 **{**self.file_base(entry), "kind": kind}))
        self.writer.add_path(path_row(entry, file_id, "primary", self.run_id, self.now))
        self.known_ids[file_id] = (rule, reason)
        summary.files_rejected += 1
        summary.rejected.append((entry.rel, rule, reason))

    def accept(self, entry: LandingEntry, summary: IngestSummary, file_id: str,
               parsed: Parsed) -> None:
        base = self.file_base(entry)
        kind = "dhis2" if parsed.file_format.startswith("dhis2") else "file"
        rows = parsed.rows
        received_at = base["received_at"]
        file_received = parsed.received_at if parsed.received_at is not None else received_at
        source = parsed.received_source or base["received_source"]
        if "received_at" in rows and rows["received_at"].notna().any():
            rows["received_at"] = (pd.to_datetime(rows["received_at"], utc=True)
                                   .fillna(pd.Timestamp(received_at)))
        else:
            rows["received_at"] = received_at
        _stamp_lineage(rows, file_id, kind, entry.rel, self.run_id)
        self.writer.add(file_row(file_id, **{**base, "kind": kind, "received_at": file_received,
                                             "received_source": source},
                                 fmt=parsed.file_format, status="ingested",
                                 n_rows_read=parsed.n_rows_read, n_rows_kept=len(rows),
                                 n_rows_rejected=parsed.n_rows_read - len(rows),
                                 encoding=parsed.encoding, delimiter=parsed.delimiter,
                                 sheets=parsed.sheets),
                        rows[ROW_COLUMNS], parsed.cells)
        self.writer.add_path(path_row(entry, file_id, "primary", self.run_id, self.now))
        self.known_ids[file_id] = None
        summary.files_ingested += 1
        summary.rows_read += parsed.n_rows_read
        summary.rows_kept += len(rows)
        summary.cells += len(parsed.cells)


def ingest_landing(con: duckdb.DuckDBPyConnection, settings: Settings,
                   run_id: str | None = None, batch_csv: bool = True) -> IngestSummary:
    """Ingest every new file content under `KOLAB_HOME/landing/**` into the raw tables.

    Files already known by (path, size, mtime) are skipped without reading; others are hashed and
    skipped when their content (sha256) is already in `raw.landing_file`. Each file is parsed on
    its own; any fault becomes a `rejected` landing_file row (F01…F10) and the run continues.

    `batch_csv` (default on): plain UTF-8 template CSVs go through the batched fast path
    (`fast_csv`) — same tables; off = every file through the per-file parser.
    """
    run_id = run_id or new_run_id()
    t0 = time.perf_counter()
    migrate(con)
    landing = settings.paths.landing
    summary = IngestSummary(run_id=run_id)
    manifest, warnings = read_manifest(landing, settings.config.timezones.default)
    summary.warnings += warnings
    if (landing / DHIS2_DIR).exists():
        summary.warnings += load_dhis2_mapping(landing)[2]
    known_paths = {(p, int(s), m) for p, s, m in con.execute(_KNOWN_PATHS).fetchall()}
    known_ids = {f: (rule, why) if rule else None
                 for f, rule, why in con.execute(_KNOWN_IDS).fetchall()}
    known_pairs = {(p, f) for p, f in con.execute(_KNOWN_PAIRS).fetchall()}
    run = _LandingRun(settings, run_id, datetime.now(UTC), manifest, duckdb.connect(),
                      Writer(con), known_ids, known_pairs)
    if batch_csv:
        run.batcher = CsvBatcher(con, settings, run_id, run.now, summary, run.known_ids,
                                 run.one_by_one)
    try:
        for entry in list_landing(landing):
            if is_ignored(entry.rel):
                summary.files_ignored += 1
                continue
            summary.files_seen += 1
            if (entry.rel, entry.size, entry.mtime) in known_paths:
                summary.files_skipped += 1
                continue
            run.ingest_file(entry, summary)
        if run.batcher is not None:
            run.batcher.flush()
        run.writer.flush()
    finally:
        close_reader(run.reader)
    summary.seconds = time.perf_counter() - t0
    return summary


def ingest_sql(con: duckdb.DuckDBPyConnection, settings: Settings, url: str,
               table: str | None = None, query: str | None = None,
               run_id: str | None = None) -> IngestSummary:
    """Ingest a SQL table/query (wide template or long `data_element,value` form) as one pull.

    An unchanged source ingests nothing; a changed one is a new pull (a new version downstream).
    Row numbers follow the sorted row content, so they are stable whatever order the database
    returns. `received_at` comes from the source column (naive = the default local time zone).
    """
    run_id = run_id or new_run_id()
    t0 = time.perf_counter()
    migrate(con)
    summary = IngestSummary(run_id=run_id)
    label = sql_label(table, query)
    now = datetime.now(UTC)
    writer = Writer(con)
    try:
        cols, rows = fetch_sql_rows(url, table, query)
    except Exception as exc:  # the source being down is a failed pull, reported, not a crash
        summary.warnings.append(f"{label}: could not read the SQL source ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0]})")
        summary.seconds = time.perf_counter() - t0
        return summary
    file_id, order = pull_id(cols, rows)
    summary.files_seen = 1
    if con.execute(_PULL_SEEN, {"file_id": file_id}).fetchone()[0]:
        summary.files_skipped = 1
        summary.seconds = time.perf_counter() - t0
        return summary
    base = dict(kind="sql", rel=label, fmt="sql", size=None, mtime=None, run_id=run_id, now=now)
    try:
        parsed = parse_sql_rows(cols, [rows[i] for i in order], file_id,
                                settings.config.timezones.default)
    except FileRejected as exc:
        reason = reject_reason(label, exc.rule, exc.detail)
        writer.add(file_row(file_id, **base, received_at=None, received_source=None,
                            status="rejected", reject_rule=exc.rule, reject_reason=reason,
                            n_rows_read=len(rows), n_rows_rejected=len(rows)))
        writer.flush()
        summary.files_rejected = 1
        summary.rows_read = summary.rows_rejected = len(rows)
        summary.rejected.append((label, exc.rule, reason))
        summary.seconds = time.perf_counter() - t0
        return summary
    pulled = parsed.rows
    _stamp_lineage(pulled, file_id, "sql", label, run_id)
    has_received = pulled["received_at"].notna().any()
    writer.add(file_row(file_id, **base,
                        received_at=pulled["received_at"].max() if has_received else None,
                        received_source="source_column" if has_received else None,
                        status="ingested", n_rows_read=parsed.n_rows_read,
                        n_rows_kept=len(pulled), n_rows_rejected=parsed.n_rows_read - len(pulled)),
               pulled[ROW_COLUMNS], parsed.cells)
    writer.flush()
    summary.files_ingested = 1
    summary.rows_read = parsed.n_rows_read
    summary.rows_kept = len(pulled)
    summary.cells = len(parsed.cells)
    summary.seconds = time.perf_counter() - t0
    return summary
