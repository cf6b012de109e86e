"""Writing the raw tables: the file manifest (`raw.landing_file`, `raw.landing_path`) and the
rows and cells of each file, in bulk, one transaction per batch of files.

A `raw.landing_file` row and its rows/cells commit together, so an interrupted run leaves either
a whole file or nothing of it; a retry first removes what an earlier attempt left (idempotent).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from kolab_pipeline.raw.landing import LandingEntry
from kolab_pipeline.raw.model import (
    CELL_COLUMNS,
    LANDING_FILE_COLUMNS,
    LANDING_PATH_COLUMNS,
    ROW_COLUMNS,
)
from kolab_pipeline.warehouse import ensure_schema, table, transaction

BATCH_FILES = 500  # files per bulk insert (one transaction each)

# `{ids}`, `{files}`, `{paths}` name registered frames (internal constants, never file text).
_HAS_ROWS = """
    SELECT count(*) FROM raw.submission_row WHERE file_id IN (SELECT file_id FROM {ids})"""
_DELETE_CELLS = """
    DELETE FROM raw.submission_cell
     WHERE raw_row_id IN (SELECT raw_row_id FROM raw.submission_row
                           WHERE file_id IN (SELECT file_id FROM {ids}))"""
_DELETE_ROWS = "DELETE FROM raw.submission_row WHERE file_id IN (SELECT file_id FROM {ids})"
_DELETE_FILES = "DELETE FROM raw.landing_file WHERE file_id IN (SELECT file_id FROM {ids})"
_TOUCH_PATHS = """
    UPDATE raw.landing_path AS known
       SET size_bytes = seen.size_bytes, file_mtime = seen.file_mtime
      FROM {paths} AS seen
     WHERE known.source_path = seen.source_path AND known.file_id = seen.file_id"""
_INSERT_PATHS = """
    INSERT INTO raw.landing_path ({cols})
    SELECT {cols} FROM {paths} AS seen
     WHERE NOT EXISTS (SELECT 1 FROM raw.landing_path AS known
                        WHERE known.source_path = seen.source_path
                          AND known.file_id = seen.file_id)"""


RAW_TABLES = ("raw.landing_file", "raw.landing_path", "raw.submission_row", "raw.submission_cell")
_COLUMNS_NOW = """SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns()
                   WHERE schema_name = 'raw'"""


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Raw tables from an older contract gain the raw layer's newer columns (additive only: the
    raw tables are kept across runs, unlike the rebuilt layers)."""
    ensure_schema(con)
    present = set(con.execute(_COLUMNS_NOW).fetchall())
    for key in RAW_TABLES:
        t = table(key)
        for c in t.columns:
            if (key, c.name) not in present:
                con.execute(f"ALTER TABLE {t.qualified} ADD COLUMN IF NOT EXISTS {c.name} "
                            f"{c.type}")


def file_row(file_id: str, kind: str, rel: str, fmt: str | None, size: int | None,
             mtime: datetime | None, received_at: datetime | None, received_source: str | None,
             run_id: str, now: datetime, **kw: Any) -> dict[str, Any]:
    """One `raw.landing_file` row (counts 0 unless given in `kw`)."""
    row = dict.fromkeys(LANDING_FILE_COLUMNS)
    row.update(file_id=file_id, source_kind=kind, source_path=rel, file_format=fmt,
               size_bytes=size, file_mtime=mtime, received_at=received_at,
               received_source=received_source, run_id=run_id, ingested_at=now,
               n_rows_read=0, n_rows_kept=0, n_rows_rejected=0)
    row.update(kw)
    return row


def path_row(entry: LandingEntry, file_id: str, role: str, run_id: str,
             now: datetime) -> dict[str, Any]:
    """One `raw.landing_path` row: `entry` seen with content `file_id` (`primary`/`duplicate`)."""
    return dict(source_path=entry.rel, file_id=file_id, size_bytes=entry.size,
                file_mtime=entry.mtime, role=role, run_id=run_id, seen_at=now)


def file_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    files = pd.DataFrame(rows, columns=LANDING_FILE_COLUMNS)
    for c in ("file_mtime", "received_at", "ingested_at"):
        files[c] = pd.to_datetime(files[c], utc=True)
    return files


