"""Jobs and the monthly schedule, each job selecting its assets by group (group = key prefix =
DuckDB schema), plus the wiring-time policies `definitions.py` applies to every layer's assets:
the YTD self-dependency and the evaluation freshness policy.

- `ingest_job`: reference, raw, clean (unpartitioned); retries transient I/O.
- `monthly_job`: compliance, indicators, evaluation for a month or a range (one run).
- `compliance_job`: compliance and the follow-up list that reads it (the deadline sensor's job).
- `monthly_job_schedule`: the previous month, on `calendar.schedule_day` at 06:00 WIB.
Schedules and sensors start STOPPED unless `KOLAB_AUTOMATION=on`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from kolab_pipeline import calendar
from kolab_pipeline.calendar import add_months, period_of
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.partitions import monthly_partitions
from kolab_pipeline.orchestration.partitions import period_to_key as partition_key_of
from kolab_pipeline.warehouse import tables

INGEST_GROUPS = ("reference", "raw", "clean")
MONTHLY_GROUPS = ("compliance", "indicators", "evaluation")
COMPLIANCE_GROUPS = ("compliance",)
FRESHNESS_GROUPS = ("evaluation",)
# The follow-up list reads the statuses: a recompute after a cut-off refreshes it too.
FOLLOWUP = dg.AssetKey(["evaluation", "followup"])

# Unpartitioned layers: reference data, raw ingestion and the clean layer.
INGEST_SELECTION = dg.AssetSelection.groups(*INGEST_GROUPS)
# Month-partitioned layers.
MONTHLY_SELECTION = dg.AssetSelection.groups(*MONTHLY_GROUPS)
COMPLIANCE_SELECTION = (dg.AssetSelection.groups(*COMPLIANCE_GROUPS)
                        | dg.AssetSelection.assets(FOLLOWUP))

SCHEDULE_TIMEZONE = "Asia/Jakarta"
SCHEDULE_HOUR = 6
# Evaluation must be refreshed by this hour (WIB) of the schedule day: six hours after the tick.
FRESHNESS_DEADLINE_HOUR = 12

# Transient I/O (a file still being copied into landing/, a SQL source or the warehouse lock held
# a few seconds by another process) deserves a retry; a real bug fails after ~6 s more (2 s + 4 s).
TRANSIENT_IO_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)

AUTOMATION_ENV = "KOLAB_AUTOMATION"


def automation_on() -> bool:
    """True when `KOLAB_AUTOMATION` is `on`/`true`/`1`/`yes` (production), False otherwise."""
    return os.environ.get(AUTOMATION_ENV, "").strip().lower() in {"on", "true", "1", "yes"}


def default_schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automation_on() else dg.DefaultScheduleStatus.STOPPED


def default_sensor_status() -> dg.DefaultSensorStatus:
    """For every sensor of the project: RUNNING only with `KOLAB_AUTOMATION=on`."""
    return dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED


ingest_job = dg.define_asset_job(
    "ingest_job", selection=INGEST_SELECTION,
    description="Load reference data, ingest new landing files and SQL/DHIS2 submissions, "
                "clean them.",
    op_retry_policy=TRANSIENT_IO_RETRY,
)

monthly_job = dg.define_asset_job(
    "monthly_job", selection=MONTHLY_SELECTION, partitions_def=monthly_partitions,
    description="Compliance, indicators and evaluation for one month (or a range, as one run).",
    op_retry_policy=TRANSIENT_IO_RETRY,
)

compliance_job = dg.define_asset_job(
    "compliance_job", selection=COMPLIANCE_SELECTION, partitions_def=monthly_partitions,
    description="Expected reports, report status, reporting rates and the follow-up list for one "
                "month (run by the reporting deadline sensor after the cut-off).",
)


def previous_month_key(moment: datetime) -> str:
    """Partition key of the month before `moment` (in `moment`'s own time zone)."""
    first = moment.date().replace(day=1)
    return partition_key_of(add_months(period_of(first), -1))


def build_monthly_schedule(settings: Settings | None = None) -> dg.ScheduleDefinition:
    """Runs `monthly_job` for the previous month on the day after the reporting deadline.

    `build_schedule_from_partitioned_job` would take the time zone of the partitions (UTC) and
    refuses an `execution_timezone` for a time-partitioned job, so the schedule is spelled out:
    cron in WIB, and the tick's previous month as the partition key.
    """
    settings = settings or Settings.load()

    @dg.schedule(
        name="monthly_job_schedule", job=monthly_job,
        cron_schedule=f"0 {SCHEDULE_HOUR} {calendar.schedule_day(settings)} * *",
        execution_timezone=SCHEDULE_TIMEZONE, default_status=default_schedule_status(),
        description="Previous month's compliance, indicators and evaluation, the day after the "
                    "puskesmas → dinkes deadline (+ grace), 06:00 WIB.",
    )
    def monthly_job_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        moment = context.scheduled_execution_time.astimezone(ZoneInfo(SCHEDULE_TIMEZONE))
        key = previous_month_key(moment)
        return dg.RunRequest(run_key=f"monthly_job:{key}", partition_key=key)

    return monthly_job_schedule


def build_jobs_and_schedules(settings: Settings | None = None) -> tuple[list, list]:
    return [ingest_job, monthly_job, compliance_job], [build_monthly_schedule(settings)]


# --- wiring-time policies --------------------------------------------------------------------

def _contract_key(spec: dg.AssetSpec) -> str:
    """`schema.name` of the contract table behind an asset (its key is `[schema, name]`)."""
    return ".".join(spec.key.path[-2:])


def has_ytd_rows(spec: dg.AssetSpec) -> bool:
    """A monthly asset whose table stores year-to-date rows (`period_type` column)."""
    t = tables().get(_contract_key(spec))
    return (spec.group_name in MONTHLY_GROUPS and spec.partitions_def is not None
            and t is not None and "period_type" in t.column_names)


def previous_month_self_dep(key: dg.AssetKey) -> dg.AssetDep:
    """Month M of `key` depends on month M-1 of itself (transitively: all earlier months).

    `allow_nonexistent_upstream_partitions`: the first partition has no previous month.
    """
    return dg.AssetDep(key, partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True))


