"""`kolab run` (kolab_pipeline/orchestration/runner.py): month planning, progress lines, and real
in-process runs on a persistent instance in KOLAB_HOME/.dagster."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.runner import (
    PipelineFailed,
    ensure_instance_dir,
    open_instance,
    plan_months,
    run_pipeline,
    ytd_followups,
)
from tests.support.registry import write_minimal_registry

KEYS = [f"2025-{m:02d}-01" for m in range(1, 13)]


def test_ytd_followups_are_later_months_of_the_same_year_only():
    present = ["2024-11", "2024-12", "2025-01", "2025-02", "2025-03", "2025-04"]
    # 2024-11 requested: 2024-12 is later in 2024; 2025-* are another year (YTD restarts in
    # January).
    assert ytd_followups(["2024-11"], present) == ["2024-12"]
    assert ytd_followups(["2025-02"], present) == ["2025-03", "2025-04"]
    assert ytd_followups(["2025-04"], present) == []


def test_plan_months_present_and_requested():
    present = ["2025-01", "2025-02", "2025-03"]
    plan = plan_months(None, present, KEYS)
    assert (plan.months, plan.followups, plan.range) == (present, [], ("2025-01", "2025-03"))
    plan = plan_months(["2025-02"], present, KEYS)
    assert plan.months == ["2025-02"] and plan.followups == ["2025-03"]
    assert plan.range == ("2025-02", "2025-03")
    # A month outside the partitions is reported, never silently dropped.
    plan = plan_months(["2023-05", "2025-01"], present, KEYS)
    assert plan.outside == ["2023-05"] and plan.months == ["2025-01"]
    assert plan_months(None, [], KEYS).range is None


def test_two_months_are_a_range_and_the_notes_say_why_others_run():
    present = ["2025-01", "2025-02", "2025-03", "2025-04", "2026-01"]
    plan = plan_months(["2025-01", "2025-03"], present, KEYS + ["2026-01-01"])
    # 2025-02 lies between the two months asked for; 2025-04 follows in the same year (its YTD
    # includes them); 2026-01 is another year
    assert (plan.months, plan.inside, plan.followups) == (
        ["2025-01", "2025-03"], ["2025-02"], ["2025-04"])
    assert plan.range == ("2025-01", "2025-04")
    assert plan.every_month == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert plan.notes() == [
        "also running 2025-02: inside the range 2025-01..2025-03 of the months asked for",
        "also re-running 2025-04: their year-to-date rows include 2025-01, 2025-03"]
    # one month: nothing inside, the later months of its year follow
    one = plan_months(["2025-03"], present, KEYS)
    assert one.notes() == ["also re-running 2025-04: their year-to-date rows include 2025-03"]


def test_instance_dir_has_the_pool_limit(kolab_home: Path):
    settings = Settings.load(kolab_home)
    path = ensure_instance_dir(settings)
    assert path == kolab_home / ".dagster"
    instance = open_instance(settings)
    try:
        # The local instance limits every pool (duckdb_writer included) to one step at a time.
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


def test_run_failure_is_one_line_naming_the_missing_file(kolab_home: Path):
    settings = Settings.load(kolab_home)
    lines: list[str] = []
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(settings, emit=lines.append)
    message = str(err.value)
    assert "\n" not in message
    assert "ingest_job" in message and "fasilitas.csv" in message and "registry" in message
    # Progress showed the retries of the failing step before giving up.
    assert any("will be retried" in line for line in lines)


def test_run_month_materialises_ingest_and_monthly_on_the_persistent_instance(kolab_home: Path):
    write_minimal_registry(kolab_home)
    settings = Settings.load(kolab_home)
    lines: list[str] = []
    text = run_pipeline(settings, months=["2025-03"], emit=lines.append)
    assert "months processed: 2025-03" in text
    assert str(settings.paths.warehouse) in text
    assert any(line.strip().startswith("✓ reference/facility") and "2 rows" in line
               for line in lines)
    instance = open_instance(settings)
    try:
        runs = instance.get_runs()
        assert {r.job_name for r in runs} >= {"ingest_job", "monthly_job"}
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        monthly = [r for r in runs if r.job_name == "monthly_job"]
        # One run over the range (here one month), addressed by the partition-range tags.
        assert len(monthly) == 1
        assert monthly[0].tags["dagster/asset_partition_range_start"] == "2025-03-01"
    finally:
        instance.dispose()
    # 2 facilities: 4 + 2 forms = 6 expected reports for 2025-03, none received.
    row = next(line for line in text.splitlines() if "compliance.report_status " in line)
    assert row.split()[-1] == "6"
