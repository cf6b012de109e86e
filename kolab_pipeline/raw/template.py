"""The monthly template (CSV, or XLSX with one form per sheet) → raw rows and cells.

`parse_sheet` finds the header row in a text grid and keeps the data rows; `sheet_frames` turns
a sheet into `raw.submission_row` (one data row of a file/sheet) and `raw.submission_cell` (one
data-element cell of that row) frames, values verbatim.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline.config import Settings
from kolab_pipeline.raw.headers import (
    HEADER_SCAN_ROWS,
    META_COLUMNS,
    Catalog,
    catalog,
    declared_forms,
    is_person_column,
    missing_key_columns,
    normalise_header,
)
from kolab_pipeline.raw.model import FileRejected, Parsed, Sheet
from kolab_pipeline.raw.readers import (
    blank_mask,
    decode_text,
    read_csv_grid,
    read_xlsx_grids,
    sniff_delimiter,
)

# Sheets that carry instructions, not data (the `kolab template` workbook has one).
INSTRUCTION_SHEETS = frozenset({"petunjuk", "petunjuk_pengisian", "instruksi", "keterangan",
                                "cara_pengisian", "readme", "info", "catatan"})
FORM_SHEET_NAMES = {"tb": {"tb", "tbc"}, "ptm": {"ptm"}, "kia": {"kia"},
                    "imun": {"imun", "imunisasi"}}


def parse_sheet(grid: np.ndarray, name: str, max_columns: int, max_rows: int,
                cat: Catalog | None = None) -> Sheet | None:
    """Find the header, map it, keep the data rows. None = a sheet with nothing in it.

    Raises `FileRejected` for a file-level fault (F02, F03, F04, F05, F08, F09).
    """
    cat = cat or catalog()
    where = f"sheet '{name}'" if name else "the file"
    blank = blank_mask(grid)
    if grid.size == 0 or blank.all():
        return None
    used_cols = np.flatnonzero(~blank.all(axis=0))
    width = int(used_cols[-1]) + 1
    if width > max_columns:
        raise FileRejected("F05", f"{where} has {width} columns; the limit is {max_columns} "
                                  "(ingest.max_columns in kolab.yaml)")
    grid, blank = grid[:, :width], blank[:, :width]

    header_idx = _header_row(grid, where, cat)
    headers = [None if v is None else str(v) for v in grid[header_idx]]
    canonical = cat.map_headers(headers)
    missing = missing_key_columns(canonical)
    if missing:
        raise FileRejected("F04", f"header in row {header_idx + 1} of {where} has no "
                                  f"{' or '.join(repr(m) for m in missing)} column")
    forms = cat.forms_of(canonical)
    if len(forms) > 1:
        detail = "; ".join(f"{f}: {', '.join(cols[:3])}{'…' if len(cols) > 3 else ''}"
                           for f, cols in sorted(forms.items()))
        raise FileRejected("F09", f"{where} has data-element columns of forms "
                                  f"{' and '.join(sorted(forms))} ({detail})")
    form = next(iter(forms), None)

    # Rows right under the header that are themselves headers (the template's label row).
    start = header_idx + 1
    while start < grid.shape[0] and cat.is_label_row(
            [v for v in grid[start] if v is not None and str(v).strip()]):
        start += 1
    body, body_blank = grid[start:], blank[start:]
    keep = ~body_blank.all(axis=1)
    data = body[keep]
    row_numbers = (np.flatnonzero(keep) + start + 1).astype(np.int64)
    if len(data) == 0:
        raise FileRejected("F02", f"{where} has a header (row {header_idx + 1}) but no data rows")
    if len(data) > max_rows:
        raise FileRejected("F03", f"{where} has {len(data)} data rows; the limit is {max_rows} "
                                  "(ingest.max_rows_per_file in kolab.yaml)")
    return Sheet(name, form, headers, canonical, data, row_numbers)


def _header_row(grid: np.ndarray, where: str, cat: Catalog) -> int:
    """Index of the header row among the first `HEADER_SCAN_ROWS` (F08 on a person column above
    or in it, F04 when there is none)."""
    for i in range(min(HEADER_SCAN_ROWS, grid.shape[0])):
        cells = [v for v in grid[i] if v is not None]
        person = [str(v).strip() for v in cells if is_person_column(v)]
        if person:
            raise FileRejected("F08", f"{where} row {i + 1} has person-identifying column(s) "
                                      f"{', '.join(repr(p) for p in person)}")
        if cat.is_header_row(cells):
            return i
    raise FileRejected("F04", "no header row with periode/kode_faskes/data-element columns in "
                              f"the first {HEADER_SCAN_ROWS} rows of {where}")


def sheet_frames(file_id: str, sheet: Sheet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows and cells of one sheet, built column-wise (numpy repeat/tile, no row loops)."""
    n = len(sheet.values)
    ids = np.array([f"{file_id}:{sheet.name}:{r}" for r in sheet.row_numbers.tolist()],
                   dtype=object)
    rows = {"raw_row_id": ids, "sheet": np.full(n, sheet.name, dtype=object),
            "row_number": sheet.row_numbers.astype(np.int32),
            "form": np.full(n, sheet.form, dtype=object)}
    for meta in META_COLUMNS:
        j = sheet.canonical.index(meta) if meta in sheet.canonical else None
        rows[meta] = sheet.values[:, j] if j is not None else np.full(n, None, dtype=object)
    cell_cols = [j for j, c in enumerate(sheet.canonical) if c not in META_COLUMNS]
    k = len(cell_cols)
    headers = np.array([sheet.headers[j] for j in cell_cols], dtype=object)
    elements = np.array([sheet.canonical[j] for j in cell_cols], dtype=object)
    cells = pd.DataFrame({
        "raw_row_id": np.repeat(ids, k),
        "column_index": np.tile(np.array(cell_cols, dtype=np.int32), n),
        "header": np.tile(headers, n),
        "data_element": np.tile(elements, n),
        "value_text": sheet.values[:, cell_cols].ravel() if k else np.empty(0, dtype=object),
    })
    # A column without a header is kept only where it holds something (padding is not data).
    if k and (headers == None).any():  # noqa: E711 (element-wise comparison)
        cells = cells[cells["header"].notna() | cells["value_text"].notna()]
    return pd.DataFrame(rows), cells.reset_index(drop=True)


