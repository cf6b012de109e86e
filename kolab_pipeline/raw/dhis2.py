"""DHIS2 `dataValueSets` (JSON, or CSV) → raw rows and cells, through `landing/dhis2/mapping.csv`.

Grain: one `raw.submission_row` per orgUnit × period × form, one `raw.submission_cell` per data
value. An id the mapping does not know is kept verbatim, so the clean layer quarantines it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline.config import Settings
from kolab_pipeline.raw.headers import catalog, normalise_header
from kolab_pipeline.raw.model import CELL_COLUMNS, FileRejected, Parsed
from kolab_pipeline.raw.readers import (
    decode_text,
    parse_timestamp,
    read_csv_grid,
    sniff_delimiter,
    xlsx_text,
)

DHIS2_DIR = "dhis2"
DHIS2_MAPPING = "mapping.csv"
_REQUIRED = ("dataelement", "period", "orgunit", "value")


def load_dhis2_mapping(landing: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """`landing/dhis2/mapping.csv` (`kind,dhis2_id,kode`) → (data elements, org units, warnings)."""
    path = landing / DHIS2_DIR / DHIS2_MAPPING
    elements: dict[str, str] = {}
    units: dict[str, str] = {}
    warnings: list[str] = []
    if not path.exists():
        return elements, units, [f"{DHIS2_DIR}/{DHIS2_MAPPING}: not found; DHIS2 ids are kept "
                                 "unmapped"]
    text, _ = decode_text(path.read_bytes())
    for i, rec in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        kind = (rec.get("kind") or "").strip()
        key, kode = (rec.get("dhis2_id") or "").strip(), (rec.get("kode") or "").strip()
        if kind == "data_element" and key and kode:
            elements[key] = kode
        elif kind == "org_unit" and key and kode:
            units[key] = kode
        else:
            warnings.append(f"{DHIS2_DIR}/{DHIS2_MAPPING} row {i}: ignored (kind must be "
                            f"data_element or org_unit, dhis2_id and kode non-empty)")
    return elements, units, warnings


def is_dhis2_csv_header(first_line: str) -> bool:
    keys = {normalise_header(h).replace("_", "") for h in re.split(r"[,;\t]", first_line)}
    return set(_REQUIRED) <= keys


def _frame_from_json(data: bytes) -> tuple[pd.DataFrame, dict[str, Any]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileRejected("F07", f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("dataValues"), list):
        raise FileRejected("F07", "JSON has no 'dataValues' list (expected a DHIS2 dataValueSet)")
    values = doc["dataValues"]
    if not values:
        raise FileRejected("F02", "DHIS2 dataValueSet has no dataValues")
    bad = [i for i, v in enumerate(values) if not isinstance(v, dict)]
    if bad:
        raise FileRejected("F07", f"dataValues[{bad[0]}] is not an object")
    frame = pd.DataFrame.from_records(values)
    frame.columns = [str(c).lower() for c in frame.columns]
    # Set-level period / orgUnit / completeDate apply to values that do not carry their own.
    for key, value in doc.items():
        k = str(key).lower()
        if k in ("period", "orgunit", "completedate") and isinstance(value, str | int):
            frame[k] = frame[k].fillna(str(value)) if k in frame.columns else str(value)
    return frame, doc


def _frame_from_csv(reader: duckdb.DuckDBPyConnection, data: bytes) -> pd.DataFrame:
    text, _ = decode_text(data)
    if not text.strip():
        raise FileRejected("F02", "the file has no content")
    grid = read_csv_grid(reader, text, sniff_delimiter(text))
    if grid.shape[0] == 0:  # e.g. only byte-order marks
        raise FileRejected("F02", "the file has no content (no line with values)")
    headers = [normalise_header(h).replace("_", "") for h in grid[0]]
    frame = pd.DataFrame(grid[1:], columns=headers)
    frame["_row"] = np.arange(2, len(frame) + 2)
    if len(frame) == 0:
        raise FileRejected("F02", "DHIS2 CSV has a header but no data values")
    return frame


def _value_text(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else xlsx_text(v)


def parse_dhis2(reader: duckdb.DuckDBPyConnection, data: bytes, file_id: str, file_format: str,
                landing: Path, settings: Settings) -> Parsed:
    """A DHIS2 dataValueSet → one raw row per orgUnit × period × form, one cell per data value.

    Org units and data elements are translated through `landing/dhis2/mapping.csv`; an unmapped
    id is kept verbatim (kode_faskes = the orgUnit id; data_element NULL). `period` stays
    verbatim (`202503`). `completeDate` (per value, else set-level) is the received time.
    """
    if file_format == "dhis2_json":
        frame, _ = _frame_from_json(data)
        frame["_row"] = np.arange(len(frame))
    else:
        frame = _frame_from_csv(reader, data)
    aliases = {"catoptcombo": "categoryoptioncombo", "completedate": "completedate"}
    frame = frame.rename(columns=aliases)
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise FileRejected("F07", f"dataValues lack {', '.join(missing)} (expected dataElement, "
                                  "period, orgUnit, value)")
    elements, units, _ = load_dhis2_mapping(landing)
    cat = catalog()
    de = frame["dataelement"].astype("string")
    coc = frame["categoryoptioncombo"].astype("string") if "categoryoptioncombo" in frame else None
    header = de if coc is None else (de + "." + coc).fillna(de)
    mapped = header.map(elements).fillna(de.map(elements))
    code = mapped.where(mapped.isin(list(cat.element_form)))
    form = code.map(cat.element_form)
    org = frame["orgunit"].astype("string")
    tz = settings.config.timezones.default
    complete = (frame["completedate"].map(lambda s: parse_timestamp(s, tz))
                if "completedate" in frame else pd.Series([None] * len(frame)))
    long = pd.DataFrame({
        "org": org, "kode": org.map(units).fillna(org), "period": frame["period"].astype("string"),
        "form": form.astype("object"), "header": header.astype("object"),
        "data_element": code.astype("object"),
        "value_text": frame["value"].map(_value_text),
        "column_index": frame["_row"].to_numpy(dtype=np.int64),
        "complete": pd.to_datetime(complete, utc=True),
    })
    keys = ["org", "period", "form"]
    long["row_number"] = long.groupby(keys, dropna=False, sort=True).ngroup() + 1
    rows = (long.groupby("row_number", sort=True)
                .agg(kode_faskes=("kode", "first"), periode=("period", "first"),
                     form=("form", "first"), received_at=("complete", "max"))
                .reset_index())
    rows["raw_row_id"] = file_id + "::" + rows["row_number"].astype(str)
    long["raw_row_id"] = file_id + "::" + long["row_number"].astype(str)
    rows["sheet"] = ""
    for meta in ("nama_faskes", "tanggal_lapor", "laporan_nihil"):
        rows[meta] = None
    cells = long[CELL_COLUMNS].copy()
    has_complete = rows["received_at"].notna().any()
    return Parsed(file_format, rows, cells, len(rows),
                  received_at=rows["received_at"].max() if has_complete else None,
                  received_source="dhis2_completeDate" if has_complete else None)
