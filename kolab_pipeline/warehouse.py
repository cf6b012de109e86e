"""The DuckDB warehouse: the table contract, connections, idempotent writes and staging.

The contract (every table, its grain, its columns) is the data file `catalog/tables.yaml`; the
tables are created from it, so a column exists in exactly one place. Schemas are the layers
(`reference`, `raw`, `clean`, `compliance`, `indicators`, `evaluation`), which are also the
Dagster asset key prefixes and groups. DuckDB allows one writer process at a time: `connect()`
says which file is busy instead of raising a traceback.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from kolab_pipeline import catalog

log = logging.getLogger(__name__)

LAYERS = ("reference", "raw", "clean", "compliance", "indicators", "evaluation")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Table:
    """One warehouse table from `tables.yaml`."""

    schema: str
    name: str
    grain: str
    columns: tuple[Column, ...]
    analyst: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self) -> str:
        cols = ",\n  ".join(f"{c.name} {c.type}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n  {cols}\n)"


@cache
def tables() -> dict[str, Table]:
    """All tables of the contract, keyed `schema.name`."""
    spec = catalog.tables_spec()
    out: dict[str, Table] = {}
    for key, body in spec.items():
        schema, name = key.split(".")
        cols = tuple(Column(n, t, d) for n, (t, d) in body["columns"].items())
        out[key] = Table(schema, name, body["grain"], cols, bool(body.get("analyst", False)))
    return out


def table(key: str) -> Table:
    try:
        return tables()[key]
    except KeyError:
        raise KeyError(f"{key}: not in {catalog.TABLES.name}") from None


def ident(name: str) -> str:
    """Validate an SQL identifier built from data (column names, element codes): user text is
    never quoted into SQL."""
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a safe SQL identifier")
    return name


class WarehouseBusyError(RuntimeError):
    """Another process holds the DuckDB write lock."""


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (creating its folder): replacement scans off (a typo'd table name
    fails instead of reading a same-named Python variable), memory capped at
    `KOLAB_DUCKDB_MEMORY` (default 1GB; large joins spill to `<warehouse>.tmp/`), insertion order
    not preserved (queries that need an order say ORDER BY)."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "python_enable_replacements": False,
        "memory_limit": os.environ.get("KOLAB_DUCKDB_MEMORY", "1GB"),
        "preserve_insertion_order": False,
        "temp_directory": str(path.parent / f"{path.name}.tmp"),
    }
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusyError(
                f"{path}: the warehouse is being written by another process "
                "(DuckDB allows one writer). Wait for that run to finish, or stop `dagster dev` "
                "before `kolab run`."
            ) from None
        raise
    return con


def release_memory() -> None:
    """Hand freed heap back to the operating system after a step closed its connection
    (`kolab run` executes every step in one process). `malloc_trim` exists only in glibc;
    elsewhere this is a no-op."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# The columns of the layer tables that exist in the open warehouse.
_EXISTING_COLUMNS_SQL = """
    SELECT schema_name || '.' || table_name, list(column_name)
      FROM duckdb_columns()
     WHERE database_name = current_database() AND list_contains($layers, schema_name)
     GROUP BY ALL
"""


def ensure_schema(con: duckdb.DuckDBPyConnection, keys: Sequence[str] | None = None) -> list[str]:
    """Create the layer schemas and the contract's tables that do not exist yet, and add to an
    existing table the contract columns it lacks (a warehouse built by an older version: existing
    rows get NULL there), with one log line per table. Returns the columns added
    (`schema.table.column`)."""
    for layer in LAYERS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    wanted = {key: t for key, t in tables().items() if keys is None or key in keys}
    for t in wanted.values():
        con.execute(t.ddl())
    existing = dict(con.execute(_EXISTING_COLUMNS_SQL, {"layers": list(LAYERS)}).fetchall())
    added: list[str] = []
    for key, t in wanted.items():
        missing = [c for c in t.columns if c.name not in existing.get(key, ())]
        for c in missing:
            con.execute(f"ALTER TABLE {t.qualified} ADD COLUMN {ident(c.name)} {c.type}")
        if missing:
            names = ", ".join(c.name for c in missing)
            log.warning("warehouse upgraded: %s gains column(s) %s (%s); existing rows hold "
                        "NULL there", key, names, catalog.TABLES.name)
            added += [f"{key}.{c.name}" for c in missing]
    return added


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, ROLLBACK on any error: a failed write never leaves half a month."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


