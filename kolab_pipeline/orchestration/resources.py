"""Dagster resources: the warehouse, KOLAB_HOME settings, the optional SQL source and PostgreSQL
warehouse, and alerting. Secrets (URLs with passwords, webhooks) come only from the environment
through `dg.EnvVar`, so they are never written into run config, logs or metadata."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import connect, ensure_schema, release_memory


class KolabHome(dg.ConfigurableResource):
    """KOLAB_HOME: where landing files, registry, warehouse, exports and reports live."""

    home: str = Field(description="Absolute path of KOLAB_HOME")

    def settings(self) -> Settings:
        return Settings.load(self.home)


class Warehouse(dg.ConfigurableResource):
    """The embedded DuckDB warehouse file (`KOLAB_HOME/kolab.duckdb`).

    One writer at a time: assets that write it share the `duckdb_writer` pool (specs.py), and a
    lock held by another process is reported in one line (`WarehouseBusyError`).
    """

    database: str = Field(description="Path of the DuckDB file")
    # the connection a step already holds: a nested `connection()` reuses it (a check judging
    # 24 months opens the file once, not 24 times — each open + close + heap trim cost 0.1–0.3 s)
    _open: list[duckdb.DuckDBPyConnection] = PrivateAttr(default_factory=list)

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._open:
            yield self._open[-1]
            return
        con = connect(self.database)
        self._open.append(con)
        try:
            ensure_schema(con)
            yield con
        finally:
            self._open.pop()
            con.close()
            release_memory()   # one process for every step of `kolab run`: give the heap back


class SourceDatabase(dg.ConfigurableResource):
    """Optional submissions database read through SQLAlchemy (`KOLAB_SOURCE_DB_URL`)."""

    url: str | None = Field(default=None, description="SQLAlchemy URL; from the environment")
    table: str = Field(default="laporan_bulanan", description="Table with the template columns")
    query: str | None = Field(default=None, description="Or a SELECT returning those columns")


class PostgresWarehouse(dg.ConfigurableResource):
    """Optional PostgreSQL copy of the analyst-facing tables (`KOLAB_WAREHOUSE_URL`)."""

    url: str | None = Field(default=None, description="SQLAlchemy URL; from the environment")


class Alerts(dg.ConfigurableResource):
    """Where failure alerts go: always `KOLAB_HOME/alerts.log`, plus an optional webhook."""

    log_path: str = Field(description="Alert log file")
    webhook_url: str | None = Field(default=None, description="From KOLAB_ALERT_WEBHOOK_URL")


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources for one KOLAB_HOME. Optional URLs are bound to their env vars only when set."""
    settings = settings or Settings.load()
    paths = settings.paths
    return {
        "kolab": KolabHome(home=str(paths.home)),
        "warehouse": Warehouse(database=str(paths.warehouse)),
        "source_db": SourceDatabase(url=_env("KOLAB_SOURCE_DB_URL"),
                                    table=os.environ.get("KOLAB_SOURCE_DB_TABLE",
                                                         "laporan_bulanan")),
        "pg_warehouse": PostgresWarehouse(url=_env("KOLAB_WAREHOUSE_URL")),
        "alerts": Alerts(log_path=str(paths.alerts), webhook_url=_env("KOLAB_ALERT_WEBHOOK_URL")),
    }
