"""The Excel workbook per kab/kota × month for Dinkes staff, and formula-injection guards.

`KOLAB_HOME/exports/evaluasi_<kode_kabkota>_<YYYY-MM>.xlsx` (XlsxWriter): the sheets of
`sheets.SHEETS`, Indonesian headers and values, frozen header row, number formats, column widths,
A4 landscape print setup fitted to the page width with the header row repeated; the same data
gives the same bytes. Text that a spreadsheet would run as a formula (starting with `=`, `+`,
`-`, `@`, tab or CR) is written as a string cell with Excel's quote-prefix flag; CSV writers use
`neutralise_csv()` (a leading `'`). Workers get rows, never DuckDB.
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, date, datetime
from itertools import groupby
from math import isfinite
from operator import itemgetter
from pathlib import Path
from typing import Any

import duckdb
import xlsxwriter
from openpyxl.cell.cell import Cell
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from kolab_pipeline import labels
from kolab_pipeline.config import Settings, document_workers
from kolab_pipeline.exports import fingerprint
from kolab_pipeline.exports.sheets import DATE, SHEETS, Col
from kolab_pipeline.warehouse import bind, tables

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --- formula-injection neutralisation ------------------------------------------------------------

def is_formula_like(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def set_cell(cell: Cell, value: object) -> None:
    """Write `value`; text that looks like a formula becomes an inert string cell (data_type 's'
    with the quote-prefix flag), never a formula."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # openpyxl turns '=…' into a formula unless told otherwise
        if is_formula_like(value):
            cell.quotePrefix = True


def neutralise_csv(value: object) -> object:
    """For CSV exports: prefix formula-like text with `'` (a CSV has no cell types)."""
    return f"'{value}" if is_formula_like(value) else value



# --- Excel workbook per kab/kota -----------------------------------------------------------------

# Formats of a date / date-time in a column that names none.
DEFAULT_DATE = DATE
DEFAULT_DATETIME = "yyyy-mm-dd h:mm:ss"
HEADER_COLOR = "#DDEBF7"
# Width of a digit of the default font (Calibri 11) in pixels: a column width is in digits.
DIGIT_PX = 7
# Document property "created" of every workbook: fixed, so the same data gives the same bytes
# (XlsxWriter's in-memory mode already fixes the zip entries' times and order).
WORKBOOK_CREATED = datetime(2000, 1, 1, tzinfo=UTC)

# Rows of one workbook: per sheet of SHEETS, its rows (without the kab/kota column).
SheetRows = list[list[tuple[Any, ...]]]


