"""The optional SQL source (SQLAlchemy): a table or a query, in the wide template or the long
`data_element,value` form, pulled as text and turned into raw rows and cells.

One pull is one `raw.landing_file` row (`source_kind='sql'`, `file_id` = sha256 of the rows).
Grain: a wide source gives one `raw.submission_row` per source row; a long one, one per
facility × period × form, as DHIS2 does.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np
import pandas as pd

from kolab_pipeline.raw.headers import catalog, is_person_column, normalise_header
from kolab_pipeline.raw.model import CELL_COLUMNS, FileRejected, Parsed
from kolab_pipeline.raw.readers import parse_timestamp
from kolab_pipeline.raw.template import parse_sheet, sheet_frames

_SQL_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.]")


def sql_label(table_name: str | None, query: str | None) -> str:
    """A label for lineage that never contains the URL (it may hold a password)."""
    if table_name:
        return f"sql:{_SQL_LABEL_SAFE.sub('_', table_name)}"
    return f"sql:query:{hashlib.sha256((query or '').encode()).hexdigest()[:12]}"


def fetch_sql_rows(url: str, table_name: str | None = None,
                   query: str | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Pull the source with every column cast to text **on the server** (values verbatim as the
    source holds them: `5`, `2025-03`), except `received_at`, which stays a timestamp."""
    import sqlalchemy as sa

    if bool(table_name) == bool(query):
        raise ValueError("give exactly one of table or query for the SQL source")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if table_name:
                schema, _, name = table_name.rpartition(".")
                src = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                cols = [c.name for c in src.columns]
                source = src
            else:
                probe = conn.execute(sa.text(f"SELECT * FROM ({query}) AS q LIMIT 0"))
                cols = list(probe.keys())
                source = sa.text(query).columns(*[sa.column(c) for c in cols]).subquery("q")
            select = sa.select(*[
                source.c[c].label(c) if normalise_header(c) == "received_at"
                else sa.cast(source.c[c], sa.String).label(c) for c in cols])
            rows = [tuple(r) for r in conn.execute(select).fetchall()]
    finally:
        engine.dispose()
    return cols, rows


def pull_id(cols: list[str], rows: list[tuple[Any, ...]]) -> tuple[str, list[int]]:
    """sha256 of the pulled rows, independent of the order the database returned them in.

    Returns the id and the order (indices) in which rows get stable row numbers.
    """
    lines = [json.dumps([None if v is None else str(v) for v in r], ensure_ascii=False)
             for r in rows]
    order = sorted(range(len(lines)), key=lines.__getitem__)
    h = hashlib.sha256(json.dumps(cols).encode())
    for i in order:
        h.update(lines[i].encode())
        h.update(b"\n")
    return h.hexdigest(), order


def parse_sql_rows(cols: list[str], rows: list[tuple[Any, ...]], file_id: str, tz: str) -> Parsed:
    """SQL rows (already text) → raw rows and cells; wide or long layout from the column names."""
    norm = [normalise_header(c) for c in cols]
    person = [c for c in cols if is_person_column(c)]
    if person:
        raise FileRejected("F08", "person-identifying column(s) "
                                  f"{', '.join(repr(p) for p in person)}")
    if not rows:
        raise FileRejected("F02", "the query returned no rows")
    frame = pd.DataFrame.from_records(rows, columns=[f"c{j}" for j in range(len(cols))])
    received = (frame[f"c{norm.index('received_at')}"].map(lambda v: parse_timestamp(v, tz))
                if "received_at" in norm else pd.Series([None] * len(frame)))
    if {"data_element", "value"} <= set(norm):
        return _parse_long(frame, norm, received, file_id)
    # Wide template: the same header mapping as a landing file, row numbers 1…n.
    values = frame.to_numpy(dtype=object)
    keep = [j for j, n in enumerate(norm) if n != "received_at"]
    grid = np.empty((len(values) + 1, len(keep)), dtype=object)
    grid[0] = [cols[j] for j in keep]
    grid[1:] = values[:, keep]
    sheet = parse_sheet(grid, "", max_columns=10_000, max_rows=10_000_000, cat=catalog())
    assert sheet is not None
    sheet.row_numbers = sheet.row_numbers - 1   # no header line in a table: rows are 1…n
    rows_df, cells = sheet_frames(file_id, sheet)
    kept_index = sheet.row_numbers - 1
    rows_df["received_at"] = pd.to_datetime(received, utc=True).to_numpy()[kept_index]
    return Parsed("sql", rows_df, cells, len(rows))


def _parse_long(frame: pd.DataFrame, norm: list[str], received: pd.Series,
                file_id: str) -> Parsed:
    """Long canonical form: one raw row per periode × kode_faskes × form, one cell per value."""
    cat = catalog()
    get = {n: frame[f"c{j}"] for j, n in enumerate(norm)}
    for need in ("periode", "kode_faskes"):
        if need not in get:
            raise FileRejected("F04", f"long-form source has no '{need}' column")
    de = get["data_element"].astype("object")
    known = de.where(de.isin(list(cat.element_form)))
    form = get["form"] if "form" in get else known.map(cat.element_form)
    long = pd.DataFrame({"periode": get["periode"], "kode_faskes": get["kode_faskes"],
                         "form": form.astype("object"), "header": de,
                         "data_element": known.astype("object"),
                         "value_text": get["value"].astype("object"),
                         "received_at": pd.to_datetime(received, utc=True)})
    for meta in ("nama_faskes", "tanggal_lapor", "laporan_nihil"):
        long[meta] = get.get(meta)
    long["row_number"] = long.groupby(["periode", "kode_faskes", "form"], dropna=False,
                                      sort=True).ngroup() + 1
    long["column_index"] = np.arange(len(long), dtype=np.int32)
    out = (long.groupby("row_number", sort=True)
               .agg(periode=("periode", "first"), kode_faskes=("kode_faskes", "first"),
                    form=("form", "first"), nama_faskes=("nama_faskes", "first"),
                    tanggal_lapor=("tanggal_lapor", "first"),
                    laporan_nihil=("laporan_nihil", "first"), received_at=("received_at", "max"))
               .reset_index())
    out["raw_row_id"] = file_id + "::" + out["row_number"].astype(str)
    long["raw_row_id"] = file_id + "::" + long["row_number"].astype(str)
    out["sheet"] = ""
    # rows read = the raw rows formed (facility × period × form), as for DHIS2
    cells = long.reindex(columns=CELL_COLUMNS).reset_index(drop=True)
    return Parsed("sql", out, cells, len(out))
