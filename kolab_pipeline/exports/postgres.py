"""The optional copy of the analyst tables in a PostgreSQL warehouse (`KOLAB_WAREHOUSE_URL`).

Tables are created from the contract types, schemas by layer; tables of the monthly layers with a
`period` column are replaced per period (`DELETE … WHERE period = ANY`), the others (reference,
raw, clean: rebuilt whole) whole; everything in **one transaction**, so a failure leaves the
previous data untouched. Rows go in through psycopg 3 `COPY … FROM STDIN` in chunks. The URL is
never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from kolab_pipeline.exports.parquet import analyst_tables
from kolab_pipeline.warehouse import Table, ident

log = logging.getLogger(__name__)


PG_TYPES = {"VARCHAR": "TEXT", "BIGINT": "BIGINT", "INTEGER": "INTEGER",
            "DOUBLE": "DOUBLE PRECISION",
            "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMPTZ": "TIMESTAMPTZ",
            "TIMESTAMP": "TIMESTAMP", "VARCHAR[]": "TEXT[]", "HUGEINT": "NUMERIC(39)",
            "SMALLINT": "SMALLINT", "DECIMAL": "NUMERIC", "JSON": "JSONB"}


def pg_type(duck_type: str) -> str:
    """PostgreSQL type of a contract (DuckDB) type; an unknown type is an error naming it."""
    try:
        return PG_TYPES[duck_type.upper()]
    except KeyError:
        raise ValueError(f"tables.yaml type {duck_type!r} has no PostgreSQL mapping "
                         "in exports.PG_TYPES") from None


def pg_ddl(t: Table) -> list[str]:
    """CREATE SCHEMA/TABLE IF NOT EXISTS plus ADD COLUMN IF NOT EXISTS (the contract only grows)."""
    schema, name = ident(t.schema), ident(t.name)
    cols = ", ".join(f"{ident(c.name)} {pg_type(c.type)}" for c in t.columns)
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {schema}",
             f"CREATE TABLE IF NOT EXISTS {schema}.{name} ({cols})"]
    stmts += [f"ALTER TABLE {schema}.{name} "
              f"ADD COLUMN IF NOT EXISTS {ident(c.name)} {pg_type(c.type)}"
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
                            f"{str(exc).splitlines()[0] if str(exc) else ''}); "
                            "the whole export was rolled back, previous data kept") from exc
    finally:
        engine.dispose()
    seconds = time.perf_counter() - start
    log.info("PostgreSQL export: %d tables, %d rows in %.2fs",
             len(counts), sum(counts.values()), seconds)
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
                          "WHERE list_contains(?::VARCHAR[], period) OR period IS NULL",
                          [list(periods)])
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
