"""Ingestion runs: every new landing file (`ingest_landing`) or one SQL pull (`ingest_sql`) into
`raw.landing_file`, `raw.landing_path`, `raw.submission_row` and `raw.submission_cell`.

A content (sha256 = `file_id`) is ingested once; a bad file becomes a `rejected` landing_file row
with a file rule (F01…F10) and the run goes on. Receipt at the Dinkes, per file: its line in
`landing/_diterima.csv`, else the source's own timestamp (DHIS2 `completeDate`), else its
first-seen time from the receipt journal (`journal`), which a copy of the folder keeps.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline.config import Settings, document_workers
from kolab_pipeline.raw.dhis2 import DHIS2_DIR, Dhis2Mapping, load_dhis2_mapping, parse_dhis2
from kolab_pipeline.raw.fast_csv import CsvBatcher
from kolab_pipeline.raw.journal import JOURNAL, ReceiptJournal
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
from kolab_pipeline.raw.prefetch import Result as AheadResult
from kolab_pipeline.raw.prefetch import XlsxPrefetch
from kolab_pipeline.raw.readers import close_reader
from kolab_pipeline.raw.sql_source import fetch_sql_rows, parse_sql_rows, pull_id, sql_label
from kolab_pipeline.raw.template import parse_template_csv, parse_template_xlsx
from kolab_pipeline.raw.writer import Writer, file_row, migrate, path_row

_KNOWN_PATHS = "SELECT source_path, size_bytes, file_mtime FROM raw.landing_path"
_KNOWN_IDS = "SELECT file_id, reject_rule, reject_reason FROM raw.landing_file"
_KNOWN_PAIRS = "SELECT source_path, file_id FROM raw.landing_path"
_PULL_SEEN = "SELECT count(*) FROM raw.landing_file WHERE file_id = $file_id"
# contents the warehouse holds (a file's mtime as it arrived): put on the journal when it lacks them
_JOURNAL_BACKFILL = """
    SELECT file_id, source_path, file_mtime, ingested_at FROM raw.landing_file
     WHERE source_kind IN ('file', 'dhis2') AND file_mtime IS NOT NULL
       AND reject_rule IS DISTINCT FROM 'F10'
     ORDER BY ingested_at, source_path"""
# values of earlier DHIS2 files (the import summary's `updated`)
_DHIS2_KNOWN = """
    SELECT submission_row.kode_faskes, submission_row.periode, cell.header,
           coalesce(cell.attribute_option_combo, '')
      FROM raw.submission_cell AS cell
      JOIN raw.submission_row AS submission_row USING (raw_row_id)
     WHERE submission_row.source_kind = 'dhis2' AND cell.import_status IN ('imported', 'updated')"""
_TIMEZONES = "SELECT kode_faskes, timezone FROM reference.facility WHERE timezone IS NOT NULL"


def _stamp_lineage(rows: pd.DataFrame, file_id: str, kind: str, rel: str, run_id: str) -> None:
    rows["file_id"] = file_id
    rows["source_kind"] = kind
    rows["source_path"] = rel
    rows["run_id"] = run_id


@dataclass
class _LandingRun:
    """What every file of one `ingest_landing` run shares: the run's identity, the receipt
    manifest and journal, the DHIS2 mapping, the CSV reader, the writer and batcher, and what the
    warehouse already holds."""

    settings: Settings
    run_id: str
    now: datetime
    manifest: dict[str, datetime]
    journal: ReceiptJournal
    reader: duckdb.DuckDBPyConnection
    writer: Writer
    # file_id → (rule, reason) when that content was rejected, else None
    known_ids: dict[str, tuple[str, str] | None]
    known_pairs: set[tuple[str, str]]    # (source_path, file_id) already on record
    con: duckdb.DuckDBPyConnection
    batcher: CsvBatcher | None = None
    dhis2_mapping: Dhis2Mapping | None = None
    _dhis2_known: set[tuple[str, str, str, str]] | None = None
    _timezones: dict[str, str] | None = None

    @property
    def max_bytes(self) -> int:
        return int(self.settings.config.ingest.max_file_mb * 1024 * 1024)

    def received(self, entry: LandingEntry, file_id: str | None) -> tuple[datetime, str]:
        """When the file reached the Dinkes and how we know: its `_diterima.csv` line, else its
        first-seen time from the receipt journal (recorded now if this content is new; `file_id`
        None = no content read, e.g. a symlink: its mtime)."""
        if file_id is not None:   # first sight of a content goes on the journal, whatever decides
            journal_time = self.journal.record(file_id, entry.rel, entry.mtime, self.now)
        received = self.manifest.get(entry.rel)
        if received:
            return received, "manifest"
        if file_id is None:
            return entry.mtime, "mtime"
        return journal_time, self.journal.source

    def file_base(self, entry: LandingEntry, file_id: str | None) -> dict[str, Any]:
        received_at, received_source = self.received(entry, file_id)
        return dict(kind="file", rel=entry.rel, size=entry.size, mtime=entry.mtime,
                    received_at=received_at, received_source=received_source,
                    run_id=self.run_id, now=self.now)

    def dhis2_known(self) -> set[tuple[str, str, str, str]]:
        """Keys of the DHIS2 values already ingested (read once per run, then kept up to date)."""
        if self._dhis2_known is None:
            self._dhis2_known = set(self.con.execute(_DHIS2_KNOWN).fetchall())
        return self._dhis2_known

    def timezones(self) -> dict[str, str]:
        """kode_faskes → IANA zone of its kab/kota (registry), for DHIS2 completeDate."""
        if self._timezones is None:
            self._timezones = dict(self.con.execute(_TIMEZONES).fetchall())
        return self._timezones

    def one_by_one(self, entry: LandingEntry, into: IngestSummary,
                   prehashed: tuple[str, bytes, int]) -> None:
        """The per-file path for a file the batcher gave back (already read)."""
        self.ingest_file(entry, into, prehashed=prehashed, batch=False)

    def ingest_file(self, entry: LandingEntry, summary: IngestSummary,
                    prehashed: tuple[str, bytes, int] | None = None, batch: bool = True,
                    ahead: AheadResult = None) -> None:
        """One landing file: hash, skip/record duplicates, then parse it (or hand a plain CSV to
        the batcher) and queue its rows. `prehashed` = (file_id, bytes, size) already read;
        `ahead` = (file_id, parsed workbook or its rejection) from `XlsxPrefetch`."""
        rel = entry.rel
        batcher = self.batcher if batch else None
        if entry.symlink_target is not None:
            file_id = hashlib.sha256(f"symlink:{rel}".encode()).hexdigest()
            if file_id not in self.known_ids:
                self.reject(entry, summary, file_id, None, "F10",
                            f"a symbolic link to {entry.symlink_target}; copy the file into the "
                            "landing folder instead", content=False)
            return
        try:
            file_id, data, size = (prehashed if prehashed is not None
                                   else sha256_file(entry.path, self.max_bytes))
        except OSError as exc:
            key = f"unreadable:{rel}:{entry.size}:{entry.mtime}"
            file_id = hashlib.sha256(key.encode()).hexdigest()
            if file_id not in self.known_ids:
                self.reject(entry, summary, file_id, None, "F01",
                            f"cannot be opened ({exc.strerror or exc})", content=False)
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
                    and batcher.offer(entry, file_id, data, *self.received(entry, file_id))):
                return  # written with its batch (or, should the batch fail, one by one)
            if fmt == "xlsx" and ahead is not None and ahead[0] == file_id:
                if isinstance(ahead[1], FileRejected):
                    raise ahead[1]
                parsed = ahead[1]
            else:
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
                           self.settings, mapping=self.dhis2_mapping,
                           timezones=self.timezones(), known=self.dhis2_known())

    def seen_again(self, entry: LandingEntry, summary: IngestSummary, file_id: str,
                   batcher: CsvBatcher | None) -> None:
        """Same content as a file already ingested (or rejected): record the name, ingest
        nothing."""
        rel = entry.rel
        self.journal.record(file_id, rel, entry.mtime, self.now)
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
               rule: str, detail: str, content: bool = True) -> None:
        """A rejected file (`content` False: nothing was read, so nothing goes on the
        journal)."""
        reason = reject_reason(entry.rel, rule, detail)
        kind = "dhis2" if fmt and fmt.startswith("dhis2") else "file"
        base = self.file_base(entry, file_id if content else None)
        self.writer.add(file_row(file_id, fmt=fmt, status="rejected", reject_rule=rule,
                                 reject_reason=reason, n_rows_read=0, n_rows_rejected=0,
                                 **{**base, "kind": kind}))
        self.writer.add_path(path_row(entry, file_id, "primary", self.run_id, self.now))
        self.known_ids[file_id] = (rule, reason)
        summary.files_rejected += 1
        summary.rejected.append((entry.rel, rule, reason))

    def accept(self, entry: LandingEntry, summary: IngestSummary, file_id: str,
               parsed: Parsed) -> None:
        base = self.file_base(entry, file_id)
        kind = "dhis2" if parsed.file_format.startswith("dhis2") else "file"
        rows = parsed.rows
        received_at, source = base["received_at"], base["received_source"]
        own = (pd.to_datetime(rows["received_at"], utc=True) if "received_at" in rows
               else pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]"))
        if source == "manifest" or not own.notna().any():
            # the receipt manifest outranks the source's own timestamp (README "Inputs")
            rows["received_at"] = received_at
            rows["received_source"] = source
        else:  # rows with their own timestamp keep it; the others take the file's
            own_source = rows.get("received_source", pd.Series(None, index=rows.index))
            rows["received_source"] = own_source.where(own.notna(), source)
            rows["received_at"] = own.fillna(pd.Timestamp(received_at))
            received_at, source = parsed.received_at, parsed.received_source or source
        _stamp_lineage(rows, file_id, kind, entry.rel, self.run_id)
        imports = self.import_counts(entry, summary, parsed)
        self.writer.add(file_row(file_id, **{**base, "kind": kind, "received_at": received_at,
                                             "received_source": source},
                                 fmt=parsed.file_format, status="ingested",
                                 n_rows_read=parsed.n_rows_read, n_rows_kept=len(rows),
                                 n_rows_rejected=parsed.n_rows_read - len(rows),
                                 encoding=parsed.encoding, delimiter=parsed.delimiter,
                                 sheets=parsed.sheets, **imports),
                        rows[ROW_COLUMNS], parsed.cells)
        self.writer.add_path(path_row(entry, file_id, "primary", self.run_id, self.now))
        self.known_ids[file_id] = None
        summary.files_ingested += 1
        summary.rows_read += parsed.n_rows_read
        summary.rows_kept += len(rows)
        summary.cells += len(parsed.cells)

    def import_counts(self, entry: LandingEntry, summary: IngestSummary,
                      parsed: Parsed) -> dict[str, Any]:
        """A DHIS2 file's import summary: into the run's counters and warnings, its keys into
        the values known, and the `raw.landing_file` columns (empty for other files)."""
        imports = parsed.import_summary
        if imports is None:
            return {}
        summary.values_imported += imports.imported
        summary.values_updated += imports.updated
        summary.values_ignored += imports.ignored
        summary.dhis2_files.append((entry.rel, imports.imported, imports.updated, imports.ignored,
                                    imports.conflicts))
        if imports.ignored:
            summary.warnings.append(f"{entry.rel}: {imports.line()}")
        self.dhis2_known().update(imports.keys)
        return dict(values_imported=imports.imported, values_updated=imports.updated,
                    values_ignored=imports.ignored, import_conflicts=imports.conflicts or None)


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
    mapping = None
    if (landing / DHIS2_DIR).exists():
        mapping = load_dhis2_mapping(landing)
        summary.warnings += mapping.warnings
    journal = ReceiptJournal.open(landing)
    known_paths = {(p, int(s), m) for p, s, m in con.execute(_KNOWN_PATHS).fetchall()}
    known_ids = {f: (rule, why) if rule else None
                 for f, rule, why in con.execute(_KNOWN_IDS).fetchall()}
    known_pairs = {(p, f) for p, f in con.execute(_KNOWN_PAIRS).fetchall()}
    now = datetime.now(UTC)
    if landing.exists():  # contents ingested before the journal existed (or lost from it)
        for file_id, rel, mtime, seen in con.execute(_JOURNAL_BACKFILL).fetchall():
            if journal.lookup(file_id) is None:
                journal.record(file_id, rel, mtime, seen or now)
    writer = Writer(con, before_flush=journal.flush)
    run = _LandingRun(settings, run_id, now, manifest, journal, duckdb.connect(), writer,
                      known_ids, known_pairs, con, dhis2_mapping=mapping)
    if batch_csv:
        run.batcher = CsvBatcher(con, settings, run_id, run.now, summary, run.known_ids,
                                 run.one_by_one, before_flush=journal.flush)
    new: list[LandingEntry] = []   # what this run reads, in landing order
    for entry in list_landing(landing):
        if entry.rel == JOURNAL:   # the pipeline's own record, not something that landed
            continue
        if is_ignored(entry.rel):
            summary.files_ignored += 1
            continue
        summary.files_seen += 1
        if (entry.rel, entry.size, entry.mtime) in known_paths:
            summary.files_skipped += 1
            continue
        new.append(entry)
    try:
        with XlsxPrefetch(new, settings, run.max_bytes, document_workers()) as ahead:
            for entry in new:
                run.ingest_file(entry, summary, ahead=ahead.take(entry))
        if run.batcher is not None:
            run.batcher.flush()
        run.writer.flush()
    finally:
        journal.flush()   # also after a failure: what was seen stays seen
        close_reader(run.reader)
        summary.warnings += journal.warnings
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
    pulled["received_source"] = np.where(pulled["received_at"].notna(), "source_column", None)
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
