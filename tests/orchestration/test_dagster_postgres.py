"""The production instance (deploy/dagster.yaml: PostgreSQL run/event-log/schedule storage, the
duckdb_writer pool limit) against a real PostgreSQL server, materialising one month."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import psycopg
import pytest

from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.runner import run_pipeline
from tests.support.registry import write_minimal_registry

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


def test_deploy_instance_on_postgres_materialises_a_month(pg_server, kolab_home: Path,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    url = urlparse(pg_server.create_database("dagster_prod"))
    monkeypatch.setenv("DAGSTER_PG_HOST", url.hostname)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port))
    monkeypatch.setenv("DAGSTER_PG_DB", "dagster_prod")
    monkeypatch.setenv("DAGSTER_PG_USER", url.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused-with-trust-auth")
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

        write_minimal_registry(kolab_home)
        text = run_pipeline(Settings.load(kolab_home), months=["2025-03"], emit=lambda _: None,
                            instance=instance)
        assert "months processed: 2025-03" in text
        runs = instance.get_runs()
        assert sorted(r.job_name for r in runs) == ["ingest_job", "monthly_job"]
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        # Reference (unpartitioned) and a monthly asset for 2025-03 are recorded in PostgreSQL.
        facility = instance.get_latest_materialization_event(dg.AssetKey(["reference", "facility"]))
        assert facility is not None
        status = instance.get_materialized_partitions(dg.AssetKey(["compliance", "report_status"]))
        assert status == {"2025-03-01"}
    finally:
        instance.dispose()
    with psycopg.connect(pg_server.url("dagster_prod", driver="postgresql")) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
