"""Jobs, the monthly schedule and the wiring-time policies (kolab_pipeline/orchestration/jobs.py),
on small stand-in assets so the behaviour is tested independently of the layers' assets."""


from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from kolab_pipeline import calendar
from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration import jobs
from kolab_pipeline.orchestration.partitions import monthly_partitions, range_tags

PARTS = dg.MonthlyPartitionsDefinition(start_date="2025-01-01", end_date="2026-01-01")


def _stand_ins(parts: dg.PartitionsDefinition = PARTS):
    """indicators/indicator_value (YTD rows in the contract) → evaluation/scorecard."""
    @dg.asset(key=["indicators", "indicator_value"], group_name="indicators", partitions_def=parts,
              backfill_policy=dg.BackfillPolicy.single_run(), pool="duckdb_writer")
    def indicator_value(context: dg.AssetExecutionContext):
        return dg.MaterializeResult(metadata={"dagster/row_count": len(context.partition_keys)})

    @dg.asset(key=["evaluation", "scorecard"], group_name="evaluation", partitions_def=parts,
              backfill_policy=dg.BackfillPolicy.single_run(), deps=[indicator_value])
    def scorecard(context: dg.AssetExecutionContext):
        return dg.MaterializeResult(metadata={"dagster/row_count": len(context.partition_keys)})

    @dg.asset(key=["compliance", "expected_report"], group_name="compliance", partitions_def=parts,
              backfill_policy=dg.BackfillPolicy.single_run())
    def expected_report() -> None:
        pass

    return [indicator_value, scorecard, expected_report]


def test_schedule_day_is_later_due_day_plus_grace_plus_one(kolab_home: Path):
    settings = Settings.load(kolab_home)
    assert calendar.schedule_day(settings) == 11            # max(5, 10) + 0 + 1
    (kolab_home / "kolab.yaml").write_text("reporting: {grace_days: 3}\n")
    assert calendar.schedule_day(Settings.load(kolab_home)) == 14   # 10 + 3 + 1
    (kolab_home / "kolab.yaml").write_text(
        "reporting: {due_day: {network_to_pkm: 12, pkm_to_dinkes: 8}}\n")
    assert calendar.schedule_day(Settings.load(kolab_home)) == 13   # the later day: 12 + 0 + 1
    (kolab_home / "kolab.yaml").write_text(
        "reporting: {due_day: {pkm_to_dinkes: 27}, grace_days: 5}\n")
    assert calendar.schedule_day(Settings.load(kolab_home)) == 28   # 27 + 5 + 1 = 33 → capped at 28


def test_previous_month_key_in_jakarta_time():
    jkt = ZoneInfo("Asia/Jakarta")
    assert jobs.previous_month_key(datetime(2025, 5, 11, 6, tzinfo=jkt)) == "2025-04-01"
    assert jobs.previous_month_key(datetime(2025, 1, 11, 6, tzinfo=jkt)) == "2024-12-01"


def test_schedule_requests_the_previous_month_at_06_wib(kolab_home: Path):
    settings = Settings.load(kolab_home)
    schedule = jobs.build_monthly_schedule(settings)
    assert schedule.cron_schedule == "0 6 11 * *" and schedule.execution_timezone == "Asia/Jakarta"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    # The schedule targets jobs.monthly_job (partitions from kolab.yaml, default two years back).
    defs = dg.Definitions(assets=_stand_ins(monthly_partitions), schedules=[schedule])
    now = datetime.now(ZoneInfo("Asia/Jakarta"))
    ctx = dg.build_schedule_context(
        scheduled_execution_time=now.replace(day=11, hour=6, minute=0, second=0, microsecond=0),
        repository_def=defs.get_repository_def())
    [request] = defs.resolve_schedule_def("monthly_job_schedule").evaluate_tick(ctx).run_requests
    # The 11th of this month processes last month.
    assert request.partition_key == f"{add_months(f'{now.year:04d}-{now.month:02d}', -1)}-01"


