"""Reporting deadline sensor: requests `compliance_job` for a month once its cut-off has passed
(unreceived reports of that month become `missing`). Which month and when:
`kolab_pipeline.calendar.deadline_requests`, on the local date of `timezones.default`. Each
(month, phase) is requested once (run_key `compliance:<YYYY-MM>:<phase>`, and the cursor records
it). Stopped unless `KOLAB_AUTOMATION=on`.
"""

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import dagster as dg

from kolab_pipeline import calendar
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.jobs import compliance_job, default_sensor_status
from kolab_pipeline.orchestration.partitions import period_to_key
from kolab_pipeline.orchestration.resources import KolabHome


def local_today(tz: str, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()


def plan_runs(settings: Settings, today: date,
              cursor: str | None) -> tuple[list[dg.RunRequest], str]:
    """Run requests for the (month, phase) pairs whose deadline passed by local date `today` and
    that the cursor has not requested yet; returns them with the new cursor (JSON phase → month).
    Only the latest month per phase is considered, so switching the sensor on after months off
    does not launch a backfill of the whole history."""
    requested: dict[str, str] = json.loads(cursor) if cursor else {}
    start = settings.config.partitions.start
    runs = []
    for req in calendar.deadline_requests(today, settings):
        if requested.get(req.phase, "") >= req.period:
            continue  # already requested this month (or a later one) for this phase
        if start is not None and req.period < start.strftime("%Y-%m"):
            continue  # before the first partition
        runs.append(dg.RunRequest(
            run_key=req.run_key, partition_key=period_to_key(req.period),
            tags={"kolab/deadline_phase": req.phase, "kolab/period": req.period}))
        requested[req.phase] = req.period
    return runs, json.dumps(requested, sort_keys=True)


@dg.sensor(job=compliance_job, default_status=default_sensor_status(),
           minimum_interval_seconds=3600,
           description="Requests the compliance assets for a month again after its cut-off "
                       "(unreceived reports become missing), once per month.")
def reporting_deadline_sensor(context: dg.SensorEvaluationContext,
                              kolab: KolabHome) -> dg.SensorResult:
    settings = kolab.settings()
    tz = settings.config.timezones.default
    today = local_today(tz)
    runs, cursor = plan_runs(settings, today, context.cursor)
    if not runs:
        return dg.SensorResult(skip_reason=f"no new deadline passed as of {today} ({tz})",
                               cursor=cursor)
    return dg.SensorResult(run_requests=runs, cursor=cursor)