Params = Sequence[object] | Mapping[str, object]


def bind(sql: str, params: Params) -> Sequence[object] | dict[str, object]:
    """The parameters `sql` uses: positional ones as given, named ones (`$name`) filtered to the
    names the statement mentions (DuckDB refuses a named parameter a statement does not use)."""
    if isinstance(params, Mapping):
        return {k: v for k, v in params.items() if re.search(rf"\${re.escape(k)}\b", sql)}
    return list(params)


def replace_rows(con: duckdb.DuckDBPyConnection, key: str, select_sql: str,
                 where: str = "TRUE", params: Params = ()) -> int:
    """Delete the rows of `key` matching `where`, insert `select_sql`'s rows; one transaction.

    `select_sql` must return the table's columns by name (extra columns are an error, missing
    columns become NULL). Re-running with the same inputs gives the same table (idempotent).
    `params`: a mapping of named parameters (`$name`, each statement gets the ones it uses), or a
    sequence bound to the `?` placeholders of `where` first, then of `select_sql`.
    Returns the number of rows inserted.
    """
    t = table(key)
    if isinstance(params, Mapping):
        where_params, select_params = bind(where, params), bind(select_sql, params)
    else:
        n_where = where.count("?")
        where_params, select_params = list(params[:n_where]), list(params[n_where:])
    produced = [d[0] for d in con.execute(
        f"SELECT * FROM ({select_sql}) AS probe LIMIT 0", select_params).description]
    extra = [c for c in produced if c not in t.column_names]
    if extra:
        raise ValueError(
            f"{key}: the query returns columns not in the contract: {', '.join(extra)}")
    cols = ", ".join(produced)
    with transaction(con):
        con.execute(f"DELETE FROM {t.qualified} WHERE {where}", where_params)
        con.execute(f"INSERT INTO {t.qualified} ({cols}) SELECT {cols} FROM ({select_sql}) AS src",
                    select_params)
        return con.execute(f"SELECT count(*) FROM {t.qualified} WHERE {where}",
                           where_params).fetchone()[0]


class Staging:
    """The temp tables one build step hands from statement to statement, named in one place.

    `with Staging(con, "_clean") as stage:` then `stage.create("rows", sql, params)` makes the
    temp table `_clean_rows` (returned, for use in later SQL) and records it; every table created
    or registered through the object is dropped when the block ends, also on error, so a failed
    step leaves no hidden state for the next one on the same connection.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, prefix: str) -> None:
        self.con, self.prefix = con, ident(prefix)
        self.names: list[str] = []

    def name(self, short: str) -> str:
        """The full temp-table name of `short` (`rows` → `_clean_rows`)."""
        return ident(f"{self.prefix}_{short}")

    def create(self, short: str, select_sql: str, params: Params = ()) -> str:
        """CREATE OR REPLACE TEMP TABLE <prefix>_<short> AS <select_sql>; returns the name."""
        full = self.name(short)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {full} AS {select_sql}",
                         bind(select_sql, params))
        if full not in self.names:
            self.names.append(full)
        return full

    def adopt(self, short: str) -> str:
        """Record a temp table created by other means (e.g. an INSERT target) for dropping."""
        full = self.name(short)
        if full not in self.names:
            self.names.append(full)
        return full

    def release(self, short: str) -> None:
        """Drop one temp table before the block ends (temp tables live in DuckDB's memory budget:
        a large one no later statement reads is freed for the next statements)."""
        full = self.name(short)
        self.con.execute(f"DROP TABLE IF EXISTS {full}")
        if full in self.names:
            self.names.remove(full)

    def drop(self) -> None:
        for full in reversed(self.names):
            self.con.execute(f"DROP TABLE IF EXISTS {full}")
        self.names.clear()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()


def row_count(con: duckdb.DuckDBPyConnection, key: str, where: str = "TRUE",
              params: Sequence[object] = ()) -> int:
    return con.execute(f"SELECT count(*) FROM {table(key).qualified} WHERE {where}",
                       list(params)).fetchone()[0]


def catalogue_markdown() -> str:
    """The README table catalogue (every table, its grain, whether analysts read it), generated
    from `tables.yaml` so the README cannot drift from the contract (tests/test_readme.py)."""
    lines = ["| table | grain | for analysts |", "|---|---|---|"]
    for t in tables().values():
        lines.append(f"| `{t.qualified}` | {t.grain} | {'yes' if t.analyst else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(catalogue_markdown())
