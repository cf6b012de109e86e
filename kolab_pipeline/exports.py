"""Exports of the analyst-facing tables: Parquet files, an Excel workbook per kab/kota for Dinkes
staff, and an optional copy in a PostgreSQL warehouse.

- **Parquet** `KOLAB_HOME/exports/<schema>.<table>.parquet`, one per table with `analyst: true` in
  `catalog/tables.yaml`, written by DuckDB `COPY … (FORMAT parquet)` to a temp file then renamed,
  so a reader never sees half a file.
- **Excel** `KOLAB_HOME/exports/evaluasi_<kode_kabkota>_<YYYY-MM>.xlsx` (XlsxWriter): one sheet
  per topic, Indonesian headers, frozen header row, number formats and column widths; the same
  data gives the same bytes. Each sheet is read with one query per batch of kab/kota, and the
  files are written by `KOLAB_WORKERS` spawned processes (default 2) that get the rows, never
  DuckDB (a national month is ~500 workbooks; see `write_workbooks`). Text that a
  spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR — CSV/formula
  injection, OWASP) is written as a **string cell with Excel's quote-prefix flag** (the stored
  form of a leading apostrophe): the text stays exactly as received, and Excel neither evaluates
  it on open nor after an edit. CSV writers use `neutralise_csv()` (a leading `'`).
- **PostgreSQL** (`KOLAB_WAREHOUSE_URL`): tables created from the contract types, schemas by
  layer; tables of the monthly layers with a `period` column are replaced per period
  (`DELETE … WHERE period = ANY`), the others (reference, clean: rebuilt whole) whole; everything
  in **one transaction**, so a failure leaves the previous data untouched. Rows go in through
  psycopg 3 `COPY … FROM STDIN` in chunks. The URL is never logged.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
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

from kolab_pipeline.config import Settings, document_workers
from kolab_pipeline.warehouse import Table, ident, tables

log = logging.getLogger(__name__)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def analyst_tables() -> list[Table]:
    """Contract tables marked `analyst: true`, in contract order."""
    return [t for t in tables().values() if t.analyst]


# --- Parquet -------------------------------------------------------------------------------------

def write_parquet(con: duckdb.DuckDBPyConnection, settings: Settings,
                  keys: Sequence[str] | None = None) -> dict[str, tuple[Path, int]]:
    """Write one Parquet file per analyst table (or per `keys`); returns key → (path, rows).

    Atomic per file: DuckDB writes `<file>.tmp`, then `os.replace` swaps it in. The row count is
    the one COPY reports (the rows in the file; no second scan of the table).

    The cost is DuckDB's Parquet encoder (CPU), not the codec. Measured on the national sample:
    snappy saves <10 % of the CPU for files ~48 % larger; turning dictionaries off
    (DICTIONARY_SIZE_LIMIT 1) saves ~8 % for files ~7 % larger and no bloom filters; larger row
    groups save no time. So the standard zstd with DuckDB's defaults stays. No ORDER BY: row order
    is not part of the export."""
    out_dir = settings.paths.exports
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[Path, int]] = {}
    for t in analyst_tables():
        if keys is not None and t.qualified not in keys:
            continue
        final = out_dir / f"{t.qualified}.parquet"
        tmp = out_dir / f".{t.qualified}.parquet.tmp"
        # the path is ours (contract name under KOLAB_HOME), bound as a value
        n = con.execute(f"COPY (SELECT * FROM {t.qualified}) TO '{_sql_path(tmp)}' "
                        "(FORMAT parquet, COMPRESSION zstd)").fetchone()[0]
        os.replace(tmp, final)
        written[t.qualified] = (final, int(n))
    return written


def _sql_path(path: Path) -> str:
    """A path as an SQL string literal body (COPY TO takes no parameter); quotes doubled."""
    return str(path).replace("'", "''")


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

PCT = "0.0%"
INT = "#,##0"
DEC = "#,##0.0"
DATE = "yyyy-mm-dd"
DATETIME = "yyyy-mm-dd hh:mm"
# Formats of a date / date-time in a column that names none (the ones openpyxl used to assign).
DEFAULT_DATE = DATE
DEFAULT_DATETIME = "yyyy-mm-dd h:mm:ss"


@dataclass(frozen=True)
class Col:
    header: str          # Indonesian header
    fmt: str | None = None
    width: int = 14


@dataclass(frozen=True)
class Sheet:
    """One sheet: its title, its columns, and the query of its rows.

    `sql` takes `$kabs` and `$tzs` (aligned lists: kab/kota codes and their IANA time zones) and
    `$p` (the month). Its first column is the kab/kota the row belongs to (not written), and it is
    ordered by that column first, then by the sheet's own order: one query serves a whole batch of
    workbooks, grouped by the first column."""

    title: str
    sql: str
    columns: tuple[Col, ...]


# The kab/kota of a query with each one's time zone (`$kabs`, `$tzs`: aligned lists).
_KABS = "(SELECT unnest($kabs::VARCHAR[]) AS kab, unnest($tzs::VARCHAR[]) AS tz)"
# Puskesmas networks of those kab/kota: a network belongs to the kab/kota of its puskesmas.
_NETWORKS = (f"(SELECT DISTINCT f.kode_faskes, f.kode_kabkota AS kab FROM reference.facility f "
             f"SEMI JOIN {_KABS} k ON k.kab = f.kode_kabkota WHERE f.jenis_faskes = 'puskesmas')")

SHEETS: tuple[Sheet, ...] = (
    Sheet("Ringkasan", f"""
        SELECT s.kode_kabkota, s.kode_jejaring, s.nama_puskesmas, s.expected, s.received, s.on_time,
               s.completeness_pct / 100, s.timeliness_pct / 100,
               s.pkm_completeness_pct / 100, s.klinik_completeness_pct / 100,
               s.tpmd_completeness_pct / 100, y.completeness_pct / 100, y.timeliness_pct / 100,
               s.network_share_pct / 100, s.n_followup, s.n_validation_flags,
               s.n_quarantined_rows, s.n_dq_flags
        FROM (SELECT * FROM evaluation.scorecard WHERE period = $p AND period_type = 'month'
              AND kode_kabkota IN (SELECT kab FROM {_KABS})) s
        LEFT JOIN evaluation.scorecard y
               ON y.kode_jejaring = s.kode_jejaring AND y.period = $p AND y.period_type = 'ytd'
        UNION ALL
        SELECT w.unit_code, w.unit_code, 'TOTAL ' || coalesce(w.nama_unit, w.unit_code), w.expected,
               w.received, w.on_time, w.completeness_pct / 100, w.timeliness_pct / 100, NULL, NULL,
               NULL, y.completeness_pct / 100, y.timeliness_pct / 100, w.network_share_pct / 100,
               w.n_followup, w.n_validation_flags, w.n_quarantined_rows, w.n_dq_flags
        FROM evaluation.wilayah_scorecard w
        LEFT JOIN evaluation.wilayah_scorecard y ON y.unit_level = 'kabkota'
              AND y.unit_code = w.unit_code AND y.period = $p AND y.period_type = 'ytd'
        WHERE w.unit_level = 'kabkota' AND w.unit_code IN (SELECT kab FROM {_KABS})
          AND w.period = $p AND w.period_type = 'month'
        ORDER BY 1, 2
    """, (Col("Kode jejaring", width=12), Col("Puskesmas", width=30),
          Col("Laporan diharapkan", INT), Col("Laporan diterima", INT), Col("Tepat waktu", INT),
          Col("Kelengkapan", PCT), Col("Ketepatan waktu", PCT), Col("Kelengkapan puskesmas", PCT),
          Col("Kelengkapan klinik pratama", PCT), Col("Kelengkapan TPMD", PCT),
          Col("Kelengkapan s.d. bulan ini", PCT), Col("Ketepatan s.d. bulan ini", PCT),
          Col("Kontribusi jejaring", PCT), Col("Perlu tindak lanjut", INT),
          Col("Flag validasi", INT), Col("Baris dikarantina", INT), Col("Flag kualitas data", INT))),
    Sheet("Kepatuhan Pelaporan", f"""
        SELECT r.kode_kabkota, r.kode_jejaring, pk.nama_faskes, r.kode_faskes, f.nama_faskes,
               r.jenis_faskes, r.form, r.status, r.due_date, r.received_local_date, r.days_late,
               r.n_versions, r.is_nil_report
        FROM compliance.report_status r
        LEFT JOIN reference.facility f ON f.kode_faskes = r.kode_faskes
        LEFT JOIN reference.facility pk ON pk.kode_faskes = r.kode_jejaring
        WHERE r.kode_kabkota IN (SELECT kab FROM {_KABS}) AND r.period = $p
        ORDER BY r.kode_kabkota, r.kode_jejaring, r.jenis_faskes <> 'puskesmas', r.kode_faskes, r.form
    """, (Col("Kode jejaring", width=12), Col("Puskesmas", width=26), Col("Kode faskes", width=12),
          Col("Nama faskes", width=30), Col("Jenis faskes"), Col("Formulir", width=9),
          Col("Status"), Col("Jatuh tempo", DATE, 12), Col("Tanggal diterima", DATE, 12),
          Col("Hari terlambat", INT, 10), Col("Versi", INT, 7), Col("Laporan nihil", width=10))),
    Sheet("Tindak Lanjut", f"""
        SELECT o.kode_kabkota, o.kode_puskesmas_induk, o.nama_puskesmas_induk, o.kode_faskes,
               o.nama_faskes, o.jenis_faskes, o.form, o.months_missing, o.months_late,
               o.consecutive_missing, o.missing_periods, o.last_received_period,
               timezone(k.tz, o.last_received_at)
        FROM evaluation.followup o JOIN {_KABS} k ON k.kab = o.kode_kabkota
        WHERE o.as_of_period = $p
        ORDER BY o.kode_kabkota, o.kode_puskesmas_induk, o.consecutive_missing DESC, o.kode_faskes, o.form
    """, (Col("Kode puskesmas", width=12), Col("Puskesmas", width=26), Col("Kode faskes", width=12),
          Col("Nama faskes", width=30), Col("Jenis faskes"), Col("Formulir", width=9),
          Col("Bulan tidak lapor", INT), Col("Bulan terlambat", INT),
          Col("Tidak lapor berturut-turut", INT), Col("Bulan tidak lapor (daftar)", width=30),
          Col("Laporan terakhir", width=12), Col("Diterima (waktu lokal)", DATETIME, 18))),
    Sheet("Capaian Indikator", f"""
        SELECT coalesce(n.kab, k.unit_code), k.unit_code, coalesce(f.nama_faskes, w.nama),
               k.indicator_code, k.program, k.period_type, k.numerator, k.denominator, k.value,
               k.target, k.pws_target, k.attainment / 100
        FROM evaluation.key_indicator k
        LEFT JOIN {_NETWORKS} n ON k.unit_level = 'puskesmas_network' AND n.kode_faskes = k.unit_code
        LEFT JOIN reference.facility f ON k.unit_level = 'puskesmas_network' AND f.kode_faskes = k.unit_code
        LEFT JOIN reference.wilayah w ON k.unit_level <> 'puskesmas_network' AND w.kode = k.unit_code
        WHERE k.period = $p AND ((k.unit_level = 'kabkota' AND k.unit_code IN (SELECT kab FROM {_KABS}))
              OR (k.unit_level = 'puskesmas_network' AND n.kab IS NOT NULL))
        ORDER BY 1, k.display_order, k.period_type DESC, k.unit_level = 'kabkota', k.unit_code
    """, (Col("Kode unit", width=12), Col("Puskesmas / wilayah", width=28),
          Col("Indikator", width=18), Col("Program", width=11), Col("Jenis periode", width=12),
          Col("Pembilang", DEC), Col("Penyebut / sasaran", DEC), Col("Capaian", DEC),
          Col("Target", DEC), Col("Target PWS", DEC), Col("Pencapaian target", PCT))),
    Sheet("Kontribusi Jejaring", f"""
        SELECT m.kab, n.unit_code, f.nama_faskes, n.period_type, n.program, n.data_element,
               n.jenis_faskes, n.volume, n.total, n.share_pct / 100
        FROM indicators.network_contribution n
        JOIN {_NETWORKS} m ON m.kode_faskes = n.unit_code
        LEFT JOIN reference.facility f ON f.kode_faskes = n.unit_code
        WHERE n.unit_level = 'puskesmas_network' AND n.period = $p
        ORDER BY m.kab, n.unit_code, n.period_type, n.program, n.data_element, n.jenis_faskes
    """, (Col("Kode jejaring", width=12), Col("Puskesmas", width=26), Col("Jenis periode", width=12),
          Col("Program", width=11), Col("Elemen data", width=24), Col("Jenis faskes"),
          Col("Volume", INT), Col("Total jejaring", INT), Col("Kontribusi", PCT))),
    # ORDER BY ALL: several flags share a source and a facility; every column orders them, so the
    # same data always gives the same sheet.
    Sheet("Kualitas Data", f"""
        WITH fac AS (SELECT f.* FROM reference.facility f SEMI JOIN {_KABS} k ON k.kab = f.kode_kabkota)
        SELECT fac.kode_kabkota, 'Flag validasi' AS sumber, v.kode_faskes, fac.nama_faskes, v.form,
               v.rule_id, v.column_name, v.value_text, v.reason_id
        FROM clean.validation_flag v JOIN fac USING (kode_faskes) WHERE v.period = $p
        UNION ALL
        SELECT fac.kode_kabkota,
               'Karantina (' || q.source_path || ' baris ' || coalesce(q.row_number::VARCHAR, '-') || ')',
               q.kode_faskes, fac.nama_faskes, q.form, q.rule_id, q.column_name, q.value_text,
               q.reason_id
        FROM clean.quarantine q JOIN fac USING (kode_faskes) WHERE q.period = $p
        UNION ALL
        SELECT coalesce(fac.kode_kabkota, pk.kode_kabkota, d.unit_code),
               'Kualitas data (' || d.method || ')', d.unit_code,
               coalesce(fac.nama_faskes, pk.nama_faskes), NULL, d.method, d.subject,
               CAST(round(d.value, 2) AS VARCHAR), d.message
        FROM indicators.dq_flag d
        LEFT JOIN fac ON d.unit_level = 'facility' AND fac.kode_faskes = d.unit_code
        LEFT JOIN fac pk ON d.unit_level = 'puskesmas_network' AND pk.kode_faskes = d.unit_code
        WHERE d.period = $p AND (fac.kode_faskes IS NOT NULL OR pk.kode_faskes IS NOT NULL
              OR (d.unit_level = 'kabkota' AND d.unit_code IN (SELECT kab FROM {_KABS})))
        ORDER BY ALL
    """, (Col("Sumber", width=28), Col("Kode faskes / unit", width=14), Col("Nama", width=28),
          Col("Formulir", width=9), Col("Aturan / metode", width=16), Col("Kolom / subjek", width=18),
          Col("Nilai", width=16), Col("Keterangan", width=50))),
)

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
    params = {"kabs": list(kabs), "tzs": tzs, "p": period}
    out: dict[str, SheetRows] = {k: [[] for _ in SHEETS] for k in kabs}
    for i, sheet in enumerate(SHEETS):
        rows = con.execute(scoped(sheet.sql, scope), params).fetchall()
        for kab, group in groupby(rows, key=itemgetter(0)):
            out[kab][i] = [r[1:] for r in group]
    return out


# Tables the per-kab/kota queries read, and the column that holds the month in each.
MONTH_SCOPED = {
    "compliance.report_status": "period", "evaluation.followup": "as_of_period",
    "evaluation.key_indicator": "period", "indicators.network_contribution": "period",
    "indicators.dq_flag": "period", "clean.validation_flag": "period", "clean.quarantine": "period",
}


def month_scope(con: duckdb.DuckDBPyConnection, period: str,
                which: dict[str, str] = MONTH_SCOPED) -> dict[str, str]:
    """TEMP copies of the month's rows of the tables `which` ({table: month column}), sorted by kab/kota where there is one.

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
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {tables()[key].qualified} "
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
    """The cell formats of one workbook (an XlsxWriter format belongs to the workbook that made it)."""

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
        raise ValueError(f"sheet {ws.name!r}: {len(rows[0])} values per row, {len(columns)} columns")
    fmts = [formats.number(col.fmt) for col in columns]
    date_fmts = [f or formats.number(DEFAULT_DATE) for f in fmts]
    datetime_fmts = [f or formats.number(DEFAULT_DATETIME) for f in fmts]
    write_string, write_number, write_datetime = ws.write_string, ws.write_number, ws.write_datetime
    quoted, prefixes = formats.quoted, FORMULA_PREFIXES
    for i, values in enumerate(rows, start=1):
        for j, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, str):
                if value.startswith(prefixes):
                    write_string(i, j, value, quoted)
                else:
                    write_string(i, j, value)
            elif isinstance(value, bool):
                write_string(i, j, "ya" if value else "tidak")
            elif isinstance(value, datetime):
                write_datetime(i, j, value, datetime_fmts[j])
            elif isinstance(value, date):
                write_datetime(i, j, value, date_fmts[j])
            elif isfinite(value):  # NaN / ±inf: no value, an empty cell
                write_number(i, j, value, fmts[j])
    ws.freeze_panes(1, 0)
    if rows:
        ws.autofilter(0, 0, len(rows), len(columns) - 1)


