"""Compliance in Dagster: partitioned assets + WARN asset checks, the compliance job, and the
reporting deadline sensor."""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import pytest

import assets
from assets.compliance import COMPLIANCE_ASSETS
from assets.evaluation import followup
from data_quality import compliance_checks
from kolab_pipeline import calendar, labels
from kolab_pipeline.calendar import add_months, month_end, month_start, period_of
from kolab_pipeline.orchestration.jobs import compliance_job
from kolab_pipeline.orchestration.partitions import period_to_key
from kolab_pipeline.orchestration.resources import build_resources
from sensors import deadline
from tests.support.compliance import load, submit, write_home

WIB = "36.72.01.1001"
CHECKS = [compliance_checks.no_missing_reports_after_cutoff,
          compliance_checks.completeness_above_threshold,
          compliance_checks.timeliness_above_threshold]
# what compliance_job materialises: the compliance group and the follow-up list reading it
JOB_ASSETS = [*COMPLIANCE_ASSETS, followup]
JOB_KEYS = {"compliance/expected_report", "compliance/report_status",
            "compliance/report_status_history", "compliance/reporting_rate",
            "evaluation/followup"}
# a month inside the default partitions (two years back from today)
PERIOD = add_months(period_of(date.today()), -4)


def _network_home(con, kolab_home, timeliness_pct: float):
    """P1 network, PERIOD: P1, K1, K2 on time; T1 nothing (missing: as_of is 2 months later)."""
    as_of = month_end(add_months(PERIOD, 2)).isoformat()
    settings = write_home(kolab_home, [
        ("P1", "puskesmas", None, WIB, None, None, "tb"),
        ("K1", "klinik_pratama", "P1", WIB, None, None, "tb"),
        ("K2", "klinik_pratama", "P1", WIB, None, None, "tb"),
        ("T1", "tpmd", "P1", WIB, None, None, "tb"),
    ], {"reporting": {"as_of": as_of},
        "thresholds": {"completeness_pct": 90, "timeliness_pct": timeliness_pct}})
    load(con, settings)
    next_day = month_start(add_months(PERIOD, 1)) + timedelta(days=1)
    received = next_day.isoformat() + "T09:00:00+07:00"
    for kode in ("P1", "K1", "K2"):
        submit(con, kode, PERIOD, "tb", received)
    con.close()  # the assets open the warehouse themselves
    return settings


def _evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_assets_and_checks_for_one_month(con, kolab_home):
    settings = _network_home(con, kolab_home, timeliness_pct=75)
    result = dg.materialize([*JOB_ASSETS, *CHECKS], partition_key=period_to_key(PERIOD),
                            resources=build_resources(settings))
    assert result.success
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert set(mats) == JOB_KEYS
    status_meta = mats["compliance/report_status"].materialization.metadata
    assert status_meta["n_on_time"].value == 3 and status_meta["n_missing"].value == 1
    assert status_meta["dagster/row_count"].value == 4
    checks = _evaluations(result)
    assert {n: c.passed for n, c in checks.items()} == {
        "no_missing_reports_after_cutoff": False,
        "completeness_above_threshold": False,   # 3 / 4 = 75 % ≤ 90 %
        # 3 / 4 = 75 % — exactly at 75 %: flagged (WHO ≤ rule)
        "timeliness_above_threshold": False,
    }
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks.values())
    # each result is recorded on its month partition (the UI shows it per month)
    assert {c.partition for c in checks.values()} == {period_to_key(PERIOD)}
    missing = checks["no_missing_reports_after_cutoff"]
    # the facility by code and name, its type, form and network in words
    assert "| T1 " in missing.metadata["missing_reports"].value
    for word in ("Faskes T1", "TPMD (praktik mandiri dokter)", "TBC", "Faskes P1"):
        assert word in missing.metadata["missing_reports"].value, word
    assert missing.metadata["n_missing"].value == 1
    assert missing.description.startswith(f"{labels.period_label(PERIOD)}: 1 laporan")
    # Indonesian labels (codes in their own column) and Indonesian decimals (was: English codes
    # `kabkota` / `puskesmas_network` and "75.0"); the count column is named as a count
    flagged = checks["timeliness_above_threshold"].metadata["units_flagged"].value
    assert "Kabupaten/kota" in flagged and "Jejaring puskesmas" in flagged and "75,0" in flagged
    assert "Laporan tepat waktu" in flagged and "Ketepatan waktu (%)" in flagged
    assert "| 36.72 " in flagged and "Faskes P1" in flagged
    assert checks["timeliness_above_threshold"].metadata["n_units_flagged"].value == 2
    assert checks["timeliness_above_threshold"].metadata["n_units_judged"].value == 2


