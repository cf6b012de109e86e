"""Exports of the analyst-facing tables: Parquet files, an Excel workbook per kab/kota for Dinkes
staff, and an optional copy in a PostgreSQL warehouse.

- **Parquet** `KOLAB_HOME/exports/<schema>.<table>.parquet`, one per table with `analyst: true` in
  `catalog/tables.yaml`, written by DuckDB `COPY … (FORMAT parquet)` to a temp file then renamed,
  so a reader never sees half a file.
- **Excel** `KOLAB_HOME/exports/evaluasi_<kode_kabkota>_<YYYY-MM>.xlsx` (openpyxl): one sheet per
  topic, Indonesian headers, frozen header row, number formats and column widths. Text that a
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

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from kolab_pipeline.config import Settings
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

    Atomic per file: DuckDB writes `<file>.tmp`, then `os.replace` swaps it in."""
    out_dir = settings.paths.exports
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[Path, int]] = {}
    for t in analyst_tables():
        if keys is not None and t.qualified not in keys:
            continue
        final = out_dir / f"{t.qualified}.parquet"
        tmp = out_dir / f".{t.qualified}.parquet.tmp"
        # the path is ours (contract name under KOLAB_HOME), bound as a value
        con.execute(f"COPY (SELECT * FROM {t.qualified}) TO '{_sql_path(tmp)}' "
                    "(FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, final)
        n = con.execute(f"SELECT count(*) FROM {t.qualified}").fetchone()[0]
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


@dataclass(frozen=True)
class Col:
    header: str          # Indonesian header
    fmt: str | None = None
    width: int = 14


@dataclass(frozen=True)
class Sheet:
    title: str
    sql: str             # params: $kab, $p, $tz
    columns: tuple[Col, ...]


_NETWORKS = "(SELECT kode_faskes FROM reference.facility WHERE jenis_faskes = 'puskesmas' AND kode_kabkota = $kab)"

SHEETS: tuple[Sheet, ...] = (
    Sheet("Ringkasan", """
        SELECT s.kode_jejaring, s.nama_puskesmas, s.expected, s.received, s.on_time,
               s.completeness_pct / 100, s.timeliness_pct / 100,
               s.pkm_completeness_pct / 100, s.klinik_completeness_pct / 100,
               s.tpmd_completeness_pct / 100, y.completeness_pct / 100, y.timeliness_pct / 100,
               s.network_share_pct / 100, s.n_followup, s.n_validation_flags,
               s.n_quarantined_rows, s.n_dq_flags
        FROM (SELECT 0 AS o, * FROM evaluation.scorecard
              WHERE kode_kabkota = $kab AND period = $p AND period_type = 'month') s
        LEFT JOIN evaluation.scorecard y
               ON y.kode_jejaring = s.kode_jejaring AND y.period = $p AND y.period_type = 'ytd'
        UNION ALL
        SELECT w.unit_code, 'TOTAL ' || coalesce(w.nama_unit, w.unit_code), w.expected, w.received,
               w.on_time, w.completeness_pct / 100, w.timeliness_pct / 100, NULL, NULL, NULL,
               y.completeness_pct / 100, y.timeliness_pct / 100, w.network_share_pct / 100,
               w.n_followup, w.n_validation_flags, w.n_quarantined_rows, w.n_dq_flags
        FROM evaluation.wilayah_scorecard w
        LEFT JOIN evaluation.wilayah_scorecard y ON y.unit_level = 'kabkota' AND y.unit_code = $kab
              AND y.period = $p AND y.period_type = 'ytd'
        WHERE w.unit_level = 'kabkota' AND w.unit_code = $kab AND w.period = $p
          AND w.period_type = 'month'
        ORDER BY 1
    """, (Col("Kode jejaring", width=12), Col("Puskesmas", width=30),
          Col("Laporan diharapkan", INT), Col("Laporan diterima", INT), Col("Tepat waktu", INT),
          Col("Kelengkapan", PCT), Col("Ketepatan waktu", PCT), Col("Kelengkapan puskesmas", PCT),
          Col("Kelengkapan klinik pratama", PCT), Col("Kelengkapan TPMD", PCT),
          Col("Kelengkapan s.d. bulan ini", PCT), Col("Ketepatan s.d. bulan ini", PCT),
          Col("Kontribusi jejaring", PCT), Col("Perlu tindak lanjut", INT),
          Col("Flag validasi", INT), Col("Baris dikarantina", INT), Col("Flag kualitas data", INT))),
    Sheet("Kepatuhan Pelaporan", """
        SELECT r.kode_jejaring, pk.nama_faskes, r.kode_faskes, f.nama_faskes, r.jenis_faskes,
               r.form, r.status, r.due_date, r.received_local_date, r.days_late, r.n_versions,
               r.is_nil_report
        FROM compliance.report_status r
        LEFT JOIN reference.facility f ON f.kode_faskes = r.kode_faskes
        LEFT JOIN reference.facility pk ON pk.kode_faskes = r.kode_jejaring
        WHERE r.kode_kabkota = $kab AND r.period = $p
        ORDER BY r.kode_jejaring, r.jenis_faskes <> 'puskesmas', r.kode_faskes, r.form
    """, (Col("Kode jejaring", width=12), Col("Puskesmas", width=26), Col("Kode faskes", width=12),
          Col("Nama faskes", width=30), Col("Jenis faskes"), Col("Formulir", width=9),
          Col("Status"), Col("Jatuh tempo", DATE, 12), Col("Tanggal diterima", DATE, 12),
          Col("Hari terlambat", INT, 10), Col("Versi", INT, 7), Col("Laporan nihil", width=10))),
    Sheet("Tindak Lanjut", """
        SELECT kode_puskesmas_induk, nama_puskesmas_induk, kode_faskes, nama_faskes, jenis_faskes,
               form, months_missing, months_late, consecutive_missing, missing_periods,
               last_received_period, timezone(CAST($tz AS VARCHAR), last_received_at)
        FROM evaluation.followup
        WHERE kode_kabkota = $kab AND as_of_period = $p
        ORDER BY kode_puskesmas_induk, consecutive_missing DESC, kode_faskes, form
    """, (Col("Kode puskesmas", width=12), Col("Puskesmas", width=26), Col("Kode faskes", width=12),
          Col("Nama faskes", width=30), Col("Jenis faskes"), Col("Formulir", width=9),
          Col("Bulan tidak lapor", INT), Col("Bulan terlambat", INT),
          Col("Tidak lapor berturut-turut", INT), Col("Bulan tidak lapor (daftar)", width=30),
          Col("Laporan terakhir", width=12), Col("Diterima (waktu lokal)", DATETIME, 18))),
    Sheet("Capaian Indikator", f"""
        SELECT k.unit_code, coalesce(f.nama_faskes, w.nama), k.indicator_code, k.program,
               k.period_type, k.numerator, k.denominator, k.value, k.target, k.pws_target,
               k.attainment / 100
        FROM evaluation.key_indicator k
        LEFT JOIN reference.facility f ON k.unit_level = 'puskesmas_network' AND f.kode_faskes = k.unit_code
        LEFT JOIN reference.wilayah w ON k.unit_level <> 'puskesmas_network' AND w.kode = k.unit_code
        WHERE k.period = $p AND ((k.unit_level = 'kabkota' AND k.unit_code = $kab)
              OR (k.unit_level = 'puskesmas_network' AND k.unit_code IN {_NETWORKS}))
        ORDER BY k.display_order, k.period_type DESC, k.unit_level = 'kabkota', k.unit_code
    """, (Col("Kode unit", width=12), Col("Puskesmas / wilayah", width=28),
          Col("Indikator", width=18), Col("Program", width=11), Col("Jenis periode", width=12),
          Col("Pembilang", DEC), Col("Penyebut / sasaran", DEC), Col("Capaian", DEC),
          Col("Target", DEC), Col("Target PWS", DEC), Col("Pencapaian target", PCT))),
    Sheet("Kontribusi Jejaring", f"""
        SELECT n.unit_code, f.nama_faskes, n.period_type, n.program, n.data_element,
               n.jenis_faskes, n.volume, n.total, n.share_pct / 100
        FROM indicators.network_contribution n
        LEFT JOIN reference.facility f ON f.kode_faskes = n.unit_code
        WHERE n.unit_level = 'puskesmas_network' AND n.period = $p AND n.unit_code IN {_NETWORKS}
        ORDER BY n.unit_code, n.period_type, n.program, n.data_element, n.jenis_faskes
    """, (Col("Kode jejaring", width=12), Col("Puskesmas", width=26), Col("Jenis periode", width=12),
          Col("Program", width=11), Col("Elemen data", width=24), Col("Jenis faskes"),
          Col("Volume", INT), Col("Total jejaring", INT), Col("Kontribusi", PCT))),
    Sheet("Kualitas Data", """
        WITH fac AS (SELECT * FROM reference.facility WHERE kode_kabkota = $kab)
        SELECT 'Flag validasi' AS sumber, v.kode_faskes, fac.nama_faskes, v.form, v.rule_id,
               v.column_name, v.value_text, v.reason_id
        FROM clean.validation_flag v JOIN fac USING (kode_faskes) WHERE v.period = $p
        UNION ALL
        SELECT 'Karantina (' || q.source_path || ' baris ' || coalesce(q.row_number::VARCHAR, '-') || ')',
               q.kode_faskes, fac.nama_faskes, q.form, q.rule_id, q.column_name, q.value_text,
               q.reason_id
        FROM clean.quarantine q JOIN fac USING (kode_faskes) WHERE q.period = $p
        UNION ALL
        SELECT 'Kualitas data (' || d.method || ')', d.unit_code,
               coalesce(fac.nama_faskes, pk.nama_faskes), NULL, d.method, d.subject,
               CAST(round(d.value, 2) AS VARCHAR), d.message
        FROM indicators.dq_flag d
        LEFT JOIN fac ON d.unit_level = 'facility' AND fac.kode_faskes = d.unit_code
        LEFT JOIN fac pk ON d.unit_level = 'puskesmas_network' AND pk.kode_faskes = d.unit_code
        WHERE d.period = $p AND (fac.kode_faskes IS NOT NULL OR pk.kode_faskes IS NOT NULL
              OR (d.unit_level = 'kabkota' AND d.unit_code = $kab))
        ORDER BY 1, 2
    """, (Col("Sumber", width=28), Col("Kode faskes / unit", width=14), Col("Nama", width=28),
          Col("Formulir", width=9), Col("Aturan / metode", width=16), Col("Kolom / subjek", width=18),
          Col("Nilai", width=16), Col("Keterangan", width=50))),
)

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


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
    wb = Workbook()
    wb.remove(wb.active)
    tz = settings.config.timezones.for_wilayah(kode_kabkota)
    for sheet in SHEETS:
        ws = wb.create_sheet(sheet.title)
        sql = scoped(sheet.sql, scope)
        rows = con.execute(sql, {"kab": kode_kabkota, "p": period, "tz": tz}
                           if "$tz" in sql else {"kab": kode_kabkota, "p": period}).fetchall()
        _fill_sheet(ws, sheet.columns, rows)
    path = workbook_path(settings, kode_kabkota, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    os.replace(tmp, path)
    return path


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


def _fill_sheet(ws: Any, columns: Sequence[Col], rows: Iterable[Sequence[object]]) -> None:
    for j, col in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=j)
        set_cell(cell, col.header)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.column_dimensions[get_column_letter(j)].width = col.width
    for i, values in enumerate(rows, start=2):
        for j, (col, value) in enumerate(zip(columns, values, strict=True), start=1):
            cell = ws.cell(row=i, column=j)
            if isinstance(value, bool):
                value = "ya" if value else "tidak"
            set_cell(cell, value)
            if col.fmt and value is not None and not isinstance(value, str):
                cell.number_format = col.fmt
    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 32
    if ws.max_row > 1:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{ws.max_row}"


def write_workbooks(con: duckdb.DuckDBPyConnection, settings: Settings,
                    periods: Sequence[str]) -> list[Path]:
    """Every kab/kota × month workbook; each month's rows are staged once (`month_scope`)."""
    out: list[Path] = []
    for p in periods:
        kabs = kabkota_codes(con, p)
        if not kabs:
            continue
        scope = month_scope(con, p)
        try:
            out += [write_workbook(con, settings, kab, p, scope) for kab in kabs]
        finally:
            drop_scope(con, scope)
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
