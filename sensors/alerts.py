"""Failure alerts: a failed run, or a failed asset check, becomes one line in
`KOLAB_HOME/alerts.log` and (when `KOLAB_ALERT_WEBHOOK_URL` is set) a JSON POST to that webhook.

The line names the job, the month (partition) and the failing step or check with its message.
The webhook URL is a secret: never logged, and a failed POST is reported without it. Both sensors
need the daemon and start STOPPED unless `KOLAB_AUTOMATION=on`.
"""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import requests

from kolab_pipeline.orchestration.jobs import default_sensor_status
from kolab_pipeline.orchestration.partitions import month_of_tags
from kolab_pipeline.orchestration.resources import Alerts

WEBHOOK_TIMEOUT_S = 10
CHECK_BATCH = 200
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]


def _one_line(text: str | None, limit: int = 500) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_alert(kind: str, job: str, month: str, where: str, message: str,
                 at: datetime | None = None) -> str:
    """`2025-04-11T06:03:12Z RUN_FAILURE job=monthly_job month=2025-03 step=… message=…`."""
    stamp = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp} {kind} job={job} month={month} {where} message={_one_line(message)}"


def send_alert(alerts: Alerts, line: str, log: object | None = None) -> None:
    """Append the line to the alert log; POST it to the webhook when one is configured.

    A webhook failure is logged (without the URL) and never fails the sensor: the alert log
    already holds the line.
    """
    path = Path(alerts.log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    if alerts.webhook_url:
        try:
            response = requests.post(alerts.webhook_url, json={"text": line},
                                     timeout=WEBHOOK_TIMEOUT_S)
            response.raise_for_status()
        except requests.RequestException as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if log is not None:
                log.warning(f"alert webhook POST failed ({type(exc).__name__}"
                            f"{f', HTTP {status}' if status else ''}); alert kept in {path}")


def _innermost(error: object | None) -> str:
    message = ""
    while error is not None:
        message = error.message
        error = error.cause
    return message


def run_failure_lines(context: dg.RunFailureSensorContext) -> list[str]:
    """One alert line per failed step (or one for the run when no step failed)."""
    run = context.dagster_run
    month = month_of_tags(dict(run.tags))
    lines = []
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        message = _innermost(data.error) if data and data.error else event.message
        lines.append(format_alert("RUN_FAILURE", run.job_name, month, f"step={event.step_key}",
                                  message or "step failed"))
    if not lines:
        lines.append(format_alert("RUN_FAILURE", run.job_name, month, "step=-",
                                  context.failure_event.message or "run failed"))
    return lines


@dg.run_failure_sensor(
    name="run_failure_alert_sensor", default_status=default_sensor_status(),
    description="Writes a line to KOLAB_HOME/alerts.log (and the optional webhook) for every "
                "failed run: job, month, failing step and its error.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: Alerts):
    for line in run_failure_lines(context):
        send_alert(alerts, line, context.log)


def check_failure_lines(instance: dg.DagsterInstance, after: float | None,
                        limit: int = CHECK_BATCH) -> tuple[list[str], float | None]:
    """Alert lines for the failed asset checks of runs that finished after the timestamp `after`,
    and the update time of the last run read (the sensor's next cursor).

    Read run by run (`get_records_for_run`), which every event-log storage supports — a global
    event query needs a non-sharded storage, and the local SQLite instance is run-sharded.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED,
                              updated_after=datetime.fromtimestamp(after, UTC) if after else None),
        limit=limit, order_by="update_timestamp", ascending=True)
    lines: list[str] = []
    last = after
    for rec in records:
        stamp = rec.update_timestamp.timestamp()
        if after is not None and stamp <= after:
            continue
        last = stamp
        run = rec.dagster_run
        conn = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        for record in conn.records:
            event = record.event_log_entry.dagster_event
            ev = event.asset_check_evaluation_data if event else None
            if ev is None or ev.passed:
                continue
            month = ev.partition[:7] if ev.partition else month_of_tags(dict(run.tags))
            message = ev.description or "; ".join(
                f"{k}={getattr(v, 'value', v)}" for k, v in list(ev.metadata.items())[:5]
            ) or "check failed"
            where = (f"check={ev.asset_key.to_user_string()}:{ev.check_name} "
                     f"severity={ev.severity.value}{' blocking' if ev.blocking else ''}")
            at = datetime.fromtimestamp(record.event_log_entry.timestamp, UTC)
            lines.append(format_alert("CHECK_FAILURE", run.job_name, month, where, message,
                                      at=at))
    return lines, last


@dg.sensor(
    name="check_failure_alert_sensor", minimum_interval_seconds=60,
    default_status=default_sensor_status(),
    description="Writes a line to KOLAB_HOME/alerts.log (and the optional webhook) for every "
                "failed asset check (ERROR and WARN) of a finished run: job, month, check and "
                "its message.",
)
def check_failure_alert_sensor(context: dg.SensorEvaluationContext, alerts: Alerts):
    if not context.cursor:
        # First tick: start from now; alerting on the whole history would flood the channel.
        context.update_cursor(str(datetime.now(UTC).timestamp()))
        return dg.SkipReason("started: alerting on check failures from now on")
    after = float(context.cursor)
    lines, last = check_failure_lines(context.instance, after)
    for line in lines:
        send_alert(alerts, line, context.log)
    if last is not None and last != after:
        context.update_cursor(str(last))
    if not lines:
        return dg.SkipReason("no failed asset checks since the last tick")
    return None