def kabkota_codes(con: duckdb.DuckDBPyConnection, period: str) -> list[str]:
    """Kab/kota with a scorecard row in `period`."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT kode_kabkota FROM evaluation.scorecard WHERE period = ? "
        "AND kode_kabkota IS NOT NULL ORDER BY 1", [period]).fetchall()]


def workbook_path(settings: Settings, kode_kabkota: str, period: str) -> Path:
    return settings.paths.exports / f"evaluasi_{kode_kabkota}_{period}.xlsx"


def write_workbook(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                   period: str, scope: dict[str, str] | None = None) -> Path:
    """The Excel workbook of one kab/kota × month (written to a temp file, then renamed).

    `scope` maps a warehouse table to a temp table holding only this month's rows
    (`month_scope`); the queries read those instead, same results, without a scan per workbook."""
    rows = sheet_rows(con, settings, [kode_kabkota], period, scope)[kode_kabkota]
    path = workbook_path(settings, kode_kabkota, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_xlsx(path, rows)


def sheet_rows(con: duckdb.DuckDBPyConnection, settings: Settings, kabs: Sequence[str],
               period: str, scope: dict[str, str] | None = None) -> dict[str, SheetRows]:
    """The rows of every sheet for each kab/kota of `kabs` in `period`: {kab/kota: SheetRows}.

    One query per sheet for all of `kabs`, split by its first column (the kab/kota). Why: one
    query per workbook × sheet (~15 ms each, 6 × 486 at national scale) spent ~90 ms a workbook
    in DuckDB; per batch of kab/kota it is ~15 ms a workbook, mostly turning rows into Python."""
    tzs = [settings.config.timezones.for_wilayah(k) for k in kabs]
    codes = list(settings.config.evaluation.key_indicators)
    params = {"kabs": list(kabs), "tzs": tzs, "p": period, "ind_codes": codes,
              "ind_dirs": [labels.indicator_direction(c) for c in codes]}
    out: dict[str, SheetRows] = {k: [[] for _ in SHEETS] for k in kabs}
    for i, sheet in enumerate(SHEETS):
        sql = scoped(sheet.sql, scope)
        rows = con.execute(sql, bind(sql, params)).fetchall()
        for kab, group in groupby(rows, key=itemgetter(0)):
            if sheet.transform is None:
                out[kab][i] = [r[1:] for r in group]
            else:
                out[kab][i] = [sheet.transform(r[1:]) for r in group]
    return out


# Tables the per-kab/kota queries read, and the column that holds the month in each.
MONTH_SCOPED = {
    "compliance.report_status": "period", "evaluation.followup": "as_of_period",
    "evaluation.key_indicator": "period", "indicators.network_contribution": "period",
    "indicators.dq_flag": "period", "clean.validation_flag": "period", "clean.quarantine": "period",
}


def month_scope(con: duckdb.DuckDBPyConnection, period: str,
                which: dict[str, str] = MONTH_SCOPED) -> dict[str, str]:
    """TEMP copies of the month's rows of the tables `which` ({table: month column}), sorted by
    kab/kota where there is one.

    Why: a national run writes one workbook and one report per kab/kota × month (≈ 5,800 for a
    year); each reads these tables filtered by kab/kota and month. Against the whole tables that
    is a full scan per query (millions of rows × 6 queries × 5,800 files); against the month's
    slice, sorted so DuckDB's zone maps skip other kab/kota, each query touches a few rows.
    Returns {warehouse table: temp table} for `scoped()`."""
    out = {}
    for key, col in which.items():
        name = "_scope_" + key.replace(".", "_")
        cols = set(tables()[key].column_names)
        order = " ORDER BY kode_kabkota" if "kode_kabkota" in cols else ""
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS "
                    f"SELECT * FROM {tables()[key].qualified} "
                    f"WHERE {col} = ?{order}", [period])
        out[key] = name
    return out


def drop_scope(con: duckdb.DuckDBPyConnection, scope: dict[str, str]) -> None:
    for name in scope.values():
        con.execute(f"DROP TABLE IF EXISTS {name}")


def scoped(sql: str, scope: dict[str, str] | None) -> str:
    """`sql` with each scoped warehouse table name replaced by its temp table (code constants)."""
    for key, name in (scope or {}).items():
        sql = sql.replace(key, name)
    return sql


class _Formats:
    """The cell formats of one workbook (an XlsxWriter format belongs to the workbook that made
    it)."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self._wb = wb
        self.header = wb.add_format({"bold": True, "pattern": 1, "bg_color": HEADER_COLOR,
                                     "text_wrap": True, "valign": "top"})
        # a string cell with Excel's quote-prefix flag: shown and kept as text, never evaluated
        self.quoted = wb.add_format({"quote_prefix": True})
        self._number: dict[str, Format] = {}

    def number(self, code: str | None) -> Format | None:
        if code is None:
            return None
        if code not in self._number:
            self._number[code] = self._wb.add_format({"num_format": code})
        return self._number[code]


