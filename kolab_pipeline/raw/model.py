"""The raw layer's values: a file rejection, what a parser yields, what a run did.

`FileRejected` carries a file rule (F01…F10, `catalog/validation_rules.csv`) and the detail; the
ingest turns it into a `rejected` row of `raw.landing_file`. `Parsed` holds the
`raw.submission_row` and `raw.submission_cell` frames of one file (grain in `catalog/tables.yaml`);
`ImportSummary` what a DHIS2 file's data values came to (DHIS2's ImportSummary).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from kolab_pipeline import rules
from kolab_pipeline.warehouse import table

ROW_COLUMNS = table("raw.submission_row").column_names
CELL_COLUMNS = table("raw.submission_cell").column_names
LANDING_FILE_COLUMNS = table("raw.landing_file").column_names
LANDING_PATH_COLUMNS = table("raw.landing_path").column_names
# Template columns that not every reader has: filled with NULL by `Parsed`.
OPTIONAL_ROW_COLUMNS = ("lingkup_laporan",)


def rule_messages() -> dict[str, str]:
    """English message per rule id, from the rule catalogue (`kolab_pipeline.rules`)."""
    return {rid: r.message_en for rid, r in rules.rules().items()}


def reject_reason(path: str, rule: str, detail: str) -> str:
    """`<file>: <catalogue message> — <what exactly was wrong>`."""
    return f"{path}: {rule_messages()[rule]} — {detail}"


class FileRejected(Exception):
    """A file-level rule broken while reading one file (caught per file; the run goes on)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail

    def __reduce__(self) -> tuple[type[FileRejected], tuple[str, str]]:
        # pickled as (rule, detail): a worker process hands a rejection back to the run
        return FileRejected, (self.rule, self.detail)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


_COUNTERS = ("files_seen", "files_ingested", "files_rejected", "files_skipped", "files_duplicate",
             "files_ignored", "files_batched", "rows_read", "rows_kept", "rows_rejected", "cells",
             "bytes_read", "values_imported", "values_updated", "values_ignored")


@dataclass
class IngestSummary:
    """What one ingestion run did (also the Dagster metadata of `raw/*`)."""

    run_id: str
    files_seen: int = 0
    files_ingested: int = 0
    files_rejected: int = 0
    files_skipped: int = 0          # content already ingested (unchanged, or re-seen)
    files_duplicate: int = 0        # new path whose content was already ingested elsewhere
    files_ignored: int = 0          # manifests, mapping, hidden/lock files: not submissions
    files_batched: int = 0          # of files_ingested: plain CSVs written by the fast path
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    cells: int = 0
    bytes_read: int = 0
    values_imported: int = 0        # DHIS2 data values: new keys
    values_updated: int = 0         # … keys already in an earlier DHIS2 file
    values_ignored: int = 0         # … not counted (reasons in the warnings and the manifest)
    seconds: float = 0.0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (path, rule, reason)
    warnings: list[str] = field(default_factory=list)
    # DHIS2 files: (path, imported, updated, ignored, conflicts)
    dhis2_files: list[tuple[str, int, int, int, str]] = field(default_factory=list)

    @property
    def files_per_s(self) -> float:
        return (self.files_ingested + self.files_rejected) / self.seconds if self.seconds else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def merge(self, other: IngestSummary) -> IngestSummary:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        self.rejected += other.rejected
        self.warnings += other.warnings
        self.dhis2_files += other.dhis2_files
        return self


@dataclass
class ImportSummary:
    """A DHIS2 file's data values, as DHIS2's ImportSummary counts them: `imported` (a key not
    seen in an earlier DHIS2 file), `updated` (seen before), `ignored`; `conflicts` = the ignored
    values per reason and object (`raw.landing_file.import_conflicts`)."""

    imported: int = 0
    updated: int = 0
    ignored: int = 0
    conflicts: str = ""
    keys: set[tuple[str, str, str, str]] = field(default_factory=set)  # counted value keys

    def line(self) -> str:
        return (f"import summary: {self.imported} imported, {self.updated} updated, "
                f"{self.ignored} ignored" + (f" ({self.conflicts})" if self.conflicts else ""))


@dataclass
class Sheet:
    """One parsed sheet: the data rows (verbatim text) with their header mapping."""

    name: str
    form: str | None
    headers: list[str | None]
    canonical: list[str | None]
    values: np.ndarray            # object array, data rows × columns
    row_numbers: np.ndarray       # 1-based, as a spreadsheet shows them


@dataclass
class Parsed:
    """What one landing file yields before it is written."""

    file_format: str
    rows: pd.DataFrame            # raw.submission_row columns (lineage filled by the caller)
    cells: pd.DataFrame           # raw.submission_cell columns
    n_rows_read: int
    encoding: str | None = None
    delimiter: str | None = None
    sheets: str = ""
    received_at: datetime | None = None   # from the content (DHIS2 completeDate)
    received_source: str | None = None
    import_summary: ImportSummary | None = None   # DHIS2 files only

    def __post_init__(self) -> None:
        # Optional template columns a reader does not produce (DHIS2 payloads, the SQL source's
        # long form have no report scope) are NULL cells, so every reader yields ROW_COLUMNS.
        for column in OPTIONAL_ROW_COLUMNS:
            if column not in self.rows.columns:
                self.rows[column] = None
