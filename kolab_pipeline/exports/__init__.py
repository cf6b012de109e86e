"""Exports of the analyst-facing tables: Parquet files (`parquet`), an Excel workbook per
kab/kota × month for Dinkes staff (`workbook`, sheets in `sheets`), and an optional copy in a
PostgreSQL warehouse (`postgres`). This module re-exports their public names.
"""

from __future__ import annotations

from kolab_pipeline.exports.parquet import (
    analyst_tables,
    export_path,
    partition_column,
    write_parquet,
)
from kolab_pipeline.exports.postgres import (
    PG_TYPES,
    WHOLE_LAYERS,
    PgCopyResult,
    PgExportError,
    copy_to_postgres,
    pg_ddl,
    pg_type,
)
from kolab_pipeline.exports.sheets import SHEETS, Col, Sheet
from kolab_pipeline.exports.workbook import (
    FORMULA_PREFIXES,
    MIN_PARALLEL,
    is_formula_like,
    kabkota_codes,
    month_scope,
    neutralise_csv,
    set_cell,
    sheet_rows,
    workbook_path,
    write_workbook,
    write_workbooks,
)

__all__ = ["FORMULA_PREFIXES", "MIN_PARALLEL", "PG_TYPES", "SHEETS", "WHOLE_LAYERS", "Col",
           "PgCopyResult", "PgExportError", "Sheet", "analyst_tables", "copy_to_postgres",
           "is_formula_like", "kabkota_codes", "month_scope", "neutralise_csv", "pg_ddl", "pg_type",
           "set_cell", "sheet_rows", "workbook_path", "write_parquet", "write_workbook",
           "export_path", "partition_column",
           "write_workbooks"]
