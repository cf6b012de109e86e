"""A warehouse built before columns were added to the contract (`catalog/tables.yaml`) gains them
on the next connection (`warehouse.ensure_schema`), its rows kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kolab_pipeline.warehouse import connect, ensure_schema, table


def test_an_older_table_gains_the_new_columns_and_keeps_its_rows(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    con = connect(tmp_path / "old.duckdb")
    # clean.submission_value as it was before the report scope (no reported_value,
    # network_value, lingkup_laporan)
    con.execute("CREATE SCHEMA clean")
    con.execute("CREATE TABLE clean.submission_value (submission_id VARCHAR, kode_faskes VARCHAR, "
                "period VARCHAR, form VARCHAR, data_element VARCHAR, value BIGINT)")
    con.execute("INSERT INTO clean.submission_value VALUES "
                "('P1|2025-01|kia|1', 'P1', '2025-01', 'kia', 'kia_k1', 7)")
    with caplog.at_level(logging.WARNING, logger="kolab_pipeline.warehouse"):
        added = ensure_schema(con)
    assert added == ["clean.submission_value.reported_value",
                     "clean.submission_value.network_value",
                     "clean.submission_value.lingkup_laporan"]
    assert ("warehouse upgraded: clean.submission_value gains column(s) reported_value, "
            "network_value, lingkup_laporan") in caplog.text
    columns = {c[0] for c in con.execute("DESCRIBE clean.submission_value").fetchall()}
    assert columns == set(table("clean.submission_value").column_names)
    assert con.execute("SELECT kode_faskes, value, reported_value, lingkup_laporan "
                       "FROM clean.submission_value").fetchall() == [("P1", 7, None, None)]
    # a layer writing its new columns works; the next connection has nothing to add
    con.execute("UPDATE clean.submission_value SET reported_value = 7, lingkup_laporan = 'faskes'")
    assert ensure_schema(con) == []
    con.close()
