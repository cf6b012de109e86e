"""Header matching: a column header (code, Indonesian label or alias) → its canonical column.

`catalog()` builds the alias map once from `catalog/column_aliases.csv` and the codes and
`name_id` labels of `catalog/data_elements.csv`; the template rules that decide which row is the
header, which columns it maps to and which form it belongs to live on `Catalog`, shared by the
per-file parser (`template`), the CSV fast path (`fast_csv`) and the SQL source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from kolab_pipeline import catalog as catalogue
from kolab_pipeline.catalog import FORMS

# Template columns that live on `raw.submission_row`; every other column becomes a cell.
META_COLUMNS = ("periode", "kode_faskes", "nama_faskes", "tanggal_lapor", "laporan_nihil",
                "lingkup_laporan")
# Columns a template header must have (else F04).
KEY_COLUMNS = ("periode", "kode_faskes")
# The header is searched in the first rows only: title rows ("LAPORAN BULANAN …") sit above it.
HEADER_SCAN_ROWS = 15
# Person-identifying columns (normalised): this pipeline takes aggregate reports only (F08).
PERSON_COLUMNS = frozenset({
    "nik", "no_nik", "nomor_nik", "nomor_induk_kependudukan", "nama_pasien", "nama_ibu",
    "nama_bayi", "nama_anak", "nama_balita", "no_rm", "nomor_rm", "no_rekam_medis",
    "nomor_rekam_medis", "rekam_medis", "tanggal_lahir", "tgl_lahir", "tanggal_lahir_pasien",
    "alamat_pasien", "no_bpjs", "nomor_bpjs", "no_kk", "nomor_kk", "no_hp_pasien",
})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_BRACKETS = re.compile(r"\([^)]*\)")


def normalise_header(text: object) -> str:
    """Header matching key: lower case, every run of non-alphanumerics → `_`, trimmed.

    `"Kode Faskes"`, `"KODE_FASKES"` and `" kode-faskes "` all become `kode_faskes`.
    """
    if text is None:
        return ""
    return _NON_ALNUM.sub("_", str(text).strip().lower()).strip("_")


def is_person_column(header: object) -> bool:
    """A column that identifies a person (F08)."""
    return normalise_header(header) in PERSON_COLUMNS


def missing_key_columns(canonical: Sequence[str | None]) -> list[str]:
    """The key columns (`periode`, `kode_faskes`) a mapped header lacks."""
    return [c for c in KEY_COLUMNS if c not in canonical]


@dataclass(frozen=True)
class Catalog:
    """Header → canonical column, and data element → form (all from the catalogue files)."""

    header_map: dict[str, str]
    element_form: dict[str, str]

    def resolve(self, header: object) -> str | None:
        """Canonical column of a header; a trailing hint in brackets (`Periode (YYYY-MM)`) is
        ignored when the full text is not known."""
        found = self.header_map.get(normalise_header(header))
        if found is None and header is not None and "(" in str(header):
            found = self.header_map.get(normalise_header(_BRACKETS.sub(" ", str(header))))
        return found

    def is_anchor(self, canonical: str | None) -> bool:
        """Columns that make a row a header: periode, kode_faskes or a data element."""
        return canonical in KEY_COLUMNS or canonical in self.element_form

    def is_header_row(self, cells: Iterable[object]) -> bool:
        """At least two anchor columns: the row is a template header."""
        return sum(self.is_anchor(self.resolve(v)) for v in cells) >= 2

    def is_label_row(self, cells: Sequence[object]) -> bool:
        """Non-blank `cells` that are all known headers and make a header row: a second header
        line (the template's label row), not data."""
        return bool(cells) and all(self.resolve(v) for v in cells) and self.is_header_row(cells)

    def map_headers(self, headers: Sequence[object]) -> list[str | None]:
        """Canonical column per header; a repeated template column is kept as an unknown cell."""
        canonical = [self.resolve(h) for h in headers]
        seen: set[str] = set()
        for j, c in enumerate(canonical):
            if c is not None and c in seen and c in META_COLUMNS:
                canonical[j] = None
            elif c is not None:
                seen.add(c)
        return canonical

    def forms_of(self, canonical: Sequence[str | None]) -> dict[str, list[str]]:
        """Form → its data-element columns, in column order (more than one form = F09)."""
        forms: dict[str, list[str]] = {}
        for c in canonical:
            if c in self.element_form:
                forms.setdefault(self.element_form[c], []).append(c)
        return forms


@cache
def catalog() -> Catalog:
    """Built once from `column_aliases.csv` and `data_elements.csv` (codes and `name_id` labels)."""
    header_map: dict[str, str] = {meta: meta for meta in META_COLUMNS}
    for alias, canonical in catalogue.column_aliases():
        header_map[normalise_header(alias)] = canonical
    for code, label in catalogue.element_names().items():
        header_map[normalise_header(code)] = code
        header_map.setdefault(normalise_header(label), code)
    return Catalog(header_map, dict(catalogue.element_forms()))


def declared_forms(rel_path: str) -> set[str]:
    """Forms a path names: a folder called `tb`, or a `_tb_` token in the file name."""
    parts = rel_path.split("/")
    tokens = set(parts[:-1]) | set(re.split(r"[_\-. ]+", parts[-1].lower()))
    return {f for f in FORMS if f in tokens}
