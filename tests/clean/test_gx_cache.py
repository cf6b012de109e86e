"""A GX suite run again on the same frame reuses its stored result (issue 20: a run with nothing
new must not run the suites again); any change of the rows runs GX again."""

from __future__ import annotations

import os

from data_quality import clean_checks, gx_cache
from kolab_pipeline.orchestration.resources import KolabHome

QUARANTINE_ROW = """INSERT INTO clean.quarantine (raw_row_id, file_id, source_path, row_number,
                        rule_id, severity, reason_id, reason_en, kode_faskes, period, form)
                    VALUES (?, 'f1', 'a.csv', ?, 'V06', 'error', 'alasan', 'reason', 'P1',
                            '2025-01', 'tb')"""


def test_same_frame_reuses_the_result_changed_rows_validate_again(con, settings):
    kolab = KolabHome(home=str(settings.paths.home))
    con.execute(QUARANTINE_ROW, ["r1", 2])
    first = clean_checks.run_gx_suite(con, kolab, "clean_quarantine")
    assert "result_reused" not in first.metadata
    stored = settings.paths.data_docs / "clean_quarantine" / gx_cache.RESULT_FILE
    assert stored.exists()
    again = clean_checks.run_gx_suite(con, kolab, "clean_quarantine")
    assert again.metadata["result_reused"].value is True
    assert (again.passed, again.description, again.severity) == (
        first.passed, first.description, first.severity)
    assert again.metadata["validation_page"].value == first.metadata["validation_page"].value
    assert again.metadata["rows_validated"].value == first.metadata["rows_validated"].value == 1
    # one more row: a different frame, GX runs again and validates 2 rows
    con.execute(QUARANTINE_ROW, ["r2", 3])
    changed = clean_checks.run_gx_suite(con, kolab, "clean_quarantine")
    assert "result_reused" not in changed.metadata
    assert changed.metadata["rows_validated"].value == 2
    # the page the result links to is gone: validate again rather than link to nothing
    page = changed.metadata["validation_page"].value
    os.remove(page)
    assert "result_reused" not in clean_checks.run_gx_suite(
        con, kolab, "clean_quarantine").metadata
