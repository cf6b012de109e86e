"""Raw layer: every submission exactly as received, with lineage — nothing is lost here.

Sources, all written to the same three tables (grain in `catalog/tables.yaml`):

- the landing folder `KOLAB_HOME/landing/**`: CSV and XLSX (every sheet) in the monthly template,
  and DHIS2 `dataValueSets` (JSON, or CSV under `landing/dhis2/` / recognised by its header);
- an optional SQL source read through SQLAlchemy (a table or a query, wide template or long form).

Tables:

- `raw.landing_file` — one row per distinct content (sha256 = `file_id`) or SQL pull: status
  `ingested` or `rejected` with a file rule (F01…F10) and a reason naming the file and the fault;
  `n_rows_read = n_rows_kept + n_rows_rejected`.
- `raw.landing_path` — every path × content seen, so the same content under two names is ingested
  once and the second name is still on record, and unchanged files are skipped without re-reading.
- `raw.submission_row` — one data row of a file/sheet (or SQL row, or DHIS2 orgUnit × period × form),
  its template cells (`periode`, `kode_faskes`, …) verbatim as text.
- `raw.submission_cell` — one data-element cell of a raw row, verbatim text (NULL = empty cell,
  which is *not* zero: blank means "not reported").

Why verbatim: normalising `1.234`, `-`, `nihil` or `Maret 2025` is the clean layer's job, where a
value that cannot be read is quarantined with a reason. Here we only map headers (codes, Indonesian
labels, aliases — `catalog/column_aliases.csv` and the `name_id` labels of
`catalog/data_elements.csv`) to canonical column codes.

Incremental and idempotent: a content already in `raw.landing_file` is never ingested twice; a file
whose content changed is a new `file_id` (a new version downstream); a deleted file keeps its
history. A bad file never stops the run: any problem, even an unexpected exception, becomes a
`rejected` row with a rule id, and the other files go on.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline import catalog as catalogue
from kolab_pipeline import rules
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import ensure_schema, table, transaction

# Template columns that live on `raw.submission_row`; every other column becomes a cell.
META_COLUMNS = ("periode", "kode_faskes", "nama_faskes", "tanggal_lapor", "laporan_nihil")
# The header is searched in the first rows only: title rows ("LAPORAN BULANAN …") sit above it.
HEADER_SCAN_ROWS = 15
# Person-identifying columns (normalised): this pipeline takes aggregate reports only (F08).
PERSON_COLUMNS = frozenset({
    "nik", "no_nik", "nomor_nik", "nomor_induk_kependudukan", "nama_pasien", "nama_ibu",
    "nama_bayi", "nama_anak", "nama_balita", "no_rm", "nomor_rm", "no_rekam_medis",
    "nomor_rekam_medis", "rekam_medis", "tanggal_lahir", "tgl_lahir", "tanggal_lahir_pasien",
    "alamat_pasien", "no_bpjs", "nomor_bpjs", "no_kk", "nomor_kk", "no_hp_pasien",
})
# Sheets that carry instructions, not data (the `kolab template` workbook has one).
INSTRUCTION_SHEETS = frozenset({"petunjuk", "petunjuk_pengisian", "instruksi", "keterangan",
                                "cara_pengisian", "readme", "info", "catatan"})
FORM_SHEET_NAMES = {"tb": {"tb", "tbc"}, "ptm": {"ptm"}, "kia": {"kia"}, "imun": {"imun", "imunisasi"}}
FORMAT_BY_SUFFIX = {".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".json": "dhis2_json"}
DHIS2_DIR = "dhis2"
DHIS2_MAPPING = "mapping.csv"
BATCH_FILES = 500  # files per bulk insert (one transaction each)
_FORMULA = re.compile(rb"<f[ >/]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_BRACKETS = re.compile(r"\([^)]*\)")
_SQL_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.]")
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))  # not text, except tab/LF/CR


# --- catalogues -------------------------------------------------------------------------------

def normalise_header(text: object) -> str:
    """Header matching key: lower case, every run of non-alphanumerics → `_`, trimmed.

    `"Kode Faskes"`, `"KODE_FASKES"` and `" kode-faskes "` all become `kode_faskes`.
    """
    if text is None:
        return ""
    return _NON_ALNUM.sub("_", str(text).strip().lower()).strip("_")


@dataclass(frozen=True)
class Catalog:
    """Header → canonical column, and data element → form (all from the catalogue files)."""

    header_map: dict[str, str]
    element_form: dict[str, str]

    def resolve(self, header: object) -> str | None:
        """Canonical column of a header; a trailing hint in brackets (`Periode (YYYY-MM)`) is
        ignored when the full text is not known."""
        found = self.header_map.get(normalise_header(header))
        if found is None and header is not None and "(" in str(header):
            found = self.header_map.get(normalise_header(_BRACKETS.sub(" ", str(header))))
        return found

    def is_anchor(self, canonical: str | None) -> bool:
        """Columns that make a row a header: periode, kode_faskes or a data element."""
        return canonical in ("periode", "kode_faskes") or canonical in self.element_form


@cache
def catalog() -> Catalog:
    """Built once from `column_aliases.csv` and `data_elements.csv` (codes and `name_id` labels)."""
    header_map: dict[str, str] = {}
    for meta in META_COLUMNS:
        header_map[meta] = meta
    for alias, canonical in catalogue.column_aliases():
        header_map[normalise_header(alias)] = canonical
    elements = catalogue.data_elements()
    element_form = dict(zip(elements["code"], elements["form"], strict=True))
    for code, label in zip(elements["code"], elements["name_id"], strict=True):
        header_map[normalise_header(code)] = code
        header_map.setdefault(normalise_header(label), code)
    return Catalog(header_map, element_form)


def rule_messages() -> dict[str, str]:
    """English message per rule id, from the rule catalogue (`kolab_pipeline.rules`)."""
    return {rid: r.message_en for rid, r in rules.rules().items()}


def reject_reason(path: str, rule: str, detail: str) -> str:
    """`<file>: <catalogue message> — <what exactly was wrong>`."""
    return f"{path}: {rule_messages()[rule]} — {detail}"


class FileRejected(Exception):
    """A file-level rule broken while reading one file (caught per file; the run goes on)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


# --- results ----------------------------------------------------------------------------------

