"""`kolab template FORM`: the blank monthly template a clinic fills in (XLSX and CSV).

Layout (contract in docs/SAMPLE_DATA.md): one row per facility × month, one form per file.
Row 1 holds the column codes (what the pipeline reads), row 2 the Indonesian labels (what the
clinic reads); the raw layer recognises row 2 as a second header row and skips it. The workbook
has a plain data sheet (no data validation, so any spreadsheet program can fill it) and a
`Petunjuk` sheet with instructions in Indonesian, which the raw layer ignores.
"""

from __future__ import annotations

from pathlib import Path

from kolab_pipeline import catalog
from kolab_pipeline.catalog import FORMS

TEMPLATE_COLUMNS = ("periode", "kode_faskes", "nama_faskes", "tanggal_lapor", "laporan_nihil",
                    "lingkup_laporan")
TEMPLATE_LABELS = ("Periode (YYYY-MM)", "Kode Faskes", "Nama Faskes", "Tanggal Lapor",
                   "Laporan Nihil", "Lingkup Laporan (faskes/wilayah)")

INSTRUCTIONS = (
    "Petunjuk pengisian laporan bulanan {program} ({name})",
    "",
    "1. Isi satu baris untuk setiap fasilitas dan setiap bulan, mulai baris 3.",
    "2. Jangan mengubah, menghapus atau memindahkan baris 1 (kode kolom) dan baris 2 (nama kolom).",
    "3. periode: bulan laporan dengan format YYYY-MM, misalnya 2025-03 untuk Maret 2025.",
    "4. kode_faskes: kode fasilitas sesuai registri Dinas Kesehatan (puskesmas: kode P…).",
    "5. tanggal_lapor: tanggal laporan diserahkan (YYYY-MM-DD), boleh dikosongkan.",
    "6. laporan_nihil: isi 1 bila tidak ada kegiatan/kasus bulan ini (laporan nihil), "
    "selain itu kosong.",
    "7. lingkup_laporan: faskes = angka pelayanan fasilitas ini sendiri (bila kosong, inilah "
    "artinya);",
    "   wilayah = (hanya puskesmas) rekap seluruh wilayah kerja termasuk klinik, TPMD dan bidan "
    "jejaringnya.",
    "   Baris jejaring tetap dilaporkan sendiri: Dinas Kesehatan menghitung bagian puskesmas",
    "   sebagai rekap dikurangi laporan jejaring, sehingga tidak ada yang terhitung dua kali.",
    "8. Angka: bilangan bulat tanpa pemisah ribuan. Isi 0 bila jumlahnya nol;",
    "   kosongkan sel hanya bila data tidak tersedia (kosong berarti tidak dilaporkan, bukan nol).",
    "9. Jangan menambahkan data pasien (NIK, nama pasien, nomor rekam medis): laporan ini agregat.",
    "10. Simpan sebagai .xlsx atau .csv dan kirim ke puskesmas induk / Dinas Kesehatan.",
)


def _form_name(form: str) -> tuple[str, str]:
    forms = catalog.forms_frame()
    return forms.loc[form, "program"], forms.loc[form, "name_id"]


def template_columns(form: str) -> tuple[list[str], list[str]]:
    """(codes, Indonesian labels) of the form's template, in catalogue order."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}: choose one of {', '.join(FORMS)}")
    elements = catalog.data_elements()
    elements = elements[elements["form"] == form]
    return ([*TEMPLATE_COLUMNS, *elements["code"]], [*TEMPLATE_LABELS, *elements["name_id"]])


def write_template(form: str, out_dir: Path) -> list[Path]:
    """Write `template_<form>.xlsx` and `template_<form>.csv` into `out_dir`; return both paths."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    codes, labels = template_columns(form)
    program, name = _form_name(form)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    wb = Workbook()
    ws = wb.active
    ws.title = form
    ws.append(codes)
    ws.append(labels)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for cell in ws[1]:
        cell.font = bold
        cell.fill = fill
    for cell in ws[2]:
        cell.font = Font(italic=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for j, (code, label) in enumerate(zip(codes, labels, strict=True), start=1):
        width = min(max(len(code), len(label) // 2, 10) + 2, 40)
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.row_dimensions[2].height = 45
    ws.freeze_panes = "C3"  # keep the header rows and periode/kode_faskes in view

    info = wb.create_sheet("Petunjuk")
    for line in INSTRUCTIONS:
        info.append([line.format(program=program, name=name)])
    info["A1"].font = bold
    info.append([])
    info.append(["Kolom", "Keterangan"])
    for code, label in zip(codes, labels, strict=True):
        info.append([code, label])
    info.column_dimensions["A"].width = 34
    info.column_dimensions["B"].width = 80

    xlsx = out_dir / f"template_{form}.xlsx"
    wb.save(xlsx)
    csv_path = out_dir / f"template_{form}.csv"
    csv_path.write_text(",".join(codes) + "\n", encoding="utf-8")
    return [xlsx, csv_path]
