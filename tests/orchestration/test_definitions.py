"""The code location: it loads, validates with the Dagster CLI, and has the shape analysts and the
UI rely on (groups, partitions, descriptions, column schemas, checks, jobs, sensors)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import yaml

import assets
import data_quality
import sensors
from kolab_pipeline.orchestration.definitions import defs
from kolab_pipeline.orchestration.jobs import INGEST_GROUPS, MONTHLY_GROUPS
from kolab_pipeline.warehouse import tables

REPO = Path(__file__).resolve().parents[2]


def _specs() -> list[dg.AssetSpec]:
    return [s for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) for s in a.specs]


def test_packages_come_from_this_repository():
    # A tests/assets folder or an installed copy would shadow the real packages.
    for package in (assets, sensors, data_quality):
        assert Path(package.__file__).resolve().parent.parent == REPO, package.__file__


def test_workspace_and_pyproject_agree():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    assert entry["python_module"]["module_name"] == project["code_location_target_module"]
    assert entry["python_module"]["location_name"] == project["code_location_name"]


def test_dagster_definitions_validate(tmp_path: Path):
    env = {**os.environ, "KOLAB_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_groups_are_the_layers_and_keys_are_prefixed_by_group():
    specs = _specs()
    groups = {s.group_name for s in specs}
    assert "reference" in groups
    assert groups <= set(INGEST_GROUPS) | set(MONTHLY_GROUPS)
    for s in specs:
        assert s.key.path[0] == s.group_name, s.key


def test_monthly_groups_are_partitioned_single_run_and_ingest_groups_are_not():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    for s in _specs():
        node = graph.get(s.key)
        if s.group_name in MONTHLY_GROUPS:
            assert isinstance(node.partitions_def, dg.MonthlyPartitionsDefinition), s.key
            # Mixed policies would make the whole monthly_job fall back to one run per month.
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), s.key
        else:
            assert node.partitions_def is None, s.key


def test_every_asset_has_a_description_and_every_table_asset_its_column_schema():
    table_assets = 0
    for s in _specs():
        assert s.description and s.description.strip(), s.key
        key = ".".join(s.key.path)
        if key in tables():  # files (exports, report) have no table contract
            table_assets += 1
            schema = s.metadata.get("dagster/column_schema")
            assert isinstance(schema, dg.TableSchema), s.key
            assert [c.name for c in schema.columns] == tables()[key].column_names, s.key
    assert table_assets >= 8  # the reference tables alone are 8


def test_jobs_schedules_sensors_and_checks_are_wired():
    repo = defs.get_repository_def()
    assert {"ingest_job", "monthly_job"} <= {j.name for j in repo.get_all_jobs()}
    assert "monthly_job_schedule" in {s.name for s in repo.schedule_defs}
    sensor_names = {s.name for s in repo.sensor_defs}
    assert {"run_failure_alert_sensor", "check_failure_alert_sensor"} <= sensor_names
    # Without KOLAB_AUTOMATION=on, nothing runs by itself (make demo, tests).
    if os.environ.get("KOLAB_AUTOMATION", "") == "":
        assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in repo.schedule_defs)
    checks = list(repo.asset_graph.asset_check_keys)
    assert checks, "no asset checks were loaded from assets/ and data_quality/"
    assert all(c.asset_key in repo.asset_graph.get_all_asset_keys() for c in checks)


def test_ingest_job_covers_the_ingest_groups_and_monthly_job_the_monthly_groups():
    graph = defs.get_repository_def().asset_graph
    ingest = {k for k in defs.resolve_job_def("ingest_job").asset_layer.executable_asset_keys}
    assert ingest == {k for k in graph.get_all_asset_keys() if k.path[0] in INGEST_GROUPS
                      and graph.get(k).is_materializable}
    monthly = defs.resolve_job_def("monthly_job")
    assert isinstance(monthly.partitions_def, dg.MonthlyPartitionsDefinition)
    assert {k.path[0] for k in monthly.asset_layer.executable_asset_keys} <= set(MONTHLY_GROUPS)


def test_warehouse_writers_share_the_duckdb_writer_pool():
    repo = defs.get_repository_def()
    for a in repo.assets_defs_by_key.values():
        if a.is_executable and a.keys and a.node_def is not None:
            assert a.node_def.pool == "duckdb_writer", a.keys
