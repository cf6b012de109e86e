"""Bytes → text grids: CSV decoding and reading, XLSX sheets, and the guards against hostile files.

A grid is an object array (rows × columns) of verbatim text, `None` for an empty cell, with row
positions as a spreadsheet shows them. Faults are `FileRejected` (F01 unreadable, F03 too large).
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline.raw.headers import HEADER_SCAN_ROWS
from kolab_pipeline.raw.model import FileRejected

_FORMULA = re.compile(rb"<f[ >/]")
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))  # not text, except tab/LF/CR
_BLANK_LINE = re.compile(r"(?m)^(?=\r?\n)")
_MB = 1048576
# DuckDB's CSV reader with the dialect fixed (no sniffing per file); `{parallel}` is empty or
# `, parallel = false`.
_READ_CSV = ("SELECT * FROM read_csv($path, header = false, auto_detect = false, "
             "columns = $columns, delim = $delim, quote = '\"', escape = '\"', "
             "null_padding = true, max_line_size = 10000000{parallel})")


# --- text -------------------------------------------------------------------------------------

def decode_text(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding). UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252.

    Binary content (NUL bytes, control characters) is refused as F01 rather than guessed at.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise FileRejected("F01", "starts with a UTF-16 mark but is not UTF-16 text "
                                      f"({exc.reason})") from None
    head = data[:8192]
    if b"\x00" in head:
        raise FileRejected("F01", "binary content (NUL bytes), not a text CSV")
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))  # C speed: called per file
    if controls > max(2, len(head) // 100):
        raise FileRejected("F01", f"binary content ({controls} control bytes in the first "
                                  f"{len(head)} bytes)")
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


# --- CSV --------------------------------------------------------------------------------------

def read_csv_grid(reader: duckdb.DuckDBPyConnection, text: str, delimiter: str) -> np.ndarray:
    """The CSV as a text grid (rows × columns, None = empty) with DuckDB's CSV reader.

    The text (already transcoded to UTF-8) goes through a scratch file and `read_csv` with the
    dialect fixed: delimiter, `"` quotes, width = the most delimiters on a line + 1, all VARCHAR,
    short rows padded. DuckDB skips blank lines, so a blank line first becomes a line of one
    delimiter: row positions stay those a spreadsheet shows.
    """
    if not text.strip():
        return np.empty((0, 0), dtype=object)
    text = _BLANK_LINE.sub(lambda _: delimiter, text)
    width = max(line.count(delimiter) for line in text.splitlines()) + 1
    scratch = _scratch_file(reader)
    scratch.write_text(text, encoding="utf-8")
    params = {"path": str(scratch), "columns": {f"c{j}": "VARCHAR" for j in range(width)},
              "delim": delimiter}
    try:
        try:
            rows = reader.execute(_READ_CSV.format(parallel=""), params).fetchall()
        except duckdb.Error as exc:
            # a quoted cell with a line break ("Klinik\nA") is valid CSV, but DuckDB's parallel
            # scanner cannot combine it with null_padding: read that file serially instead
            if "parallel=false" not in str(exc):
                raise
            rows = reader.execute(_READ_CSV.format(parallel=", parallel = false"),
                                  params).fetchall()
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
    where = next((ln.replace("Invalid Input Error: ", "") for ln in lines if "Line:" in ln),
                 "CSV error")
    what = next((ln for ln in lines
                 if not ln.startswith(("Invalid Input Error", "Original Line", "CSV Error"))
                 and not ln.startswith("Possible fixes")), "")
    return f"{where}: {what}" if what else where


_SCRATCH: dict[int, Path] = {}


def _scratch_file(reader: duckdb.DuckDBPyConnection) -> Path:
    """One scratch CSV per reader connection (a temp folder removed with the reader)."""
    key = id(reader)
    if key not in _SCRATCH:
        folder = Path(tempfile.mkdtemp(prefix="kolab_raw_"))
        _SCRATCH[key] = folder / "file.csv"
    return _SCRATCH[key]


def close_reader(reader: duckdb.DuckDBPyConnection) -> None:
    """Close a reader connection and remove its scratch folder."""
    scratch = _SCRATCH.pop(id(reader), None)
    reader.close()
    if scratch is not None:
        shutil.rmtree(scratch.parent, ignore_errors=True)


def blank_mask(grid: np.ndarray) -> np.ndarray:
    """True where a cell is empty or whitespace only (vectorised over the grid)."""
    if grid.size == 0:
        return np.ones(grid.shape, dtype=bool)
    missing = grid == None  # noqa: E711 (element-wise)
    text = np.where(missing, "", grid).astype(str)
    return missing | (np.strings.str_len(np.strings.strip(text)) == 0)


# --- XLSX -------------------------------------------------------------------------------------

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
    """Refuse a workbook whose parts would decompress to more than `max_uncompressed` bytes (F03),
    from the sizes the zip directory declares, before anything is decompressed."""
    if max_uncompressed is None:
        return
    total = sum(i.file_size for i in zf.infolist())
    if total > max_uncompressed:
        packed = sum(i.compress_size for i in zf.infolist())
        raise FileRejected("F03", f"the workbook would expand to {total / _MB:.1f} MB "
                                  f"({packed / _MB:.2f} MB compressed); the limit is "
                                  f"{max_uncompressed / _MB:g} MB "
                                  "(ingest.max_xlsx_uncompressed_mb in kolab.yaml)")


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

    Formulas are never evaluated: the value Excel cached is kept, else the formula text itself
    (`=SUM(F3:F9)`), which the clean layer rejects as a non-number. Bounded while reading: the
    archive's uncompressed size (`max_uncompressed`, F03), rows per sheet (`max_rows` data rows
    plus the header scan, F03) and columns (`max_columns + 1` are read, enough for `parse_sheet`
    to reject the sheet with F05).
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
        raise FileRejected("F01", "not a readable XLSX workbook (truncated or corrupt: "
                                  f"{exc})") from None
    except Exception as exc:  # a corrupt part: encrypted member, XML syntax, missing part…
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise FileRejected("F01", "not a readable XLSX workbook "
                                  f"({type(exc).__name__}: {detail})") from None


def _read_sheets(data: bytes, has_formula: bool, max_rows: int | None,
                 max_columns: int | None) -> list[tuple[str, np.ndarray]]:
    import openpyxl

    row_cap = None if max_rows is None else max_rows + HEADER_SCAN_ROWS + 1
    col_cap = None if max_columns is None else max_columns + 1
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    wbf = (openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
           if has_formula else None)
    out: list[tuple[str, np.ndarray]] = []
    try:
        for ws in wb.worksheets:
            if not hasattr(ws, "iter_rows"):  # chartsheets
                continue
            ws.reset_dimensions()  # trust the cells, not a possibly wrong <dimension>
            rows: list[list[str | None]] = []
            # rows as long as their last cell (openpyxl pads every row to `max_col` when given
            # one: 500 empty columns a row, 97 % of the demo's cells), cut at the column cap
            for r in ws.iter_rows(values_only=True):
                rows.append([xlsx_text(v) for v in r[:col_cap]])
                if row_cap is not None and len(rows) > row_cap:
                    raise FileRejected("F03", f"sheet '{ws.title}' has more than {max_rows} data "
                                              f"rows; the limit is {max_rows} "
                                              "(ingest.max_rows_per_file in kolab.yaml)")
            if wbf is not None:
                _fill_formulas(rows, wbf[ws.title], col_cap)
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


def _fill_formulas(rows: list[list[str | None]], wsf: Any, col_cap: int | None) -> None:
    """Where a cell has no cached value, keep its formula text (from the formula workbook)."""
    wsf.reset_dimensions()
    for r, rf in zip(rows, wsf.iter_rows(values_only=True), strict=False):
        for j, v in enumerate(rf[:col_cap]):
            if j < len(r) and r[j] is None and isinstance(v, str) and v.startswith("="):
                r[j] = v
