"""`specs.monthly_check` records its result on each month partition, also in a range run.

Dagster 1.13 attaches an `AssetCheckResult` returned by a check of a partition-range run (what
`kolab run` and a single-run backfill launch) to no partition: every month's planned evaluation
then stays unanswered and the UI lists the check as "Skipped" although it ran. The factory
yields one evaluation per month instead; these tests read back what the instance stored per
month (the statuses the UI shows — tests/orchestration/test_webserver.py reads them through the
real UI's GraphQL). No `from __future__ import annotations`: Dagster inspects `context`."""

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from kolab_pipeline.orchestration import specs
from kolab_pipeline.orchestration.partitions import (
    key_to_period,
    monthly_partitions,
    range_tags,
)
from kolab_pipeline.orchestration.runner import describe_event

# two consecutive months of the partitions: the first fails, the second passes
FIRST, SECOND = monthly_partitions.get_partition_keys()[:2]
MONTHS = [key_to_period(FIRST), key_to_period(SECOND)]
ASSET = dg.AssetKey(["test", "monthly"])


@dg.asset(key=ASSET, partitions_def=monthly_partitions,
          backfill_policy=dg.BackfillPolicy.single_run())
def monthly(context: dg.AssetExecutionContext) -> None:
    """Stands for a monthly table."""


@dg.asset(key=["test", "downstream"], deps=[ASSET], partitions_def=monthly_partitions,
          backfill_policy=dg.BackfillPolicy.single_run())
def downstream(context: dg.AssetExecutionContext) -> None:
    """Must not run when a blocking check of `monthly` fails."""


def _result(severity: dg.AssetCheckSeverity):
    def result(resources: object, period: str) -> dg.AssetCheckResult:
        failed = period == MONTHS[0]
        return dg.AssetCheckResult(passed=not failed, severity=severity,
                                   description=f"{period}: {'gagal' if failed else 'lulus'}",
                                   metadata={"period": period})
    return result


def _run(check: dg.AssetChecksDefinition, instance: dg.DagsterInstance,
         assets: list) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("j", selection=dg.AssetSelection.all(include_sources=False))
    defs = dg.Definitions(assets=assets, asset_checks=[check], jobs=[job])
    return defs.resolve_job_def("j").execute_in_process(
        instance=instance, tags=range_tags(*MONTHS), raise_on_error=False)


def test_the_private_pointer_dagster_needs_is_where_specs_imports_it():
    # an upgrade that moves it breaks this test, not the UI silently
    assert specs.TargetMaterialization is AssetCheckEvaluationTargetMaterializationData


def test_range_run_records_each_month_on_its_partition():
    check = specs.monthly_check(ASSET, "warn_check", "uji", _result(dg.AssetCheckSeverity.WARN),
                                resources=())
    with dg.instance_for_test() as instance:
        result = _run(check, instance, [monthly])
        assert result.success  # a WARN failure does not fail the run
        evaluations = result.get_asset_check_evaluations()
        assert [(e.partition, e.passed) for e in evaluations] == [(FIRST, False), (SECOND, True)]
        assert [e.description for e in evaluations] == [f"{MONTHS[0]}: gagal",
                                                        f"{MONTHS[1]}: lulus"]
        # each evaluation points at its own month's materialization of this run
        mats = {m.partition: m for m in result.get_asset_materialization_events()}
        assert set(mats) == {FIRST, SECOND}
        for e in evaluations:
            assert e.target_materialization_data is not None
            assert e.target_materialization_data.run_id == result.run_id
        stored = {info.partition_key: info for info in
                  instance.event_log_storage.get_asset_check_partition_info([check.check_key])}
        # what the UI shows per month: failed / passed, current (not stale, not skipped)
        assert {k: v.latest_execution_status for k, v in stored.items()} == {
            FIRST: AssetCheckExecutionRecordStatus.FAILED,
            SECOND: AssetCheckExecutionRecordStatus.SUCCEEDED}
        assert all(info.is_current for info in stored.values())


def test_kolab_run_prints_a_failing_monthly_check_once_with_its_first_month():
    def fails_everywhere(resources: object, period: str) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                   description=f"{period}: gagal")
    check = specs.monthly_check(ASSET, "warn_check", "uji", fails_everywhere, resources=())
    with dg.instance_for_test() as instance:
        result = _run(check, instance, [monthly])
        seen: set[str] = set()
        lines = [line for e in result.all_events
                 if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
                 for line in [describe_event(e, seen)] if line]
    # two failing months, one progress line (both months are in the UI)
    assert lines == [f"  ✗ check test/monthly:warn_check [{MONTHS[0]}, first failing month; "
                     f"every month in the UI] failed (WARN): {MONTHS[0]}: gagal"]


def test_single_month_run_is_recorded_on_that_month():
    check = specs.monthly_check(ASSET, "warn_check", "uji", _result(dg.AssetCheckSeverity.WARN),
                                resources=())
    with dg.instance_for_test() as instance:
        result = dg.materialize([monthly, check], partition_key=FIRST, instance=instance)
        [e] = result.get_asset_check_evaluations()
        assert (e.partition, e.passed, e.metadata["period"].value) == (FIRST, False, MONTHS[0])


def test_blocking_check_failing_in_one_month_stops_downstream():
    check = specs.monthly_check(ASSET, "blocking_check", "uji",
                                _result(dg.AssetCheckSeverity.ERROR), resources=(),
                                blocking=True)
    with dg.instance_for_test() as instance:
        result = _run(check, instance, [monthly, downstream])
        assert not result.success
        evaluations = result.get_asset_check_evaluations()
        # both months are still recorded (the step fails after yielding them)
        assert [(e.partition, e.passed, e.blocking) for e in evaluations] == [
            (FIRST, False, True), (SECOND, True, True)]
        materialized = {m.asset_key for m in result.get_asset_materialization_events()}
        assert dg.AssetKey(["test", "downstream"]) not in materialized

