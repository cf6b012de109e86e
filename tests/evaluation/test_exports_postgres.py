"""PostgreSQL warehouse copy against a real PostgreSQL (tests/support/pg.py): replace-per-month,
and a failure in the middle rolls the whole export back."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa

from kolab_pipeline import evaluation, exports
from kolab_pipeline.config import Settings
from tests.support.evaluation import seed, seed_report_status

pytestmark = pytest.mark.postgres
KEYS = ["evaluation.key_indicator", "evaluation.scorecard", "evaluation.followup",
        "reference.facility"]


@pytest.fixture
def built(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    seed(con)
    seed_report_status(con)
    evaluation.build_all(con, settings, ["2025-01", "2025-02"])
    return con


def pg_rows(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_two_months_rewrite_one_gives_one_copy(built, pg_server):
    url = pg_server.create_database("wh")
    exports.copy_to_postgres(built, url, ["2025-01"], keys=KEYS)
    exports.copy_to_postgres(built, url, ["2025-02"], keys=KEYS)
    exports.copy_to_postgres(built, url, ["2025-02"], keys=KEYS)   # re-write February
    # scorecard: 2 networks × 2 period types per month = 4 rows per month, once each
    assert pg_rows(url, "SELECT period, count(*) FROM evaluation.scorecard "
                        "GROUP BY 1 ORDER BY 1") == [("2025-01", 4), ("2025-02", 4)]
    # key_indicator: 8 indicators × 2 period types × (2 networks + 2 kecamatan + 1 kab/kota)
    # = 80 per month, 160 for two
    assert pg_rows(url, "SELECT count(*) FROM evaluation.key_indicator") == [(160,)]
    # unpartitioned tables are replaced whole: 4 facilities, not 12
    assert pg_rows(url, "SELECT count(*) FROM reference.facility") == [(4,)]
    # values and types survive: completeness 8/10 × 100 = 80.0, list column as TEXT[]
    assert pg_rows(url, "SELECT completeness_pct, meets_completeness FROM evaluation.scorecard "
                        "WHERE kode_jejaring = 'P0001' AND period = '2025-02' "
                        "AND period_type = 'month'") == [(80.0, False)]
    assert pg_rows(url, "SELECT formulir FROM reference.facility WHERE kode_faskes = 'P0001'") == [
        (["tb", "ptm", "kia", "imun"],)]
    # same rows as DuckDB, column by column
    duck = built.execute("SELECT kode_jejaring, period, period_type, expected, timeliness_pct "
                         "FROM evaluation.scorecard ORDER BY 1, 2, 3").fetchall()
    assert pg_rows(url, "SELECT kode_jejaring, period, period_type, expected, timeliness_pct "
                        "FROM evaluation.scorecard ORDER BY 1, 2, 3") == duck


def test_failure_mid_export_keeps_previous_data(built, settings, pg_server):
    url = pg_server.create_database("wh_fail")
    exports.copy_to_postgres(built, url, ["2025-01", "2025-02"], keys=KEYS)
    # DuckDB changes February: the first table (key_indicator) would be rewritten with new values…
    built.execute("UPDATE indicators.indicator_value SET value = 99 "
                  "WHERE unit_code = 'P0001' AND period = '2025-02'")
    evaluation.build_all(built, settings, ["2025-02"])
    # …but the second table (scorecard) now fails in PostgreSQL: a constraint its new rows break
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("ALTER TABLE evaluation.scorecard ADD CONSTRAINT k1_small "
                          "CHECK (kia_k1_value IS NULL OR kia_k1_value < 50)"))
    engine.dispose()
    with pytest.raises(exports.PgExportError, match="evaluation.scorecard") as err:
        exports.copy_to_postgres(built, url, ["2025-02"], keys=KEYS)
    assert "postgres@" not in str(err.value) and "127.0.0.1" not in str(err.value)  # no URL
    # rolled back: key_indicator still holds the old February value (5.0), both months complete
    assert pg_rows(url, "SELECT value FROM evaluation.key_indicator WHERE unit_code = 'P0001' AND "
                        "period = '2025-02' AND period_type = 'month' "
                        "AND indicator_code = 'KIA_K1'") == [(5.0,)]
    assert pg_rows(url, "SELECT period, count(*) FROM evaluation.scorecard "
                        "GROUP BY 1 ORDER BY 1") == [("2025-01", 4), ("2025-02", 4)]
    assert pg_rows(url, "SELECT count(*) FROM evaluation.key_indicator") == [(160,)]


def test_bulk_copy_speed(con, pg_server):
    """100,000 rows through COPY: measured, and far above a row-by-row INSERT's pace."""
    url = pg_server.create_database("wh_bulk")
    con.execute("INSERT INTO clean.submission_value SELECT 'id' || i, 'F' || (i % 1000), "
                "'2025-0' || (1 + i % 2), 'kia', 'kia_k1', i FROM range(100000) t(i)")
    result = exports.copy_to_postgres(con, url, ["2025-01", "2025-02"],
                                      keys=["clean.submission_value"], chunk_rows=20_000)
    assert result.rows == {"clean.submission_value": 100_000}
    assert pg_rows(url, "SELECT count(*), sum(value) FROM clean.submission_value") == [
        (100_000, sum(range(100_000)))]  # 0 + 1 + … + 99,999 = 4,999,950,000
    assert result.rows_per_second > 20_000, result.rows_per_second


def test_unknown_type_and_table_are_named():
    with pytest.raises(ValueError, match="GEOMETRY"):
        exports.pg_type("GEOMETRY")
    with pytest.raises(KeyError, match="raw.submission_row"):
        exports.copy_to_postgres(duckdb.connect(), "postgresql+psycopg://x@127.0.0.1:1/x", None,
                                 keys=["raw.submission_row"])
