"""Security (issue 10): no SQL injection through any entry point, file access confined to
KOLAB_HOME, secrets only from the environment and never in logs/metadata/tables/files, the UI bound
to 127.0.0.1, formula injection neutralised in Excel/CSV exports, person-identifying columns
refused.

One small home runs the whole pipeline (`run_pipeline`) with hostile strings in every entry point:
landing CSV, DHIS2 mapping + dataValueSet, the registry (codes and names), and a PostgreSQL SQL
source (`KOLAB_SOURCE_DB_URL`) — with secrets in `KOLAB_WAREHOUSE_URL` / `KOLAB_SOURCE_DB_URL`
(passwords; the test server uses trust authentication, so any password connects) and
`KOLAB_ALERT_WEBHOOK_URL` (a token)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import openpyxl
import pytest

from kolab_pipeline import exports, raw
from kolab_pipeline.config import ConfigError, Paths, Settings
from kolab_pipeline.warehouse import connect, tables
from tests.support import hostile_corpus as hc
from tests.support.digests import env

REPO = Path(__file__).resolve().parents[2]
PASSWORD = f"pw-{uuid.uuid4().hex}"
TOKEN = f"tok-{uuid.uuid4().hex}"
# hostile registry entries: a code with SQL metacharacters (a registered facility!) and names that a
# spreadsheet would run as formulas
HOSTILE_KODE = "K'9; DROP TABLE clean.submission; --"
DROP_NAME = "Klinik'); DROP TABLE reference.facility; --"
REGISTRY = hc.REGISTRY + "".join([
    f'"{HOSTILE_KODE}","{DROP_NAME}",klinik_pratama,{hc.PKM},32.73.01,2020-01-01,,tb;ptm\n',
    *[f'KF{i},"{n.replace(chr(34), chr(34) * 2)}",klinik_pratama,{hc.PKM},'
      '32.73.01,2020-01-01,,tb;ptm\n'
      for i, n in enumerate(hc.FORMULA_NAMES)],
])
TB = hc.TB


@dataclass
class SecureRun:
    home: Path
    settings: Settings
    output: str
    warehouse_url: str
    source_url: str
    webhook: str


def _with_password(url: str) -> str:
    return url.replace("://postgres@", f"://postgres:{PASSWORD}@")


def _write_home(home: Path) -> None:
    hc.write_registry(home)
    hc.write_config(home)
    (home / "registry" / "fasilitas.csv").write_text(REGISTRY, encoding="utf-8")
    landing = home / "landing"
    hostile_row = f'2025-03,"{HOSTILE_KODE.replace(chr(34), chr(34) * 2)}",x,2025-04-03,,4,1'
    (landing / "inj" / "tb").mkdir(parents=True)
    (landing / "inj" / "tb" / "hostile.csv").write_text(
        "\n".join([TB, hostile_row, f'2025-03,"{hc.SQL_CODE}",x,2025-04-03,,1,1',
                   f"2025-03,{hc.SHELL_CODE},x,2025-04-03,,1,1",
                   f"2025-03,{hc.BACKTICK_CODE},x,2025-04-03,,1,1",
                   f"2025-03,{hc.PKM},Puskesmas Uji,2025-04-03,,10,2"]) + "\n", encoding="utf-8")
    (landing / "dhis2").mkdir()
    (landing / "dhis2" / "mapping.csv").write_text(
        "kind,dhis2_id,kode\n"
        f'org_unit,OU1,"{hc.SQL_CODE}"\n'
        "data_element,DE1,tb_skrining\n"
        f'data_element,DE2,"{hc.SHELL_CODE}"\n', encoding="utf-8")
    (landing / "dhis2" / "values.json").write_text(json.dumps({"dataValues": [
        {"dataElement": "DE1", "period": "202502", "orgUnit": "OU1", "value": "5"},
        {"dataElement": "DE2", "period": "202502", "orgUnit": "OU1", "value": "6"}]}),
        encoding="utf-8")


def _write_source(url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as c:
        c.execute("CREATE TABLE laporan_bulanan (periode text, kode_faskes text, nama_faskes text, "
                  "tb_skrining text, tb_terduga_ditemukan text, received_at timestamptz)")
        for kode, nama in ((hc.SQL_CODE, "sql"), (hc.BACKTICK_CODE, "`whoami`"),
                           ("K002", DROP_NAME)):
            c.execute("INSERT INTO laporan_bulanan VALUES ('2025-02', %s, %s, '3', '1', "
                      "'2025-03-04T10:00:00+07:00')", [kode, nama])


@pytest.fixture(scope="module")
def secure(pg_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRun]:
    from kolab_pipeline.orchestration.runner import run_pipeline

    home = tmp_path_factory.mktemp("secure") / "home"
    _write_home(home)
    source = _with_password(pg_server.create_database("kolab_sec_source"))
    _write_source(source)
    warehouse = _with_password(pg_server.create_database("kolab_sec_warehouse"))
    webhook = f"http://127.0.0.1:9/hook/{TOKEN}"   # port 9 (discard): the POST fails
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logging.getLogger().addHandler(handler)
    try:
        with env(KOLAB_HOME=str(home), KOLAB_WAREHOUSE_URL=warehouse, KOLAB_SOURCE_DB_URL=source,
                 KOLAB_ALERT_WEBHOOK_URL=webhook), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(out):
            lines: list[str] = []
            summary = run_pipeline(Settings.load(home), emit=lines.append)
            print("\n".join(lines))
            print(summary)
    finally:
        logging.getLogger().removeHandler(handler)
    yield SecureRun(home, Settings.load(home), out.getvalue(), warehouse, source, webhook)


def _all_text_in_duckdb(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, str]]:
    """(table.column, value) of every text column of every table in the warehouse."""
    for schema, name, col in con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' "
            "AND table_schema NOT IN ('information_schema', 'pg_catalog')"
    ).fetchall():
        for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM "{schema}"."{name}" '
                                f'WHERE "{col}" IS NOT NULL').fetchall():
            yield f"{schema}.{name}.{col}", v


@pytest.mark.slow
@pytest.mark.postgres
def test_hostile_strings_through_every_entry_point_are_data_and_every_table_survives(
        secure: SecureRun):
    con = connect(secure.settings.paths.warehouse, read_only=True)
    try:
        present = {f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        assert set(tables()) <= present                      # no DROP TABLE ran
        # registry: the hostile code is a real facility, its name stored verbatim
        assert con.execute("SELECT nama_faskes FROM reference.facility WHERE kode_faskes = ?",
                           [HOSTILE_KODE]).fetchall() == [(DROP_NAME,)]
        assert (con.execute("SELECT count(*) FROM reference.facility").fetchone()[0]
                == 4 + 1 + len(hc.FORMULA_NAMES))
        # landing: the registered hostile code is kept as a submission; the others are V01 data
        assert con.execute("SELECT count(*) FROM clean.submission "
                           "WHERE kode_faskes = ? AND source_kind = 'file'",
                           [HOSTILE_KODE]).fetchone()[0] == 1
        v01 = {(k, p) for k, p in con.execute(
            "SELECT value_text, source_path FROM clean.quarantine WHERE rule_id = 'V01'"
        ).fetchall()}
        assert {(hc.SQL_CODE, "inj/tb/hostile.csv"), (hc.SHELL_CODE, "inj/tb/hostile.csv"),
                (hc.BACKTICK_CODE, "inj/tb/hostile.csv")} <= v01
        # DHIS2: the mapped org unit is the SQL string (V01); the element mapped to shell text is no
        # element of the catalogue, so the cell is kept verbatim without an element
        assert (hc.SQL_CODE, "dhis2/values.json") in v01
        assert con.execute("SELECT count(*) FROM raw.submission_cell WHERE header = 'DE2' AND "
                           "data_element IS NULL AND value_text = '6'").fetchone()[0] == 1
        # SQL source: three rows pulled; the hostile codes are V01, K002 kept with its hostile name
        src = con.execute("SELECT source_path, status, n_rows_read FROM raw.landing_file "
                          "WHERE source_kind = 'sql'").fetchall()
        assert src == [("sql:laporan_bulanan", "ingested", 3)]
        assert {(hc.SQL_CODE, "sql:laporan_bulanan"),
                (hc.BACKTICK_CODE, "sql:laporan_bulanan")} <= v01
        assert con.execute("SELECT nama_faskes FROM raw.submission_row "
                           "WHERE source_kind = 'sql' AND "
                           "kode_faskes = 'K002'").fetchall() == [(DROP_NAME,)]
        # the pipeline computed downstream layers over the hostile data
        assert con.execute("SELECT count(*) FROM compliance.report_status").fetchone()[0] > 0
    finally:
        con.close()


def test_sql_source_table_name_is_an_identifier_never_sql(tmp_path: Path, con, settings):
    """A hostile table name (from KOLAB_SOURCE_DB_TABLE) is looked up as a quoted name: it does not
    exist, the pull fails as a warning naming no URL, and the real table is untouched."""
    db = tmp_path / "src.sqlite"
    url = f"sqlite:///{db}"
    import sqlite3

    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE laporan_bulanan (periode TEXT, kode_faskes TEXT, tb_skrining TEXT)")
        c.execute("INSERT INTO laporan_bulanan VALUES ('2025-01', 'K001', '1')")
    summary = raw.ingest_sql(con, settings, url,
                             table="laporan_bulanan; DROP TABLE laporan_bulanan; --")
    assert summary.files_ingested == 0 and len(summary.warnings) == 1
    assert summary.warnings[0].startswith(
        "sql:laporan_bulanan__DROP_TABLE_laporan_bulanan____: could not read")
    assert str(db) not in summary.warnings[0]
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM laporan_bulanan").fetchone()[0] == 1


@pytest.mark.slow
@pytest.mark.postgres
def test_secrets_never_reach_logs_metadata_alerts_tables_or_files(secure: SecureRun):
    import dagster as dg

    from kolab_pipeline.orchestration.resources import Alerts
    from kolab_pipeline.orchestration.runner import open_instance
    from sensors.alerts import check_failure_lines, send_alert

    secrets = (PASSWORD, TOKEN)
    con = connect(secure.settings.paths.warehouse, read_only=True)
    try:
        # the pipeline did use both URLs (else the test proves nothing): the source was pulled …
        assert con.execute("SELECT count(*) FROM raw.landing_file "
                           "WHERE source_kind = 'sql'").fetchone()[0] == 1
        leaks = [(where, v[:80]) for where, v in _all_text_in_duckdb(con)
                 if any(s in v for s in secrets)]
    finally:
        con.close()
    assert leaks == []
    # alerts: the failed checks of the run become alert lines; the webhook POST (with the token in
    # its URL) fails — its warning and the alert log must not carry the URL
    instance = open_instance(secure.settings)
    try:
        lines, _ = check_failure_lines(instance, None)
        assert lines, "the sample run has failing WARN checks, so there are alerts to send"
        warnings: list[str] = []

        class Log:
            def warning(self, msg: str) -> None:
                warnings.append(msg)

        alerts = Alerts(log_path=str(secure.settings.paths.alerts), webhook_url=secure.webhook)
        for line in lines[:2]:
            send_alert(alerts, line, Log())
        assert len(warnings) == 2 and all("alert webhook POST failed" in w for w in warnings)
        # every event of every run: messages, metadata, run tags and config
        texts: list[str] = []
        for run in instance.get_runs():
            texts.append(json.dumps(dict(run.tags)) + json.dumps(run.run_config, default=str))
            for record in instance.get_records_for_run(run.run_id, limit=100000).records:
                entry = record.event_log_entry
                texts.append(entry.user_message or "")
                ev = entry.dagster_event
                if ev is not None and ev.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    texts.append(repr(ev.step_materialization_data.materialization.metadata))
        assert len(texts) > 100
    finally:
        instance.dispose()
    haystacks = {"stdout/stderr/log": secure.output, "webhook warnings": "\n".join(warnings),
                 "event log": "\n".join(texts)}
    # every file under KOLAB_HOME: alerts.log, the Dagster instance (SQLite event logs), exports
    # (Parquet, Excel), reports (HTML), the DuckDB file
    for path in secure.home.rglob("*"):
        if path.is_file():
            haystacks[str(path.relative_to(secure.home))] = path.read_bytes().decode("latin-1")
    assert (secure.home / "alerts.log").exists()
    found = sorted(name for name, text in haystacks.items() if any(s in text for s in secrets))
    assert found == []
    # and the PostgreSQL warehouse copy
    import psycopg

    with psycopg.connect(secure.warehouse_url.replace("postgresql+psycopg://",
                                                      "postgresql://")) as c:
        cols = c.execute("SELECT table_schema, table_name, column_name "
                         "FROM information_schema.columns "
                         "WHERE data_type = 'text' "
                         "AND table_schema IN ('reference','clean','compliance',"
                         "'indicators','evaluation')").fetchall()
        assert cols
        hits = [f"{s}.{t}.{col}" for s, t, col in cols
                if c.execute(f'SELECT count(*) FROM "{s}"."{t}" '
                             f'WHERE "{col}" LIKE %s OR "{col}" LIKE %s',
                             [f"%{PASSWORD}%", f"%{TOKEN}%"]).fetchone()[0]]
    assert hits == []


def test_resources_bind_secrets_as_env_vars_not_values(monkeypatch, kolab_home):
    import dagster as dg

    from kolab_pipeline.orchestration.resources import build_resources

    monkeypatch.setenv("KOLAB_WAREHOUSE_URL", f"postgresql://u:{PASSWORD}@h/db")
    monkeypatch.setenv("KOLAB_SOURCE_DB_URL", f"postgresql://u:{PASSWORD}@h/src")
    monkeypatch.setenv("KOLAB_ALERT_WEBHOOK_URL", f"https://hooks.example/{TOKEN}")
    res = build_resources(Settings.load(kolab_home))
    assert res["pg_warehouse"].url == dg.EnvVar("KOLAB_WAREHOUSE_URL")
    assert res["source_db"].url == dg.EnvVar("KOLAB_SOURCE_DB_URL")
    assert res["alerts"].webhook_url == dg.EnvVar("KOLAB_ALERT_WEBHOOK_URL")


# --- file access confined to KOLAB_HOME -----------------------------------------------------------

def test_confine_refuses_dotdot_and_symlinks_out_of_kolab_home(tmp_path: Path):
    home = tmp_path / "home"
    (home / "exports").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "exports" / "link").symlink_to(outside, target_is_directory=True)
    paths = Paths(home=home.resolve())
    assert paths.confine("exports/x.parquet") == (home / "exports" / "x.parquet").resolve()
    assert paths.confine("exports/../kolab.duckdb") == (home / "kolab.duckdb").resolve()
    for bad in ("../outside/x", "exports/../../outside", "/etc/passwd", "exports/link/x.csv"):
        with pytest.raises(PermissionError, match="outside KOLAB_HOME"):
            paths.confine(bad)


def test_landing_symlinks_to_outside_are_refused_and_never_read(tmp_path: Path, settings, con):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret_tb.csv"
    secret.write_text(f"{TB}\n2025-03,{hc.PKM},SECRET-CONTENT,2025-04-03,,1,1\n", encoding="utf-8")
    landing = settings.paths.landing
    (landing / "a").mkdir(parents=True)
    (landing / "a" / "x_tb.csv").symlink_to(Path("..") / ".." / ".." / "outside" / "secret_tb.csv")
    (landing / "dir").symlink_to(outside, target_is_directory=True)
    summary = raw.ingest_landing(con, settings)
    assert sorted((p, r) for p, r, _ in summary.rejected) == [("a/x_tb.csv", "F10"), ("dir", "F10")]
    assert con.execute("SELECT count(*) FROM raw.submission_row").fetchone()[0] == 0
    # never read: the outside file's content is nowhere in the warehouse
    assert not [w for w, v in _all_text_in_duckdb(con) if "SECRET-CONTENT" in v]


def test_timezone_config_is_validated_before_it_reaches_sql(kolab_home: Path):
    """kolab.yaml time zones become SQL literals in the registry load: only real IANA zones and
    two-digit province codes are accepted (also a clear error for a typo)."""
    (kolab_home / "kolab.yaml").write_text(
        "timezones:\n  by_province:\n"
        "    \"64\": \"Asia/Makassar'; DROP TABLE reference.facility; --\"\n")
    with pytest.raises(ConfigError, match="not a time zone"):
        Settings.load(kolab_home)
    (kolab_home / "kolab.yaml").write_text(
        "timezones:\n  by_province:\n    \"6'4\": Asia/Makassar\n")
    with pytest.raises(ConfigError, match="province code"):
        Settings.load(kolab_home)


# --- UI binding -----------------------------------------------------------------------------------

def test_ui_is_bound_to_localhost_by_default():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    ui = makefile.split("\nui:", 1)[1].split("\n\n", 1)[0]
    command = next(line for line in ui.splitlines() if "dagster dev" in line)
    assert "-h 127.0.0.1" in command and "0.0.0.0" not in ui
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert ("127.0.0.1" in readme
            and "0.0.0.0" not in readme.split("make ui", 1)[1].split("\n", 1)[0])


# --- formula injection in exports -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.postgres
def test_excel_export_writes_formula_like_names_as_inert_text(secure: SecureRun):
    books = sorted(secure.settings.paths.exports.glob("evaluasi_*.xlsx"))
    assert books
    seen: set[str] = set()
    for book in books:
        wb = openpyxl.load_workbook(book)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    if (isinstance(cell.value, str)
                            and cell.value.startswith(exports.FORMULA_PREFIXES)):
                        assert cell.data_type == "s", (book.name, ws.title, cell.coordinate)
                        assert cell.quotePrefix, (book.name, ws.title, cell.coordinate)
                        seen.add(cell.value)
    # the registry names that look like formulas reach the workbook verbatim, as text
    assert set(hc.FORMULA_NAMES) <= seen


def test_csv_neutralisation_prefixes_every_formula_trigger():
    for text in (*hc.FORMULA_NAMES, "\tx", "\rx"):
        assert exports.neutralise_csv(text) == "'" + text
    for harmless in ("Klinik A", "12", "", None, 5, "a=b"):
        assert exports.neutralise_csv(harmless) == harmless


# --- person-identifying columns (F08) -------------------------------------------------------------

def test_person_identifying_columns_are_refused_in_every_format(settings, con):
    landing = settings.paths.landing
    (landing / "x" / "tb").mkdir(parents=True)
    (landing / "x" / "tb" / "nik.csv").write_text(f"{TB},NIK\n2025-03,{hc.PKM},a,,,1,1,3273\n")
    wb = openpyxl.Workbook()
    wb.active.title = "tb"
    wb.active.append(["periode", "kode_faskes", "Nama Pasien", "tb_skrining"])
    wb.active.append(["2025-03", hc.PKM, "Budi", 1])
    wb.save(landing / "x" / "tb" / "pasien.xlsx")
    summary = raw.ingest_landing(con, settings)
    got = {p: (r, why) for p, r, why in summary.rejected}
    assert got["x/tb/nik.csv"][0] == "F08" and "'NIK'" in got["x/tb/nik.csv"][1]
    assert got["x/tb/pasien.xlsx"][0] == "F08" and "'Nama Pasien'" in got["x/tb/pasien.xlsx"][1]
    assert "aggregate reports only" in got["x/tb/nik.csv"][1]
    with pytest.raises(raw.FileRejected) as err:
        raw.parse_sql_rows(["periode", "kode_faskes", "no_rm"], [("2025-03", hc.PKM, "123")],
                           "id", "Asia/Jakarta")
    assert err.value.rule == "F08" and "'no_rm'" in err.value.detail
    # nothing of those files reached the row tables
    assert con.execute("SELECT count(*) FROM raw.submission_row").fetchone()[0] == 0
