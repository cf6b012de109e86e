"""Table digests and the shared reference run (sample → pipeline once) used by the reliability
tests."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from kolab_pipeline.config import Settings
from kolab_pipeline.exports import analyst_tables
from kolab_pipeline.warehouse import connect, table, tables

# Run-time lineage: which run ingested a file/row and when. Two different runs (a reference run and
# a killed-then-restarted run in another home) legitimately differ there and nowhere else; two runs
# on the same home do not differ at all (the second run re-ingests nothing).
LINEAGE_COLUMNS = frozenset({"run_id", "ingested_at", "seen_at"})


RAW_TABLES = ("raw.landing_file", "raw.landing_path", "raw.submission_row", "raw.submission_cell")


SAMPLE = dict(seed=3, as_of=date(2025, 4, 20), scale="kabupaten", months=3, messy=True)


def compared_tables() -> list[str]:
    """Analyst tables plus the raw tables: the outputs a re-run or a crash could duplicate."""
    return [t.qualified for t in analyst_tables()] + list(RAW_TABLES)


def _columns(key: str, drop_lineage: bool) -> list[str]:
    return [c for c in table(key).column_names if not (drop_lineage and c in LINEAGE_COLUMNS)]


def duckdb_digests(db: Path, drop_lineage: bool = False) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5 of the rows' text sorted)} of the compared tables of a DuckDB file."""
    con = connect(db, read_only=True)
    try:
        out = {}
        for key in compared_tables():
            cols = ", ".join(_columns(key, drop_lineage))
            out[key] = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) FROM "
                f"(SELECT CAST(ROW({cols}) AS VARCHAR) AS r FROM {tables()[key].qualified})"
            ).fetchone()
        return {k: (int(n), h) for k, (n, h) in out.items()}
    finally:
        con.close()


def postgres_digests(url: str) -> dict[str, tuple[int, str]]:
    """The same digest for the analyst tables of the PostgreSQL copy (PostgreSQL's row text)."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    out = {}
    with psycopg.connect(dsn) as pgc:
        for t in analyst_tables():
            n, h = pgc.execute(
                "SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) "
                f"FROM (SELECT CAST(x AS TEXT) AS r FROM {t.schema}.{t.name} x) s").fetchone()
            out[t.qualified] = (int(n), h)
    return out


@contextlib.contextmanager
def env(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Reference:
    """The shared sample: a pristine copy (never run) and a home after one complete run."""

    pristine: Path
    home: Path
    pg_url: str
    lines: list[str]
    duck: dict[str, tuple[int, str]]
    duck_no_lineage: dict[str, tuple[int, str]]
    pg: dict[str, tuple[int, str]]


_REFERENCE: dict[str, Reference] = {}


def reference_run(pg_server) -> Reference:  # noqa: ANN001 (tests.pg.PostgresServer)
    """Generate the sample once, run the pipeline once on a copy (with the PostgreSQL copy on)."""
    if "ref" in _REFERENCE:
        return _REFERENCE["ref"]
    from kolab_pipeline.orchestration.runner import run_pipeline
    from kolab_pipeline.sample import generate

    root = Path(tempfile.mkdtemp(prefix="kolab_idem_"))
    atexit.register(shutil.rmtree, root, True)
    pristine = root / "pristine"
    with env(KOLAB_HOME=str(pristine)):
        generate(pristine, **SAMPLE)
    home = root / "reference"
    shutil.copytree(pristine, home, symlinks=True)
    url = pg_server.create_database("kolab_reference")
    lines: list[str] = []
    with env(KOLAB_HOME=str(home), KOLAB_WAREHOUSE_URL=url, KOLAB_SOURCE_DB_URL=None,
             KOLAB_ALERT_WEBHOOK_URL=None):
        run_pipeline(Settings.load(home), emit=lines.append)
    ref = Reference(pristine, home, url, lines, duckdb_digests(home / "kolab.duckdb"),
                    duckdb_digests(home / "kolab.duckdb", drop_lineage=True), postgres_digests(url))
    _REFERENCE["ref"] = ref
    return ref
