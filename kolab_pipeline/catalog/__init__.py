"""The catalogues: every data file of this folder is opened here and nowhere else.

The files are the project's rules as data (one row per data element, form, indicator, validation
rule, ...). This module reads them; the modules that give a file its meaning parse the rows
(`indicators.catalogue` for indicators and sasaran formulas, `rules` for validation rules,
`warehouse` for the table contract). Every loader takes an optional path so a test can point it at
a broken copy.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

CATALOG_DIR = Path(__file__).parent

CHECKS = CATALOG_DIR / "checks.csv"
COLUMN_ALIASES = CATALOG_DIR / "column_aliases.csv"
CONTRIBUTION_ELEMENTS = CATALOG_DIR / "contribution_elements.csv"
DATA_ELEMENTS = CATALOG_DIR / "data_elements.csv"
DQ_RELATIONS = CATALOG_DIR / "dq_relations.csv"
FORMS_FILE = CATALOG_DIR / "forms.csv"
INDICATORS = CATALOG_DIR / "indicators.csv"
LABELS_ID = CATALOG_DIR / "labels_id.csv"
SASARAN_FORMULAS = CATALOG_DIR / "sasaran_formulas.csv"
TABLES = CATALOG_DIR / "tables.yaml"
VALIDATION_RULES = CATALOG_DIR / "validation_rules.csv"


class CatalogueError(ValueError):
    """A catalogue file is malformed; the message names the file, row and column."""


def read_rows(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Rows of a catalogue CSV as dicts of text, stripped (blank cells are empty strings); the
    first data row is line 2 of the file. Raises `CatalogueError` when a required column is
    missing."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise CatalogueError(f"{path}: missing column(s) {', '.join(missing)}")
        return [{k: (v or "").strip() for k, v in row.items()} for row in reader]


@cache
def rows(path: Path) -> tuple[dict[str, str], ...]:
    """`read_rows`, cached: the shipped files do not change while the process runs."""
    return tuple(read_rows(path))


@cache
def tables_spec(path: Path = TABLES) -> dict:
    """The warehouse table contract (`tables.yaml`) as parsed YAML."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- forms and data elements ------------------------------------------------------------------

FORMS: tuple[str, ...] = tuple(r["form"] for r in rows(FORMS_FILE))


def forms_frame() -> pd.DataFrame:
    """`forms.csv` indexed by form code (program, name_id, name_en, assigned_to)."""
    return pd.DataFrame(list(rows(FORMS_FILE))).set_index("form")


@cache
def form_facility_types() -> dict[str, tuple[str, ...]]:
    """Form → the facility types it is assigned to (`forms.csv` `assigned_to`): the types a
    report of it is expected from."""
    return {r["form"]: tuple(t.strip() for t in r["assigned_to"].split(";") if t.strip())
            for r in rows(FORMS_FILE)}


def type_forms(jenis: str) -> list[str]:
    """The forms a facility type is expected to report, in catalogue order."""
    return [form for form, types in form_facility_types().items() if jenis in types]


def data_elements() -> pd.DataFrame:
    """The data-element catalogue (code, form, program, name_id, name_en, person_or_event, ...)."""
    return pd.DataFrame(list(rows(DATA_ELEMENTS)))


@cache
def element_codes() -> frozenset[str]:
    """Every data-element code of the catalogue."""
    return frozenset(r["code"] for r in rows(DATA_ELEMENTS))


@cache
def element_kinds() -> dict[str, str]:
    """Data element → `event | person_month | person_ytd`."""
    return {r["code"]: r["person_or_event"] for r in rows(DATA_ELEMENTS)}


@cache
def element_forms() -> dict[str, str]:
    """Data element → the form that carries it."""
    return {r["code"]: r["form"] for r in rows(DATA_ELEMENTS)}


def form_elements(form: str) -> list[str]:
    """The data-element codes of one form, in catalogue order (= template column order)."""
    return [r["code"] for r in rows(DATA_ELEMENTS) if r["form"] == form]


@cache
def element_names() -> dict[str, str]:
    """Data element → its Indonesian name (`name_id`)."""
    return {r["code"]: r["name_id"] for r in rows(DATA_ELEMENTS)}


def column_aliases() -> list[tuple[str, str]]:
    """(alias, canonical column) pairs of `column_aliases.csv`, in file order."""
    return [(r["alias"], r["canonical"]) for r in rows(COLUMN_ALIASES)]
