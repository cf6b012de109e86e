"""Landing sensor: a new or changed file requests one ingest run; the same listing requests none;
a deletion alone requests none."""

from __future__ import annotations

import json
import os

import dagster as dg

from kolab_pipeline.orchestration.resources import KolabHome
from sensors.landing import landing_folder_sensor
from tests.support.landing import PLAIN, put


def _tick(settings, instance, cursor):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"kolab": KolabHome(home=str(settings.paths.home))})
    result = landing_folder_sensor(ctx)
    return result.run_requests or [], result.cursor


def test_new_file_one_run_same_listing_none(settings):
    with dg.instance_for_test() as instance:
        runs, cursor = _tick(settings, instance, None)
        assert runs == [] and json.loads(cursor) == {}          # empty landing folder
        p = put(settings, "a/tb/ok.csv", PLAIN)
        runs, cursor = _tick(settings, instance, cursor)
        assert len(runs) == 1 and runs[0].run_key.startswith("landing:")
        first_key = runs[0].run_key
        assert json.loads(cursor) == {"a/tb/ok.csv": [p.stat().st_size, p.stat().st_mtime_ns]}
        runs, cursor2 = _tick(settings, instance, cursor)        # same listing
        assert runs == [] and cursor2 == cursor
        os.utime(p, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))   # changed mtime
        runs, cursor = _tick(settings, instance, cursor)
        assert len(runs) == 1 and runs[0].run_key != first_key
        p.unlink()                                        # deletion alone: nothing to ingest
        runs, cursor = _tick(settings, instance, cursor)
        assert runs == [] and json.loads(cursor) == {}


def test_lost_cursor_gives_the_same_run_key(settings):
    """Same listing → same run_key, so Dagster does not launch it twice even without the cursor."""
    put(settings, "a/tb/ok.csv", PLAIN)
    with dg.instance_for_test() as instance:
        [a], _ = _tick(settings, instance, None)
        [b], _ = _tick(settings, instance, None)
        assert a.run_key == b.run_key
        assert landing_folder_sensor.default_status == dg.DefaultSensorStatus.STOPPED


def test_the_receipt_journal_written_by_an_ingest_requests_no_run(settings, con):
    """The ingest appends to landing/_jurnal_penerimaan.csv; that is no new submission."""
    from kolab_pipeline import raw
    from kolab_pipeline.raw.journal import JOURNAL

    put(settings, "a/tb/ok.csv", PLAIN)
    with dg.instance_for_test() as instance:
        [_], cursor = _tick(settings, instance, None)
        raw.ingest_landing(con, settings, run_id="r1")
        assert (settings.paths.landing / JOURNAL).exists()
        runs, _ = _tick(settings, instance, cursor)
        assert runs == []
