"""End to end: sample generator → raw ingestion → clean layer, checked against the generator's
answer key (`ground_truth/`), which the pipeline never reads."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from kolab_pipeline import clean, raw, reference
from kolab_pipeline import sample as sample_data
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import connect, ensure_schema

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, Path]:
    home = tmp_path_factory.mktemp("e2e") / "home"
    sample_data.generate(home, seed=1, as_of=date(2025, 1, 20), scale="kabupaten", months=3,
                         messy=True)
    settings = Settings.load(home)
    con = connect(settings.paths.warehouse)
    ensure_schema(con)
    reference.load_catalogues(con)
    reference.load_registry(con, settings)
    raw.ingest_landing(con, settings)
    clean.build_clean(con, settings)
    yield con, home
    con.close()


Built = tuple[duckdb.DuckDBPyConnection, Path]


def test_quarantine_is_exactly_the_invalid_rows(built: Built) -> None:
    con, home = built
    truth = pd.read_csv(home / "ground_truth" / "invalid_rows.csv", dtype=str,
                        keep_default_na=False)
    expected = {(f, s, int(r), rule)
                for f, s, r, rule in truth[["file", "sheet", "row_number", "rule_id"]].values}
    got = {(f, s, int(r), rule) for f, s, r, rule in con.execute(
        "SELECT source_path, sheet, row_number, rule_id FROM clean.quarantine "
        "WHERE raw_row_id IS NOT NULL").fetchall()}
    assert len(expected) > 20   # the sample really has invalid rows of every kind
    assert {e[3] for e in expected} == {"V01", "V05", "V05F", "V06", "V06N", "V15"}
    assert got == expected


def test_broken_files_are_quarantined(built: Built) -> None:
    con, home = built
    truth = pd.read_csv(home / "ground_truth" / "broken_files.csv", dtype=str)
    got = set(con.execute("SELECT source_path, rule_id FROM clean.quarantine "
                          "WHERE raw_row_id IS NULL").fetchall())
    assert got == set(map(tuple, truth[["file", "rule_id"]].values))


def test_every_other_row_is_kept(built: Built) -> None:
    con, _ = built
    acc = clean.accounting(con)
    assert acc["ok"], acc
    n_raw, n_invalid = con.execute(
        "SELECT (SELECT count(*) FROM raw.submission_row), "
        "(SELECT count(DISTINCT raw_row_id) FROM clean.quarantine)").fetchone()
    assert acc["kept"] == n_raw - n_invalid and acc["quarantined"] == n_invalid


def test_resubmissions_resolve_to_the_final_values(built: Built) -> None:
    con, home = built
    truth = pd.read_csv(home / "ground_truth" / "resubmissions.csv",
                        dtype={"value": "Int64", "own_value": "Int64", "version": "Int64"})
    # the value in force: `own_value` (= `value` as written, except for a declared area recap,
    # whose own share is counted — issue 16; `value` vs reported_value is checked below)
    truth["value"] = truth["own_value"]
    current = con.execute("""
        SELECT submission.kode_faskes, submission.period, submission.form, submission.version,
               submission.source_path AS file, current_value.data_element, current_value.value
          FROM clean.submission_value current_value
          JOIN clean.submission submission USING (submission_id)""").df()
    joined = truth.merge(current, on=["kode_faskes", "period", "form", "data_element"], how="left",
                         suffixes=("_truth", "_clean"), indicator=True)
    assert len(truth) > 100 and (joined["_merge"] == "both").all()
    assert (joined["file_truth"] == joined["file_clean"]).all()
    assert (joined["version_truth"] == joined["version_clean"]).all()
    same = (joined["value_truth"] == joined["value_clean"]).fillna(False) | (
        joined["value_truth"].isna() & joined["value_clean"].isna())
    assert same.all(), joined[~same].head()


def test_area_recaps_resolve_to_the_own_share(built: Built) -> None:
    """Sample puskesmas that send area recaps (lingkup_laporan = wilayah, in the file or by
    kolab.yaml): the clean layer keeps the recap, subtracts the network's current valid reports
    and counts exactly the generated own share (ground_truth/area_recaps.csv)."""
    con, home = built
    truth = pd.read_csv(home / "ground_truth" / "area_recaps.csv",
                        dtype={"reported_value": "Int64", "network_value": "Int64",
                               "own_value": "Int64"})
    assert set(truth["lingkup_source"]) == {"column", "kolab.yaml"} and len(truth) > 100
    got = con.execute("""
        SELECT submission.kode_faskes, submission.period, submission.form,
               submission.lingkup_source, v.data_element, v.reported_value, v.network_value,
               v.value AS own_value, v.lingkup_laporan
          FROM clean.submission_value v JOIN clean.submission submission USING (submission_id)
         WHERE v.lingkup_laporan = 'wilayah'""").df()
    keys = ["kode_faskes", "period", "form", "data_element"]
    joined = truth.merge(got, on=keys, how="outer", suffixes=("_truth", "_clean"),
                         indicator=True)
    assert (joined["_merge"] == "both").all(), joined[joined["_merge"] != "both"].head()
    assert (joined["lingkup_source_truth"] == joined["lingkup_source_clean"]).all()
    for col in ("reported_value", "network_value", "own_value"):
        a, b = joined[f"{col}_truth"], joined[f"{col}_clean"]
        same = (a == b).fillna(False) | (a.isna() & b.isna())
        assert same.all(), (col, joined[~same].head())
    # a recap is never smaller than its network here (the sample's recaps include it)
    assert con.execute("SELECT count(*) FROM clean.validation_flag WHERE rule_id = 'L02'"
                       ).fetchone()[0] == 0
    # resubmitted recaps: the value in force is the own share, what was written is kept
    resub = pd.read_csv(home / "ground_truth" / "resubmissions.csv",
                        dtype={"value": "Int64", "own_value": "Int64"})
    current = con.execute("SELECT kode_faskes, period, form, data_element, value, reported_value "
                          "FROM clean.submission_value").df()
    both = resub.merge(current, on=keys, suffixes=("_truth", "_clean"))
    assert len(both) == len(resub)
    for truth_col, clean_col in (("own_value", "value_clean"), ("value_truth", "reported_value")):
        a, b = both[truth_col], both[clean_col]
        assert ((a == b).fillna(False) | (a.isna() & b.isna())).all(), truth_col


@pytest.fixture(scope="module")
def built_10_months(tmp_path_factory: pytest.TempPathFactory
                    ) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """Ten clean months: enough for a usual own level (6 months) before the undeclared area
    recaps of the last four."""
    home = tmp_path_factory.mktemp("e2e10") / "home"
    sample_data.generate(home, seed=3, as_of=date(2025, 1, 20), scale="kabupaten", months=10,
                         messy=False)
    settings = Settings.load(home)
    con = connect(settings.paths.warehouse)
    ensure_schema(con)
    reference.load_catalogues(con)
    reference.load_registry(con, settings)
    raw.ingest_landing(con, settings)
    clean.build_clean(con, settings)
    yield con, home
    con.close()


def test_an_undeclared_area_recap_is_warned_and_nothing_else(built_10_months: Built) -> None:
    """The sample's one puskesmas that sends recaps as own services (summary.json
    area_recaps.undeclared) gets warning L03 from its third recap; no other puskesmas does."""
    con, home = built_10_months
    summary = json.loads((home / "ground_truth" / "summary.json").read_text(encoding="utf-8"))
    (case,) = summary["area_recaps"]["undeclared"]
    flagged = con.execute("SELECT kode_faskes, form, period FROM clean.validation_flag "
                          "WHERE rule_id = 'L03' ORDER BY period").fetchall()
    assert {(k, f) for k, f, _ in flagged} == {(case["kode_faskes"], case["form"])}
    assert {p for _, _, p in flagged} <= set(case["periods"])
    assert flagged[-1][2] == case["periods"][-1]
