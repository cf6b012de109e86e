"""Idempotency (issue 10): `run_pipeline` twice on the same KOLAB_HOME gives byte-identical analyst
tables, in DuckDB and in the PostgreSQL warehouse copy.

"Byte-identical" is checked by a digest per table: every row cast to its canonical text form, the
rows sorted by that text (= ordered by all columns), joined and hashed (md5) — computed inside the
database, so no table is pulled into Python. No column is excluded between two runs on the same
home: the analyst tables carry no run-time lineage (`as_of` is the configured
`reporting.as_of`, not the wall clock). The raw tables, which do carry lineage, are compared too.

The reference run (sample seed 3, as-of 2025-04-20, kabupaten, 3 months, messy) is made once per
session by `reference_run()` and shared with `tests/test_crash_recovery.py`, which compares a
killed-and-restarted run against it.
"""

from __future__ import annotations

import pytest

from kolab_pipeline.config import Settings
from tests.support.digests import (
    duckdb_digests,
    env,
    postgres_digests,
    reference_run,
)


@pytest.mark.slow
@pytest.mark.postgres
def test_running_the_whole_pipeline_twice_gives_byte_identical_tables(pg_server):
    from kolab_pipeline.orchestration.runner import run_pipeline

    ref = reference_run(pg_server)
    # the first run really produced data in every layer (a digest of empty tables proves nothing)
    for key in ("clean.submission_value", "compliance.report_status", "indicators.indicator_value",
                "evaluation.scorecard", "raw.submission_row"):
        assert ref.duck[key][0] > 0, key
    assert {k: n for k, (n, _) in ref.pg.items()} == {k: ref.duck[k][0] for k in ref.pg}
    lines: list[str] = []
    with env(KOLAB_HOME=str(ref.home), KOLAB_WAREHOUSE_URL=ref.pg_url, KOLAB_SOURCE_DB_URL=None,
             KOLAB_ALERT_WEBHOOK_URL=None):
        run_pipeline(Settings.load(ref.home), emit=lines.append)
    second = duckdb_digests(ref.home / "kolab.duckdb")
    differing = sorted(k for k in second if second[k] != ref.duck[k])
    assert differing == []
    # the PostgreSQL copy: same rows, same text, no month appended twice
    pg_second = postgres_digests(ref.pg_url)
    assert pg_second == ref.pg
    # and PostgreSQL holds what DuckDB holds (row counts per analyst table)
    assert {k: n for k, (n, _) in pg_second.items()} == {k: second[k][0] for k in pg_second}