# Kab/kota per extraction batch: bounds the rows held in memory (a batch, plus the workbooks
# queued for the workers) while keeping the number of queries small.
BATCH = 64
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
    pytest have it); `KOLAB_WORKERS=1` writes everything in this process."""
    todo = [(p, kabs) for p in periods if (kabs := kabkota_codes(con, p))]
    if not todo:
        return []
    settings.paths.exports.mkdir(parents=True, exist_ok=True)
    n = sum(len(kabs) for _, kabs in todo)
    workers = min(document_workers(), n) if n >= MIN_PARALLEL else 1
    if multiprocessing.current_process().daemon:
        workers = 1  # a daemonic process may not start children

    def jobs() -> Iterator[tuple[Path, SheetRows]]:
        for p, kabs in todo:
            scope = month_scope(con, p)
            try:
                for i in range(0, len(kabs), BATCH):
                    batch = kabs[i:i + BATCH]
                    rows = sheet_rows(con, settings, batch, p, scope)
                    for kab in batch:
                        yield workbook_path(settings, kab, p), rows.pop(kab)
            finally:
                drop_scope(con, scope)

    queue = jobs()
    try:
        if workers == 1:
            return [_write_xlsx(path, rows) for path, rows in queue]
        return _write_parallel(queue, workers)
    finally:
        queue.close()  # drops the month's temp tables if a write failed mid-month


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


# --- PostgreSQL warehouse copy -------------------------------------------------------------------

PG_TYPES = {"VARCHAR": "TEXT", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "DOUBLE": "DOUBLE PRECISION",
            "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMPTZ": "TIMESTAMPTZ",
            "TIMESTAMP": "TIMESTAMP", "VARCHAR[]": "TEXT[]", "HUGEINT": "NUMERIC(39)",
            "SMALLINT": "SMALLINT", "DECIMAL": "NUMERIC", "JSON": "JSONB"}


def pg_type(duck_type: str) -> str:
    """PostgreSQL type of a contract (DuckDB) type; an unknown type is an error naming it."""
    try:
        return PG_TYPES[duck_type.upper()]
    except KeyError:
        raise ValueError(f"tables.yaml type {duck_type!r} has no PostgreSQL mapping in exports.PG_TYPES") from None


def pg_ddl(t: Table) -> list[str]:
    """CREATE SCHEMA/TABLE IF NOT EXISTS plus ADD COLUMN IF NOT EXISTS (the contract only grows)."""
    schema, name = ident(t.schema), ident(t.name)
    cols = ", ".join(f"{ident(c.name)} {pg_type(c.type)}" for c in t.columns)
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {schema}",
             f"CREATE TABLE IF NOT EXISTS {schema}.{name} ({cols})"]
    stmts += [f"ALTER TABLE {schema}.{name} ADD COLUMN IF NOT EXISTS {ident(c.name)} {pg_type(c.type)}"
              for c in t.columns]
    return stmts


@dataclass
class PgCopyResult:
    rows: dict[str, int]
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return sum(self.rows.values()) / self.seconds if self.seconds else 0.0


def copy_to_postgres(con: duckdb.DuckDBPyConnection, url: str, periods: Sequence[str] | None,
                     keys: Sequence[str] | None = None, chunk_rows: int = 50_000) -> PgCopyResult:
    """Copy analyst tables (or `keys`) to PostgreSQL in **one transaction**.

    Tables with a `period` column: the rows of `periods` are deleted and re-inserted (all periods
    when `periods` is None); other tables are replaced whole. On any error the transaction rolls
    back and the error says which table failed — never the URL."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    chosen = [t for t in analyst_tables() if keys is None or t.qualified in keys]
    if keys is not None:
        unknown = set(keys) - {t.qualified for t in chosen}
        if unknown:
            raise KeyError(f"not analyst-facing tables of tables.yaml: {sorted(unknown)}")
    engine = sa.create_engine(url, poolclass=NullPool)
    counts: dict[str, int] = {}
    start = time.perf_counter()
    try:
        with engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            with raw.cursor() as cur:
                for t in chosen:
                    try:
                        counts[t.qualified] = _copy_table(con, cur, t, periods, chunk_rows)
                    except Exception as exc:
                        raise PgExportError(
                            f"PostgreSQL export of {t.qualified} failed ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}); the whole export was "
                            "rolled back, previous data kept") from exc
    finally:
        engine.dispose()
    seconds = time.perf_counter() - start
    log.info("PostgreSQL export: %d tables, %d rows in %.2fs", len(counts), sum(counts.values()), seconds)
    return PgCopyResult(counts, seconds)


