"""The clean multi-asset and its checks in Dagster: keys registered in the code location, a clean
setup passes every check, a duplicated current version fails the blocking check and stops
downstream assets."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.clean import clean_tables
from data_quality import clean_checks
from kolab_pipeline import clean
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.resources import build_resources
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support.clean import Raw, setup_reference

CHECKS = [clean_checks.every_raw_row_accounted, clean_checks.one_current_version,
          clean_checks.keys_resolved, clean_checks.gx_raw_submission_row,
          clean_checks.gx_clean_submission, clean_checks.gx_clean_submission_value,
          clean_checks.gx_clean_quarantine]


def test_checks_are_registered_on_the_clean_assets() -> None:
    from kolab_pipeline.orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.asset_check_keys}
    assert {
        "clean/submission:every_raw_row_accounted", "clean/submission:one_current_version",
        "clean/submission:keys_resolved", "clean/submission:gx_clean_submission",
        "clean/submission_value:gx_clean_submission_value", "clean/quarantine:gx_clean_quarantine",
        "raw/submission_row:gx_raw_submission_row",
    } <= keys
    for name in ("submission", "submission_value", "submission_value_history", "quarantine",
                 "validation_flag"):
        key = dg.AssetKey(["clean", name])
        assert graph.get(key).group_name == "clean"
    specs = {c.get_spec_for_check_key(k).name: c.get_spec_for_check_key(k).blocking
             for c in CHECKS for k in c.check_keys}
    assert specs["one_current_version"] and specs["keys_resolved"]
    assert specs["every_raw_row_accounted"]
    assert not specs["gx_clean_submission"]


@pytest.fixture
def home_with_raw(settings: Settings) -> Path:
    """Registry, catalogue and a few raw rows (one resubmission, one quarantined row)."""
    con = connect(settings.paths.warehouse)
    ensure_schema(con)
    setup_reference(con, settings)
    raw = Raw(con)
    raw.file("a.csv", received_at="2025-04-03T10:00:00+07:00")
    raw.file("b.csv", received_at="2025-04-06T10:00:00+07:00")
    raw.row("a.csv", 2, "kia", "2025-03", "KP3672001", {"kia_k1": "10", "kia_k4": "4"})
    raw.row("a.csv", 3, "kia", "2025-03", "KP-99", {"kia_k1": "1"})
    raw.row("b.csv", 2, "kia", "2025-03", "KP3672001", {"kia_k1": "11", "kia_k4": "4"})
    raw.row("b.csv", 3, "tb", "Maret 2025", "P3672010201", {"tb_skrining": "1.200"})
    con.close()
    return settings.paths.home


@dg.asset(key=["compliance", "probe"], deps=[dg.AssetKey(["clean", "submission"])])
def downstream_probe() -> None:
    """Stands for the compliance layer: must not run when a blocking clean check fails."""


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_materialize_clean_setup_passes_every_check(home_with_raw: Path,
                                                    settings: Settings) -> None:
    result = dg.materialize([clean_tables, *CHECKS, downstream_probe],
                            resources=build_resources(settings))
    assert result.success
    evals = _evaluations(result)
    # every check whose asset is in the run (the raw asset is not: its check is invoked below)
    in_run = {spec.name for check in CHECKS for spec in check.check_specs}
    assert set(evals) == in_run - {"gx_raw_submission_row"}
    assert all(e.passed for e in evals.values()), {n: e.passed for n, e in evals.items()}
    acc = evals["every_raw_row_accounted"].metadata
    # 4 raw rows: 3 kept (KP v1, KP v2, puskesmas tb), 1 quarantined (KP-99)
    assert (acc["raw_rows"].value, acc["kept"].value, acc["quarantined"].value) == (4, 3, 1)
    docs = Path(evals["gx_clean_submission"].metadata["data_docs"].value)
    assert docs == settings.paths.data_docs / "clean_submission" / "index.html" and docs.exists()
    top = (settings.paths.data_docs / "index.html").read_text(encoding="utf-8")
    for suite in ("clean_submission", "clean_submission_value", "clean_quarantine"):
        assert f'href="{suite}/index.html"' in top
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    sub_md = mats["clean/submission"].materialization.metadata
    assert sub_md["dagster/row_count"].value == 3 and sub_md["resubmitted_versions"].value == 1
    assert "| V01" in mats["clean/quarantine"].materialization.metadata["by_rule"].value
    assert sub_md["data_docs"].value == str(settings.paths.data_docs / "index.html")
    assert "compliance/probe" in mats


def test_duplicated_current_version_fails_the_blocking_check(
        home_with_raw: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real_build = clean.build_clean

    def build_with_duplicate(con, s):  # noqa: ANN001, ANN202
        summary = real_build(con, s)
        # deliberately corrupt: version 1 of KP3672001 × 2025-03 × kia is current as well
        con.execute("UPDATE clean.submission SET is_current = true "
                    "WHERE version = 1 AND form = 'kia'")
        return summary

    monkeypatch.setattr(clean, "build_clean", build_with_duplicate)
    result = dg.materialize([clean_tables, *CHECKS, downstream_probe],
                            resources=build_resources(settings), raise_on_error=False)
    evals = _evaluations(result)
    dup = evals["one_current_version"]
    assert dup.passed is False and dup.metadata["failed_groups"].value == 1
    assert "KP3672001" in dup.metadata["sample"].value
    assert evals["gx_clean_submission"].passed is False    # the GX suite sees it too (warning)
    assert evals["every_raw_row_accounted"].passed is True
    # blocking: the downstream asset did not materialise and the run failed
    assert not result.success
    mats = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "clean/submission" in mats and "compliance/probe" not in mats


def _check_after(settings: Settings, check: dg.AssetChecksDefinition,
                 sql: str) -> dg.AssetCheckResult:
    """Change the warehouse with `sql`, then invoke `check` directly on it."""
    con = connect(settings.paths.warehouse)
    con.execute(sql)
    con.close()
    res = build_resources(settings)
    return check(warehouse=res["warehouse"], kolab=res["kolab"])


def test_gx_raw_submission_row_check_invoked_directly(home_with_raw: Path,
                                                      settings: Settings) -> None:
    res = build_resources(settings)
    result = clean_checks.gx_raw_submission_row(warehouse=res["warehouse"], kolab=res["kolab"])
    assert result.passed is True
    assert result.metadata["rows_validated"].value == 4 and result.metadata["table_rows"].value == 4
    assert result.metadata["sampled"].value is False
    # a duplicated raw_row_id is what the suite is for
    result = _check_after(settings, clean_checks.gx_raw_submission_row,
                          "INSERT INTO raw.submission_row SELECT * FROM raw.submission_row "
                          "WHERE row_number = 3 AND source_path = 'a.csv'")
    assert result.passed is False and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["unexpected_total"].value == 2   # both copies of the id


def test_validation_frame_samples_whole_groups_deterministically(
        con, settings: Settings) -> None:  # noqa: ANN001
    # 200 raw rows in 40 files of 5 rows; a limit of 50 rows → k = ceil(200 / 50) = 4: keep the
    # files whose hash % 4 = 0 (about a quarter of them)
    con.execute("""INSERT INTO raw.submission_row (raw_row_id, file_id, row_number)
                   SELECT 'f' || (i // 5) || '::' || i, 'f' || (i // 5), i + 1
                     FROM range(200) t(i)""")
    full, n = clean_checks.validation_frame(con, "raw.submission_row", "file_id", max_rows=200)
    assert (len(full), n) == (200, 200)
    sample, n = clean_checks.validation_frame(con, "raw.submission_row", "file_id", max_rows=50)
    again, _ = clean_checks.validation_frame(con, "raw.submission_row", "file_id", max_rows=50)
    assert n == 200 and 0 < len(sample) < 200
    assert sorted(sample["raw_row_id"]) == sorted(again["raw_row_id"])       # deterministic
    assert (sample.groupby("file_id").size() == 5).all()                     # whole files only
    expected_files = {r[0] for r in con.execute(
        "SELECT DISTINCT file_id FROM raw.submission_row WHERE hash(file_id) % 4 = 0").fetchall()}
    assert set(sample["file_id"]) == expected_files


def test_gx_clean_submission_flags_a_facility_missing_from_the_registry(home_with_raw: Path,
                                                                       settings: Settings) -> None:
    """The suite's "facility in registry" value set is the registry ∩ the frame's codes (fast at
    national scale); a code outside the registry must still fail it."""
    res = build_resources(settings)
    dg.materialize([clean_tables], resources=res)
    result = clean_checks.gx_clean_submission(warehouse=res["warehouse"], kolab=res["kolab"])
    assert result.passed is True
    result = _check_after(settings, clean_checks.gx_clean_submission,
                          "UPDATE clean.submission SET kode_faskes = 'KP9999999' "
                          "WHERE submission_id = (SELECT min(submission_id) FROM clean.submission)")
    assert result.passed is False and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["unexpected_total"].value == 1