def _sheets_to_parsed(file_id: str, sheets: list[Sheet], file_format: str, **kw: Any) -> Parsed:
    frames = [sheet_frames(file_id, s) for s in sheets]
    rows = pd.concat([f[0] for f in frames], ignore_index=True)
    cells = pd.concat([f[1] for f in frames], ignore_index=True)
    return Parsed(file_format, rows, cells, len(rows),
                  sheets=";".join(s.name for s in sheets if s.name), **kw)


def _check_declared_form(sheets: list[Sheet], rel_path: str, multi_sheet: bool) -> None:
    """A sheet named like a form, or (single-sheet files) a path naming a form, must agree with
    the header: a TB file carrying PTM columns is a mix-up to send back, not a PTM report (F09)."""
    for s in sheets:
        by_sheet = {f for f, names in FORM_SHEET_NAMES.items()
                    if normalise_header(s.name) in names}
        declared = by_sheet or (set() if multi_sheet else declared_forms(rel_path))
        if s.form and declared and s.form not in declared:
            where = f"sheet '{s.name}'" if s.name else "the file"
            what = f"sheet name '{s.name}'" if by_sheet else "its folder/file name"
            raise FileRejected("F09", f"{where} has data-element columns of form {s.form} but "
                                      f"{what} says {'/'.join(sorted(declared))}")


def parse_template_csv(reader: duckdb.DuckDBPyConnection, data: bytes, file_id: str,
                       rel_path: str, settings: Settings) -> Parsed:
    text, encoding = decode_text(data)
    if not text.strip():
        raise FileRejected("F02", "the file has no content (only whitespace)")
    delimiter = sniff_delimiter(text)
    grid = read_csv_grid(reader, text, delimiter)
    ing = settings.config.ingest
    sheet = parse_sheet(grid, "", ing.max_columns, ing.max_rows_per_file)
    if sheet is None:
        raise FileRejected("F02", "the file has no content (only empty lines)")
    _check_declared_form([sheet], rel_path, multi_sheet=False)
    return _sheets_to_parsed(file_id, [sheet], "csv", encoding=encoding, delimiter=delimiter)


def parse_template_xlsx(data: bytes, file_id: str, rel_path: str, settings: Settings) -> Parsed:
    ing = settings.config.ingest
    grids = read_xlsx_grids(data, max_uncompressed=int(ing.max_xlsx_uncompressed_mb * 1048576),
                            max_rows=ing.max_rows_per_file, max_columns=ing.max_columns)
    sheets: list[Sheet] = []
    no_header: list[str] = []
    for name, grid in grids:
        if normalise_header(name) in INSTRUCTION_SHEETS:
            continue
        try:
            sheet = parse_sheet(grid, name, ing.max_columns, ing.max_rows_per_file)
        except FileRejected as exc:
            if exc.rule == "F04":  # decided below: fatal only when no sheet has data
                no_header.append(f"{name}: {exc.detail}")
                continue
            raise
        if sheet is not None:
            sheets.append(sheet)
    if no_header:  # a data sheet we cannot read would be lost: the whole file goes back
        raise FileRejected("F04", "; ".join(no_header))
    if not sheets:
        raise FileRejected("F02", "the workbook has no data in any sheet")
    _check_declared_form(sheets, rel_path, multi_sheet=len(sheets) > 1)
    return _sheets_to_parsed(file_id, sheets, "xlsx")