class PgExportError(RuntimeError):
    """Writing the PostgreSQL copy failed; nothing was changed there."""


# Layers rebuilt whole on every run (unpartitioned assets): their PostgreSQL copy is replaced whole
# too. Why: a clean row's period can lie outside every monthly partition (a future period
# quarantined as V05F, an ancient one), so a per-period copy would never carry it to PostgreSQL.
WHOLE_LAYERS = frozenset({"reference", "raw", "clean"})


def _copy_table(con: duckdb.DuckDBPyConnection, cur: Any, t: Table, periods: Sequence[str] | None,
                chunk_rows: int) -> int:
    for stmt in pg_ddl(t):
        cur.execute(stmt)
    qualified = f"{ident(t.schema)}.{ident(t.name)}"
    cols = ", ".join(ident(c) for c in t.column_names)
    partitioned = ("period" in t.column_names and periods is not None
                   and t.schema not in WHOLE_LAYERS)
    if partitioned:
        # rows without a period (e.g. a whole rejected file in clean.quarantine) belong to no
        # partition: they are refreshed on every export so none is ever left out
        cur.execute(f"DELETE FROM {qualified} WHERE period = ANY(%s) OR period IS NULL",
                    [list(periods)])
        res = con.execute(f"SELECT {cols} FROM {t.qualified} "
                          "WHERE list_contains(?::VARCHAR[], period) OR period IS NULL", [list(periods)])
    else:
        cur.execute(f"DELETE FROM {qualified}")
        res = con.execute(f"SELECT {cols} FROM {t.qualified}")
    n = 0
    with cur.copy(f"COPY {qualified} ({cols}) FROM STDIN") as copy:
        while batch := res.fetchmany(chunk_rows):
            for row in batch:
                copy.write_row(row)
            n += len(batch)
    return n
