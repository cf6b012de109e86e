"""Raw layer: every submission exactly as received, with lineage — nothing is lost here.

Sources: the landing folder `KOLAB_HOME/landing/**` (template CSV/XLSX, DHIS2 `dataValueSets`)
and an optional SQL source. Tables (grain in `catalog/tables.yaml`):

- `raw.landing_file` — one row per distinct content (sha256 = `file_id`) or SQL pull, `ingested`
  or `rejected` with a file rule (F01…F10); `n_rows_read = n_rows_kept + n_rows_rejected`.
- `raw.landing_path` — every path × content seen.
- `raw.submission_row` — one data row of a file/sheet (or SQL row, or DHIS2 orgUnit × period ×
  form), its template cells verbatim as text.
- `raw.submission_cell` — one data-element cell of a raw row, verbatim (NULL = empty cell).

Modules: `headers` (header → column), `readers` (bytes → grids), `template`, `dhis2`,
`sql_source` (parsers), `landing` (the folder), `writer` (bulk writes), `fast_csv` (batched plain
CSVs), `ingest` (the runs), `checks` (queries of the asset checks).
"""

from kolab_pipeline.raw.checks import rejected_files, unreconciled_files
from kolab_pipeline.raw.dhis2 import parse_dhis2
from kolab_pipeline.raw.ingest import ingest_landing, ingest_sql
from kolab_pipeline.raw.landing import detect_format
from kolab_pipeline.raw.model import (
    FileRejected,
    IngestSummary,
    Parsed,
    new_run_id,
    reject_reason,
    rule_messages,
)
from kolab_pipeline.raw.readers import close_reader, read_xlsx_grids
from kolab_pipeline.raw.sql_source import parse_sql_rows
from kolab_pipeline.raw.template import parse_template_csv, parse_template_xlsx

__all__ = [
    "FileRejected",
    "IngestSummary",
    "Parsed",
    "close_reader",
    "detect_format",
    "ingest_landing",
    "ingest_sql",
    "new_run_id",
    "parse_dhis2",
    "parse_sql_rows",
    "parse_template_csv",
    "parse_template_xlsx",
    "read_xlsx_grids",
    "reject_reason",
    "rejected_files",
    "rule_messages",
    "unreconciled_files",
]
