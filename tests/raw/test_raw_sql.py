"""Raw layer, SQL source, against a real PostgreSQL: the same submissions loaded into PostgreSQL
and into a landing CSV give identical raw rows and cells (apart from lineage); unchanged sources
ingest nothing; the long canonical form works too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from kolab_pipeline import raw
from tests.support.landing import TB_HEADER, put

pytestmark = pytest.mark.postgres

SUBMISSIONS = [
    # periode, kode_faskes, nama_faskes, tanggal_lapor, laporan_nihil, tb_skrining,
    # tb_terduga_ditemukan
    ("2025-03", "P3672010101", "Puskesmas A", "2025-04-03", None, 12, 3),
    ("2025-03", "KP001", "Klinik B", None, None, None, 0),
    ("2025-03", "DR002", "dr. Cé", None, "1", 0, 0),
]
RECEIVED = datetime(2025, 4, 5, 15, 30, tzinfo=UTC)


def _csv() -> str:
    head = TB_HEADER + "\n"
    return head + "".join(",".join("" if v is None else str(v) for v in r) + "\n"
                          for r in SUBMISSIONS)


def _load_pg(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE laporan_bulanan (periode text, kode_faskes text, "
                          "nama_faskes text, tanggal_lapor date, laporan_nihil text, "
                          "tb_skrining integer, tb_terduga_ditemukan integer, "
                          "received_at timestamptz)"))
        c.execute(sa.text("INSERT INTO laporan_bulanan VALUES (:p, :k, :n, :t, :l, :a, :b, :r)"),
                  [dict(zip("pkntlab", r, strict=True), r=RECEIVED) for r in SUBMISSIONS])
    engine.dispose()


def _content(con, kind: str) -> tuple[list, list]:
    rows = con.execute(
        "SELECT form, periode, kode_faskes, nama_faskes, tanggal_lapor, laporan_nihil "
        "FROM raw.submission_row WHERE source_kind = ? ORDER BY kode_faskes", [kind]).fetchall()
    cells = con.execute(
        "SELECT r.kode_faskes, c.column_index, c.header, c.data_element, c.value_text "
        "FROM raw.submission_cell c JOIN raw.submission_row r USING (raw_row_id) "
        "WHERE r.source_kind = ? ORDER BY ALL", [kind]).fetchall()
    return rows, cells


def test_sql_source_matches_landing_csv(pg_server, settings, con):
    url = pg_server.create_database("raw_sql_same")
    _load_pg(url)
    put(settings, "a/tb/2025-03/same.csv", _csv())
    raw.ingest_landing(con, settings, run_id="r1")
    s = raw.ingest_sql(con, settings, url, table="laporan_bulanan", run_id="r1")
    assert (s.files_ingested, s.rows_kept, s.cells) == (1, 3, 6)   # 3 rows × 2 element cells
    assert _content(con, "sql") == _content(con, "file")
    assert len(_content(con, "sql")[0]) == 3
    f = con.execute("SELECT source_path, file_format, received_at, received_source, n_rows_read, "
                    "n_rows_kept FROM raw.landing_file WHERE source_kind = 'sql'").fetchall()
    assert [(p, fmt, r.astimezone(UTC), src, a, b) for p, fmt, r, src, a, b in f] == [
        ("sql:laporan_bulanan", "sql", RECEIVED, "source_column", 3, 3)]
    assert {r[0].astimezone(UTC) for r in con.execute(
        "SELECT received_at FROM raw.submission_row WHERE source_kind = 'sql'"
    ).fetchall()} == {RECEIVED}
    # the URL (with its password) never lands in lineage
    assert not con.execute("SELECT count(*) FROM raw.submission_row "
                           "WHERE source_path LIKE '%postgres%'").fetchone()[0]

    # unchanged source: nothing new; a changed row: a new pull (new version downstream)
    again = raw.ingest_sql(con, settings, url, table="laporan_bulanan", run_id="r2")
    assert (again.files_ingested, again.files_skipped) == (0, 1)
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE laporan_bulanan SET tb_skrining = 13 "
                          "WHERE kode_faskes = 'P3672010101'"))
    engine.dispose()
    changed = raw.ingest_sql(con, settings, url, table="laporan_bulanan", run_id="r3")
    assert changed.files_ingested == 1
    assert con.execute("SELECT count(*) FROM raw.landing_file "
                       "WHERE source_kind = 'sql'").fetchone()[0] == 2


def test_sql_long_form_query(pg_server, settings, con):
    url = pg_server.create_database("raw_sql_long")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE nilai (periode text, kode_faskes text, form text, "
                          "data_element text, value numeric, received_at timestamp)"))
        c.execute(sa.text("INSERT INTO nilai VALUES "
                          "('2025-03','P1','tb','tb_skrining',5,'2025-04-03 10:00'),"
                          "('2025-03','P1','tb','tb_terduga_ditemukan',NULL,'2025-04-03 10:00'),"
                          "('2025-03','P1','ptm','ht_skrining',40,'2025-04-04 08:00'),"
                          "('2025-03','P2','tb','lain_lain',1,NULL)"))
    engine.dispose()
    s = raw.ingest_sql(con, settings, url, query="SELECT * FROM nilai WHERE periode = '2025-03'",
                       run_id="r1")
    assert (s.files_ingested, s.rows_read, s.rows_kept, s.cells) == (1, 3, 3, 4)
    rows = con.execute("SELECT row_number, form, periode, kode_faskes, received_at "
                       "FROM raw.submission_row ORDER BY row_number").fetchall()
    # naive timestamps are WIB (UTC+7): 10:00 → 03:00 UTC, 08:00 → 01:00 UTC
    assert [(n, f, p, k, r.astimezone(UTC) if r else None) for n, f, p, k, r in rows] == [
        (1, "ptm", "2025-03", "P1", datetime(2025, 4, 4, 1, 0, tzinfo=UTC)),
        (2, "tb", "2025-03", "P1", datetime(2025, 4, 3, 3, 0, tzinfo=UTC)),
        (3, "tb", "2025-03", "P2", None),
    ]
    cells = con.execute("SELECT r.row_number, c.header, c.data_element, c.value_text "
                        "FROM raw.submission_cell c JOIN raw.submission_row r USING (raw_row_id) "
                        "ORDER BY ALL").fetchall()
    # numeric keeps the source's own text; an unknown element is kept with data_element NULL
    assert cells == [(1, "ht_skrining", "ht_skrining", "40"),
                     (2, "tb_skrining", "tb_skrining", "5"),
                     (2, "tb_terduga_ditemukan", "tb_terduga_ditemukan", None),
                     (3, "lain_lain", None, "1")]


def test_sql_person_columns_rejected_and_unreachable_source_warns(pg_server, settings, con):
    url = pg_server.create_database("raw_sql_pii")
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE pasien (periode text, kode_faskes text, nik text, "
                          "tb_skrining int)"))
        c.execute(sa.text("INSERT INTO pasien VALUES ('2025-03','P1','3672000000000001',1)"))
    engine.dispose()
    s = raw.ingest_sql(con, settings, url, table="pasien", run_id="r1")
    assert s.rejected == [("sql:pasien", "F08", raw.reject_reason(
        "sql:pasien", "F08", "person-identifying column(s) 'nik'"))]
    assert con.execute("SELECT count(*) FROM raw.submission_row").fetchone()[0] == 0
    down = raw.ingest_sql(con, settings, url, table="does_not_exist", run_id="r2")
    assert down.files_seen == 0 and down.warnings[0].startswith(
        "sql:does_not_exist: could not read the SQL source (NoSuchTableError")
