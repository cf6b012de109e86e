"""The hostile-input corpus: every malformed input we could think of, written into a landing
folder, each with the outcome the pipeline must reach.

`write_corpus(landing)` writes the inputs and returns one `Expect` per outcome:

- a **file** outcome (`row is None`): the whole file is rejected with a file rule (`F01`…`F10`, in
  `raw.landing_file` and `clean.quarantine`), or `"kept"` (ingested), or `"not_a_file"` (a folder
  whose name looks like a file: nothing to ingest, no row anywhere);
- a **row** outcome (`row` = the 1-based row number a spreadsheet shows, `sheet` for XLSX): the row
  is quarantined with that rule (`V01`…`V16`; other rules may fire too) or `"kept"` (a version in
  `clean.submission`).

The registry (`write_registry`) has four facilities; `GOOD_FILE` is a plain, valid report of a
facility no hostile input mentions, so its clean rows can be compared with and without the corpus
beside it. Limits are lowered in `kolab.yaml` (`write_config`) so that the "too large" inputs stay
small on disk and fast — except the XLSX zip bomb, which really expands to 1 GiB.

Each input is a separate, named function of the kind of fault (class), so the report table of
`tests/reliability/test_hostile_inputs.py` can say how each class of failure reaches the user.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.landing import TB_HEADER, xlsx_bytes

TB = TB_HEADER
PKM = "P3273010201"       # puskesmas (tb;ptm;kia;imun)
KLINIK = "K001"           # klinik pratama (tb;ptm)
GOOD_KODE = "P3273010299"  # only GOOD_FILE reports for it

REGISTRY = (
    "kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,tanggal_buka,"
    "tanggal_tutup,formulir\n"
    f"{PKM},Puskesmas Uji,puskesmas,,32.73.01,2020-01-01,,tb;ptm;kia;imun\n"
    f"{KLINIK},Klinik Uji,klinik_pratama,{PKM},32.73.01,2020-01-01,,tb;ptm\n"
    f"K002,Klinik Dua,klinik_pratama,{PKM},32.73.01,2020-01-01,,tb;ptm\n"
    f"{GOOD_KODE},Puskesmas Baik,puskesmas,,32.73.02,2020-01-01,,tb;ptm;kia;imun\n"
)

GOOD_FILE = "baik/tb/2025-01/P3273010299_tb_2025-01.csv"
GOOD_CONTENT = (f"{TB}\n2025-01,{GOOD_KODE},Puskesmas Baik,2025-02-03,,120,14\n"
                f"2025-02,{GOOD_KODE},Puskesmas Baik,2025-03-04,,98,1.234\n")

# Limits in the corpus home's kolab.yaml (small, so "too big" inputs stay small on disk).
MAX_FILE_MB = 5
MAX_COLUMNS = 500
MAX_ROWS = 1000
MAX_XLSX_MB = 200
BOMB_BYTES = 1 << 30       # the zip bomb's sheet XML expands to 1 GiB

# The hostile strings fed through every entry point (also by tests/reliability/test_security.py).
SQL_CODE = "'; DROP TABLE raw.submission_row; --"
SHELL_CODE = "$(rm -rf /)"
BACKTICK_CODE = "`id`"
FORMULA_NAMES = ('=HYPERLINK("http://evil.example/x","klik")', "+cmd|' /C calc'!A0",
                 "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0")


@dataclass(frozen=True)
class Expect:
    """One expected outcome: of a whole file (`row` None) or of one row of it."""

    case: str             # unique name of the hostile input
    klass: str            # class of fault (the report table groups by it)
    path: str             # relative to the landing folder
    outcome: str          # "kept" | "not_a_file" | rule id (F… for files, V… for rows)
    row: int | None = None
    sheet: str = ""

    @property
    def is_file(self) -> bool:
        return self.row is None


def write_registry(home: Path) -> None:
    (home / "registry").mkdir(parents=True, exist_ok=True)
    (home / "landing").mkdir(parents=True, exist_ok=True)
    (home / "registry" / "fasilitas.csv").write_text(REGISTRY, encoding="utf-8")


def write_config(home: Path) -> None:
    (home / "kolab.yaml").write_text(
        f"ingest:\n  max_file_mb: {MAX_FILE_MB}\n  max_columns: {MAX_COLUMNS}\n"
        f"  max_rows_per_file: {MAX_ROWS}\n  max_xlsx_uncompressed_mb: {MAX_XLSX_MB}\n"
        "partitions:\n  start: 2025-01-01\nreporting:\n  as_of: 2025-04-20\n", encoding="utf-8")


GOOD_MTIME = 1741064400  # 2025-03-04T05:00:00Z: its received_at (mtime) is the same in every home


def write_good_file(landing: Path) -> None:
    path = _put(landing, GOOD_FILE, GOOD_CONTENT.encode())
    os.utime(path, (GOOD_MTIME, GOOD_MTIME))


def _put(landing: Path, rel: str, data: bytes) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _zip_bomb() -> bytes:
    """A structurally valid XLSX whose one sheet XML expands to `BOMB_BYTES` (≈2.6 MB on disk)."""
    base = xlsx_bytes({"tb": [TB.split(","), ["2025-01", PKM, "x", None, None, 1, 1]]})
    src = zipfile.ZipFile(io.BytesIO(base))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for item in src.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                continue
            out.writestr(item, src.read(item.filename))
        with out.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
                     b'openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            chunk = b'<row><c t="n"><v>1</v></c></row>' * 32768
            for _ in range(BOMB_BYTES // len(chunk)):
                fh.write(chunk)
            fh.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def _many_rowsxlsx_bytes() -> bytes:
    """Small on disk and under the size limit, but more rows than `MAX_ROWS`: refused while
    reading."""
    rows: list[list[object]] = [TB.split(",")]
    rows += [["2025-01", KLINIK, "x", None, None, i, 0] for i in range(MAX_ROWS + 50)]
    return xlsx_bytes({"tb": rows})


def _external_linkxlsx_bytes() -> bytes:
    """Formulas without cached values (one referencing an external workbook) and an external-link
    part: formulas are never evaluated, links never followed; formula text is not a number."""
    data = xlsx_bytes({"tb": [TB.split(","),
                         ["2025-03", PKM, "Puskesmas Uji", None, None, "=SUM(1,2)",
                          "='[1]Sheet1'!A1"],
                         ["2025-03", KLINIK, "Klinik Uji", None, None, 5, 6]]})
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "[Content_Types].xml":
                body = body.replace(b"</Types>",
                                    b'<Override PartName="/xl/externalLinks/externalLink1.xml" '
                                    b'ContentType="application/vnd.openxmlformats-officedocument.'
                                    b'spreadsheetml.externalLink+xml"/></Types>')
            out.writestr(item, body)
        out.writestr("xl/externalLinks/externalLink1.xml",
                     '<?xml version="1.0" encoding="UTF-8"?><externalLink xmlns="http://schemas.'
                     'openxmlformats.org/spreadsheetml/2006/main"><externalBook><sheetNames>'
                     '<sheetName val="Sheet1"/></sheetNames></externalBook></externalLink>')
        out.writestr("xl/externalLinks/_rels/externalLink1.xml.rels",
                     '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
                     'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                     'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
                     'externalLinkPath" Target="file:///etc/passwd" TargetMode="External"/>'
                     '</Relationships>')
    return buf.getvalue()


def write_corpus(landing: Path, outside: Path | None = None) -> list[Expect]:
    """Write every hostile input under `landing`; return the expected outcomes.

    `outside` is a folder outside the landing folder that symlinks may point at (created here).
    """
    out: list[Expect] = []
    seen: dict[str, str] = {}

    def add(case: str, klass: str, rel: str, data: bytes | None,
            *outcomes: tuple[int | None, str] | str, sheet: str = "") -> None:
        if data is not None:
            # distinct content per input: the raw layer ingests a content once (sha256), so two
            # cases with the same bytes would share one outcome and test nothing
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen and seen[digest] != case:
                raise ValueError(f"corpus: {case} has the same bytes as {seen[digest]}")
            seen[digest] = case
            _put(landing, rel, data)
        for o in outcomes:
            row, outcome = (None, o) if isinstance(o, str) else o
            out.append(Expect(case, klass, rel, outcome, row, sheet))

    def csv(*lines: str) -> str:
        return "\n".join(lines) + "\n"

    ok_row = f"2025-03,{KLINIK},Klinik Uji,2025-04-03,,10,2"

    def ok(tag: str) -> str:
        """A valid row whose name carries the case, so every file's bytes differ."""
        return ok_row.replace("Klinik Uji", f"Klinik Uji {tag}")

    # --- encodings -----------------------------------------------------------------------------
    add("utf16_bom", "encoding", "enc/tb/utf16_bom.csv",
        csv(TB, ok("utf16_bom")).encode("utf-16"), "kept", (2, "kept"))
    add("utf16_no_bom", "encoding", "enc/tb/utf16_no_bom.csv",
        csv(TB, ok("utf16_no_bom")).encode("utf-16-le"), "F01")
    add("utf16_bom_odd_bytes", "encoding", "enc/tb/utf16_odd.csv",
        csv(TB, ok("utf16_bom_odd_bytes")).encode("utf-16") + b"\x00", "F01")
    add("latin1", "encoding", "enc/tb/latin1.csv",
        csv(TB, f"2025-03,{KLINIK},Klinik Médica Ñ,2025-04-03,,10,2").encode("latin-1"),
        "kept", (2, "kept"))
    add("mixed_utf8_cp1252", "encoding", "enc/tb/mixed.csv",
        csv(TB).encode() + f"2025-03,{KLINIK},Klinik é,2025-04-03,,1,1\n".encode()
        + f"2025-02,{KLINIK},Klinik é’,2025-03-03,,1,1\n".encode("cp1252"),
        "kept", (2, "kept"), (3, "kept"))
    add("invalid_utf8_undefined_cp1252", "encoding", "enc/tb/invalid.csv",
        csv(TB).encode() + b"2025-03,K001,Klinik \x81\x8d\x8f\x90\x9d,,,1,1\n", "F01")
    add("nul_bytes", "encoding", "enc/tb/nul.csv",
        csv(TB).encode() + b"2025-03,K001,Kl\x00inik,,,1,1\n", "F01")
    add("bom_only", "encoding", "enc/tb/bom_only.csv", b"\xef\xbb\xbf", "F02")
    add("utf16_bom_only", "encoding", "enc/tb/utf16_bom_only.csv", b"\xff\xfe", "F02")
    add("unicode_digits", "encoding", "enc/tb/unicode_digits.csv",
        csv(TB, f"2025-03,{PKM},Puskesmas Uji,2025-04-03,,١٢,１２").encode(), "kept", (2, "V06"))
    add("zero_width_in_code", "encoding", "enc/tb/zwsp.csv",
        csv(TB, f"2025-02,{KLINIK}\u200b,Klinik \u202eUji,2025-03-03,,3,1").encode(),
        "kept", (2, "kept"))

    # --- delimiters and line structure ------------------------------------------------------
    add("tab_delimited", "delimiter", "delim/tb/tab.csv",
        csv(TB.replace(",", "\t"), ok("tab_delimited").replace(",", "\t")).encode(),
        "kept", (2, "kept"))
    add("pipe_delimited", "delimiter", "delim/tb/pipe.csv",
        csv(TB.replace(",", "|"), ok("pipe_delimited").replace(",", "|")).encode(), "F04")
    add("mixed_delimiters", "delimiter", "delim/tb/mixed.csv",
        csv(TB, ok("mixed_delimiters").replace(",", ";")).encode(), "kept", (2, "V05"))
    add("cr_only_newlines", "delimiter", "delim/tb/cr.csv",
        (TB + "\r" + ok("cr_only_newlines") + "\r").encode(), "kept", (2, "kept"))
    add("extra_cells_beyond_header", "delimiter", "delim/tb/extra.csv",
        csv(TB, ok("extra_cells_beyond_header") + ",99,x,,y").encode(), "kept", (2, "kept"))
    add("short_row", "delimiter", "delim/tb/short.csv",
        csv(TB, f"2025-03,{KLINIK}").encode(), "kept", (2, "kept"))
    add("blank_lines_only", "truncated", "trunc/tb/blank.csv", b"\n\n \n\r\n", "F02")
    add("zero_bytes", "truncated", "trunc/tb/empty.csv", b"", "F02")
    add("header_only_csv", "truncated", "trunc/tb/header_only.csv", csv(TB).encode(), "F02")
    add("truncated_mid_row", "truncated", "trunc/tb/cut.csv",
        (csv(TB, ok("truncated_mid_row")) + f"2025-02,{KLINIK},Klin").encode(),
        "kept", (2, "kept"), (3, "kept"))
    add("unterminated_quote", "truncated", "trunc/tb/quote.csv",
        (csv(TB, ok("unterminated_quote")) + f'2025-02,{KLINIK},"Klinik Uji,,,1,1\n').encode(),
        "F01")
    add("no_header", "truncated", "trunc/tb/no_header.csv",
        csv(ok("no_header"), ok("no_header").replace("2025-03", "2025-02")).encode(), "F04")
    add("binary_junk_csv", "binary", "bin/tb/junk.csv", bytes(range(256)) * 64, "F01")
    add("xlsx_bytes_named_csv", "binary", "bin/tb/zip.csv",
        xlsx_bytes({"tb": [TB.split(","), ok("xlsx_bytes_named_csv").split(",")]}), "F01")
    add("csv_bytes_named_xlsx", "binary", "bin/tb/text.xlsx",
        csv(TB, ok("csv_bytes_named_xlsx")).encode(), "F01")
    add("truncated_xlsx", "binary", "bin/tb/cut.xlsx",
        xlsx_bytes({"tb": [TB.split(","), ok("truncated_xlsx").split(",")]})[:700], "F01")
    add("unknown_extension", "binary", "bin/tb/report.xls",
        csv(TB, ok("unknown_extension")).encode(), "F06")
    add("no_extension", "binary", "bin/tb/README", b"just text", "F06")

    # --- XLSX specials ----------------------------------------------------------------------
    add("xlsx_zip_bomb", "xlsx", "xlsx/tb/bomb.xlsx", _zip_bomb(), "F03")
    add("xlsx_too_many_rows", "xlsx", "xlsx/tb/many_rows.xlsx", _many_rowsxlsx_bytes(), "F03")
    add("xlsx_external_link_formulas", "xlsx", "xlsx/tb/formulas.xlsx", _external_linkxlsx_bytes(),
        "kept", (2, "V06"), (3, "kept"), sheet="tb")
    add("xlsx_header_only", "xlsx", "xlsx/tb/header_only.xlsx", xlsx_bytes({"tb": [TB.split(",")]}),
        "F02")
    add("xlsx_empty_workbook", "xlsx", "xlsx/tb/empty.xlsx", xlsx_bytes({"Sheet1": []}), "F02")
    add("xlsx_merged_cells", "xlsx", "xlsx/tb/merged.xlsx",
        xlsx_bytes({"tb": [["LAPORAN BULANAN TBC"], TB.split(","),
                      ["2025-03", KLINIK, "Klinik Uji", None, None, 1, 2],
                      [None, PKM, "Puskesmas Uji", None, None, 3, 4]]},
              merge={"tb": ["A1:G1", "A3:A4"]}),
        "kept", (3, "kept"), (4, "V05"), sheet="tb")

    # --- size and shape --------------------------------------------------------------------
    big = "A" * (1 << 20)
    add("one_megabyte_name_cell", "size", "size/tb/huge_name.csv",
        csv(TB, f"2025-03,{KLINIK},{big},2025-04-03,,1,1").encode(), "kept", (2, "kept"))
    add("one_megabyte_value_cell", "size", "size/tb/huge_value.csv",
        csv(TB, f"2025-03,{PKM},Puskesmas Uji,2025-04-03,,{'9' * (1 << 20)},1").encode(),
        "kept", (2, "V06"))
    add("ten_thousand_columns", "size", "size/tb/wide.csv",
        csv(TB + "".join(f",x{j}" for j in range(10_000)),
            ok("ten_thousand_columns") + ",1" * 10_000).encode(), "F05")
    add("too_many_rows_csv", "size", "size/tb/long.csv",
        csv(TB, *[f"2025-03,{KLINIK},x,,,{i},0" for i in range(MAX_ROWS + 1)]).encode(), "F03")
    add("file_over_size_limit", "size", "size/tb/big.csv",
        csv(TB, ok("file_over_size_limit")).encode() + b"#" * (MAX_FILE_MB * 1048576 + 1), "F03")
    add("duplicate_headers", "header", "hdr/tb/dup_headers.csv",
        csv(TB + ",tb_skrining,periode", ok("duplicate_headers") + ",999,1999-01").encode(),
        "kept", (2, "kept"))
    add("mixed_forms", "header", "hdr/tb/mixed_forms.csv",
        csv(TB + ",ht_skrining", ok("mixed_forms") + ",4").encode(), "F09")
    add("folder_says_other_form", "header", "hdr/ptm/2025-03/K001_ptm_2025-03.csv",
        csv(TB, ok("folder_says_other_form")).encode(), "F09")
    add("person_identifying_column", "header", "hdr/tb/nik.csv",
        csv(TB + ",NIK", ok("person_identifying_column") + ",3273010101010001").encode(), "F08")
    add("header_is_sql", "header", "hdr/tb/sql_header.csv",
        csv(TB + f',"{SQL_CODE}"', ok("header_is_sql") + ",1").encode(), "kept", (2, "kept"))

    # --- values ----------------------------------------------------------------------------
    add("ancient_period", "value", "val/tb/ancient.csv",
        csv(TB, f"1899-12,{KLINIK},Klinik Uji,,,1,1").encode(), "kept", (2, "V05"))
    add("far_future_period", "value", "val/tb/future.csv",
        csv(TB, f"2999-01,{KLINIK},Klinik Uji,,,1,1").encode(), "kept", (2, "V05"))
    add("period_after_report_date", "value", "val/tb/v05f.csv",
        csv(TB, f"2025-06,{KLINIK},Klinik Uji,2025-05-02,,1,1").encode(), "kept", (2, "V05F"))
    add("negative_count", "value", "val/tb/negative.csv",
        csv(TB, f"2025-03,{PKM},Puskesmas Uji,2025-04-03,,-5,1").encode(), "kept", (2, "V06"))
    add("fractional_count", "value", "val/tb/fraction.csv",
        csv(TB, f'2025-03,{PKM},Puskesmas Uji,2025-04-03,,"2,5",1').encode(), "kept", (2, "V06"))
    add("overflowing_count", "value", "val/tb/overflow.csv",
        csv(TB, f"2025-03,{PKM},Puskesmas Uji,2025-04-03,,99999999999999999999999,1").encode(),
        "kept", (2, "V06"))
    add("exotic_numbers", "value", "val/tb/exotic.csv",
        csv(TB, f"2025-03,{PKM},Puskesmas Uji,2025-04-03,,1e3,NaN",
            f"2025-02,{PKM},Puskesmas Uji,2025-03-03,,0x10,inf").encode(),
        "kept", (2, "V06"), (3, "V06"))
    add("nil_report_with_values", "value", "val/tb/nil.csv",
        csv(TB, f"2025-01,{PKM},Puskesmas Uji,2025-02-03,ya,0,7").encode(), "kept", (2, "V06N"))
    add("duplicate_row_in_file", "value", "val/tb/dup_rows.csv",
        csv(TB, ok("duplicate_row_in_file"), ok("duplicate_row_in_file")).encode(),
        "kept", (2, "V15"), (3, "V15"))

    # --- injection payloads ----------------------------------------------------------------
    add("sql_in_code", "injection", "inj/tb/sql.csv",
        csv(TB, f'2025-03,"{SQL_CODE}",Klinik,2025-04-03,,1,1').encode(), "kept", (2, "V01"))
    add("shell_in_code", "injection", "inj/tb/shell.csv",
        csv(TB, f"2025-03,{SHELL_CODE},Klinik,2025-04-03,,1,1").encode(), "kept", (2, "V01"))
    add("backtick_in_code", "injection", "inj/tb/backtick.csv",
        csv(TB, f"2025-03,{BACKTICK_CODE},Klinik,2025-04-03,,1,1").encode(), "kept", (2, "V01"))
    add("sql_in_value", "injection", "inj/tb/sql_value.csv",
        csv(TB, f'2025-03,{PKM},Puskesmas Uji,2025-04-03,,"1; DROP TABLE clean.quarantine",1'
            ).encode(),
        "kept", (2, "V06"))
    add("placeholder_in_value", "injection", "inj/tb/placeholder.csv",
        csv(TB, f"2025-03,{PKM},Puskesmas Uji,2025-04-03,,{{column}}{{value}}%s?$1,1").encode(),
        "kept", (2, "V06"))
    formula_rows = [f'2025-0{i + 1},K002,"{n.replace(chr(34), chr(34) * 2)}",2025-0{i + 2}-03,,1,1'
                    for i, n in enumerate(FORMULA_NAMES)]
    add("csv_injection_names", "injection", "inj/tb/formula_names.csv",
        csv(TB, *formula_rows).encode(),
        "kept", *[(i + 2, "kept") for i in range(len(FORMULA_NAMES))])

    # --- paths -----------------------------------------------------------------------------
    # a name starting with "." is a hidden file (`.DS_Store`, `._x.csv`): ignored by design, and
    # counted in the summary's files_ignored — never read, never looked up as a path
    add("dotdot_backslash_hidden_name", "path", "path/tb/..\\..\\hidden_tb.csv",
        csv(TB, ok("hidden")).encode(), "ignored")
    add("backslash_dotdot_name", "path", "path/tb/x\\..\\..\\x_tb.csv",
        csv(TB, ok("backslash_dotdot_name").replace("2025-03", "2025-01")
            .replace("2025-04-03", "2025-02-03")).encode(),
        "kept", (2, "kept"))
    add("dots_in_name", "path", "path/tb/x..tb..csv",
        csv(TB, ok("dots_in_name").replace(KLINIK, "K002")).encode(), "kept", (2, "kept"))
    long_name = "p" * 240 + "_tb.csv"   # 247 bytes: close to the 255-byte limit of a name
    add("very_long_file_name", "path", f"path/tb/{long_name}",
        csv(TB, ok("very_long_file_name").replace(KLINIK, "K002").replace("2025-03", "2025-02")
            .replace("2025-04-03", "2025-03-03")).encode(), "kept", (2, "kept"))
    add("shell_in_file_name", "path", "path/tb/$(touch pwned) `id`; rm -rf x.csv",
        csv(TB, "2025-01,K002,Klinik Dua,2025-02-03,,1,1").encode(), "kept", (2, "kept"))
    (landing / "path" / "dir.csv").mkdir(parents=True, exist_ok=True)
    out.append(Expect("directory_named_csv", "path", "path/dir.csv", "not_a_file"))
    add("file_inside_dir_named_csv", "path", "path/dir.csv/inner_tb.csv",
        csv(TB, "2025-03,K002,Klinik Dua,2025-04-03,,2,2").encode(), "kept", (2, "kept"))
    if outside is not None:
        outside.mkdir(parents=True, exist_ok=True)
        secret = outside / "secret_tb.csv"
        secret.write_text(csv(TB, f"2025-03,{PKM},SECRET,2025-04-03,,1,1"), encoding="utf-8")
        link = landing / "path" / "tb" / "link_outside.csv"
        link.symlink_to(secret)
        out.append(Expect("symlink_file_outside", "path", "path/tb/link_outside.csv", "F10"))
        dotdot = landing / "path" / "tb" / "dotdot.csv"
        dotdot.symlink_to(Path("..") / ".." / ".." / outside.name / "secret_tb.csv")
        out.append(Expect("symlink_dotdot_outside", "path", "path/tb/dotdot.csv", "F10"))
        (landing / "path" / "linked_dir").symlink_to(outside, target_is_directory=True)
        out.append(Expect("symlink_dir_outside", "path", "path/linked_dir", "F10"))

    # --- DHIS2 -----------------------------------------------------------------------------
    def dhis2(case: str, rel: str, body: bytes, *outcomes: tuple[int | None, str] | str) -> None:
        add(case, "dhis2", rel, body, *outcomes)

    dhis2("dhis2_not_json", "dhis2/not_json.json", b"{this is: not json,,,", "F07")
    dhis2("dhis2_json_array", "dhis2/array.json", b"[1, 2, 3]", "F07")
    dhis2("dhis2_datavalues_object", "dhis2/object.json",
          json.dumps({"dataValues": {"a": 1}}).encode(), "F07")
    dhis2("dhis2_datavalues_scalars", "dhis2/scalars.json",
          json.dumps({"dataValues": [1, "x"]}).encode(), "F07")
    dhis2("dhis2_missing_keys", "dhis2/missing.json",
          json.dumps({"dataValues": [{"dataElement": "tb_skrining"}]}).encode(), "F07")
    dhis2("dhis2_empty_values", "dhis2/empty.json", json.dumps({"dataValues": []}).encode(), "F02")
    dhis2("dhis2_nested_shapes", "dhis2/nested.json", json.dumps({"dataValues": [
        {"dataElement": ["tb_skrining"], "period": {"y": 2025}, "orgUnit": PKM,
         "value": {"v": 1}}]}).encode(),
        "kept", (1, "V05"))
    dhis2("dhis2_sql_orgunit", "dhis2/sql_org.json", json.dumps({"dataValues": [
        {"dataElement": "tb_skrining", "period": "202503", "orgUnit": SQL_CODE,
         "value": "3"}]}).encode(),
        "kept", (1, "V01"))
    dhis2("dhis2_csv_garbage", "dhis2/garbage.csv", b"\x00\x01\x02binary", "F01")
    return out


def CASE_COUNT(expects: list[Expect]) -> int:
    """How many distinct cases the expectations cover."""
    return len({e.case for e in expects})
