"""Great Expectations suites, defined in code: one function per warehouse table.

Each function returns a fresh `gx.ExpectationSuite` (GX 1.x). Sets that come from data (registry
codes, catalogue codes, rule ids) are arguments, so a suite validates against the reference
loaded in the same run. GX is imported inside the functions (it takes seconds to import, and the
Dagster code location must load fast). The exact structural checks run in SQL (`clean_checks.py`).
"""

from collections.abc import Iterable
from typing import Any

from kolab_pipeline.catalog import FORMS

PERIOD_REGEX = r"^\d{4}-(?:0[1-9]|1[0-2])$"
SOURCE_KINDS = ["file", "sql", "dhis2"]


def _gx() -> tuple[Any, Any]:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def raw_submission_row() -> Any:
    """`raw.submission_row`: lineage keys present and unique, row numbers as a spreadsheet shows."""
    gx, gxe = _gx()
    return gx.ExpectationSuite(name="raw_submission_row", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="raw_row_id"),
        gxe.ExpectColumnValuesToBeUnique(column="raw_row_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="file_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="row_number"),
        gxe.ExpectColumnValuesToBeBetween(column="row_number", min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="source_kind", value_set=SOURCE_KINDS),
        gxe.ExpectColumnValuesToNotBeNull(column="received_at"),
    ])


def clean_submission(registry_codes: Iterable[str]) -> Any:
    """`clean.submission`: one current version per facility × period × form (compound unique on
    the current rows), facility resolved to the registry, period `YYYY-MM`, known form."""
    gx, gxe = _gx()
    return gx.ExpectationSuite(name="clean_submission", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="submission_id"),
        gxe.ExpectColumnValuesToBeUnique(column="submission_id"),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["kode_faskes", "period", "form", "version"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["kode_faskes", "period", "form"],
                                            row_condition="is_current == True",
                                            condition_parser="pandas"),
        gxe.ExpectColumnValuesToNotBeNull(column="kode_faskes"),
        gxe.ExpectColumnValuesToBeInSet(column="kode_faskes",
                                        value_set=sorted(set(registry_codes))),
        gxe.ExpectColumnValuesToNotBeNull(column="period"),
        gxe.ExpectColumnValuesToMatchRegex(column="period", regex=PERIOD_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="form", value_set=list(FORMS)),
        gxe.ExpectColumnValuesToBeBetween(column="version", min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="received_at"),
        gxe.ExpectColumnValuesToNotBeNull(column="raw_row_id"),
    ])


def clean_submission_value(element_codes: Iterable[str]) -> Any:
    """`clean.submission_value`: counts are ≥ 0 or NULL (blank = not reported), elements from the
    catalogue, one value per submission × element."""
    gx, gxe = _gx()
    return gx.ExpectationSuite(name="clean_submission_value", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0),
        gxe.ExpectColumnValuesToNotBeNull(column="data_element"),
        gxe.ExpectColumnValuesToBeInSet(column="data_element",
                                        value_set=sorted(set(element_codes))),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["submission_id", "data_element"]),
        gxe.ExpectColumnValuesToMatchRegex(column="period", regex=PERIOD_REGEX),
    ])


def clean_quarantine(rule_ids: Iterable[str]) -> Any:
    """`clean.quarantine`: every row names a catalogue rule and a readable reason (both
    languages)."""
    gx, gxe = _gx()
    return gx.ExpectationSuite(name="clean_quarantine", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="rule_id"),
        gxe.ExpectColumnValuesToBeInSet(column="rule_id", value_set=sorted(set(rule_ids))),
        gxe.ExpectColumnValuesToNotBeNull(column="reason_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="reason_en"),
        gxe.ExpectColumnValuesToNotBeNull(column="file_id"),
        gxe.ExpectColumnValuesToBeInSet(column="severity", value_set=["error"]),
    ])
