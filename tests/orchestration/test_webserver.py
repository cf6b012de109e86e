"""The Dagster UI as a client: start `dagster-webserver -w workspace.yaml` on a free port, read the
asset graph through its GraphQL API, launch the ingest job through it and read the results; and
after `kolab run` over two months, read the monthly checks' result per month as the UI shows it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.jobs import MONTHLY_GROUPS
from kolab_pipeline.orchestration.runner import run_pipeline
from tests.support.dagster_ui import direct_run_coordinator, gql, webserver
from tests.support.registry import write_minimal_registry

ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName isPartitioned
    partitionDefinition { type }
    assetChecksOrError { ... on AssetChecks { checks { name } } } } }
"""
LAUNCH = """
mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status
  assetCheckEvaluations: stepStats { stepKey status } } } }
"""
CHECKS = """
query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
  __typename ... on AssetCheckEvaluationEvent { evaluation { checkName success } } } } } }
"""
# What the asset page and the graph node show for each check: the latest execution (its status,
# month and message) and the status of every month partition.
CHECK_STATUS = """
query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  assetChecksOrError { ... on AssetChecks { checks { name
    executionForLatestMaterialization { status partition
      evaluation { success partition description severity } }
    partitionStatuses { __typename
      ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } } } }
"""
WARN_CHECKS = {"no_missing_reports_after_cutoff", "completeness_above_threshold",
               "timeliness_above_threshold"}


@pytest.mark.slow
def test_webserver_graph_and_a_run_launched_through_the_api(kolab_home: Path, tmp_path: Path):
    write_minimal_registry(kolab_home)
    direct_run_coordinator(kolab_home)
    with webserver(kolab_home, tmp_path / "webserver.log") as base:
        nodes = gql(base, ASSETS_QUERY)["assetNodes"]
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert {"reference/wilayah", "reference/facility"} <= set(by_key)
        groups = {n["groupName"] for n in nodes}
        assert "reference" in groups
        for key, n in by_key.items():
            assert n["groupName"] == key.split("/")[0]
            if n["groupName"] in MONTHLY_GROUPS:
                assert n["isPartitioned"] and n["partitionDefinition"]["type"] == "TIME_WINDOW", key
        checks = {c["name"] for n in nodes for c in (n["assetChecksOrError"].get("checks") or [])}
        assert checks, "the UI shows no asset checks"

        params = {"selector": {"repositoryLocationName": "kolab_pipeline",
                               "repositoryName": "__repository__", "jobName": "ingest_job"},
                  "runConfigData": {}}
        launched = gql(base, LAUNCH, {"p": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        deadline = time.time() + 180
        while True:
            status = gql(base, RUN, {"id": run_id})["runOrError"]["status"]
            if status in {"SUCCESS", "FAILURE", "CANCELED"}:
                break
            assert time.time() < deadline, f"run {run_id} still {status} after 180 s"
            time.sleep(1)
        assert status == "SUCCESS", (tmp_path / "webserver.log").read_text()[-3000:]
        events = gql(base, CHECKS, {"id": run_id})["logsForRun"]["events"]
        evaluations = [e["evaluation"] for e in events
                       if e["__typename"] == "AssetCheckEvaluationEvent"]
        ingest_checks = {c["name"] for key, n in by_key.items()
                         if key.split("/")[0] in ("reference", "raw", "clean")
                         for c in (n["assetChecksOrError"].get("checks") or [])}
        # Every check of the ingest groups ran in that run and its result is visible.
        assert {e["checkName"] for e in evaluations} == ingest_checks


@pytest.mark.slow
def test_failed_monthly_checks_show_failed_for_each_month_in_the_ui(kolab_home: Path,
                                                                   tmp_path: Path):
    """`kolab run` over two months runs the monthly checks in one run over the partition range.
    Nothing was received (2 facilities, 6 expected reports a month, all past their cut-off), so
    the three WARN checks of compliance/report_status fail in both months: the UI must show each
    month as failed — not "Skipped" — and the latest result as failed, for the last month."""
    write_minimal_registry(kolab_home)
    run_pipeline(Settings.load(kolab_home), months=["2025-03", "2025-04"], emit=lambda _: None)
    with webserver(kolab_home, tmp_path / "webserver.log") as base:
        node = gql(base, CHECK_STATUS, {"key": {"path": ["compliance", "report_status"]}})
        checks = {c["name"]: c for c in
                  node["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    assert set(checks) == WARN_CHECKS
    for name, c in checks.items():
        # each month partition: FAILED (the two months form one range of the same status)
        assert c["partitionStatuses"]["ranges"] == [
            {"startKey": "2025-03-01", "endKey": "2025-04-01", "status": "FAILED"}], name
        latest = c["executionForLatestMaterialization"]
        assert (latest["status"], latest["partition"]) == ("FAILED", "2025-04-01"), name
        evaluation = latest["evaluation"]
        assert evaluation["success"] is False and evaluation["severity"] == "WARN"
        assert evaluation["partition"] == "2025-04-01"
        assert evaluation["description"].startswith("April 2025: "), evaluation["description"]
    # 6 expected reports of April 2025, from the puskesmas and its klinik, none received
    assert checks["no_missing_reports_after_cutoff"]["executionForLatestMaterialization"][
        "evaluation"]["description"].startswith("April 2025: 6 laporan yang diharapkan dari 2")
