"""A minimal registry for tests that run the whole pipeline."""

from __future__ import annotations

from pathlib import Path

REGISTRY = (
    "kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,tanggal_buka,tanggal_tutup,formulir\n"
    "P3273010201,Puskesmas Uji,puskesmas,,32.73.01,2020-01-01,,tb;ptm;kia;imun\n"
    "K001,Klinik Uji,klinik_pratama,P3273010201,32.73.01,2020-01-01,,tb;ptm\n"
)


def write_minimal_registry(home: Path) -> None:
    """Two facilities: a puskesmas with 4 forms and its klinik with 2 → 6 expected reports a
    month."""
    (home / "registry").mkdir(parents=True, exist_ok=True)
    (home / "landing").mkdir(parents=True, exist_ok=True)
    (home / "registry" / "fasilitas.csv").write_text(REGISTRY, encoding="utf-8")