def test_automation_env_turns_schedules_and_sensors_on(monkeypatch: pytest.MonkeyPatch,
                                                       kolab_home: Path):
    monkeypatch.delenv("KOLAB_AUTOMATION", raising=False)
    assert jobs.default_sensor_status() == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv("KOLAB_AUTOMATION", "on")
    assert jobs.default_sensor_status() == dg.DefaultSensorStatus.RUNNING
    assert jobs.build_monthly_schedule(Settings.load(kolab_home)).default_status == \
        dg.DefaultScheduleStatus.RUNNING


def test_jobs_select_by_group_and_retry_transient_io():
    assert jobs.ingest_job.op_retry_policy == jobs.TRANSIENT_IO_RETRY
    assert jobs.TRANSIENT_IO_RETRY.max_retries == 2
    defs = dg.Definitions(assets=_stand_ins(), jobs=[
        dg.define_asset_job("monthly_job", selection=jobs.MONTHLY_SELECTION, partitions_def=PARTS)])
    job = defs.resolve_job_def("monthly_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "indicators/indicator_value", "evaluation/scorecard", "compliance/expected_report"}


def test_policies_add_ytd_self_dep_and_evaluation_freshness(kolab_home: Path):
    wired = jobs.apply_orchestration_policies(_stand_ins(), Settings.load(kolab_home))
    specs = {s.key.to_user_string(): s for a in wired for s in a.specs}
    iv = specs["indicators/indicator_value"]
    [self_dep] = [d for d in iv.deps if d.asset_key == iv.key]
    mapping = self_dep.partition_mapping
    assert (mapping.start_offset, mapping.end_offset) == (-1, -1)
    # compliance.expected_report has no period_type column (no YTD rows) → no self-dependency.
    assert all(d.asset_key != specs["compliance/expected_report"].key
               for d in specs["compliance/expected_report"].deps)
    fresh = specs["evaluation/scorecard"].freshness_policy
    assert fresh is not None and fresh.deadline_cron == "0 12 11 * *"
    assert fresh.timezone == "Asia/Jakarta"
    # 1st 00:00 → 11th 12:00 = 10 days 12 hours.
    assert fresh.lower_bound_delta.total_seconds() == (10 * 24 + 12) * 3600
    assert specs["indicators/indicator_value"].freshness_policy is None


def test_range_is_one_run_and_rematerialising_a_month_marks_the_next_stale(tmp_path: Path,
                                                                           kolab_home: Path):
    assets = jobs.apply_orchestration_policies(_stand_ins(), Settings.load(kolab_home))
    job = dg.Definitions(assets=assets, jobs=[dg.define_asset_job(
        "monthly_job", selection=jobs.MONTHLY_SELECTION, partitions_def=PARTS)]
    ).resolve_job_def("monthly_job")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    result = job.execute_in_process(instance=instance, tags=range_tags("2025-01", "2025-04"))
    assert result.success
    assert len(instance.get_runs()) == 1
    mats = result.asset_materializations_for_node("indicators__indicator_value")
    assert sorted(m.partition for m in mats) == ["2025-01-01", "2025-02-01", "2025-03-01",
                                                 "2025-04-01"]
    # Month-by-month runs record per-month provenance; then re-run February alone.
    for key in ("2025-01-01", "2025-02-01", "2025-03-01"):
        assert job.execute_in_process(instance=instance, partition_key=key).success
    assert job.execute_in_process(instance=instance, partition_key="2025-02-01").success
    resolver = get_stale_status_resolver(instance, assets)
    iv = dg.AssetKey(["indicators", "indicator_value"])
    # March's YTD rows include February: March is stale; January is not.
    assert resolver.get_status(iv, "2025-03-01") == StaleStatus.STALE
    assert resolver.get_status(iv, "2025-01-01") == StaleStatus.FRESH
