"""Crash recovery (issue 10): `kolab run` killed with SIGKILL — once in the middle of the monthly
computations (while the indicator step writes), once in the middle of the PostgreSQL copy — then
run again, ends with exactly the tables of an uninterrupted run (the shared reference of
`tests/test_idempotency.py`): no duplicate and no half-written month, in DuckDB and in
PostgreSQL.

The killed run leaves its Dagster run `STARTED` with a `duckdb_writer` pool slot claimed in the
persistent instance (`KOLAB_HOME/.dagster`); without `runner.release_dead_runs()` the next
`kolab run` would wait for that slot forever. The test asserts the slot is held after the kill and
that the restart frees it.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from kolab_pipeline.config import Settings
from kolab_pipeline.exports import analyst_tables
from kolab_pipeline.orchestration.runner import POOL, open_instance
from kolab_pipeline.warehouse import connect
from tests.support.digests import duckdb_digests, postgres_digests, reference_run

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # seconds for any one phase; a restart blocked on a leaked pool slot fails here


class KolabProcess:
    """`kolab run` as a child process in its own session, its output read line by line."""

    def __init__(self, home: Path, pg_url: str) -> None:
        env = {**os.environ, "KOLAB_HOME": str(home), "KOLAB_WAREHOUSE_URL": pg_url,
               "PYTHONUNBUFFERED": "1"}
        for key in ("KOLAB_SOURCE_DB_URL", "KOLAB_ALERT_WEBHOOK_URL"):
            env.pop(key, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kolab_pipeline.cli", "--home", str(home), "run"],
            cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, found: Callable[[str], bool], timeout: float = TIMEOUT,
                 poll: Callable[[], bool] | None = None) -> str:
        """Read lines until one satisfies `found` (or `poll()` is true between lines)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if poll is not None and poll():
                return "<poll>"
            try:
                line = self._q.get(timeout=0.02 if poll else 1.0)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("kolab run ended before the stage was reached:\n"
                                     + "\n".join(self.lines[-15:]))
            self.lines.append(line)
            if found(line):
                return line
        self.kill()
        raise AssertionError(f"stage not reached in {timeout} s; last lines:\n"
                             + "\n".join(self.lines[-15:]))

    def kill(self) -> None:
        """SIGKILL the child's process group (only the process this test started)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout: float = TIMEOUT) -> int:
        try:
            self.wait_for(lambda line: line.startswith("months processed:"), timeout)
        except AssertionError:
            self.kill()
            raise
        return self.proc.wait(timeout=60)


def _pg_copy_running(url: str, dbname: str) -> bool:
    import psycopg

    server = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(server + "/postgres", autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity "
                         "WHERE datname = %s AND query LIKE 'COPY %%'",
                         [dbname]).fetchone()[0] > 0


def _pg_row_counts(url: str) -> dict[str, int | None]:
    import psycopg

    out: dict[str, int | None] = {}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as c:
        for t in analyst_tables():
            exists = c.execute("SELECT to_regclass(%s)", [t.qualified]).fetchone()[0]
            out[t.qualified] = (c.execute(f"SELECT count(*) FROM {t.schema}.{t.name}").fetchone()[0]
                                if exists else None)
    return out


def _held_slots(home: Path) -> set[str]:
    instance = open_instance(Settings.load(home))
    try:
        info = instance.event_log_storage.get_concurrency_info(POOL)
        return {s.run_id for s in info.claimed_slots}
    finally:
        instance.dispose()


def _run_statuses(home: Path) -> list[dg.DagsterRunStatus]:
    instance = open_instance(Settings.load(home))
    try:
        return [r.status for r in instance.get_runs()]
    finally:
        instance.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_mid_month_and_mid_postgres_copy_then_rerun_gives_the_uninterrupted_tables(
        pg_server, tmp_path: Path):
    ref = reference_run(pg_server)
    home = tmp_path / "crash"
    shutil.copytree(ref.pristine, home, symlinks=True)
    dbname = "kolab_crash"
    url = pg_server.create_database(dbname)

    # 1. kill in the middle of the monthly run: while the indicator step writes its months; the
    #    compliance tables before it are written, everything after it (scorecard, exports,
    #    report) is still to come
    p1 = KolabProcess(home, url)
    p1.wait_for(lambda line: "▶ indicator_value started" in line)
    # kill while a warehouse-writing step holds its pool slot (progress lines arrive in 0.3 s
    # batches, so a fixed sleep could land between two steps on a fast machine)
    deadline = time.monotonic() + 20
    while not _held_slots(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    p1.kill()
    assert not any("monthly_job (" in line and "done in" in line for line in p1.lines)
    con = connect(home / "kolab.duckdb", read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM compliance.report_status").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM evaluation.scorecard").fetchone()[0] == 0
    finally:
        con.close()
    # the killed run is still "started" and holds the duckdb_writer slot (the known gap)
    assert dg.DagsterRunStatus.STARTED in _run_statuses(home)
    assert _held_slots(home), "expected the killed run to hold a duckdb_writer pool slot"
    assert all(n is None for n in _pg_row_counts(url).values())   # PostgreSQL not reached yet

    # 2. restart (it must free the dead run's slot, else it waits forever), kill it while the
    #    PostgreSQL COPY is running (or, if the copy was too quick to catch, right after it)
    p2 = KolabProcess(home, url)
    p2.wait_for(lambda line: "evaluation__exports started" in line)
    caught = p2.wait_for(lambda line: "✓ evaluation/exports" in line,
                         poll=lambda: _pg_copy_running(url, dbname))
    p2.kill()
    print(f"phase 2 SIGKILL {'during' if caught == '<poll>' else 'right after'} "
          "the PostgreSQL COPY")
    assert any("released" in line and "killed" in line for line in p2.lines), p2.lines[:5]
    counts = _pg_row_counts(url)
    if caught == "<poll>":
        # killed inside the one export transaction: PostgreSQL rolled all of it back
        assert all(n is None for n in counts.values()), counts
    else:
        # the copy had committed: it is whole (every analyst table, as many rows as DuckDB)
        assert all(n is not None for n in counts.values()), counts

    # 3. run to the end; the result is the uninterrupted reference, lineage columns aside
    p3 = KolabProcess(home, url)
    assert p3.finish() == 0, "\n".join(p3.lines[-20:])
    assert not _held_slots(home)
    statuses = _run_statuses(home)
    assert dg.DagsterRunStatus.STARTED not in statuses          # the dead runs were closed
    assert statuses.count(dg.DagsterRunStatus.FAILURE) >= 2      # … as failures, on record
    recovered = duckdb_digests(home / "kolab.duckdb", drop_lineage=True)
    differing = sorted(k for k in recovered if recovered[k] != ref.duck_no_lineage[k])
    assert differing == []
    assert postgres_digests(url) == ref.pg


def test_only_provably_dead_kolab_processes_count_as_gone():
    from kolab_pipeline.orchestration.runner import (
        HOST_TAG,
        PID_TAG,
        START_TAG,
        _process_gone,
        process_tags,
    )

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    tags = {**process_tags(), PID_TAG: str(child.pid), START_TAG: ""}
    child.wait()
    assert _process_gone(tags)                                   # exited: gone
    assert not _process_gone(process_tags())                     # this very process: alive
    assert not _process_gone({**tags, HOST_TAG: "another-host"})  # other machine: never touched
    assert not _process_gone({})                                 # a UI-launched run: no tags
    # a live pid whose start time differs: the pid was reused by another process → gone
    # (the parent of this process is alive and was not started at tick 0)
    parent = {**process_tags(), PID_TAG: str(os.getppid()), START_TAG: "0"}
    assert _process_gone(parent) is Path(f"/proc/{os.getppid()}/stat").exists()
