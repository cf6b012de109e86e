"""How a sender writes its landing files: its `Style` (format, encoding, delimiter, title rows,
period and number spellings) and byte-stable CSV/XLSX bytes for a table of cells."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

MONTHS_ID = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
             "September", "Oktober", "November", "Desember")
MONTHS_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


@dataclass
class Style:
    """How one sender writes its files (drawn once per sender, so its files look alike)."""

    fmt: str = "csv"  # csv | xlsx | xlsx_multi
    encoding: str = "utf-8"
    delim: str = ","
    title_rows: int = 0
    header: str = "code"  # code | label
    label_row: bool = False  # XLSX: codes in row 1 and labels in row 2 (the template)
    thousands: str = "plain"  # plain | dot | comma
    zero: str = "0"
    period_style: str = "iso"
    nil_yes: str = "1"
    nil_no: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def draw_style(rng: np.random.Generator, messy: bool, sender: str) -> Style:
    """A sender's style (`sender`: its jenis_faskes); clean runs vary only CSV vs XLSX."""
    if not messy:
        return Style(fmt="xlsx" if rng.random() < 0.1 else "csv")
    fmts = ["csv", "xlsx_multi", "xlsx"] if sender == "puskesmas" else ["csv", "xlsx"]
    probs = [0.6, 0.35, 0.05] if sender == "puskesmas" else [0.7, 0.3]
    fmt = str(rng.choice(fmts, p=probs))
    st = Style(fmt=fmt)
    st.encoding = str(rng.choice(["utf-8", "utf-8-sig", "cp1252"], p=[0.5, 0.3, 0.2]))
    st.delim = str(rng.choice([",", ";"], p=[0.6, 0.4]))
    st.title_rows = int(rng.choice([0, 1, 2, 3], p=[0.5, 0.2, 0.2, 0.1]))
    st.header = str(rng.choice(["code", "label"], p=[0.7, 0.3]))
    st.label_row = fmt != "csv" and st.header == "code" and bool(rng.random() < 0.5)
    st.thousands = str(rng.choice(["plain", "dot", "comma"], p=[0.6, 0.3, 0.1]))
    st.zero = str(rng.choice(["0", "-", "nihil", "tidak ada"], p=[0.7, 0.2, 0.05, 0.05]))
    styles = ["iso", "mm/yyyy", "bulan", "mon-yy", "first_day", "yyyymm"]
    if fmt != "csv":
        styles += ["excel_date", "excel_serial"]
    st.period_style = str(rng.choice(styles))
    st.nil_yes = str(rng.choice(["1", "ya", "nihil"]))
    st.nil_no = str(rng.choice(["", "0", "tidak"]))
    return st


def format_period(period: str, style: str, xlsx: bool) -> Any:
    """A period as a sender writes it (XLSX may get a real date cell or an Excel serial)."""
    y, m = int(period[:4]), int(period[5:7])
    if style == "mm/yyyy":
        return f"{m:02d}/{y}"
    if style == "bulan":
        return f"{MONTHS_ID[m - 1]} {y}"
    if style == "mon-yy":
        return f"{MONTHS_ABBR[m - 1]}-{y % 100:02d}"
    if style == "first_day":
        return f"{period}-01"
    if style == "yyyymm":
        return f"{y}{m:02d}"
    if style == "excel_date" and xlsx:
        return datetime(y, m, 1)
    if style == "excel_serial" and xlsx:
        return (date(y, m, 1) - date(1899, 12, 30)).days
    return period


def format_value(v: int, st: Style, xlsx: bool) -> Any:
    """A count as a sender writes it (None = blank cell)."""
    if v < 0:
        return None
    if v == 0 and st.zero != "0":
        return st.zero
    if xlsx:
        return int(v)
    if v >= 1000 and st.thousands == "dot":
        return f"{v:,}".replace(",", ".")
    if v >= 1000 and st.thousands == "comma":
        return f"{v:,}"
    return str(v)


def xlsx_bytes(sheets: list[tuple[str, list[list[Any]]]], stamp: datetime) -> bytes:
    """A byte-stable XLSX: fixed workbook properties, fixed zip entry times and order."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()  # in memory: write-only mode spends its time on temp files
    wb.remove(wb.active)
    for name, rows in sheets:
        ws = wb.create_sheet(title=name)
        for r in rows:
            ws.append(r)
    naive = stamp.astimezone(UTC).replace(tzinfo=None)
    wb.properties.created = naive
    wb.properties.modified = naive
    wb.properties.creator = "kolab sample-data"
    buf = io.BytesIO()
    ExcelWriter(wb, _StableZip(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    return buf.getvalue()


class _StableZip(zipfile.ZipFile):
    """A ZipFile whose entries get a fixed timestamp (openpyxl stamps them with the wall clock)."""

    def writestr(self, zinfo_or_arcname: Any, data: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(zinfo_or_arcname, str):
            zi = zipfile.ZipInfo(zinfo_or_arcname, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zinfo_or_arcname = zi
        super().writestr(zinfo_or_arcname, data, *args, **kwargs)

    def write(self, filename: Any, arcname: Any = None, *args: Any, **kwargs: Any) -> None:
        # openpyxl adds worksheets from temp files: their mtime would leak into the zip
        self.writestr(str(arcname or filename), Path(filename).read_bytes())


def csv_bytes(lines: list[list[Any]], st: Style) -> bytes:
    """CSV bytes in the style's delimiter and encoding (cp1252 files get CRLF line ends)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=st.delim,
                   lineterminator="\r\n" if st.encoding == "cp1252" else "\n")
    w.writerows([["" if c is None else c for c in r] for r in lines])
    text = buf.getvalue()
    return text.encode(st.encoding, errors="replace")