def path_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    paths = pd.DataFrame(rows, columns=LANDING_PATH_COLUMNS)
    for c in ("file_mtime", "seen_at"):
        paths[c] = pd.to_datetime(paths[c], utc=True)
    return paths


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, **frames: pd.DataFrame) -> Iterator[None]:
    """The frames readable by name in SQL for the block (`con.register`), unregistered after."""
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        yield
    finally:
        for name in frames:
            with contextlib.suppress(Exception):
                con.unregister(name)


def write_manifest(con: duckdb.DuckDBPyConnection, ids: str, files: str, paths: str) -> None:
    """Record files in the manifest, inside the caller's transaction (both ingest paths).

    `ids`, `files`, `paths` name registered frames: the file ids, their `raw.landing_file` rows
    and their `raw.landing_path` rows. Whatever an earlier, interrupted attempt left for these
    files goes first; a known path × content seen again with a new mtime (touched) keeps one
    `landing_path` row with the new mtime.
    """
    if con.execute(_HAS_ROWS.format(ids=ids)).fetchone()[0]:
        con.execute(_DELETE_CELLS.format(ids=ids))
        con.execute(_DELETE_ROWS.format(ids=ids))
    con.execute(_DELETE_FILES.format(ids=ids))
    cols = ", ".join(LANDING_FILE_COLUMNS)
    con.execute(f"INSERT INTO raw.landing_file ({cols}) SELECT {cols} FROM {files}")
    con.execute(_TOUCH_PATHS.format(paths=paths))
    con.execute(_INSERT_PATHS.format(cols=", ".join(LANDING_PATH_COLUMNS), paths=paths))


class Writer:
    """Accumulates files' rows and cells and writes them in bulk, one transaction per batch."""

    def __init__(self, con: duckdb.DuckDBPyConnection,
                 before_flush: Callable[[], None] | None = None) -> None:
        self.con = con
        self.before_flush = before_flush   # e.g. the receipt journal: written before the rows
        self.files: list[dict[str, Any]] = []
        self.paths: list[dict[str, Any]] = []
        self.rows: list[pd.DataFrame] = []
        self.cells: list[pd.DataFrame] = []

    def add(self, file: dict[str, Any], rows: pd.DataFrame | None = None,
            cells: pd.DataFrame | None = None) -> None:
        self.files.append(file)
        if rows is not None and len(rows):
            self.rows.append(rows)
        if cells is not None and len(cells):
            self.cells.append(cells)
        if len(self.files) >= BATCH_FILES:
            self.flush()

    def add_path(self, path: dict[str, Any]) -> None:
        self.paths.append(path)

    def flush(self) -> None:
        if not (self.files or self.paths):
            return
        if self.before_flush is not None:
            self.before_flush()
        con = self.con
        files = file_frame(self.files)
        paths = path_frame(self.paths)
        # parsers leave out the columns they have nothing for (DHIS2 ids of a template cell…)
        rows = (pd.concat(self.rows, ignore_index=True) if self.rows
                else pd.DataFrame(columns=ROW_COLUMNS)).reindex(columns=ROW_COLUMNS)
        cells = (pd.concat(self.cells, ignore_index=True) if self.cells
                 else pd.DataFrame(columns=CELL_COLUMNS)).reindex(columns=CELL_COLUMNS)
        rows["received_at"] = pd.to_datetime(rows["received_at"], utc=True)
        rows["row_number"] = rows["row_number"].astype("int32")
        cells["column_index"] = cells["column_index"].astype("int32")
        with transaction(con), registered(con, _new_files=files, _new_paths=paths,
                                          _new_rows=rows[ROW_COLUMNS],
                                          _new_cells=cells[CELL_COLUMNS],
                                          _new_ids=files[["file_id"]]):
            write_manifest(con, ids="_new_ids", files="_new_files", paths="_new_paths")
            row_cols = ", ".join(ROW_COLUMNS)
            con.execute(f"INSERT INTO raw.submission_row ({row_cols}) "
                        f"SELECT {row_cols} FROM _new_rows")
            cell_cols = ", ".join(CELL_COLUMNS)
            con.execute(f"INSERT INTO raw.submission_cell ({cell_cols}) "
                        f"SELECT {cell_cols} FROM _new_cells")
        self.files, self.paths, self.rows, self.cells = [], [], [], []
