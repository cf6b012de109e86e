"""DHIS2 `dataValueSets` (JSON, or CSV) → raw rows and cells, through `landing/dhis2/mapping.csv`,
with a per-file import summary like DHIS2's ImportSummary (imported, updated, ignored + why).

Grain: one `raw.submission_row` per orgUnit × period × form, one `raw.submission_cell` per data
value — every category option combo × attribute option combo its own cell, with its ids. A data
element's value is the sum over its combos (DHIS2's own total; summed by the clean layer) unless
the mapping maps `dataElement.categoryOptionCombo` pairs: then each mapped pair goes to its code
and a combo left unmapped is ignored and reported, never dropped silently. An id the mapping does
not know is kept verbatim, so the clean layer quarantines it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from kolab_pipeline.config import Settings
from kolab_pipeline.raw.headers import catalog, normalise_header
from kolab_pipeline.raw.model import CELL_COLUMNS, FileRejected, ImportSummary, Parsed
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
# Why a value is ignored, in the order they are judged (the first that applies is reported).
IGNORE_REASONS = ("org_unit_not_mapped", "element_not_mapped", "combo_not_mapped",
                  "unknown_code", "no_value", "duplicate")
MAX_CONFLICTS = 20   # objects listed per file in raw.landing_file.import_conflicts


@dataclass
class Dhis2Mapping:
    """`landing/dhis2/mapping.csv`: data elements (all their combos), `dataElement.categoryOption
    Combo` pairs, org units, and the rows that could not be used."""

    elements: dict[str, str] = field(default_factory=dict)   # data element id → code
    pairs: dict[str, str] = field(default_factory=dict)      # "de.coc" → code
    units: dict[str, str] = field(default_factory=dict)      # org unit id → kode_faskes
    warnings: list[str] = field(default_factory=list)

    @property
    def paired(self) -> set[str]:
        """Data elements mapped pair by pair (their unmapped combos are not counted)."""
        return {key.split(".", 1)[0] for key in self.pairs}


def load_dhis2_mapping(landing: Path) -> Dhis2Mapping:
    """`landing/dhis2/mapping.csv` (`kind,dhis2_id,kode`): `data_element` rows map a data element
    id (every combo, summed) or a `dataElement.categoryOptionCombo` pair; `org_unit` rows map an
    org unit id to a `kode_faskes`."""
    path = landing / DHIS2_DIR / DHIS2_MAPPING
    mapping = Dhis2Mapping()
    if not path.exists():
        mapping.warnings.append(f"{DHIS2_DIR}/{DHIS2_MAPPING}: not found; DHIS2 ids are kept "
                                "unmapped")
        return mapping
    text, _ = decode_text(path.read_bytes())
    for i, rec in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        kind = (rec.get("kind") or "").strip()
        key, kode = (rec.get("dhis2_id") or "").strip(), (rec.get("kode") or "").strip()
        if kind == "data_element" and key and kode:
            (mapping.pairs if "." in key else mapping.elements)[key] = kode
        elif kind == "org_unit" and key and kode:
            mapping.units[key] = kode
        else:
            mapping.warnings.append(f"{DHIS2_DIR}/{DHIS2_MAPPING} row {i}: ignored (kind must be "
                                    "data_element or org_unit, dhis2_id and kode non-empty)")
    return mapping


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


def _ids(frame: pd.DataFrame, column: str) -> pd.Series:
    """An id column as text, blank = NA (a combo not given is DHIS2's default)."""
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    ids = frame[column].map(_value_text).astype("string").str.strip()
    return ids.mask(ids == "")


def _ignore_reasons(org: pd.Series, de: pd.Series, mapped: pd.Series, code: pd.Series,
                    value: pd.Series, key: pd.Series, mapping: Dhis2Mapping,
                    registry: Mapping[str, str] | None) -> pd.Series:
    """Why each value is not counted (NA = counted), the first reason of `IGNORE_REASONS` that
    applies. An org unit is unmapped when neither the mapping nor the registry (when loaded)
    knows it; a duplicate key counts once, the last occurrence in the file."""
    if registry:
        org_known = org.isin(list(mapping.units)) | org.isin(list(registry))
    else:   # no registry loaded: the clean layer decides (V01)
        org_known = pd.Series(True, index=org.index)
    paired = de.isin(list(mapping.paired))
    conditions = [
        ~org_known,
        mapped.isna() & ~paired,
        mapped.isna() & paired,
        mapped.notna() & code.isna(),
        value.isna(),
        key.duplicated(keep="last"),
    ]
    reason = pd.Series(pd.NA, index=org.index, dtype="string")
    for name, hit in zip(IGNORE_REASONS, conditions, strict=True):
        reason = reason.mask(reason.isna() & hit.fillna(False).astype(bool), name)
    return reason


def _conflicts(reason: pd.Series, objects: pd.Series) -> str:
    """`reason object: n; …` for the ignored values (no object for no_value), in reason order,
    at most `MAX_CONFLICTS` entries."""
    ignored = pd.DataFrame({"reason": reason, "object": objects})[reason.notna()]
    if ignored.empty:
        return ""
    ignored.loc[ignored["reason"] == "no_value", "object"] = ""
    counts = (ignored.fillna({"object": ""}).groupby(["reason", "object"]).size()
              .rename("n").reset_index())
    counts["order"] = counts["reason"].map(IGNORE_REASONS.index)
    counts = counts.sort_values(["order", "object"])
    parts = [" ".join(filter(None, (r.reason, r.object))) + f": {r.n}"
             for r in counts.head(MAX_CONFLICTS).itertuples()]
    if len(counts) > MAX_CONFLICTS:
        parts.append(f"… (+{len(counts) - MAX_CONFLICTS} more)")
    return "; ".join(parts)


def parse_dhis2(reader: duckdb.DuckDBPyConnection, data: bytes, file_id: str, file_format: str,
                landing: Path, settings: Settings, *, mapping: Dhis2Mapping | None = None,
                timezones: Mapping[str, str] | None = None,
                known: set[tuple[str, str, str, str]] | None = None) -> Parsed:
    """A DHIS2 dataValueSet → one raw row per orgUnit × period × form, one cell per data value.

    - Org units and data elements are translated through `mapping` (default: read
      `landing/dhis2/mapping.csv`); an unmapped id is kept verbatim (kode_faskes = the orgUnit
      id; data_element NULL). A value's code: its `dataElement.categoryOptionCombo` pair, else its
      data element; a data element mapped only by pairs leaves its other combos unmapped
      (ignored, `combo_not_mapped`), in the row of the form its pairs belong to.
    - `period` stays verbatim (`202503`).
    - `completeDate` (per value, else set-level) is when the row reached the Dinkes; without an
      offset it is the org unit's local time: `timezones[kode_faskes]` (the registry's kab/kota
      zone), else `timezones.default` of kolab.yaml.
    - Import summary (`Parsed.import_summary`, per cell `import_status` / `ignore_reason`):
      `updated` when the key (kode_faskes, period, dataElement.categoryOptionCombo,
      attributeOptionCombo) is in `known` (values of earlier DHIS2 files), else `imported`;
      `ignored` with the first reason of `IGNORE_REASONS` that applies.
    """
    if file_format == "dhis2_json":
        frame, _ = _frame_from_json(data)
        frame["_row"] = np.arange(len(frame))
    else:
        frame = _frame_from_csv(reader, data)
    aliases = {"catoptcombo": "categoryoptioncombo", "attroptcombo": "attributeoptioncombo"}
    frame = frame.rename(columns=aliases)
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise FileRejected("F07", f"dataValues lack {', '.join(missing)} (expected dataElement, "
                                  "period, orgUnit, value)")
    mapping = mapping if mapping is not None else load_dhis2_mapping(landing)
    timezones = timezones or {}
    cat = catalog()
    de = frame["dataelement"].astype("string")
    coc, aoc = _ids(frame, "categoryoptioncombo"), _ids(frame, "attributeoptioncombo")
    header = (de + "." + coc).fillna(de)
    mapped = header.map(mapping.pairs).fillna(de.map(mapping.elements)).astype("string")
    code = mapped.where(mapped.isin(list(cat.element_form)))
    # an unmapped combo of a pair-mapped element stays in the row of its element's form
    pair_forms = pd.Series({k.split(".", 1)[0]: cat.element_form.get(v)
                            for k, v in sorted(mapping.pairs.items())}, dtype="object")
    form = code.map(cat.element_form).astype("object")
    form = form.where(form.notna(), de.map(pair_forms).where(mapped.isna()).astype("object"))
    org = frame["orgunit"].astype("string")
    kode = org.map(mapping.units).fillna(org)
    period = frame["period"].astype("string")
    value = frame["value"].map(_value_text)
    key = kode + "|" + period + "|" + header + "|" + aoc.fillna("")
    reason = _ignore_reasons(org, de, mapped, code, value, key, mapping, timezones)
    known = known if known is not None else set()
    old = pd.Series([(k, p, h, a) in known for k, p, h, a in zip(
        kode, period, header, aoc.fillna(""), strict=True)], index=frame.index)
    status = np.where(reason.notna(), "ignored", np.where(old, "updated", "imported"))
    complete = (frame["completedate"] if "completedate" in frame
                else pd.Series([None] * len(frame), index=frame.index))
    default_tz = settings.config.timezones.default
    parsed_at = [parse_timestamp(c, timezones.get(k) or default_tz)
                 for c, k in zip(complete, kode.fillna(""), strict=True)]
    long = pd.DataFrame({
        "org": org, "kode": kode, "period": period,
        "form": form.astype("object"), "header": header.astype("object"),
        "data_element": code.astype("object"), "value_text": value,
        "column_index": frame["_row"].to_numpy(dtype=np.int64),
        "complete": pd.to_datetime(pd.Series(parsed_at, index=frame.index), utc=True),
        "category_option_combo": coc.astype("object"),
        "attribute_option_combo": aoc.astype("object"),
        "import_status": status, "ignore_reason": reason.astype("object"),
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
    rows["received_source"] = np.where(rows["received_at"].notna(), "dhis2_completeDate", None)
    for meta in ("nama_faskes", "tanggal_lapor", "laporan_nihil"):
        rows[meta] = None
    cells = long[CELL_COLUMNS].copy()
    objects = header.where(~reason.isin(["org_unit_not_mapped", "element_not_mapped"]),
                           org.where(reason == "org_unit_not_mapped", de))
    objects = objects.where(reason != "unknown_code", header + "→" + mapped.fillna(""))
    summary = ImportSummary(imported=int((status == "imported").sum()),
                            updated=int((status == "updated").sum()),
                            ignored=int((status == "ignored").sum()),
                            conflicts=_conflicts(reason, objects))
    counted = long[long["import_status"] != "ignored"]
    summary.keys = set(zip(counted["kode"], counted["period"], counted["header"],
                           counted["attribute_option_combo"].fillna(""), strict=True))
    has_complete = rows["received_at"].notna().any()
    return Parsed(file_format, rows, cells, len(rows),
                  received_at=rows["received_at"].max() if has_complete else None,
                  received_source="dhis2_completeDate" if has_complete else None,
                  import_summary=summary)
