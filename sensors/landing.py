"""Landing-folder sensor: requests `ingest_job` when files are added to or changed in `landing/`.

The cursor is the listing `{relative path: [size, mtime_ns]}` of the last tick; the run_key is a
hash of the whole listing, so the same listing never launches two runs. Stopped unless
`KOLAB_AUTOMATION=on`.
"""

import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from kolab_pipeline.orchestration.jobs import default_sensor_status, ingest_job
from kolab_pipeline.orchestration.resources import KolabHome
from kolab_pipeline.raw.journal import JOURNAL


def landing_listing(landing: Path) -> dict[str, list[int]]:
    """{path relative to landing: [size, mtime_ns]} of every file (symlinks listed, not
    followed), but the receipt journal: the ingest writes it, a change to it is nothing new."""
    out: dict[str, list[int]] = {}
    if not landing.exists():
        return out
    for dirpath, _dirs, files in os.walk(landing, followlinks=False):
        for name in files:
            path = Path(dirpath) / name
            if path.parent == landing and name == JOURNAL:
                continue
            st = path.lstat()
            out[path.relative_to(landing).as_posix()] = [st.st_size, st.st_mtime_ns]
    return dict(sorted(out.items()))


def listing_key(listing: dict[str, list[int]]) -> str:
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:16]


@dg.sensor(job=ingest_job, default_status=default_sensor_status(), minimum_interval_seconds=60,
           description="Requests ingest_job when files are added to or changed in "
                       "KOLAB_HOME/landing.")
def landing_folder_sensor(context: dg.SensorEvaluationContext,
                          kolab: KolabHome) -> dg.SensorResult:
    listing = landing_listing(kolab.settings().paths.landing)
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    changed = sorted(p for p, stat in listing.items() if previous.get(p) != stat)
    cursor = json.dumps(listing, sort_keys=True)
    if not changed:
        return dg.SensorResult(run_requests=[], cursor=cursor,
                               skip_reason=dg.SkipReason("no new or changed files in landing/"))
    key = listing_key(listing)
    context.log.info(f"{len(changed)} new/changed file(s) in landing/, e.g. {changed[:3]}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"landing:{key}", tags={
            "kolab/trigger": "landing", "kolab/changed_files": str(len(changed))})],
        cursor=cursor,
    )
