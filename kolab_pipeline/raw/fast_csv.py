"""The batched fast path for plain template CSVs: files of one layout split into rows and cells by
one SQL statement per chunk, straight into the raw tables.

A file is taken only when a plain split provably gives what `template.parse_template_csv` would
(`fast_csv_layout`); every other file keeps the per-file path. Grain as there:
`raw.submission_row` one data line of a file, `raw.submission_cell` one line × non-template column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline.config import Settings
from kolab_pipeline.raw.headers import (
    HEADER_SCAN_ROWS,
    META_COLUMNS,
    catalog,
    declared_forms,
    is_person_column,
    missing_key_columns,
)
from kolab_pipeline.raw.landing import LandingEntry
from kolab_pipeline.raw.model import CELL_COLUMNS, ROW_COLUMNS, IngestSummary
from kolab_pipeline.raw.readers import sniff_delimiter
from kolab_pipeline.raw.writer import (
    file_frame,
    file_row,
    path_frame,
    path_row,
    registered,
    write_manifest,
)
from kolab_pipeline.warehouse import Staging, bind, transaction

FAST_CHUNK_BYTES = 8 << 20        # text per batch statement (bounded memory, few statements)
FAST_CHUNK_FILES = 2000
FAST_PENDING_BYTES = 32 << 20     # all groups together: flush the biggest beyond this
_FAST_MAX_TEXT = 9_000_000        # below DuckDB's max_line_size of the per-file path (10 MB)
# Anything that would make a plain delimiter split differ from DuckDB's CSV reader or from
# `str.splitlines` (quotes, CR, other controls and line separators, a BOM anywhere) → per-file.
_FAST_REFUSE = re.compile("[\x00-\x08\x0b-\x1f\"\x85\u2028\u2029\ufeff]")
# A line that is empty or whitespace only: the per-file path keeps such lines as (blank) rows.
_BLANKISH_LINE = re.compile(r"(?m)^[^\S\n]*$")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")

# The batch's data lines: line n > 1 of each file (line 1 is the header), split on the
# delimiter, lines whose cells are all blank left out (as `parse_sheet` does).
_SPLIT_LINES = """
    SELECT idx, n::INTEGER AS row_number, file_id || '::' || n AS raw_row_id,
           string_split(line, $delim) AS fields
      FROM (SELECT idx, file_id, unnest(lines) AS line, generate_subscripts(lines, 1) AS n
              FROM (SELECT idx, file_id, string_split(text, chr(10)) AS lines FROM _fast_meta))
     WHERE n > 1 AND trim(replace(line, $delim, ''), $whitespace) <> ''"""
_ROWS_PER_FILE = """
    SELECT batch_file.file_id, count(*)
      FROM {lines} AS data_line JOIN _fast_meta AS batch_file USING (idx)
     GROUP BY 1"""
_INSERT_ROWS = """
    INSERT INTO raw.submission_row ({columns})
    SELECT {select} FROM {lines} AS data_line JOIN _fast_meta AS batch_file USING (idx)"""
_INSERT_CELLS = """
    INSERT INTO raw.submission_cell ({columns})
    SELECT data_line.raw_row_id, cell_column.j, cell_column.header, cell_column.data_element,
           nullif(data_line.fields[cell_column.j + 1], '')
      FROM {lines} AS data_line CROSS JOIN _fast_cols AS cell_column"""
# The `raw.submission_cell` columns a template cell has (the DHIS2 ones stay NULL).
TEMPLATE_CELL_COLUMNS = CELL_COLUMNS[:5]
# The non-template columns of `raw.submission_row`, per batch.
_ROW_EXPRESSIONS = {
    "raw_row_id": "data_line.raw_row_id", "file_id": "batch_file.file_id",
    "source_kind": "'file'", "source_path": "batch_file.source_path", "sheet": "''",
    "row_number": "data_line.row_number", "form": "$form::VARCHAR",
    "received_at": "batch_file.received_at", "run_id": "$run_id::VARCHAR",
    "received_source": "batch_file.received_source",
}


@cache
def _whitespace_chars() -> str:
    """Every character `str.strip()` removes (and numpy's `strings.strip`, used by
    `readers.blank_mask`)."""
    return "".join(ch for ch in map(chr, range(0x110000)) if ch.isspace())


@dataclass(frozen=True)
class CsvLayout:
    """What every file of a batch group shares: the delimiter and the header line (row 1), hence
    the same columns, the same canonical mapping and the same form."""

    delimiter: str
    header_line: str
    headers: tuple[str, ...]
    canonical: tuple[str | None, ...]
    form: str | None

    @property
    def width(self) -> int:
        return len(self.headers)


@lru_cache(maxsize=4096)   # bounded: a hostile folder may hold many distinct headers
def _header_layout(delimiter: str, header_line: str) -> CsvLayout | None:
    """The layout when `header_line` is a plain template header, as `parse_sheet` would read it on
    row 1: every cell non-blank (so the header fixes the width), no person column, ≥ 2 anchors,
    periode and kode_faskes present, data elements of one form. None = leave it to the per-file
    path (which also produces the exact rejection, F04/F08/F09, when there is one)."""
    cat = catalog()
    headers = header_line.split(delimiter)
    if any(not h.strip() for h in headers):
        return None
    if any(is_person_column(h) for h in headers):
        return None
    if not cat.is_header_row(headers):
        return None
    canonical = cat.map_headers(headers)
    if missing_key_columns(canonical):
        return None
    forms = cat.forms_of(canonical)
    if len(forms) > 1:
        return None
    return CsvLayout(delimiter, header_line, tuple(headers), tuple(canonical),
                     next(iter(forms), None))


def fast_csv_layout(text: str, rel_path: str, settings: Settings) -> CsvLayout | None:
    """The batch layout of a decoded UTF-8 CSV (no BOM), or None when the file needs the per-file
    path. Accepted only when a plain split (lines on `\\n`, cells on the delimiter) is provably
    what `parse_template_csv` reads: no quotes/CR/controls, no blank or whitespace-only line, the
    header on row 1, no row wider than the header, no label row under it, at least one data row,
    within the row/column limits, and a form that agrees with the path.
    """
    if len(text) > _FAST_MAX_TEXT or _FAST_REFUSE.search(text):
        return None
    body = text[:-1] if text.endswith("\n") else text
    if not body or _BLANKISH_LINE.search(body):
        return None
    lines = body.split("\n")
    delimiter = sniff_delimiter("\n".join(lines[:HEADER_SCAN_ROWS + 5]))
    layout = _header_layout(delimiter, lines[0])
    ing = settings.config.ingest
    if (layout is None or layout.width > ing.max_columns
            or len(lines) - 1 > ing.max_rows_per_file):
        return None
    if len(lines) < 2 or max(map(str.count, lines, [delimiter] * len(lines))) > layout.width - 1:
        return None
    # parse_sheet skips label rows right under the header: leave such files to it
    if catalog().is_label_row([v for v in lines[1].split(delimiter) if v.strip()]):
        return None
    # at least one data row with something in it (else F02 on the per-file path)
    if not re.search(f"[^\\s{re.escape(delimiter)}]", body[len(lines[0]):]):
        return None
    declared = declared_forms(rel_path)
    if layout.form and declared and layout.form not in declared:
        return None
    return layout


@dataclass
class FastFile:
    """A file waiting in a batch: its entry, content id, bytes and decoded text."""

    entry: LandingEntry
    file_id: str
    data: bytes
    text: str
    received_at: datetime
    received_source: str


# The per-file path for one file already read: (entry, summary to count into, (id, bytes, size)).
Fallback = Callable[[LandingEntry, IngestSummary, tuple[str, bytes, int]], None]


class CsvBatcher:
    """Collects fast-path CSV files per layout and writes each chunk in one transaction: its
    `raw.landing_file` / `raw.landing_path` rows and its rows and cells (built in SQL).

    If a chunk fails in DuckDB, nothing of it is committed and its files go through the per-file
    path one by one (`fallback`), so one bad file cannot take its neighbours down.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str,
                 now: datetime, summary: IngestSummary,
                 known_ids: dict[str, tuple[str, str] | None], fallback: Fallback,
                 before_flush: Callable[[], None] | None = None) -> None:
        self.con, self.settings, self.run_id, self.now = con, settings, run_id, now
        self.summary, self.known_ids, self.fallback = summary, known_ids, fallback
        self.before_flush = before_flush   # e.g. the receipt journal: written before the rows
        self.groups: dict[CsvLayout, list[FastFile]] = {}
        self.group_bytes: dict[CsvLayout, int] = {}
        self.pending_bytes = 0
        self.duplicates: dict[str, list[str]] = {}   # pending file_id → other paths, same content
        self.chunks = 0

    def offer(self, entry: LandingEntry, file_id: str, data: bytes, received_at: datetime,
              received_source: str) -> bool:
        """Take the file into a batch when its layout allows; False = parse it per file."""
        if data.startswith(_BOMS):
            return False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        layout = fast_csv_layout(text, entry.rel, self.settings)
        if layout is None:
            return False
        self.groups.setdefault(layout, []).append(
            FastFile(entry, file_id, data, text, received_at, received_source))
        self.group_bytes[layout] = self.group_bytes.get(layout, 0) + len(data)
        self.pending_bytes += len(data)
        self.duplicates[file_id] = []
        # before any flush: a fallback may still turn it into a rejection
        self.known_ids[file_id] = None
        if (self.group_bytes[layout] >= FAST_CHUNK_BYTES
                or len(self.groups[layout]) >= FAST_CHUNK_FILES):
            self._flush_group(layout)
        elif self.pending_bytes >= FAST_PENDING_BYTES:
            self._flush_group(max(self.group_bytes, key=self.group_bytes.__getitem__))
        return True

    def note_duplicate(self, file_id: str, rel: str) -> None:
        """A path whose content is still pending: told later if that content ends up rejected."""
        if file_id in self.duplicates:
            self.duplicates[file_id].append(rel)

    def flush(self) -> None:
        for layout in list(self.groups):
            self._flush_group(layout)

    def _flush_group(self, layout: CsvLayout) -> None:
        files = self.groups.pop(layout, [])
        self.pending_bytes -= self.group_bytes.pop(layout, 0)
        if not files:
            return
        if self.before_flush is not None:
            self.before_flush()
        try:
            counts = write_csv_batch(self.con, layout, files, self.run_id, self.now)
        except Exception as exc:  # nothing of the chunk was committed: read its files one by one
            self.summary.warnings.append(
                f"batched CSV read of {len(files)} files ({files[0].entry.rel} …) failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "read one by one instead")
            for f in files:
                self._fallback(f)
            return
        self.chunks += 1
        k = sum(c not in META_COLUMNS for c in layout.canonical)
        for f in files:
            n = counts[f.file_id]
            self.summary.files_ingested += 1
            self.summary.files_batched += 1
            self.summary.rows_read += n
            self.summary.rows_kept += n
            self.summary.cells += n * k
            self.duplicates.pop(f.file_id, None)

    def _fallback(self, f: FastFile) -> None:
        dups = self.duplicates.pop(f.file_id, [])
        self.known_ids.pop(f.file_id, None)
        sub = IngestSummary(run_id=self.run_id)
        self.fallback(f.entry, sub, (f.file_id, f.data, len(f.data)))
        sub.bytes_read = 0            # counted when the file was first read
        self.summary.merge(sub)
        verdict = self.known_ids.get(f.file_id)
        if verdict is not None:
            rule, why = verdict
            self.summary.rejected += [(rel, rule, f"{rel}: same content as a rejected file — {why}")
                                      for rel in dups]


def _row_select(layout: CsvLayout) -> str:
    """The SELECT list of `raw.submission_row` (ROW_COLUMNS order): template columns from the
    line's fields (empty = NULL), the others from `_ROW_EXPRESSIONS`."""
    select = []
    for name in ROW_COLUMNS:
        if name in META_COLUMNS:
            j = layout.canonical.index(name) if name in layout.canonical else None
            select.append("NULL::VARCHAR" if j is None
                          else f"nullif(data_line.fields[{int(j) + 1}], '')")
        else:
            select.append(_ROW_EXPRESSIONS[name])
    return ", ".join(select)


def write_csv_batch(con: duckdb.DuckDBPyConnection, layout: CsvLayout, files: list[FastFile],
                    run_id: str, now: datetime) -> dict[str, int]:
    """Write a group of same-layout CSV files in one transaction; returns data rows per file_id.

    Rows and cells are split in SQL from the files' text (the bytes that were hashed, so what is
    stored is exactly the content named by `file_id`): lines on `\\n` with their 1-based position
    (= the row number a spreadsheet shows; the header is row 1), cells on the delimiter, an empty
    cell NULL (as DuckDB's CSV reader gives it), every non-template column one cell.
    """
    meta = pd.DataFrame({
        "idx": np.arange(len(files), dtype=np.int32),
        "file_id": [f.file_id for f in files],
        "source_path": [f.entry.rel for f in files],
        "received_at": pd.to_datetime([f.received_at for f in files], utc=True),
        "received_source": [f.received_source for f in files],
        "text": [f.text for f in files],
    })
    cell_cols = [j for j, c in enumerate(layout.canonical) if c not in META_COLUMNS]
    cols = pd.DataFrame({"j": np.array(cell_cols, dtype=np.int32),
                         "header": [layout.headers[j] for j in cell_cols],
                         "data_element": pd.Series([layout.canonical[j] for j in cell_cols],
                                                   dtype=object)})
    with (Staging(con, "_fast") as stage, transaction(con),
          registered(con, _fast_meta=meta, _fast_cols=cols)):
        lines = stage.create("lines", _SPLIT_LINES, {"delim": layout.delimiter,
                                                     "whitespace": _whitespace_chars()})
        counts = dict.fromkeys(meta["file_id"], 0)
        counts.update(dict(con.execute(_ROWS_PER_FILE.format(lines=lines)).fetchall()))
        empty = [fid for fid, n in counts.items() if n == 0]
        if empty:  # cannot happen after fast_csv_layout; never write an empty "ingested" file
            raise ValueError(f"no data rows in {len(empty)} file(s) of the batch")
        landing = file_frame([file_row(
            f.file_id, kind="file", rel=f.entry.rel, fmt="csv", size=f.entry.size,
            mtime=f.entry.mtime, received_at=f.received_at, received_source=f.received_source,
            run_id=run_id, now=now, status="ingested", n_rows_read=counts[f.file_id],
            n_rows_kept=counts[f.file_id], n_rows_rejected=0, encoding="utf-8",
            delimiter=layout.delimiter, sheets="") for f in files])
        paths = path_frame([path_row(f.entry, f.file_id, "primary", run_id, now) for f in files])
        with registered(con, _fast_files=landing, _fast_paths=paths):
            write_manifest(con, ids="_fast_meta", files="_fast_files", paths="_fast_paths")
        sql = _INSERT_ROWS.format(columns=", ".join(ROW_COLUMNS), select=_row_select(layout),
                                  lines=lines)
        con.execute(sql, bind(sql, {"form": layout.form, "run_id": run_id}))
        if cell_cols:
            con.execute(_INSERT_CELLS.format(columns=", ".join(TEMPLATE_CELL_COLUMNS),
                                             lines=lines))
    return counts
