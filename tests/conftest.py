"""Shared fixtures: a KOLAB_HOME in a temp folder, a warehouse connection, a real PostgreSQL
server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support import pg


@pytest.fixture
def kolab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty KOLAB_HOME, also exported as the environment variable."""
    home = tmp_path / "kolab_home"
    home.mkdir()
    monkeypatch.setenv("KOLAB_HOME", str(home))
    return home


@pytest.fixture
def settings(kolab_home: Path) -> Settings:
    return Settings.load(kolab_home)


@pytest.fixture
def con(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the temp warehouse with every contract table created."""
    c = connect(settings.paths.warehouse)
    ensure_schema(c)
    yield c
    c.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PostgresServer]:
    """One real PostgreSQL server for the whole test session (started as the postgres user)."""
    server = pg.start()
    yield server
    server.stop()
