"""Warehouse helpers: the table contract (and adding its new columns to an older warehouse),
lock message."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from kolab_pipeline import warehouse
from kolab_pipeline.warehouse import connect, ensure_schema, table


def test_contract_tables_are_created(con):
    existing = {f"{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    assert set(warehouse.tables()) <= existing
    # every column is documented and every table states its grain
    for t in warehouse.tables().values():
        assert t.grain and all(c.description for c in t.columns), t.qualified


def test_replace_rows_is_idempotent_per_partition(con):
    sel = ("SELECT * FROM (VALUES ('F1', ?, 'tb', 1, true)) "
           "v(kode_faskes, period, form, version, is_current)")
    for _ in range(2):
        warehouse.replace_rows(con, "clean.submission", sel, "period = ?", ["2025-01", "2025-01"])
        warehouse.replace_rows(con, "clean.submission", sel, "period = ?", ["2025-02", "2025-02"])
    rows = con.execute(
        "SELECT period, count(*) FROM clean.submission GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("2025-01", 1), ("2025-02", 1)]


def test_failed_replace_leaves_previous_rows(con):
    good = "SELECT 'F1' AS kode_faskes, '2025-01' AS period"
    warehouse.replace_rows(con, "clean.submission", good, "period = '2025-01'")
    with pytest.raises(Exception, match="Conversion"):
        warehouse.replace_rows(con, "clean.submission",
                               "SELECT 'F2' AS kode_faskes, '2025-01' AS period, 'x' AS version",
                               "period = '2025-01'")
    assert con.execute("SELECT kode_faskes FROM clean.submission").fetchall() == [("F1",)]


@pytest.mark.parametrize("name", ["kia_k1", "tb_skrining", "_x1"])
def test_ident_accepts_codes(name):
    assert warehouse.ident(name) == name


@pytest.mark.parametrize("name", ["x; DROP TABLE a", "K1", "a b", "1abc", "a'--", ""])
def test_ident_rejects_anything_else(name):
    with pytest.raises(ValueError):
        warehouse.ident(name)


def test_busy_warehouse_gives_one_line_reason(tmp_path):
    db = tmp_path / "busy.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r}); con.execute('CREATE TABLE t(a INT)')
        print('ready', flush=True); time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(warehouse.WarehouseBusyError) as err:
            warehouse.connect(db)
        assert "one writer" in str(err.value) and "\n" not in str(err.value)
    finally:
        holder.kill()
        holder.wait()


def _memory_limit(db) -> str:
    con = warehouse.connect(db)
    try:
        # duckdb_settings() renders the cap in MiB, e.g. 953.6 MiB for 1GB
        return con.execute("SELECT value FROM duckdb_settings() "
                           "WHERE name = 'memory_limit'").fetchone()[0]
    finally:
        con.close()


def test_memory_cap_defaults_to_1gb_and_env_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("KOLAB_DUCKDB_MEMORY", raising=False)
    assert _memory_limit(tmp_path / "a.duckdb") == "953.6 MiB"      # 1GB = 10^9 bytes
    monkeypatch.setenv("KOLAB_DUCKDB_MEMORY", "500MB")
    assert _memory_limit(tmp_path / "b.duckdb") == "476.8 MiB"


def test_release_memory_returns_freed_heap_to_the_os():
    """After a large pure-Python allocation is dropped, the resident size falls back (glibc)."""
    if sys.platform != "linux":
        pytest.skip("malloc_trim is glibc-only; release_memory is a no-op elsewhere")

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    before = rss_mb()
    # 250,000 × 1 KiB: above pymalloc's 512-byte limit, so glibc's heap, below its mmap threshold
    blob = [bytes([i % 251]) * 1024 for i in range(250_000)]
    grown = rss_mb()
    keep = bytes(2048)                                   # allocated last: pins the top of the heap
    del blob
    warehouse.release_memory()
    after = rss_mb()
    assert grown - before > 150, (before, grown)
    assert after < before + (grown - before) / 3, (before, grown, after)
    assert keep


# a warehouse built before columns were added to the contract gains them, its rows kept
def test_an_older_table_gains_the_new_columns_and_keeps_its_rows(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    con = connect(tmp_path / "old.duckdb")
    # clean.submission_value as it was before the report scope (no reported_value,
    # network_value, lingkup_laporan)
    con.execute("CREATE SCHEMA clean")
    con.execute("CREATE TABLE clean.submission_value (submission_id VARCHAR, kode_faskes VARCHAR, "
                "period VARCHAR, form VARCHAR, data_element VARCHAR, value BIGINT)")
    con.execute("INSERT INTO clean.submission_value VALUES "
                "('P1|2025-01|kia|1', 'P1', '2025-01', 'kia', 'kia_k1', 7)")
    with caplog.at_level(logging.WARNING, logger="kolab_pipeline.warehouse"):
        added = ensure_schema(con)
    assert added == ["clean.submission_value.reported_value",
                     "clean.submission_value.network_value",
                     "clean.submission_value.lingkup_laporan"]
    assert ("warehouse upgraded: clean.submission_value gains column(s) reported_value, "
            "network_value, lingkup_laporan") in caplog.text
    columns = {c[0] for c in con.execute("DESCRIBE clean.submission_value").fetchall()}
    assert columns == set(table("clean.submission_value").column_names)
    assert con.execute("SELECT kode_faskes, value, reported_value, lingkup_laporan "
                       "FROM clean.submission_value").fetchall() == [("P1", 7, None, None)]
    # a layer writing its new columns works; the next connection has nothing to add
    con.execute("UPDATE clean.submission_value SET reported_value = 7, lingkup_laporan = 'faskes'")
    assert ensure_schema(con) == []
    con.close()


# a step that already holds the warehouse reuses its connection (a check judging 24 months opens
# the file once): the nested block gets the same connection, only the outer one closes it
def test_a_nested_connection_reuses_the_open_one(tmp_path: Path):
    from kolab_pipeline.orchestration.resources import Warehouse

    wh = Warehouse(database=str(tmp_path / "w.duckdb"))
    with wh.connection() as outer:
        with wh.connection() as inner:
            assert inner is outer
            inner.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert outer.execute("SELECT x FROM t").fetchall() == [(1,)]   # still open
    with pytest.raises(duckdb.ConnectionException):
        outer.execute("SELECT 1")
    with wh.connection() as again:   # a fresh one afterwards
        assert again is not outer and again.execute("SELECT x FROM t").fetchall() == [(1,)]


# a staged table released early is gone at once and not dropped twice at the end
def test_staging_release_drops_one_table_now(con):
    with warehouse.Staging(con, "_t") as stage:
        big = stage.create("big", "SELECT range AS x FROM range(10)")
        keep = stage.create("keep", "SELECT 1 AS y")
        stage.release("big")
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                           [big]).fetchone()[0] == 0
        assert stage.names == [keep]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                       [keep]).fetchone()[0] == 0