def evaluation_freshness(settings: Settings) -> dg.FreshnessPolicy:
    """Fresh when materialised between the 1st of the month and noon (WIB) of the schedule day."""
    day = calendar.schedule_day(settings)
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"0 {FRESHNESS_DEADLINE_HOUR} {day} * *",
        lower_bound_delta=timedelta(days=day - 1, hours=FRESHNESS_DEADLINE_HOUR),
        timezone=SCHEDULE_TIMEZONE,
    )


def _with_policies(spec: dg.AssetSpec, freshness: dg.FreshnessPolicy) -> dg.AssetSpec:
    if has_ytd_rows(spec) and all(d.asset_key != spec.key for d in spec.deps):
        spec = spec.replace_attributes(deps=[*spec.deps, previous_month_self_dep(spec.key)])
    if (spec.group_name in FRESHNESS_GROUPS and spec.partitions_def is not None
            and spec.freshness_policy is None):
        spec = spec.replace_attributes(freshness_policy=freshness)
    return spec


def apply_orchestration_policies(assets: Iterable, settings: Settings | None = None) -> list:
    """The YTD self-dependency and the evaluation freshness policy, applied to whatever assets the
    layers define (others pass through unchanged)."""
    settings = settings or Settings.load()
    freshness = evaluation_freshness(settings)
    out = []
    for a in assets:
        if isinstance(a, dg.AssetsDefinition) and not a.is_external and a.specs:
            a = a.map_asset_specs(lambda s: _with_policies(s, freshness))
        out.append(a)
    return out


def monthly_keys(assets: Sequence) -> list[dg.AssetKey]:
    """Asset keys of the monthly groups among `assets`."""
    return [spec.key for a in assets if isinstance(a, dg.AssetsDefinition)
            for spec in a.specs if spec.group_name in MONTHLY_GROUPS]
