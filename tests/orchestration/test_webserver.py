"""The Dagster UI as a client: start `dagster-webserver -w workspace.yaml` on a free port, read the
asset graph through its GraphQL API, launch the ingest job through it and read the results."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.jobs import MONTHLY_GROUPS
from kolab_pipeline.orchestration.runner import ensure_instance_dir
from tests.support.registry import write_minimal_registry

REPO = Path(__file__).resolve().parents[2]

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(base: str, query: str, variables: dict | None = None) -> dict:
    r = requests.post(f"{base}/graphql", json={"query": query, "variables": variables or {}},
                      timeout=60)
    r.raise_for_status()
    body = r.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.mark.slow
def test_webserver_graph_and_a_run_launched_through_the_api(kolab_home: Path, tmp_path: Path):
    write_minimal_registry(kolab_home)
    dagster_home = ensure_instance_dir(Settings.load(kolab_home))
    # No daemon here to dequeue runs: launch them directly (the pool limit still applies per step).
    with (dagster_home / "dagster.yaml").open("a") as fh:
        fh.write("run_coordinator:\n  module: dagster.core.run_coordinator\n"
                 "  class: DefaultRunCoordinator\n")
    port = _free_port()
    env = {**os.environ, "KOLAB_HOME": str(kolab_home), "DAGSTER_HOME": str(dagster_home)}
    env.pop("KOLAB_AUTOMATION", None)
    log = (tmp_path / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if requests.get(f"{base}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
            assert time.time() < deadline, "webserver did not answer /server_info in 120 s"
            time.sleep(0.5)

        nodes = _gql(base, ASSETS_QUERY)["assetNodes"]
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
        launched = _gql(base, LAUNCH, {"p": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        deadline = time.time() + 180
        while True:
            status = _gql(base, RUN, {"id": run_id})["runOrError"]["status"]
            if status in {"SUCCESS", "FAILURE", "CANCELED"}:
                break
            assert time.time() < deadline, f"run {run_id} still {status} after 180 s"
            time.sleep(1)
        assert status == "SUCCESS", (tmp_path / "webserver.log").read_text()[-3000:]
        events = _gql(base, CHECKS, {"id": run_id})["logsForRun"]["events"]
        evaluations = [e["evaluation"] for e in events
                       if e["__typename"] == "AssetCheckEvaluationEvent"]
        ingest_checks = {c["name"] for key, n in by_key.items()
                         if key.split("/")[0] in ("reference", "raw", "clean")
                         for c in (n["assetChecksOrError"].get("checks") or [])}
        # Every check of the ingest groups ran in that run and its result is visible.
        assert {e["checkName"] for e in evaluations} == ingest_checks
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
