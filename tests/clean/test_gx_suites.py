"""Great Expectations suites (data_quality/gx_suites.py) and the runner
(data_quality/gx_runner.py): each suite on a clean frame and on a frame with issues (each bad row
commented with what it breaks)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from data_quality import gx_runner, gx_suites

TS = datetime(2025, 4, 3, tzinfo=UTC)


def failed(validation: gx_runner.FrameValidation) -> dict[tuple[str, str], int]:
    """(expectation, column) → unexpected count, for the expectations that failed."""
    return {(r["expectation"], r["column"]): r["unexpected_count"]
            for r in gx_runner.expectation_rows(validation.result) if not r["success"]}


def test_importing_the_data_quality_modules_does_not_import_gx() -> None:
    # a fresh interpreter: this session has imported GX already
    code = ("import sys, data_quality.clean_checks, data_quality.gx_runner, "
            "data_quality.gx_suites, assets.clean; "
            "sys.exit(1 if 'great_expectations' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def raw_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "raw_row_id": ["f1::2", "f1::3", "f2::2"], "file_id": ["f1", "f1", "f2"],
        "source_kind": ["file", "file", "dhis2"], "row_number": [2, 3, 2],
        "received_at": [TS, TS, TS],
    })


def test_raw_submission_row_suite() -> None:
    good = gx_runner.validate_frame(raw_rows(), gx_suites.raw_submission_row())
    assert good.success and failed(good) == {}
    bad = raw_rows()
    bad.loc[1, "raw_row_id"] = "f1::2"    # duplicate id
    bad.loc[2, "file_id"] = None          # no file
    bad.loc[2, "row_number"] = 0          # row numbers start at 1
    result = gx_runner.validate_frame(bad, gx_suites.raw_submission_row())
    assert not result.success
    assert failed(result) == {
        ("expect_column_values_to_be_unique", "raw_row_id"): 2,
        ("expect_column_values_to_not_be_null", "file_id"): 1,
        ("expect_column_values_to_be_between", "row_number"): 1,
    }


def submissions() -> pd.DataFrame:
    return pd.DataFrame({
        "submission_id": ["s1", "s2", "s3"], "kode_faskes": ["KP1", "KP1", "P1"],
        "period": ["2025-03", "2025-03", "2025-12"], "form": ["kia", "kia", "tb"],
        "version": [1, 2, 1], "is_current": [False, True, True], "received_at": [TS, TS, TS],
        "raw_row_id": ["r1", "r2", "r3"],
    })


def test_clean_submission_suite() -> None:
    good = gx_runner.validate_frame(submissions(), gx_suites.clean_submission(["KP1", "P1"]))
    assert good.success, failed(good)
    bad = submissions()
    bad.loc[0, "is_current"] = True       # two current versions of KP1 × 2025-03 × kia
    bad.loc[2, "period"] = "2025-13"      # not a month
    bad.loc[2, "kode_faskes"] = "KP-99"   # not in the registry
    result = gx_runner.validate_frame(bad, gx_suites.clean_submission(["KP1", "P1"]))
    assert failed(result) == {
        ("expect_compound_columns_to_be_unique", "kode_faskes, period, form"): 2,
        ("expect_column_values_to_match_regex", "period"): 1,
        ("expect_column_values_to_be_in_set", "kode_faskes"): 1,
    }


def values() -> pd.DataFrame:
    return pd.DataFrame({
        "submission_id": ["s2", "s2", "s3"], "kode_faskes": ["KP1", "KP1", "P1"],
        "period": ["2025-03", "2025-03", "2025-12"], "form": ["kia", "kia", "tb"],
        "data_element": ["kia_k1", "kia_k4", "tb_skrining"],
        "value": pd.array([12, None, 0], dtype="Int64"),
    })


def test_clean_submission_value_suite() -> None:
    codes = ["kia_k1", "kia_k4", "tb_skrining"]
    good = gx_runner.validate_frame(values(), gx_suites.clean_submission_value(codes))
    assert good.success, failed(good)     # NULL (not reported) is a valid value
    bad = values()
    bad.loc[0, "value"] = -1              # negative count
    bad.loc[1, "data_element"] = "kia_k1"  # s2 × kia_k1 twice
    result = gx_runner.validate_frame(bad, gx_suites.clean_submission_value(codes))
    assert failed(result) == {
        ("expect_column_values_to_be_between", "value"): 1,
        ("expect_compound_columns_to_be_unique", "submission_id, data_element"): 2,
    }
    unknown = values()
    unknown.loc[2, "data_element"] = "tb_unknown"   # not in the catalogue
    assert failed(gx_runner.validate_frame(unknown, gx_suites.clean_submission_value(codes))) == {
        ("expect_column_values_to_be_in_set", "data_element"): 1}


def quarantine() -> pd.DataFrame:
    return pd.DataFrame({
        "raw_row_id": ["r1", None], "file_id": ["f1", "f2"], "rule_id": ["V01", "F02"],
        "severity": ["error", "error"], "reason_id": ["Kode faskes 'X' …", "Berkas kosong"],
        "reason_en": ["Facility code 'X' …", "File is empty"],
    })


def test_clean_quarantine_suite() -> None:
    good = gx_runner.validate_frame(quarantine(), gx_suites.clean_quarantine(["V01", "F02"]))
    assert good.success, failed(good)
    bad = quarantine()
    bad.loc[0, "rule_id"] = "V99"        # not in the catalogue
    bad.loc[1, "reason_id"] = None       # no reason for the clerk
    result = gx_runner.validate_frame(bad, gx_suites.clean_quarantine(["V01", "F02"]))
    assert failed(result) == {
        ("expect_column_values_to_be_in_set", "rule_id"): 1,
        ("expect_column_values_to_not_be_null", "reason_id"): 1,
    }


def test_to_check_result_metadata_and_data_docs(tmp_path: Path) -> None:
    bad = raw_rows()
    bad.loc[2, "row_number"] = -4
    validation = gx_runner.validate_frame(bad, gx_suites.raw_submission_row(),
                                          docs_dir=tmp_path / "docs" / "raw")
    assert validation.docs_index == tmp_path / "docs" / "raw" / "index.html"
    assert validation.docs_index.exists()
    result = gx_runner.to_check_result(validation, severity=dg.AssetCheckSeverity.WARN)
    assert result.passed is False and result.severity == dg.AssetCheckSeverity.WARN
    md = result.metadata
    assert md["evaluated"].value == 7 and md["failed"].value == 1
    assert md["unexpected_total"].value == 1
    assert md["rows_validated"].value == 3
    assert "expect_column_values_to_be_between" in md["expectations"].value
    assert "f2::2" in md["failing_rows_sample"].value
    assert "f1::3" not in md["failing_rows_sample"].value
    assert md["data_docs"].value == str(validation.docs_index)
    # a second build replaces the site (latest run only)
    again = gx_runner.validate_frame(raw_rows(), gx_suites.raw_submission_row(),
                                     docs_dir=tmp_path / "docs" / "raw")
    assert gx_runner.to_check_result(again).passed is True
    assert len(list((tmp_path / "docs" / "raw" / "validations").rglob("*.html"))) == 1