def test_threshold_just_below_passes(con, kolab_home):
    settings = _network_home(con, kolab_home, timeliness_pct=74.9)
    result = dg.materialize([*JOB_ASSETS, compliance_checks.timeliness_above_threshold],
                            partition_key=period_to_key(PERIOD),
                            resources=build_resources(settings))
    assert _evaluations(result)["timeliness_above_threshold"].passed   # 75 % > 74.9 %


def test_compliance_job_selects_compliance_and_the_followup():
    every = dg.load_assets_from_package_module(assets)
    keys = {k.to_user_string() for k in compliance_job.selection.resolve(every)}
    assert keys == JOB_KEYS
    assert compliance_job.name == "compliance_job"
    assert deadline.reporting_deadline_sensor.job_name == "compliance_job"


# --- deadline sensor --------------------------------------------------------------------------

@pytest.mark.parametrize(("today", "expected"), [
    # cut-off of November = 2024-12-31: passed on 2025-01-01, so November is the latest month
    (date(2025, 1, 10), [("2024-11", "cutoff")]),
    # cut-off of December = 2025-01-31: still November on the 31st, December on 02-01
    (date(2025, 1, 31), [("2024-11", "cutoff")]),
    (date(2025, 2, 1), [("2024-12", "cutoff")]),
])
def test_deadline_requests(settings, today, expected):
    assert [(r.period, r.phase) for r in calendar.deadline_requests(today, settings)] == expected


def test_deadline_requests_follow_config(kolab_home):
    settings = write_home(kolab_home, [], {"reporting": {"cutoff_months_after_period": 2}})
    # cut-off of M = last day of M+2: on 2025-03-31 the latest passed is December's (2025-02-28)
    def requested(today: date) -> list[tuple[str, str]]:
        return [(r.period, r.phase) for r in calendar.deadline_requests(today, settings)]

    assert requested(date(2025, 3, 31)) == [("2024-12", "cutoff")]
    assert requested(date(2025, 4, 1)) == [("2025-01", "cutoff")]


def test_schedule_and_sensor_never_run_the_same_month_twice(settings):
    """The schedule runs the previous month on the schedule day; the sensor asks only for the
    cut-off recompute, of a month at least one month older than the schedule's."""
    for day in range(1, 29):
        today = date(2025, 3, day)
        sensor_months = {r.period for r in calendar.deadline_requests(today, settings)}
        scheduled = (add_months(period_of(today), -1)
                     if day == calendar.schedule_day(settings) else None)
        assert scheduled not in sensor_months


def test_plan_runs_requests_each_month_once(settings):
    runs, cursor = deadline.plan_runs(settings, date(2025, 1, 11), None)
    assert [(r.run_key, r.partition_key) for r in runs] == [
        ("compliance:2024-11:cutoff", "2024-11-01")]
    assert json.loads(cursor) == {"cutoff": "2024-11"}
    again, cursor2 = deadline.plan_runs(settings, date(2025, 1, 20), cursor)
    assert again == [] and cursor2 == cursor
    later, cursor3 = deadline.plan_runs(settings, date(2025, 2, 1), cursor)
    assert [r.run_key for r in later] == ["compliance:2024-12:cutoff"]
    assert json.loads(cursor3) == {"cutoff": "2024-12"}


def test_sensor_tick_in_jakarta(settings, monkeypatch):
    monkeypatch.setattr(deadline, "local_today", lambda tz: {"Asia/Jakarta": date(2025, 1, 11)}[tz])
    resources = build_resources(settings)
    ctx = dg.build_sensor_context(cursor=None, resources={"kolab": resources["kolab"]})
    result = deadline.reporting_deadline_sensor(ctx)
    assert [r.run_key for r in result.run_requests] == ["compliance:2024-11:cutoff"]
    ctx2 = dg.build_sensor_context(cursor=result.cursor, resources={"kolab": resources["kolab"]})
    second = deadline.reporting_deadline_sensor(ctx2)
    assert not second.run_requests and "no new deadline" in second.skip_reason.skip_message
    assert deadline.reporting_deadline_sensor.default_status == dg.DefaultSensorStatus.STOPPED