def _write_xlsx(path: Path, rows: SheetRows) -> Path:
    """Write the workbook of `rows` (one list per sheet of SHEETS) to `path`, via a temp file.

    Runs in the worker processes of `write_workbooks`: rows in, file out, no DuckDB. XlsxWriter
    rather than openpyxl: it writes the same cells about 3× faster (openpyxl builds a cell object
    per value, then serialises them through an XML tree writer)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {
        "in_memory": True,
        # every cell is typed below: XlsxWriter must never turn text into a formula, URL or number
        "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False})
    wb.set_properties({"created": WORKBOOK_CREATED})
    formats = _Formats(wb)
    for sheet, sheet_rows_ in zip(SHEETS, rows, strict=True):
        _fill_sheet(wb.add_worksheet(sheet.title), sheet.columns, sheet_rows_, formats)
    wb.close()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path


def _fill_sheet(ws: Worksheet, columns: Sequence[Col], rows: Sequence[Sequence[object]],
                formats: _Formats) -> None:
    """Header row (bold, filled, wrapped, 32 pt high, frozen, autofilter) and the typed cells.

    Text is always a string cell; text that a spreadsheet would run as a formula also gets the
    quote-prefix flag. Booleans are written `ya` / `tidak`; numbers and dates get the column's
    number format; NULL, NaN and ±inf leave the cell empty (XlsxWriter would write NaN as an
    error formula, and a workbook holds no formula)."""
    ws.set_row(0, 32)
    for j, col in enumerate(columns):
        # in pixels, so the file stores exactly `col.width` (set_column would add cell padding)
        ws.set_column_pixels(j, j, col.width * DIGIT_PX)
        ws.write_string(0, j, col.header, formats.header)
    if rows and len(rows[0]) != len(columns):
        raise ValueError(f"sheet {ws.name!r}: {len(rows[0])} values per row, "
                         f"{len(columns)} columns")
    fmts = [formats.number(col.fmt) for col in columns]
    vocab = [col.vocab for col in columns]
    date_fmts = [f or formats.number(DEFAULT_DATE) for f in fmts]
    datetime_fmts = [f or formats.number(DEFAULT_DATETIME) for f in fmts]
    write_string, write_number, write_datetime = ws.write_string, ws.write_number, ws.write_datetime
    quoted, prefixes = formats.quoted, FORMULA_PREFIXES
    for i, values in enumerate(rows, start=1):
        for j, value in enumerate(values):
            if value is None:
                continue
            if vocab[j] is not None:
                value = labels.label(vocab[j],
                                     str(value).lower() if isinstance(value, bool) else value)
            if isinstance(value, str):
                if value.startswith(prefixes):
                    write_string(i, j, value, quoted)
                else:
                    write_string(i, j, value)
            elif isinstance(value, bool):
                write_string(i, j, labels.label("boolean", str(value).lower()))
            elif isinstance(value, datetime):
                write_datetime(i, j, value, datetime_fmts[j])
            elif isinstance(value, date):
                write_datetime(i, j, value, date_fmts[j])
            elif isfinite(value):  # NaN / ±inf: no value, an empty cell
                write_number(i, j, value, fmts[j])
    ws.freeze_panes(1, 0)
    if rows:
        ws.autofilter(0, 0, len(rows), len(columns) - 1)
    # print: A4 landscape, one page wide, the header row on every page, page numbers
    ws.set_paper(9)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.set_footer("&L&A&RHalaman &P dari &N")


# Kab/kota per extraction batch: bounds the rows held in memory (a batch, plus the workbooks
# queued for the workers) while keeping the number of queries small.
BATCH = 64
# What a workbook's bytes depend on besides its rows (`fingerprint.code_digest`).
WORKBOOK_CODE = ("exports/workbook.py", "exports/sheets.py", "labels.py", "judgement.py",
                 "catalog")
# Fewer workbooks than this are written in this process: starting a worker costs ~0.5 s.
MIN_PARALLEL = 8


def write_workbooks(con: duckdb.DuckDBPyConnection, settings: Settings,
                    periods: Sequence[str]) -> list[Path]:
    """Every kab/kota × month workbook, in kab/kota order per month.

    Why this shape (national: ~500 workbooks a month): each month's rows are staged once
    (`month_scope`), each sheet is read with one query per batch of kab/kota (`sheet_rows`), and
    the workbooks are written by up to `document_workers()` processes, which get the rows — DuckDB
    stays in this process — while this one reads the next batch. Workers are spawned, not forked:
    a fork would copy DuckDB's threads and locks mid-flight. As with any spawned process, a
    script that calls this needs the `if __name__ == "__main__":` guard (the CLI, Dagster and
    pytest have it); `KOLAB_WORKERS=1` writes everything in this process. A workbook whose rows
    and code are those it was written from is left as it is (`fingerprint`); every workbook's
    path is returned."""
    todo = [(p, kabs) for p in periods if (kabs := kabkota_codes(con, p))]
    if not todo:
        return []
    settings.paths.exports.mkdir(parents=True, exist_ok=True)
    n = sum(len(kabs) for _, kabs in todo)
    workers = min(document_workers(), n) if n >= MIN_PARALLEL else 1
    if multiprocessing.current_process().daemon:
        workers = 1  # a daemonic process may not start children
    keys: dict[Path, str] = {}

    def jobs() -> Iterator[tuple[Path, SheetRows]]:
        for p, kabs in todo:
            scope = month_scope(con, p)
            try:
                for i in range(0, len(kabs), BATCH):
                    batch = kabs[i:i + BATCH]
                    rows = sheet_rows(con, settings, batch, p, scope)
                    for kab in batch:
                        path, kab_rows = workbook_path(settings, kab, p), rows.pop(kab)
                        # same rows, same code: the same bytes are already there
                        key = fingerprint.inputs_key([kab_rows], WORKBOOK_CODE)
                        if not fingerprint.unchanged(path, key):
                            keys[path] = key
                            yield path, kab_rows
            finally:
                drop_scope(con, scope)

    queue = jobs()
    try:
        if workers == 1:
            written = [_write_xlsx(path, rows) for path, rows in queue]
        else:
            written = _write_parallel(queue, workers)
    finally:
        queue.close()  # drops the month's temp tables if a write failed mid-month
    for path in written:
        fingerprint.record(path, keys[path])
    return [workbook_path(settings, kab, p) for p, kabs in todo for kab in kabs]


def _write_parallel(queue: Iterator[tuple[Path, SheetRows]], workers: int) -> list[Path]:
    """`_write_xlsx` of every job in `workers` spawned processes, results in job order; at most
    one batch of jobs is queued, so memory stays bounded while the caller reads the next one."""
    out: list[Path] = []
    pending: deque[Future[Path]] = deque()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        try:
            for path, rows in queue:
                pending.append(pool.submit(_write_xlsx, path, rows))
                if len(pending) > BATCH:
                    out.append(pending.popleft().result())
            out += [f.result() for f in pending]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # fail fast: drop the queued jobs
            raise
    return out
