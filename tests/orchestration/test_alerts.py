"""Failure alerts (sensors/alerts.py): the alert line, the log file, the webhook, and both sensors
on real failed runs / failed checks in a throw-away Dagster instance."""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg

from kolab_pipeline.orchestration.resources import Alerts
from sensors.alerts import (
    check_failure_alert_sensor,
    check_failure_lines,
    format_alert,
    month_of_tags,
    run_failure_alert_sensor,
    send_alert,
)

PARTS = dg.MonthlyPartitionsDefinition(start_date="2025-01-01", end_date="2026-01-01")


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def _webhook() -> tuple[HTTPServer, str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook?token=SECRET"


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def warning(self, msg):
        self.lines.append(msg)


def test_month_of_tags():
    assert month_of_tags({"dagster/partition": "2025-03-01"}) == "2025-03"
    assert month_of_tags({"dagster/asset_partition_range_start": "2025-01-01",
                          "dagster/asset_partition_range_end": "2025-06-01"}) == "2025-01..2025-06"
    assert month_of_tags({}) == "-"


def test_format_alert_is_one_line():
    line = format_alert("RUN_FAILURE", "monthly_job", "2025-03", "step=report_status",
                        "landing/tb_2025-03.csv row 7:\n  bad value",
                        at=datetime(2025, 4, 11, 6, 3, 12, tzinfo=UTC))
    assert line == ("2025-04-11T06:03:12Z RUN_FAILURE job=monthly_job month=2025-03 "
                    "step=report_status message=landing/tb_2025-03.csv row 7: bad value")


def test_send_alert_writes_the_log_and_posts_without_leaking_the_url(tmp_path: Path):
    server, url = _webhook()
    try:
        _Hook.received.clear()
        _Hook.status = 200
        alerts = Alerts(log_path=str(tmp_path / "alerts.log"), webhook_url=url)
        send_alert(alerts, "line one")
        assert (tmp_path / "alerts.log").read_text() == "line one\n"
        assert _Hook.received == [{"text": "line one"}]
        # A failing webhook: the line is still logged, the warning never contains the URL/token.
        _Hook.status = 500
        log = _Log()
        send_alert(alerts, "line two", log)
        assert (tmp_path / "alerts.log").read_text() == "line one\nline two\n"
        assert len(log.lines) == 1 and "HTTP 500" in log.lines[0]
        assert "SECRET" not in log.lines[0] and "127.0.0.1" not in log.lines[0]
    finally:
        server.shutdown()


def test_run_failure_sensor_names_job_month_step_and_error(tmp_path: Path):
    @dg.asset(partitions_def=PARTS)
    def report_status(context: dg.AssetExecutionContext) -> None:
        raise ValueError("landing/tb_2025-03.csv: row 7, column kode_faskes: unknown facility")

    job = dg.Definitions(
        assets=[report_status],
        jobs=[dg.define_asset_job("monthly_job", partitions_def=PARTS)],
    ).resolve_job_def("monthly_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, partition_key="2025-03-01",
                                        raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        ctx = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_instance=instance, dagster_run=run,
            dagster_event=failure).for_run_failure()
        alerts = Alerts(log_path=str(tmp_path / "alerts.log"))
        run_failure_alert_sensor(ctx, alerts=alerts)
    [line] = (tmp_path / "alerts.log").read_text().splitlines()
    assert " RUN_FAILURE job=monthly_job month=2025-03 step=report_status " in line
    assert "tb_2025-03.csv: row 7, column kode_faskes: unknown facility" in line


def test_check_failure_sensor_alerts_once_per_failed_check(tmp_path: Path):
    @dg.asset(partitions_def=PARTS)
    def report_status() -> None:
        pass

    @dg.asset_check(asset=report_status, partitions_def=PARTS)
    def completeness_above_threshold(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                   description="2 unit(s) with completeness ≤ 90 % in 2025-03")

    @dg.asset_check(asset=report_status, partitions_def=PARTS)
    def no_duplicates() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    alerts = Alerts(log_path=str(tmp_path / "alerts.log"))
    with dg.instance_for_test() as instance:
        # First tick only sets the cursor (no flood of historical failures).
        ctx = dg.build_sensor_context(instance=instance, resources={"alerts": alerts})
        assert isinstance(check_failure_alert_sensor(ctx), dg.SkipReason)
        cursor = ctx.cursor
        assert dg.materialize([report_status, completeness_above_threshold, no_duplicates],
                              instance=instance, partition_key="2025-03-01").success
        lines, last = check_failure_lines(instance, float(cursor))
        assert len(lines) == 1 and last is not None and last > float(cursor)
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"alerts": alerts})
        check_failure_alert_sensor(ctx)
        # The next tick starts after the events already alerted.
        assert check_failure_lines(instance, float(ctx.cursor)) == ([], float(ctx.cursor))
    [line] = (tmp_path / "alerts.log").read_text().splitlines()
    assert "CHECK_FAILURE job=__ephemeral_asset_job__ month=2025-03" in line
    assert "check=report_status:completeness_above_threshold severity=WARN" in line
    assert line.endswith("message=2 unit(s) with completeness ≤ 90 % in 2025-03")