@dataclass
class IngestSummary:
    """What one ingestion run did (also the Dagster metadata of `raw/*`)."""

    run_id: str
    files_seen: int = 0
    files_ingested: int = 0
    files_rejected: int = 0
    files_skipped: int = 0          # content already ingested (unchanged, or re-seen)
    files_duplicate: int = 0        # new path whose content was already ingested under another name
    files_ignored: int = 0          # manifests, mapping, hidden/lock files: not submissions
    files_batched: int = 0          # of files_ingested: plain CSVs written by the batched fast path
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    cells: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (path, rule, reason)
    warnings: list[str] = field(default_factory=list)

    @property
    def files_per_s(self) -> float:
        return (self.files_ingested + self.files_rejected) / self.seconds if self.seconds else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def merge(self, other: IngestSummary) -> IngestSummary:
        for name in ("files_seen", "files_ingested", "files_rejected", "files_skipped",
                     "files_duplicate", "files_ignored", "files_batched", "rows_read", "rows_kept",
                     "rows_rejected", "cells", "bytes_read"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.rejected += other.rejected
        self.warnings += other.warnings
        return self


@dataclass
class Sheet:
    """One parsed sheet: the data rows (verbatim text) with their header mapping."""

    name: str
    form: str | None
    headers: list[str | None]
    canonical: list[str | None]
    values: np.ndarray            # object array, data rows × columns
    row_numbers: np.ndarray       # 1-based, as a spreadsheet shows them


@dataclass
class Parsed:
    """What one landing file yields before it is written."""

    file_format: str
    rows: pd.DataFrame            # raw.submission_row columns (lineage filled by the caller)
    cells: pd.DataFrame           # raw.submission_cell columns
    n_rows_read: int
    encoding: str | None = None
    delimiter: str | None = None
    sheets: str = ""
    received_at: datetime | None = None   # from the content (DHIS2 completeDate)
    received_source: str | None = None


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


# --- text and grids ---------------------------------------------------------------------------

def decode_text(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding). UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252.

    Why this order: UTF-8 is strict (random cp1252 bytes almost never decode as UTF-8), so
    trying it first and falling back to cp1252 — what Excel on Windows writes — is reliable.
    Binary content (NUL bytes, control characters) is refused as F01 rather than guessed at.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise FileRejected("F01", f"starts with a UTF-16 mark but is not UTF-16 text ({exc.reason})") from None
    head = data[:8192]
    if b"\x00" in head:
        raise FileRejected("F01", "binary content (NUL bytes), not a text CSV")
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))  # C speed: called per file
    if controls > max(2, len(head) // 100):
        raise FileRejected("F01", f"binary content ({controls} control bytes in the first {len(head)} bytes)")
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise FileRejected("F01", f"UTF-8 BOM but invalid UTF-8 at byte {exc.start}") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise FileRejected("F01", f"neither UTF-8 nor cp1252 text (byte 0x{data[exc.start]:02x} "
                                  f"at offset {exc.start})") from None


def sniff_delimiter(text: str) -> str:
    """`;` or `,`: the one that splits the busiest of the first lines into more fields.

    The header line has one delimiter per column, so it decides; a `1,234` in a semicolon file
    or a title row does not.
    """
    best = {",": 0, ";": 0, "\t": 0}
    for line in text.splitlines()[:HEADER_SCAN_ROWS + 5]:
        for d in best:
            best[d] = max(best[d], line.count(d))
    return max(best, key=lambda d: (best[d], d == ","))


_BLANK_LINE = re.compile(r"(?m)^(?=\r?\n)")


def read_csv_grid(reader: duckdb.DuckDBPyConnection, text: str, delimiter: str) -> np.ndarray:
    """The CSV as a text grid (rows × columns, None = empty) with DuckDB's CSV reader.

    The text (already transcoded to UTF-8) goes through a scratch file and `read_csv` with the
    dialect fixed (delimiter, `"` quotes, width = the most delimiters on a line + 1, all VARCHAR,
    short rows padded): no sniffing per file, which is what makes 25,000 small files affordable.
    DuckDB skips blank lines, so a blank line first becomes a line of one delimiter: row
    positions stay those a spreadsheet shows.
    """
    if not text.strip():
        return np.empty((0, 0), dtype=object)
    text = _BLANK_LINE.sub(lambda _: delimiter, text)
    width = max(line.count(delimiter) for line in text.splitlines()) + 1
    columns = {f"c{j}": "VARCHAR" for j in range(width)}
    scratch = _scratch_file(reader)
    scratch.write_text(text, encoding="utf-8")
    sql = ("SELECT * FROM read_csv(?, header = false, auto_detect = false, columns = ?, delim = ?, "
           "quote = '\"', escape = '\"', null_padding = true, max_line_size = 10000000{})")
    try:
        try:
            rows = reader.execute(sql.format(""), [str(scratch), columns, delimiter]).fetchall()
        except duckdb.Error as exc:
            # a quoted cell with a line break ("Klinik\nA") is valid CSV, but DuckDB's parallel
            # scanner cannot combine it with null_padding: read that file serially instead
            if "parallel=false" not in str(exc):
                raise
            rows = reader.execute(sql.format(", parallel = false"),
                                  [str(scratch), columns, delimiter]).fetchall()
    except duckdb.InvalidInputException as exc:
        # malformed CSV (an unterminated quote, a line over the size limit): say where and what
        raise FileRejected("F01", f"not a well-formed CSV ({_csv_error(str(exc))})") from None
    grid = np.empty((len(rows), width), dtype=object)
    if rows:
        grid[:] = rows
    return grid


def _csv_error(message: str) -> str:
    """DuckDB's CSV error, reduced to where and what: `CSV Error on Line: 3: Value with
    unterminated quote found.` (the echoed line, which may be huge, is left out)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    where = next((ln.replace("Invalid Input Error: ", "") for ln in lines if "Line:" in ln), "CSV error")
    what = next((ln for ln in lines if not ln.startswith(("Invalid Input Error", "Original Line", "CSV Error"))
                 and not ln.startswith("Possible fixes")), "")
    return f"{where}: {what}" if what else where


_SCRATCH: dict[int, Path] = {}


def _scratch_file(reader: duckdb.DuckDBPyConnection) -> Path:
    """One scratch CSV per reader connection (a temp folder removed with the reader)."""
    key = id(reader)
    if key not in _SCRATCH:
        import tempfile
        folder = Path(tempfile.mkdtemp(prefix="kolab_raw_"))
        _SCRATCH[key] = folder / "file.csv"
    return _SCRATCH[key]


def close_reader(reader: duckdb.DuckDBPyConnection) -> None:
    import shutil
    scratch = _SCRATCH.pop(id(reader), None)
    reader.close()
    if scratch is not None:
        shutil.rmtree(scratch.parent, ignore_errors=True)


def xlsx_text(value: Any) -> str | None:
    """An XLSX cell value as text: dates ISO (`2025-03-01`), whole numbers without `.0`."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == dtime(0) else value.isoformat(sep=" ")
    if isinstance(value, date | dtime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_archive_guard(zf: zipfile.ZipFile, max_uncompressed: int | None) -> None:
    """Refuse a workbook whose parts would decompress to more than `max_uncompressed` bytes (F03).

    Why before reading anything: an XLSX is a zip, and a few kilobytes of deflate can expand to
    gigabytes of sheet XML (a "zip bomb"). The declared sizes in the zip directory are checked
    first; they cannot be used to smuggle more data past the check, because Python's `zipfile`
    (which openpyxl reads through too) stops at the declared size and fails the CRC.
    """
    if max_uncompressed is None:
        return
    total = sum(i.file_size for i in zf.infolist())
    if total > max_uncompressed:
        packed = sum(i.compress_size for i in zf.infolist())
        raise FileRejected("F03", f"the workbook would expand to {total / 1048576:.1f} MB "
                                  f"({packed / 1048576:.2f} MB compressed); the limit is "
                                  f"{max_uncompressed / 1048576:g} MB (ingest.max_xlsx_uncompressed_mb "
                                  "in kolab.yaml)")


def _part_has_formula(zf: zipfile.ZipFile, name: str) -> bool:
    """Whether a sheet part contains a `<f>` element, scanned in chunks (never the whole part)."""
    tail = b""
    with zf.open(name) as fh:
        while chunk := fh.read(1 << 20):
            if _FORMULA.search(tail + chunk):
                return True
            tail = chunk[-8:]
    return False


def read_xlsx_grids(data: bytes, max_uncompressed: int | None = None, max_rows: int | None = None,
                    max_columns: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Every sheet of a workbook as a text grid, with openpyxl in read-only mode.

    Formulas are never evaluated: the value Excel cached is kept, and when there is none (a file
    written by a program) the formula text itself (`=SUM(F3:F9)`), so the clean layer rejects it
    as a non-number instead of us inventing a value.

    Hostile workbooks are bounded while reading, never after: the archive's uncompressed size
    (`max_uncompressed`, F03), rows per sheet (`max_rows` data rows plus the header scan, F03 as
    soon as it is passed) and columns (only `max_columns + 1` are read: one more than allowed is
    enough for `parse_sheet` to reject the sheet with F05).
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        _xlsx_archive_guard(zf, max_uncompressed)
        has_formula = any(_part_has_formula(zf, n) for n in zf.namelist()
                          if n.startswith("xl/worksheets/") and n.endswith(".xml"))
        return _read_sheets(data, has_formula, max_rows, max_columns)
    except (FileRejected, MemoryError):
        raise
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise FileRejected("F01", f"not a readable XLSX workbook (truncated or corrupt: {exc})") from None
    except Exception as exc:  # a corrupt part: encrypted member, XML syntax, missing part (KeyError)…
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise FileRejected("F01", f"not a readable XLSX workbook ({type(exc).__name__}: {detail})") from None


def _read_sheets(data: bytes, has_formula: bool, max_rows: int | None,
                 max_columns: int | None) -> list[tuple[str, np.ndarray]]:
    import openpyxl

    row_cap = None if max_rows is None else max_rows + HEADER_SCAN_ROWS + 1
    col_cap = None if max_columns is None else max_columns + 1
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    wbf = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False) if has_formula else None
    out: list[tuple[str, np.ndarray]] = []
    try:
        for ws in wb.worksheets:
            if not hasattr(ws, "iter_rows"):  # chartsheets
                continue
            ws.reset_dimensions()  # trust the cells, not a possibly wrong <dimension>
            rows: list[list[str | None]] = []
            for r in ws.iter_rows(values_only=True, max_col=col_cap):
                rows.append([xlsx_text(v) for v in r])
                if row_cap is not None and len(rows) > row_cap:
                    raise FileRejected("F03", f"sheet '{ws.title}' has more than {max_rows} data rows; "
                                              "the limit is "
                                              f"{max_rows} (ingest.max_rows_per_file in kolab.yaml)")
            if wbf is not None:
                wsf = wbf[ws.title]
                wsf.reset_dimensions()
                for r, rf in zip(rows, wsf.iter_rows(values_only=True, max_col=col_cap), strict=False):
                    for j, v in enumerate(rf):
                        if j < len(r) and r[j] is None and isinstance(v, str) and v.startswith("="):
                            r[j] = v
            width = max((len(r) for r in rows), default=0)
            grid = np.empty((len(rows), width), dtype=object)
            for i, r in enumerate(rows):
                grid[i, :len(r)] = r
            out.append((ws.title, grid))
    finally:
        wb.close()
        if wbf is not None:
            wbf.close()
    return out


def _blank_mask(grid: np.ndarray) -> np.ndarray:
    """True where a cell is empty or whitespace only (vectorised over the grid)."""
    if grid.size == 0:
        return np.ones(grid.shape, dtype=bool)
    missing = grid == None  # noqa: E711 (element-wise)
    text = np.where(missing, "", grid).astype(str)
    return missing | (np.strings.str_len(np.strings.strip(text)) == 0)


# --- template grids → rows and cells ----------------------------------------------------------

def declared_forms(rel_path: str) -> set[str]:
    """Forms a path names: a folder called `tb`, or a `_tb_` token in the file name."""
    parts = rel_path.split("/")
    tokens = set(parts[:-1]) | set(re.split(r"[_\-. ]+", parts[-1].lower()))
    return {f for f in FORMS if f in tokens}


def parse_sheet(grid: np.ndarray, name: str, max_columns: int, max_rows: int,
                cat: Catalog | None = None) -> Sheet | None:
    """Find the header, map it, keep the data rows. None = a sheet with nothing in it.

    Raises `FileRejected` for a file-level fault (F02, F03, F04, F05, F08, F09).
    """
    cat = cat or catalog()
    where = f"sheet '{name}'" if name else "the file"
    blank = _blank_mask(grid)
    if grid.size == 0 or blank.all():
        return None
    used_cols = np.flatnonzero(~blank.all(axis=0))
    width = int(used_cols[-1]) + 1
    if width > max_columns:
        raise FileRejected("F05", f"{where} has {width} columns; the limit is {max_columns} "
                                  "(ingest.max_columns in kolab.yaml)")
    grid, blank = grid[:, :width], blank[:, :width]

    header_idx = None
    for i in range(min(HEADER_SCAN_ROWS, grid.shape[0])):
        cells = [v for v in grid[i] if v is not None]
        person = [str(v).strip() for v in cells if normalise_header(v) in PERSON_COLUMNS]
        if person:
            raise FileRejected("F08", f"{where} row {i + 1} has person-identifying column(s) "
                                      f"{', '.join(repr(p) for p in person)}")
        if sum(cat.is_anchor(cat.resolve(v)) for v in cells) >= 2:
            header_idx = i
            break
    if header_idx is None:
        raise FileRejected("F04", f"no header row with periode/kode_faskes/data-element columns in the "
                                  f"first {HEADER_SCAN_ROWS} rows of {where}")
    headers = [None if v is None else str(v) for v in grid[header_idx]]
    canonical = [cat.resolve(h) for h in headers]
    seen: set[str] = set()
    for j, c in enumerate(canonical):  # a repeated template column is kept as an unknown cell
        if c is not None and c in seen and c in META_COLUMNS:
            canonical[j] = None
        elif c is not None:
            seen.add(c)
    missing = [c for c in ("periode", "kode_faskes") if c not in seen]
    if missing:
        raise FileRejected("F04", f"header in row {header_idx + 1} of {where} has no "
                                  f"{' or '.join(repr(m) for m in missing)} column")
    forms: dict[str, list[str]] = {}
    for c in canonical:
        if c in cat.element_form:
            forms.setdefault(cat.element_form[c], []).append(c)
    if len(forms) > 1:
        detail = "; ".join(f"{f}: {', '.join(cols[:3])}{'…' if len(cols) > 3 else ''}"
                           for f, cols in sorted(forms.items()))
        raise FileRejected("F09", f"{where} has data-element columns of forms "
                                  f"{' and '.join(sorted(forms))} ({detail})")
    form = next(iter(forms), None)

    # Rows right under the header that are themselves headers (the template's label row).
    start = header_idx + 1
    while start < grid.shape[0]:
        cells = [v for v in grid[start] if v is not None and str(v).strip()]
        if cells and all(cat.resolve(v) for v in cells) and sum(
                cat.is_anchor(cat.resolve(v)) for v in cells) >= 2:
            start += 1
        else:
            break
    body, body_blank = grid[start:], blank[start:]
    keep = ~body_blank.all(axis=1)
    data = body[keep]
    row_numbers = (np.flatnonzero(keep) + start + 1).astype(np.int64)
    if len(data) == 0:
        raise FileRejected("F02", f"{where} has a header (row {header_idx + 1}) but no data rows")
    if len(data) > max_rows:
        raise FileRejected("F03", f"{where} has {len(data)} data rows; the limit is {max_rows} "
                                  "(ingest.max_rows_per_file in kolab.yaml)")
    return Sheet(name, form, headers, canonical, data, row_numbers)


ROW_COLUMNS = table("raw.submission_row").column_names
CELL_COLUMNS = table("raw.submission_cell").column_names


def sheet_frames(file_id: str, sheet: Sheet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows and cells of one sheet, built column-wise (numpy repeat/tile, no row loops)."""
    n = len(sheet.values)
    ids = np.array([f"{file_id}:{sheet.name}:{r}" for r in sheet.row_numbers.tolist()], dtype=object)
    rows = {"raw_row_id": ids, "sheet": np.full(n, sheet.name, dtype=object),
            "row_number": sheet.row_numbers.astype(np.int32), "form": np.full(n, sheet.form, dtype=object)}
    for meta in META_COLUMNS:
        j = sheet.canonical.index(meta) if meta in sheet.canonical else None
        rows[meta] = sheet.values[:, j] if j is not None else np.full(n, None, dtype=object)
    cell_cols = [j for j, c in enumerate(sheet.canonical) if c not in META_COLUMNS]
    k = len(cell_cols)
    headers = np.array([sheet.headers[j] for j in cell_cols], dtype=object)
    elements = np.array([sheet.canonical[j] for j in cell_cols], dtype=object)
    cells = pd.DataFrame({
        "raw_row_id": np.repeat(ids, k),
        "column_index": np.tile(np.array(cell_cols, dtype=np.int32), n),
        "header": np.tile(headers, n),
        "data_element": np.tile(elements, n),
        "value_text": sheet.values[:, cell_cols].ravel() if k else np.empty(0, dtype=object),
    })
    # A column without a header is kept only where it holds something (padding is not data).
    if k and (headers == None).any():  # noqa: E711 (element-wise comparison)
        cells = cells[cells["header"].notna() | cells["value_text"].notna()]
    return pd.DataFrame(rows), cells.reset_index(drop=True)


def _sheets_to_parsed(file_id: str, sheets: list[Sheet], file_format: str, **kw: Any) -> Parsed:
    frames = [sheet_frames(file_id, s) for s in sheets]
    rows = pd.concat([f[0] for f in frames], ignore_index=True)
    cells = pd.concat([f[1] for f in frames], ignore_index=True)
    return Parsed(file_format, rows, cells, len(rows), sheets=";".join(s.name for s in sheets if s.name), **kw)


def _check_declared_form(sheets: list[Sheet], rel_path: str, multi_sheet: bool) -> None:
    """A sheet named like a form, or (single-sheet files) a path naming a form, must agree with
    the header: a TB file carrying PTM columns is a mix-up to send back, not a PTM report (F09)."""
    for s in sheets:
        by_sheet = {f for f, names in FORM_SHEET_NAMES.items() if normalise_header(s.name) in names}
        declared = by_sheet or (set() if multi_sheet else declared_forms(rel_path))
        if s.form and declared and s.form not in declared:
            where = f"sheet '{s.name}'" if s.name else "the file"
            what = f"sheet name '{s.name}'" if by_sheet else "its folder/file name"
            raise FileRejected("F09", f"{where} has data-element columns of form {s.form} but "
                                      f"{what} says {'/'.join(sorted(declared))}")


def parse_template_csv(reader: duckdb.DuckDBPyConnection, data: bytes, file_id: str, rel_path: str,
                       settings: Settings) -> Parsed:
    text, encoding = decode_text(data)
    if not text.strip():
        raise FileRejected("F02", "the file has no content (only whitespace)")
    delimiter = sniff_delimiter(text)
    grid = read_csv_grid(reader, text, delimiter)
    ing = settings.config.ingest
    sheet = parse_sheet(grid, "", ing.max_columns, ing.max_rows_per_file)
    if sheet is None:
        raise FileRejected("F02", "the file has no content (only empty lines)")
    _check_declared_form([sheet], rel_path, multi_sheet=False)
    return _sheets_to_parsed(file_id, [sheet], "csv", encoding=encoding, delimiter=delimiter)


def parse_template_xlsx(data: bytes, file_id: str, rel_path: str, settings: Settings) -> Parsed:
    ing = settings.config.ingest
    grids = read_xlsx_grids(data, max_uncompressed=int(ing.max_xlsx_uncompressed_mb * 1048576),
                            max_rows=ing.max_rows_per_file, max_columns=ing.max_columns)
    sheets: list[Sheet] = []
    no_header: list[str] = []
    for name, grid in grids:
        if normalise_header(name) in INSTRUCTION_SHEETS:
            continue
        try:
            sheet = parse_sheet(grid, name, ing.max_columns, ing.max_rows_per_file)
        except FileRejected as exc:
            if exc.rule == "F04":  # decided below: fatal only when no sheet has data
                no_header.append(f"{name}: {exc.detail}")
                continue
            raise
        if sheet is not None:
            sheets.append(sheet)
    if no_header:  # a data sheet we cannot read would be lost: the whole file goes back
        raise FileRejected("F04", "; ".join(no_header))
    if not sheets:
        raise FileRejected("F02", "the workbook has no data in any sheet")
    _check_declared_form(sheets, rel_path, multi_sheet=len(sheets) > 1)
    return _sheets_to_parsed(file_id, sheets, "xlsx")


# --- DHIS2 dataValueSets ----------------------------------------------------------------------

def load_dhis2_mapping(landing: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """`landing/dhis2/mapping.csv` (`kind,dhis2_id,kode`) → (data elements, org units, warnings)."""
    path = landing / DHIS2_DIR / DHIS2_MAPPING
    elements: dict[str, str] = {}
    units: dict[str, str] = {}
    warnings: list[str] = []
    if not path.exists():
        return elements, units, [f"{DHIS2_DIR}/{DHIS2_MAPPING}: not found; DHIS2 ids are kept unmapped"]
    text, _ = decode_text(path.read_bytes())
    for i, rec in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        kind = (rec.get("kind") or "").strip()
        key, kode = (rec.get("dhis2_id") or "").strip(), (rec.get("kode") or "").strip()
        if kind == "data_element" and key and kode:
            elements[key] = kode
        elif kind == "org_unit" and key and kode:
            units[key] = kode
        else:
            warnings.append(f"{DHIS2_DIR}/{DHIS2_MAPPING} row {i}: ignored (kind must be "
                            f"data_element or org_unit, dhis2_id and kode non-empty)")
    return elements, units, warnings


def parse_timestamp(text: object, tz: str) -> datetime | None:
    """ISO date/timestamp → UTC. No offset = local time of `tz`; a bare date = noon local, so its
    local date is that date in every Indonesian time zone (WIB/WITA/WIT)."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):  # None, NaN, NaT
        return None
    if isinstance(text, datetime):
        ts = text
    else:
        s = str(text).strip()
        if not s:
            return None
        if len(s) == 10:
            ts = datetime.combine(date.fromisoformat(s), dtime(12))
        else:
            ts = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(tz))
    return ts.astimezone(UTC)


def _dhis2_frame_from_json(data: bytes) -> tuple[pd.DataFrame, dict[str, Any]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileRejected("F07", f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("dataValues"), list):
        raise FileRejected("F07", "JSON has no 'dataValues' list (expected a DHIS2 dataValueSet)")
    values = doc["dataValues"]
    if not values:
        raise FileRejected("F02", "DHIS2 dataValueSet has no dataValues")
    bad = [i for i, v in enumerate(values) if not isinstance(v, dict)]
    if bad:
        raise FileRejected("F07", f"dataValues[{bad[0]}] is not an object")
    frame = pd.DataFrame.from_records(values)
    frame.columns = [str(c).lower() for c in frame.columns]
    # Set-level period / orgUnit / completeDate apply to values that do not carry their own.
    for key, value in doc.items():
        k = str(key).lower()
        if k in ("period", "orgunit", "completedate") and isinstance(value, str | int):
            frame[k] = frame[k].fillna(str(value)) if k in frame.columns else str(value)
    return frame, doc


def _dhis2_frame_from_csv(reader: duckdb.DuckDBPyConnection, data: bytes) -> pd.DataFrame:
    text, _ = decode_text(data)
    if not text.strip():
        raise FileRejected("F02", "the file has no content")
    grid = read_csv_grid(reader, text, sniff_delimiter(text))
    if grid.shape[0] == 0:  # e.g. only byte-order marks
        raise FileRejected("F02", "the file has no content (no line with values)")
    headers = [normalise_header(h).replace("_", "") for h in grid[0]]
    frame = pd.DataFrame(grid[1:], columns=headers)
    frame["_row"] = np.arange(2, len(frame) + 2)
    if len(frame) == 0:
        raise FileRejected("F02", "DHIS2 CSV has a header but no data values")
    return frame


def is_dhis2_csv_header(first_line: str) -> bool:
    keys = {normalise_header(h).replace("_", "") for h in re.split(r"[,;\t]", first_line)}
    return {"dataelement", "period", "orgunit", "value"} <= keys


def parse_dhis2(reader: duckdb.DuckDBPyConnection, data: bytes, file_id: str, file_format: str,
                landing: Path, settings: Settings) -> Parsed:
    """A DHIS2 dataValueSet → one raw row per orgUnit × period × form, one cell per data value.

    Org units and data elements are translated through `landing/dhis2/mapping.csv`; an id that
    is not mapped is kept verbatim (kode_faskes = the orgUnit id; data_element NULL), so the clean
    layer quarantines it with a reason instead of it vanishing here. `period` stays verbatim
    (`202503`). `completeDate` (per value, else set-level) is the received time.
    """
    if file_format == "dhis2_json":
        frame, _ = _dhis2_frame_from_json(data)
        frame["_row"] = np.arange(len(frame))
    else:
        frame = _dhis2_frame_from_csv(reader, data)
    aliases = {"catoptcombo": "categoryoptioncombo", "completedate": "completedate"}
    frame = frame.rename(columns=aliases)
    missing = [c for c in ("dataelement", "period", "orgunit", "value") if c not in frame.columns]
    if missing:
        raise FileRejected("F07", f"dataValues lack {', '.join(missing)} (expected dataElement, "
                                  "period, orgUnit, value)")
    elements, units, _ = load_dhis2_mapping(landing)
    cat = catalog()
    de = frame["dataelement"].astype("string")
    coc = frame["categoryoptioncombo"].astype("string") if "categoryoptioncombo" in frame else None
    header = de if coc is None else (de + "." + coc).fillna(de)
    mapped = header.map(elements).fillna(de.map(elements))
    code = mapped.where(mapped.isin(list(cat.element_form)))
    form = code.map(cat.element_form)
    org = frame["orgunit"].astype("string")
    tz = settings.config.timezones.default
    complete = (frame["completedate"].map(lambda s: parse_timestamp(s, tz))
                if "completedate" in frame else pd.Series([None] * len(frame)))
    long = pd.DataFrame({
        "org": org, "kode": org.map(units).fillna(org), "period": frame["period"].astype("string"),
        "form": form.astype("object"), "header": header.astype("object"),
        "data_element": code.astype("object"),
        "value_text": frame["value"].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                         else xlsx_text(v)),
        "column_index": frame["_row"].to_numpy(dtype=np.int64),
        "complete": pd.to_datetime(complete, utc=True),
    })
    keys = ["org", "period", "form"]
    long["row_number"] = long.groupby(keys, dropna=False, sort=True).ngroup() + 1
    rows = (long.groupby("row_number", sort=True)
                .agg(kode_faskes=("kode", "first"), periode=("period", "first"),
                     form=("form", "first"), received_at=("complete", "max"))
                .reset_index())
    rows["raw_row_id"] = file_id + "::" + rows["row_number"].astype(str)
    long["raw_row_id"] = file_id + "::" + long["row_number"].astype(str)
    rows["sheet"] = ""
    for meta in ("nama_faskes", "tanggal_lapor", "laporan_nihil"):
        rows[meta] = None
    cells = long[CELL_COLUMNS].copy()
    has_complete = rows["received_at"].notna().any()
    return Parsed(file_format, rows, cells, len(rows),
                  received_at=rows["received_at"].max() if has_complete else None,
                  received_source="dhis2_completeDate" if has_complete else None)


# --- landing folder ---------------------------------------------------------------------------

@dataclass
class LandingEntry:
    rel: str
    path: Path
    size: int
    mtime: datetime
    symlink_target: str | None = None


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


def _is_ignored(rel: str) -> bool:
    """Not submissions: manifests (`_…`), the DHIS2 mapping, hidden and Excel lock files."""
    name = rel.rsplit("/", 1)[-1]
    return (name.startswith(("_", ".", "~$")) or rel == f"{DHIS2_DIR}/{DHIS2_MAPPING}"
            or any(part.startswith(".") for part in rel.split("/")[:-1]))


def list_landing(landing: Path) -> Iterator[LandingEntry]:
    """Every file under the landing folder, sorted, without following symlinks.

    A symlink (file or folder) is listed with its target so that it can be refused (F10): files
    must be copied into the landing folder, never linked to places the pipeline should not read.
    """
    if not landing.exists():
        return
    root = landing.resolve()
    for dirpath, dirnames, filenames in os.walk(landing, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        linked_dirs = [d for d in dirnames if (base / d).is_symlink()]
        for d in linked_dirs:
            dirnames.remove(d)
        for name in sorted([*filenames, *linked_dirs]):
            path = base / name
            rel = path.relative_to(landing).as_posix()
            st = path.lstat()
            target = None
            if path.is_symlink():
                resolved = path.resolve()
                inside = resolved == root or root in resolved.parents
                target = f"{'inside' if inside else 'outside'} the landing folder ({os.readlink(path)})"
            yield LandingEntry(rel, path, st.st_size, _mtime(st), target)


def read_manifest(landing: Path, tz: str) -> tuple[dict[str, datetime], list[str]]:
    """`landing/_diterima.csv` (`file,received_at`) → {relative path: UTC}, warnings."""
    path = landing / "_diterima.csv"
    out: dict[str, datetime] = {}
    warnings: list[str] = []
    if not path.exists():
        return out, warnings
    try:
        text, _ = decode_text(path.read_bytes())
    except FileRejected as exc:
        return out, [f"_diterima.csv: unreadable ({exc.detail}); file mtimes are used"]
    for i, rec in enumerate(csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(text)), start=2):
        name = (rec.get("file") or "").strip().replace("\\", "/")
        for prefix in ("./", "landing/"):
            if name.startswith(prefix):
                name = name[len(prefix):]
        try:
            ts = parse_timestamp(rec.get("received_at"), tz)
        except ValueError:
            ts = None
        if not name or ts is None:
            warnings.append(f"_diterima.csv row {i}: file or received_at missing/unreadable; ignored")
            continue
        out[name] = ts
    return out, warnings


LANDING_FILE_COLUMNS = table("raw.landing_file").column_names


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Tables from an older contract gain the raw layer's newer columns (additive only)."""
    ensure_schema(con)
    t = table("raw.landing_file")
    for c in t.columns:
        con.execute(f"ALTER TABLE {t.qualified} ADD COLUMN IF NOT EXISTS {c.name} {c.type}")


class _Writer:
    """Accumulates files' rows and cells and writes them in bulk, one transaction per batch.

    A landing_file row and its rows/cells commit together, so an interrupted run leaves either a
    whole file or nothing of it; deleting the batch's file_ids first keeps a retry idempotent.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.files: list[dict[str, Any]] = []
        self.paths: list[dict[str, Any]] = []
        self.rows: list[pd.DataFrame] = []
        self.cells: list[pd.DataFrame] = []

    def add(self, file_row: dict[str, Any], rows: pd.DataFrame | None = None,
            cells: pd.DataFrame | None = None) -> None:
        self.files.append(file_row)
        if rows is not None and len(rows):
            self.rows.append(rows)
        if cells is not None and len(cells):
            self.cells.append(cells)
        if len(self.files) >= BATCH_FILES:
            self.flush()

    def add_path(self, path_row: dict[str, Any]) -> None:
        self.paths.append(path_row)

    def flush(self) -> None:
        if not (self.files or self.paths):
            return
        con = self.con
        files = pd.DataFrame(self.files, columns=LANDING_FILE_COLUMNS)
        for c in ("file_mtime", "received_at", "ingested_at"):
            files[c] = pd.to_datetime(files[c], utc=True)
        paths = pd.DataFrame(self.paths, columns=table("raw.landing_path").column_names)
        for c in ("file_mtime", "seen_at"):
            paths[c] = pd.to_datetime(paths[c], utc=True)
        rows = (pd.concat(self.rows, ignore_index=True) if self.rows
                else pd.DataFrame(columns=ROW_COLUMNS))
        cells = (pd.concat(self.cells, ignore_index=True) if self.cells
                 else pd.DataFrame(columns=CELL_COLUMNS))
        rows["received_at"] = pd.to_datetime(rows["received_at"], utc=True)
        rows["row_number"] = rows["row_number"].astype("int32")
        cells["column_index"] = cells["column_index"].astype("int32")
        ids = files[["file_id"]]
        with transaction(con):
            for name, frame in (("_lf", files), ("_lp", paths), ("_sr", rows[ROW_COLUMNS]),
                                ("_sc", cells[CELL_COLUMNS]), ("_ids", ids)):
                con.register(name, frame)
            try:
                _write_manifest(con, ids="_ids", lf="_lf", lp="_lp")
                sr = ", ".join(ROW_COLUMNS)
                con.execute(f"INSERT INTO raw.submission_row ({sr}) SELECT {sr} FROM _sr")
                sc = ", ".join(CELL_COLUMNS)
                con.execute(f"INSERT INTO raw.submission_cell ({sc}) SELECT {sc} FROM _sc")
            finally:
                for name in ("_lf", "_lp", "_sr", "_sc", "_ids"):
                    con.unregister(name)
        self.files, self.paths, self.rows, self.cells = [], [], [], []


def _write_manifest(con: duckdb.DuckDBPyConnection, ids: str, lf: str, lp: str) -> None:
    """Record files in the manifest, inside the caller's transaction (both ingest paths).

    `ids`, `lf`, `lp` name registered frames/tables (internal constants, never file text): the
    file ids, their `raw.landing_file` rows and their `raw.landing_path` rows. Whatever an earlier,
    interrupted attempt left for these files goes first, so a retry after a crash never
    duplicates rows; a known path × content seen again with a new mtime (touched) keeps one
    `landing_path` row with the new mtime.
    """
    if con.execute(f"SELECT count(*) FROM raw.submission_row WHERE file_id IN (SELECT file_id FROM {ids})"
                   ).fetchone()[0]:
        con.execute("DELETE FROM raw.submission_cell WHERE raw_row_id IN (SELECT raw_row_id FROM "
                    f"raw.submission_row WHERE file_id IN (SELECT file_id FROM {ids}))")
        con.execute(f"DELETE FROM raw.submission_row WHERE file_id IN (SELECT file_id FROM {ids})")
    con.execute(f"DELETE FROM raw.landing_file WHERE file_id IN (SELECT file_id FROM {ids})")
    cols = ", ".join(LANDING_FILE_COLUMNS)
    con.execute(f"INSERT INTO raw.landing_file ({cols}) SELECT {cols} FROM {lf}")
    cols = ", ".join(table("raw.landing_path").column_names)
    con.execute(f"UPDATE raw.landing_path q SET size_bytes = p.size_bytes, file_mtime = p.file_mtime "
                f"FROM {lp} p WHERE q.source_path = p.source_path AND q.file_id = p.file_id")
    con.execute(f"INSERT INTO raw.landing_path ({cols}) SELECT {cols} FROM {lp} p WHERE NOT EXISTS "
                "(SELECT 1 FROM raw.landing_path q WHERE q.source_path = p.source_path "
                "AND q.file_id = p.file_id)")


def _sha256_file(path: Path, max_bytes: int | None = None) -> tuple[str, bytes | None, int]:
    """sha256 of the file; the bytes too when it is small enough to parse (else None).

    Why the limit: the content of a file larger than `max_bytes` is hashed in 1 MB chunks but
    not kept, so a multi-gigabyte file dropped into the landing folder is rejected (F03) without
    ever being held in memory.
    """
    h = hashlib.sha256()
    chunks: list[bytes] | None = []
    total = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            total += len(chunk)
            if chunks is not None:
                chunks.append(chunk)
                if max_bytes is not None and total > max_bytes:
                    chunks = None
    return h.hexdigest(), (None if chunks is None else b"".join(chunks)), total


def _file_row(file_id: str, kind: str, rel: str, fmt: str | None, size: int | None,
              mtime: datetime | None, received_at: datetime | None, received_source: str | None,
              run_id: str, now: datetime, **kw: Any) -> dict[str, Any]:
    row = dict.fromkeys(LANDING_FILE_COLUMNS)
    row.update(file_id=file_id, source_kind=kind, source_path=rel, file_format=fmt,
               size_bytes=size, file_mtime=mtime, received_at=received_at,
               received_source=received_source, run_id=run_id, ingested_at=now,
               n_rows_read=0, n_rows_kept=0, n_rows_rejected=0)
    row.update(kw)
    return row


def detect_format(rel: str, data: bytes) -> str:
    """csv | xlsx | dhis2_json | dhis2_csv from the name and, for CSV, the header line."""
    suffix = Path(rel).suffix.lower()
    fmt = FORMAT_BY_SUFFIX.get(suffix)
    if fmt is None:
        hint = " (save old .xls workbooks as .xlsx)" if suffix == ".xls" else ""
        raise FileRejected("F06", f"extension '{suffix or '(none)'}' is not .csv, .xlsx or .json{hint}")
    if fmt == "csv":
        try:
            first = decode_text(data[:4096])[0].lstrip("\ufeff").splitlines()[:1]
        except FileRejected:
            first = []
        if (first and is_dhis2_csv_header(first[0])) or rel.split("/", 1)[0] == DHIS2_DIR:
            return "dhis2_csv"
    return fmt


# --- batched CSV fast path --------------------------------------------------------------------
#
# At national scale the landing folder holds tens of thousands of small recap CSVs that all share a
# handful of layouts (one per form). Parsing them one by one costs a DuckDB call, a numpy grid and
# a few pandas frames per file; here files whose layout is provably plain are grouped by layout
# (delimiter + header line) and each group is split into rows and cells by one SQL statement,
# straight into the warehouse. "Provably plain" is decided per file in Python (cheap, C-speed
# string scans) so that the SQL split yields exactly what `parse_template_csv` would: every other
# file (cp1252, BOM, quotes, title/blank/label rows, odd widths, a form mix-up, …) keeps the
# per-file path, so each messy case behaves exactly as before.

FAST_CHUNK_BYTES = 8 << 20        # text per batch statement (bounded memory, few statements)
FAST_CHUNK_FILES = 2000
FAST_PENDING_BYTES = 32 << 20     # all groups together: flush the biggest beyond this
_FAST_MAX_TEXT = 9_000_000        # below DuckDB's max_line_size of the per-file path (10 MB)
# Anything that would make a plain delimiter split differ from DuckDB's CSV reader or from
# `str.splitlines` (quotes, CR, other controls and line separators, a BOM anywhere) → per-file path.
_FAST_REFUSE = re.compile("[\x00-\x08\x0b-\x1f\"\x85\u2028\u2029\ufeff]")
# A line that is empty or whitespace only: the per-file path keeps such lines as (blank) rows.
_BLANKISH_LINE = re.compile(r"(?m)^[^\S\n]*$")


@cache
def _whitespace_chars() -> str:
    """Every character `str.strip()` removes (and numpy's `strings.strip`, used by `_blank_mask`)."""
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
    if any(normalise_header(h) in PERSON_COLUMNS for h in headers):
        return None
    if sum(cat.is_anchor(cat.resolve(h)) for h in headers) < 2:
        return None
    canonical: list[str | None] = [cat.resolve(h) for h in headers]
    seen: set[str] = set()
    for j, c in enumerate(canonical):  # as parse_sheet: a repeated template column is an unknown cell
        if c is not None and c in seen and c in META_COLUMNS:
            canonical[j] = None
        elif c is not None:
            seen.add(c)
    if not {"periode", "kode_faskes"} <= seen:
        return None
    forms = {cat.element_form[c] for c in canonical if c in cat.element_form}
    if len(forms) > 1:
        return None
    return CsvLayout(delimiter, header_line, tuple(headers), tuple(canonical), next(iter(forms), None))


def fast_csv_layout(text: str, rel_path: str, settings: Settings) -> CsvLayout | None:
    """The batch layout of a decoded UTF-8 CSV (no BOM), or None when the file needs the per-file
    path. Accepted only when a plain split (lines on `\\n`, cells on the delimiter) is provably what
    `parse_template_csv` reads: no quotes/CR/controls, no blank or whitespace-only line, the header
    on row 1, no row wider than the header, no label row under it, at least one data row, within
    the row/column limits, and a form that agrees with the path. One pass of C-speed scans per file.
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
    if layout is None or layout.width > ing.max_columns or len(lines) - 1 > ing.max_rows_per_file:
        return None
    if len(lines) < 2 or max(map(str.count, lines, [delimiter] * len(lines))) > layout.width - 1:
        return None
    # parse_sheet skips label rows right under the header: leave such files to it
    cat = catalog()
    second = [v for v in lines[1].split(delimiter) if v.strip()]
    if second and all(cat.resolve(v) for v in second) and sum(cat.is_anchor(cat.resolve(v)) for v in second) >= 2:
        return None
    # at least one data row with something in it (else F02 on the per-file path)
    if not re.search(f"[^\\s{re.escape(delimiter)}]", body[len(lines[0]):]):
        return None
    declared = declared_forms(rel_path)
    if layout.form and declared and layout.form not in declared:
        return None
    return layout


@dataclass
class _FastFile:
    entry: LandingEntry
    file_id: str
    data: bytes
    text: str
    received_at: datetime
    received_source: str


class _CsvBatcher:
    """Collects fast-path CSV files per layout and writes each chunk in one transaction: its
    `raw.landing_file` / `raw.landing_path` rows and its rows and cells (built in SQL), so an
    interrupted run leaves whole files or nothing, as the per-file writer does.

    If a chunk fails in DuckDB (unexpected: the files were checked), its files go through the
    per-file path one by one (`fallback`), so one bad file cannot take its neighbours down.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, now: datetime,
                 summary: IngestSummary, known_ids: dict[str, tuple[str, str] | None],
                 fallback: Callable[[LandingEntry, IngestSummary, tuple[str, bytes, int]], None]) -> None:
        self.con, self.settings, self.run_id, self.now = con, settings, run_id, now
        self.summary, self.known_ids, self.fallback = summary, known_ids, fallback
        self.groups: dict[CsvLayout, list[_FastFile]] = {}
        self.group_bytes: dict[CsvLayout, int] = {}
        self.pending_bytes = 0
        self.duplicates: dict[str, list[str]] = {}   # pending file_id → other paths with that content
        self.chunks = 0

    def offer(self, entry: LandingEntry, file_id: str, data: bytes, received_at: datetime,
              received_source: str) -> bool:
        """Take the file into a batch when its layout allows; False = parse it per file."""
        if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
            return False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        layout = fast_csv_layout(text, entry.rel, self.settings)
        if layout is None:
            return False
        self.groups.setdefault(layout, []).append(
            _FastFile(entry, file_id, data, text, received_at, received_source))
        self.group_bytes[layout] = self.group_bytes.get(layout, 0) + len(data)
        self.pending_bytes += len(data)
        self.duplicates[file_id] = []
        self.known_ids[file_id] = None   # before any flush: a fallback may still turn it into a rejection
        if self.group_bytes[layout] >= FAST_CHUNK_BYTES or len(self.groups[layout]) >= FAST_CHUNK_FILES:
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
        try:
            counts = write_csv_batch(self.con, layout, files, self.run_id, self.now)
        except Exception as exc:  # nothing of the chunk was committed: read its files one by one
            self.summary.warnings.append(
                f"batched CSV read of {len(files)} files ({files[0].entry.rel} …) failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); read one by one instead")
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

    def _fallback(self, f: _FastFile) -> None:
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


def write_csv_batch(con: duckdb.DuckDBPyConnection, layout: CsvLayout, files: list[_FastFile],
                    run_id: str, now: datetime) -> dict[str, int]:
    """Write a group of same-layout CSV files in one transaction; returns data rows per file_id.

    Rows and cells are split in SQL from the files' text (the bytes that were hashed, so what is
    stored is exactly the content named by `file_id`): lines on `\\n` with their 1-based position
    (= the row number a spreadsheet shows; the header is row 1), cells on the delimiter, an empty
    cell NULL (as DuckDB's CSV reader gives it), lines whose cells are all blank skipped (as
    `parse_sheet` does), every non-template column one `raw.submission_cell`.
    Grain: `raw.submission_row` one data line of a file; `raw.submission_cell` one line × column.
    """
    meta = pd.DataFrame({
        "idx": np.arange(len(files), dtype=np.int32),
        "file_id": [f.file_id for f in files],
        "source_path": [f.entry.rel for f in files],
        "received_at": pd.to_datetime([f.received_at for f in files], utc=True),
        "text": [f.text for f in files],
    })
    cell_cols = [j for j, c in enumerate(layout.canonical) if c not in META_COLUMNS]
    cols = pd.DataFrame({"j": np.array(cell_cols, dtype=np.int32),
                         "header": [layout.headers[j] for j in cell_cols],
                         "data_element": pd.Series([layout.canonical[j] for j in cell_cols], dtype=object)})
    row_expr = {"raw_row_id": "l.raw_row_id", "file_id": "m.file_id",
                "source_kind": "'file'", "source_path": "m.source_path", "sheet": "''",
                "row_number": "l.row_number", "form": "?::VARCHAR", "received_at": "m.received_at",
                "run_id": "?::VARCHAR"}
    row_params: list[Any] = []
    select = []
    for name in ROW_COLUMNS:
        if name in META_COLUMNS:
            j = layout.canonical.index(name) if name in layout.canonical else None
            select.append("NULL::VARCHAR" if j is None else f"nullif(l.f[{int(j) + 1}], '')")
        else:
            select.append(row_expr[name])
            if name == "form":
                row_params.append(layout.form)
            elif name == "run_id":
                row_params.append(run_id)
    sr, sc = ", ".join(ROW_COLUMNS), ", ".join(CELL_COLUMNS)
    with transaction(con):
        con.register("_fast_meta", meta)
        con.register("_fast_cols", cols)
        try:
            con.execute("""
                CREATE OR REPLACE TEMP TABLE _fast_lines AS
                SELECT idx, n::INTEGER AS row_number, file_id || '::' || n AS raw_row_id,
                       string_split(line, $d) AS f
                  FROM (SELECT idx, file_id, unnest(ls) AS line, generate_subscripts(ls, 1) AS n
                          FROM (SELECT idx, file_id, string_split(text, chr(10)) AS ls FROM _fast_meta))
                 WHERE n > 1 AND trim(replace(line, $d, ''), $ws) <> ''""",
                        {"d": layout.delimiter, "ws": _whitespace_chars()})
            counts = dict.fromkeys(meta["file_id"], 0)
            counts.update(dict(con.execute(
                "SELECT m.file_id, count(*) FROM _fast_lines l JOIN _fast_meta m USING (idx) GROUP BY 1"
            ).fetchall()))
            empty = [fid for fid, n in counts.items() if n == 0]
            if empty:  # cannot happen after fast_csv_layout; never write an empty "ingested" file
                raise ValueError(f"no data rows in {len(empty)} file(s) of the batch")
            landing = pd.DataFrame([_file_row(
                f.file_id, kind="file", rel=f.entry.rel, fmt="csv", size=f.entry.size, mtime=f.entry.mtime,
                received_at=f.received_at, received_source=f.received_source, run_id=run_id, now=now,
                status="ingested", n_rows_read=counts[f.file_id], n_rows_kept=counts[f.file_id],
                n_rows_rejected=0, encoding="utf-8", delimiter=layout.delimiter, sheets="")
                for f in files], columns=LANDING_FILE_COLUMNS)
            for c in ("file_mtime", "received_at", "ingested_at"):
                landing[c] = pd.to_datetime(landing[c], utc=True)
            paths = pd.DataFrame([dict(source_path=f.entry.rel, file_id=f.file_id, size_bytes=f.entry.size,
                                       file_mtime=f.entry.mtime, role="primary", run_id=run_id, seen_at=now)
                                  for f in files], columns=table("raw.landing_path").column_names)
            for c in ("file_mtime", "seen_at"):
                paths[c] = pd.to_datetime(paths[c], utc=True)
            con.register("_fast_lf", landing)
            con.register("_fast_lp", paths)
            _write_manifest(con, ids="_fast_meta", lf="_fast_lf", lp="_fast_lp")
            con.execute(f"INSERT INTO raw.submission_row ({sr}) SELECT {', '.join(select)} "
                        "FROM _fast_lines l JOIN _fast_meta m USING (idx)", row_params)
            if cell_cols:
                con.execute(f"INSERT INTO raw.submission_cell ({sc}) "
                            "SELECT l.raw_row_id, c.j, c.header, c.data_element, nullif(l.f[c.j + 1], '') "
                            "FROM _fast_lines l CROSS JOIN _fast_cols c")
            con.execute("DROP TABLE _fast_lines")
        finally:
            for name in ("_fast_meta", "_fast_cols", "_fast_lf", "_fast_lp"):
                with contextlib.suppress(Exception):
                    con.unregister(name)
    return counts


def ingest_landing(con: duckdb.DuckDBPyConnection, settings: Settings,
                   run_id: str | None = None, batch_csv: bool = True) -> IngestSummary:
    """Ingest every new file content under `KOLAB_HOME/landing/**` into the raw tables.

    Files already known by (path, size, mtime) are skipped without reading; others are hashed and
    skipped when their content (sha256) is already in `raw.landing_file`. Each file is parsed on
    its own; any fault becomes a `rejected` landing_file row (F01…F10) and the run continues.

    `batch_csv` (default on): plain UTF-8 template CSVs are grouped by layout and split in SQL in
    batches (`fast_csv_layout`, `write_csv_batch`) — same tables, far less per-file overhead;
    off = every file through the per-file parser (kept for comparison and tests).
    """
    run_id = run_id or new_run_id()
    t0 = time.perf_counter()
    _migrate(con)
    landing = settings.paths.landing
    summary = IngestSummary(run_id=run_id)
    tz = settings.config.timezones.default
    manifest, warnings = read_manifest(landing, tz)
    summary.warnings += warnings
    if (landing / DHIS2_DIR).exists():
        summary.warnings += load_dhis2_mapping(landing)[2]
    known_paths = {(p, int(s), m) for p, s, m in con.execute(
        "SELECT source_path, size_bytes, file_mtime FROM raw.landing_path").fetchall()}
    # file_id → (rule, reason) when that content was rejected, else None
    known_ids: dict[str, tuple[str, str] | None] = {
        f: (rule, why) if rule else None for f, rule, why in con.execute(
            "SELECT file_id, reject_rule, reject_reason FROM raw.landing_file").fetchall()}
    known_pairs = {(p, f) for p, f in con.execute(
        "SELECT source_path, file_id FROM raw.landing_path").fetchall()}
    max_bytes = int(settings.config.ingest.max_file_mb * 1024 * 1024)
    reader = duckdb.connect()
    writer = _Writer(con)
    now = datetime.now(UTC)

    def one_by_one(entry: LandingEntry, into: IngestSummary,
                   prehashed: tuple[str, bytes, int] | None = None) -> None:
        _ingest_one(entry, settings, run_id, now, manifest, max_bytes, reader, writer,
                    known_ids, known_pairs, into, prehashed=prehashed)

    batcher = _CsvBatcher(con, settings, run_id, now, summary, known_ids, one_by_one) if batch_csv else None
    try:
        for entry in list_landing(landing):
            if _is_ignored(entry.rel):
                summary.files_ignored += 1
                continue
            summary.files_seen += 1
            if (entry.rel, entry.size, entry.mtime) in known_paths:
                summary.files_skipped += 1
                continue
            _ingest_one(entry, settings, run_id, now, manifest, max_bytes, reader, writer,
                        known_ids, known_pairs, summary, batcher=batcher)
        if batcher is not None:
            batcher.flush()
        writer.flush()
    finally:
        close_reader(reader)
    summary.seconds = time.perf_counter() - t0
    return summary


def _ingest_one(entry: LandingEntry, settings: Settings, run_id: str, now: datetime,
                manifest: dict[str, datetime], max_bytes: int, reader: duckdb.DuckDBPyConnection,
                writer: _Writer, known_ids: dict[str, tuple[str, str] | None], known_pairs: set[tuple[str, str]],
                summary: IngestSummary, batcher: _CsvBatcher | None = None,
                prehashed: tuple[str, bytes, int] | None = None) -> None:
    """One landing file: hash, skip/record duplicates, then parse it (or hand a plain CSV to the
    batcher) and queue its rows. `prehashed` = (file_id, bytes, size) already read (batch fallback)."""
    rel = entry.rel
    received = manifest.get(rel)
    received_at, received_source = (received, "manifest") if received else (entry.mtime, "mtime")
    base = dict(kind="file", rel=rel, size=entry.size, mtime=entry.mtime, received_at=received_at,
                received_source=received_source, run_id=run_id, now=now)

    def reject(file_id: str, fmt: str | None, rule: str, detail: str, n_read: int = 0,
               **kw: Any) -> None:
        reason = reject_reason(rel, rule, detail)
        kind = "dhis2" if fmt and fmt.startswith("dhis2") else "file"
        writer.add(_file_row(file_id, fmt=fmt, status="rejected", reject_rule=rule,
                             reject_reason=reason, n_rows_read=n_read, n_rows_rejected=n_read,
                             **{**base, "kind": kind}, **kw))
        writer.add_path(dict(source_path=rel, file_id=file_id, size_bytes=entry.size,
                             file_mtime=entry.mtime, role="primary", run_id=run_id, seen_at=now))
        known_ids[file_id] = (rule, reason)
        summary.files_rejected += 1
        summary.rows_read += n_read
        summary.rows_rejected += n_read
        summary.rejected.append((rel, rule, reason))

    if entry.symlink_target is not None:
        file_id = hashlib.sha256(f"symlink:{rel}".encode()).hexdigest()
        if file_id not in known_ids:
            reject(file_id, None, "F10", f"a symbolic link to {entry.symlink_target}; copy the "
                                         "file into the landing folder instead")
        return
    try:
        file_id, data, size = prehashed if prehashed is not None else _sha256_file(entry.path, max_bytes)
    except OSError as exc:
        file_id = hashlib.sha256(f"unreadable:{rel}:{entry.size}:{entry.mtime}".encode()).hexdigest()
        if file_id not in known_ids:
            reject(file_id, None, "F01", f"cannot be opened ({exc.strerror or exc})")
        return
    if file_id in known_ids:
        # Same content as a file already ingested (or rejected): record the name, ingest nothing.
        writer.add_path(dict(source_path=rel, file_id=file_id, size_bytes=entry.size,
                             file_mtime=entry.mtime, role="duplicate", run_id=run_id, seen_at=now))
        if batcher is not None:
            batcher.note_duplicate(file_id, rel)
        if (rel, file_id) in known_pairs:
            summary.files_skipped += 1      # same path, same content, only touched
            return
        summary.files_duplicate += 1
        if known_ids[file_id] is not None:  # the sender of this copy must hear why, too
            rule, why = known_ids[file_id]
            summary.rejected.append((rel, rule, f"{rel}: same content as a rejected file — {why}"))
        return
    summary.bytes_read += size
    fmt: str | None = None
    try:
        if size == 0:
            raise FileRejected("F02", "the file is empty (0 bytes)")
        if size > max_bytes:
            raise FileRejected("F03", f"{size} bytes ({size / 1048576:.2f} MB); the limit is "
                                      f"{settings.config.ingest.max_file_mb:g} MB (ingest.max_file_mb in kolab.yaml)")
        assert data is not None
        fmt = detect_format(rel, data)
        if fmt == "csv" and batcher is not None and batcher.offer(entry, file_id, data, received_at,
                                                                  received_source):
            return  # written with its batch (or, should the batch fail, one by one)
        if fmt == "csv":
            parsed = parse_template_csv(reader, data, file_id, rel, settings)
        elif fmt == "xlsx":
            parsed = parse_template_xlsx(data, file_id, rel, settings)
        else:
            parsed = parse_dhis2(reader, data, file_id, fmt, settings.paths.landing, settings)
    except FileRejected as exc:
        reject(file_id, fmt, exc.rule, exc.detail)
        return
    except Exception as exc:  # never let one file stop the run: F01 with what happened
        rule = "F07" if fmt and fmt.startswith("dhis2") else "F01"
        reject(file_id, fmt, rule, f"could not be read ({type(exc).__name__}: {exc})".splitlines()[0])
        return
    kind = "dhis2" if parsed.file_format.startswith("dhis2") else "file"
    rows = parsed.rows
    file_received = parsed.received_at if parsed.received_at is not None else received_at
    source = parsed.received_source or received_source
    if "received_at" in rows and rows["received_at"].notna().any():
        rows["received_at"] = pd.to_datetime(rows["received_at"], utc=True).fillna(pd.Timestamp(received_at))
    else:
        rows["received_at"] = received_at
    rows["file_id"] = file_id
    rows["source_kind"] = kind
    rows["source_path"] = rel
    rows["run_id"] = run_id
    writer.add(_file_row(file_id, **{**base, "kind": kind, "received_at": file_received,
                                     "received_source": source},
                         fmt=parsed.file_format, status="ingested", n_rows_read=parsed.n_rows_read,
                         n_rows_kept=len(rows), n_rows_rejected=parsed.n_rows_read - len(rows),
                         encoding=parsed.encoding, delimiter=parsed.delimiter, sheets=parsed.sheets),
               rows[ROW_COLUMNS], parsed.cells)
    writer.add_path(dict(source_path=rel, file_id=file_id, size_bytes=entry.size,
                         file_mtime=entry.mtime, role="primary", run_id=run_id, seen_at=now))
    known_ids[file_id] = None
    summary.files_ingested += 1
    summary.rows_read += parsed.n_rows_read
    summary.rows_kept += len(rows)
    summary.cells += len(parsed.cells)


# --- SQL source -------------------------------------------------------------------------------

def _sql_label(table_name: str | None, query: str | None) -> str:
    """A label for lineage that never contains the URL (it may hold a password)."""
    if table_name:
        return f"sql:{_SQL_LABEL_SAFE.sub('_', table_name)}"
    return f"sql:query:{hashlib.sha256((query or '').encode()).hexdigest()[:12]}"


def fetch_sql_rows(url: str, table_name: str | None = None,
                   query: str | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Pull the source with every column cast to text **on the server** (values verbatim as the
    source holds them: `5`, `2025-03`), except `received_at`, which stays a timestamp."""
    import sqlalchemy as sa

    if bool(table_name) == bool(query):
        raise ValueError("give exactly one of table or query for the SQL source")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if table_name:
                schema, _, name = table_name.rpartition(".")
                src = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                cols = [c.name for c in src.columns]
                source = src
            else:
                probe = conn.execute(sa.text(f"SELECT * FROM ({query}) AS q LIMIT 0"))
                cols = list(probe.keys())
                source = sa.text(query).columns(*[sa.column(c) for c in cols]).subquery("q")
            select = sa.select(*[
                source.c[c].label(c) if normalise_header(c) == "received_at"
                else sa.cast(source.c[c], sa.String).label(c) for c in cols])
            rows = [tuple(r) for r in conn.execute(select).fetchall()]
    finally:
        engine.dispose()
    return cols, rows


def _pull_id(cols: list[str], rows: list[tuple[Any, ...]]) -> tuple[str, list[int]]:
    """sha256 of the pulled rows, independent of the order the database returned them in.

    Returns the id and the order (indices) in which rows get stable row numbers.
    """
    lines = [json.dumps([None if v is None else str(v) for v in r], ensure_ascii=False) for r in rows]
    order = sorted(range(len(lines)), key=lines.__getitem__)
    h = hashlib.sha256(json.dumps(cols).encode())
    for i in order:
        h.update(lines[i].encode())
        h.update(b"\n")
    return h.hexdigest(), order


def ingest_sql(con: duckdb.DuckDBPyConnection, settings: Settings, url: str,
               table: str | None = None, query: str | None = None,
               run_id: str | None = None) -> IngestSummary:
    """Ingest a SQL table/query (wide template or long `data_element,value` form) as one pull.

    The pull is one `raw.landing_file` row (`source_kind='sql'`, `file_id` = sha256 of the rows):
    an unchanged source ingests nothing; a changed one is a new pull (a new version downstream).
    Row numbers follow the sorted row content, so they are stable whatever order the database
    returns. `received_at` comes from the source column (naive = the default local time zone).
    """
    run_id = run_id or new_run_id()
    t0 = time.perf_counter()
    _migrate(con)
    summary = IngestSummary(run_id=run_id)
    label = _sql_label(table, query)
    now = datetime.now(UTC)
    writer = _Writer(con)
    try:
        cols, rows = fetch_sql_rows(url, table, query)
    except Exception as exc:  # the source being down is a failed pull, reported, not a crash
        summary.warnings.append(f"{label}: could not read the SQL source ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0]})")
        summary.seconds = time.perf_counter() - t0
        return summary
    file_id, order = _pull_id(cols, rows)
    summary.files_seen = 1
    if con.execute("SELECT count(*) FROM raw.landing_file WHERE file_id = ?", [file_id]).fetchone()[0]:
        summary.files_skipped = 1
        summary.seconds = time.perf_counter() - t0
        return summary
    tz = settings.config.timezones.default
    base = dict(kind="sql", rel=label, fmt="sql", size=None, mtime=None, run_id=run_id, now=now)
    try:
        parsed = parse_sql_rows(cols, [rows[i] for i in order], file_id, tz)
    except FileRejected as exc:
        reason = reject_reason(label, exc.rule, exc.detail)
        writer.add(_file_row(file_id, **base, received_at=None, received_source=None,
                             status="rejected", reject_rule=exc.rule, reject_reason=reason,
                             n_rows_read=len(rows), n_rows_rejected=len(rows)))
        writer.flush()
        summary.files_rejected = 1
        summary.rows_read = summary.rows_rejected = len(rows)
        summary.rejected.append((label, exc.rule, reason))
        summary.seconds = time.perf_counter() - t0
        return summary
    prow = parsed.rows
    prow["file_id"], prow["source_kind"], prow["source_path"], prow["run_id"] = file_id, "sql", label, run_id
    has_received = prow["received_at"].notna().any()
    writer.add(_file_row(file_id, **base,
                         received_at=prow["received_at"].max() if has_received else None,
                         received_source="source_column" if has_received else None,
                         status="ingested", n_rows_read=parsed.n_rows_read, n_rows_kept=len(prow),
                         n_rows_rejected=parsed.n_rows_read - len(prow)),
               prow[ROW_COLUMNS], parsed.cells)
    writer.flush()
    summary.files_ingested = 1
    summary.rows_read = parsed.n_rows_read
    summary.rows_kept = len(prow)
    summary.cells = len(parsed.cells)
    summary.seconds = time.perf_counter() - t0
    return summary


def parse_sql_rows(cols: list[str], rows: list[tuple[Any, ...]], file_id: str, tz: str) -> Parsed:
    """SQL rows (already text) → raw rows and cells; wide or long layout from the column names."""
    cat = catalog()
    norm = [normalise_header(c) for c in cols]
    person = [c for c, n in zip(cols, norm, strict=True) if n in PERSON_COLUMNS]
    if person:
        raise FileRejected("F08", f"person-identifying column(s) {', '.join(repr(p) for p in person)}")
    if not rows:
        raise FileRejected("F02", "the query returned no rows")
    frame = pd.DataFrame.from_records(rows, columns=[f"c{j}" for j in range(len(cols))])
    received = (frame[f"c{norm.index('received_at')}"].map(lambda v: parse_timestamp(v, tz))
                if "received_at" in norm else pd.Series([None] * len(frame)))
    if {"data_element", "value"} <= set(norm):   # long canonical form
        get = {n: frame[f"c{j}"] for j, n in enumerate(norm)}
        for need in ("periode", "kode_faskes"):
            if need not in get:
                raise FileRejected("F04", f"long-form source has no '{need}' column")
        de = get["data_element"].astype("object")
        known = de.where(de.isin(list(cat.element_form)))
        form = get["form"] if "form" in get else known.map(cat.element_form)
        long = pd.DataFrame({"periode": get["periode"], "kode_faskes": get["kode_faskes"],
                             "form": form.astype("object"), "header": de,
                             "data_element": known.astype("object"),
                             "value_text": get["value"].astype("object"),
                             "received_at": pd.to_datetime(received, utc=True)})
        for meta in ("nama_faskes", "tanggal_lapor", "laporan_nihil"):
            long[meta] = get.get(meta)
        long["row_number"] = long.groupby(["periode", "kode_faskes", "form"], dropna=False,
                                          sort=True).ngroup() + 1
        long["column_index"] = np.arange(len(long), dtype=np.int32)
        out = (long.groupby("row_number", sort=True)
                   .agg(periode=("periode", "first"), kode_faskes=("kode_faskes", "first"),
                        form=("form", "first"), nama_faskes=("nama_faskes", "first"),
                        tanggal_lapor=("tanggal_lapor", "first"),
                        laporan_nihil=("laporan_nihil", "first"), received_at=("received_at", "max"))
                   .reset_index())
        out["raw_row_id"] = file_id + "::" + out["row_number"].astype(str)
        long["raw_row_id"] = file_id + "::" + long["row_number"].astype(str)
        out["sheet"] = ""
        # rows read = the raw rows formed (facility × period × form), as for DHIS2
        return Parsed("sql", out, long[CELL_COLUMNS].reset_index(drop=True), len(out))
    # Wide template: the same header mapping as a landing file, row numbers 1…n.
    values = frame.to_numpy(dtype=object)
    keep = [j for j, n in enumerate(norm) if n != "received_at"]
    grid = np.empty((len(values) + 1, len(keep)), dtype=object)
    grid[0] = [cols[j] for j in keep]
    grid[1:] = values[:, keep]
    sheet = parse_sheet(grid, "", max_columns=10_000, max_rows=10_000_000, cat=cat)
    assert sheet is not None
    sheet.row_numbers = sheet.row_numbers - 1   # no header line in a table: rows are 1…n
    rows_df, cells = sheet_frames(file_id, sheet)
    kept_index = sheet.row_numbers - 1
    rows_df["received_at"] = pd.to_datetime(received, utc=True).to_numpy()[kept_index]
    return Parsed("sql", rows_df, cells, len(rows))


# --- checks -----------------------------------------------------------------------------------

def unreconciled_files(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Files whose counts do not reconcile: `n_rows_read ≠ kept + rejected`, or a kept count that
    differs from the rows actually in `raw.submission_row`. Empty = nothing lost."""
    return con.execute("""
        SELECT f.source_path, f.file_id, f.status, f.n_rows_read, f.n_rows_kept, f.n_rows_rejected,
               coalesce(r.n, 0) AS rows_in_table
          FROM raw.landing_file f
          LEFT JOIN (SELECT file_id, count(*) AS n FROM raw.submission_row GROUP BY file_id) r
            USING (file_id)
         WHERE f.n_rows_read IS DISTINCT FROM f.n_rows_kept + f.n_rows_rejected
            OR coalesce(r.n, 0) <> f.n_rows_kept
         ORDER BY f.source_path
    """).df()


def rejected_files(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pd.DataFrame:
    where, params = ("run_id = ?", [run_id]) if run_id else ("TRUE", [])
    return con.execute(f"SELECT source_path, reject_rule, reject_reason FROM raw.landing_file "
                       f"WHERE status = 'rejected' AND {where} ORDER BY source_path", params).df()
