"""`kolab check`: pre-flight findings on a KOLAB_HOME, one line each with file, row and column.

Checks and their severity are data (`catalog/checks.csv`): an **error** makes `kolab check` exit
1 (the run would fail, or a facility or sasaran cannot be placed at all); a **warning** is
probably wrong but has a defined meaning. `kolab run` runs the quick checks (configuration,
registry, sasaran file, receipt log, files missing from it) at its start and prints them as
warnings; what depends on the files' content comes in its end-of-run summary instead.

`kolab check` itself also reads the landing files: it ingests and cleans them into a scratch
warehouse (a temporary folder, deleted afterwards) with the pipeline's own code, so what it says
about receipt times, reports after `as_of` and quarantined rows is exactly what `kolab run` will
do. The warehouse in KOLAB_HOME is never opened.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from kolab_pipeline import catalog, reference
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import ConfigError, KolabConfig, Paths, Settings, load_config
from kolab_pipeline.indicators.catalogue import (
    OFFICIAL_SASARAN,
    load_catalogue,
    load_sasaran_formulas,
)
from kolab_pipeline.indicators.sasaran import resolve_sasaran, sasaran_placement
from kolab_pipeline.onboarding import feedback
from kolab_pipeline.onboarding.init import recorded_area
from kolab_pipeline.raw.dhis2 import DHIS2_DIR
from kolab_pipeline.raw.landing import (
    RECEIPT_MANIFEST,
    is_ignored,
    list_landing,
    manifest_key,
)
from kolab_pipeline.raw.readers import decode_text, parse_timestamp, sniff_delimiter
from kolab_pipeline.reference import REFERENCE_DIR, RegistryError, norm_text
from kolab_pipeline.warehouse import connect

LIMIT = 20  # lines per check before "… and N more"


@cache
def severities() -> dict[str, str]:
    """check id → error | warning (`catalog/checks.csv`)."""
    return {r["check"]: r["severity"] for r in catalog.rows(catalog.CHECKS)}


@dataclass(frozen=True)
class Finding:
    """One finding: which check, where (file relative to KOLAB_HOME, row, column), what."""

    check: str
    file: str
    message: str
    row: int | None = None
    column: str | None = None

    @property
    def severity(self) -> str:
        return severities()[self.check]

    def where(self) -> str:
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.severity:<7} {self.where()}: [{self.check}] {self.message}"


@dataclass
class Report:
    """Every finding of one check run, and what was looked at."""

    findings: list[Finding] = field(default_factory=list)
    looked_at: list[str] = field(default_factory=list)

    def add(self, check: str, file: str, message: str, row: int | None = None,
            column: str | None = None) -> None:
        if check not in severities():
            raise KeyError(f"check {check!r} is not in {catalog.CHECKS.name}")
        self.findings.append(Finding(check, file, message, row, column))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def lines(self, limit: int | None = LIMIT) -> list[str]:
        """One line per finding (errors first), at most `limit` per check."""
        out: list[str] = []
        order = {"error": 0, "warning": 1}
        by_check: dict[str, list[Finding]] = {}
        for f in sorted(self.findings, key=lambda f: order[f.severity]):
            by_check.setdefault(f.check, []).append(f)
        for check, found in by_check.items():
            shown = found if limit is None else found[:limit]
            out += [str(f) for f in shown]
            if len(found) > len(shown):
                out.append(f"{found[0].severity:<7} … and {len(found) - len(shown)} more "
                           f"[{check}] (kolab check --all lists every one)")
        return out

    def summary(self) -> str:
        return (f"kolab check: {len(self.errors)} error(s), {len(self.warnings)} warning(s) "
                f"({'; '.join(self.looked_at)}). Errors make `kolab check` exit 1; "
                "`kolab run` prints the same findings as warnings and goes on.")


# --- registry ------------------------------------------------------------------------------------

def _rel(paths: Paths, path: Path) -> str:
    try:
        return path.relative_to(paths.home).as_posix()
    except ValueError:
        return str(path)


_ARCHIVE = " UNION ALL ".join(
    f"SELECT {col} AS kode, nama FROM read_csv('{REFERENCE_DIR / 'archive_2020' / name}', "
    "all_varchar=true)"
    for col, name in (("kode_prov", "wilayah_provinsi.csv.gz"),
                      ("kode_kabkota", "wilayah_kabkota.csv.gz"),
                      ("kode_kec", "wilayah_kecamatan.csv.gz")))

# One row per registry row with what the reference data says about its codes. `_fas`: the
# registry frame as read (all text) with `_row`, its row number in the file.
REGISTRY_SQL = f"""
    WITH fas AS (
        SELECT _row, trim(kode_faskes) AS kode, trim(nama_faskes) AS nama,
               lower(trim(jenis_faskes)) AS jenis,
               nullif(trim(kode_puskesmas_induk), '') AS induk,
               nullif(trim(kode_wilayah), '') AS wil,
               list_filter(list_transform(string_split(lower(coalesce(formulir, '')), ';'),
                                          lambda x: trim(x)), lambda x: x <> '') AS forms
          FROM _fas
    ), archive AS ({_ARCHIVE})
    SELECT fas.*, w.level AS wil_level, w.nama AS wil_nama,
           arch.nama AS archived_nama, arch_kec.nama AS archived_kec,
           kec.nama AS kec_nama,
           regexp_full_match(fas.kode, 'P[0-9]{{10}}') AS is_pcode,
           p.kode_faskes IS NOT NULL AS in_2019, p.nama_faskes AS nama_2019,
           p.kode_bps_kec, p.kode_kec AS bridged_kec, bridged.nama AS bridged_kec_nama,
           induk.jenis AS induk_jenis
      FROM fas
      LEFT JOIN reference.wilayah w ON w.kode = fas.wil
      LEFT JOIN archive arch ON arch.kode = fas.wil
      LEFT JOIN archive arch_kec ON arch_kec.kode = substr(fas.wil, 1, 8)
      LEFT JOIN reference.wilayah kec ON kec.level = 'kecamatan'
                                     AND kec.kode = substr(fas.wil, 1, 8)
      LEFT JOIN reference.puskesmas_2019 p ON p.kode_faskes = fas.kode
      LEFT JOIN reference.wilayah bridged ON bridged.level = 'kecamatan'
                                         AND bridged.kode = p.kode_kec
      LEFT JOIN (SELECT kode, any_value(jenis) AS jenis FROM fas GROUP BY kode) induk
             ON induk.kode = fas.induk
     ORDER BY fas._row
"""

# The 2019 puskesmas a code or name most likely meant, among those of the same kab/kota.
CLOSEST_PUSKESMAS_SQL = f"""
    SELECT p.kode_faskes, p.nama_faskes
      FROM reference.puskesmas_2019 p
     WHERE substr(p.kode_kec, 1, 5) = $kab OR $kab = ''
     ORDER BY greatest(jaro_winkler_similarity(p.kode_faskes, $kode),
                       jaro_winkler_similarity({reference.norm_sql("'PUSKESMAS' || p.nama_faskes")},
                                               $nama)) DESC, p.kode_faskes
     LIMIT 1
"""


def _closest_puskesmas(con: duckdb.DuckDBPyConnection, kode: str, nama: str, wil: str) -> str:
    row = con.execute(CLOSEST_PUSKESMAS_SQL, {"kab": (wil or "")[:5], "kode": kode,
                                              "nama": norm_text(nama)}).fetchone()
    return f"; did you mean {row[0]} ({row[1]})?" if row else ""


def check_registry(con: duckdb.DuckDBPyConnection, settings: Settings, report: Report) -> bool:
    """Registry findings; loads the registry into `con` and returns True when it loaded."""
    paths = settings.paths
    path = reference._registry_file(settings, "fasilitas", required=False)
    if path is None:
        report.add("registry_missing", "registry/fasilitas.csv",
                   "not found: run `kolab init --kabkota <kode>` for a starter registry, or put "
                   "yours there (columns in README, Inputs)")
        return False
    rel = _rel(paths, path)
    loaded = True
    try:
        reference.load_registry(con, settings)
    except RegistryError as exc:
        report.add("registry_invalid", rel, str(exc).replace(f"{path}: ", ""))
        loaded = False
    except Exception as exc:  # fasilitas loaded, sasaran.csv stopped the load (e.g. a bad tahun)
        report.add("sasaran_invalid", "registry/sasaran.csv",
                   f"`kolab run` would stop loading it: {str(exc).splitlines()[0]}")
    frame = reference._read_registry(path)
    needed = ["kode_faskes", "nama_faskes", "jenis_faskes", "kode_puskesmas_induk",
              "kode_wilayah", "formulir"]
    if any(c not in frame.columns for c in needed):
        return False
    frame = frame.astype(object).where(frame.notna(), None)
    frame["_row"] = range(2, len(frame) + 2)
    report.looked_at.append(f"{len(frame)} facilities in {rel}")
    con.register("_fas", frame)
    try:
        rows = feedback._dicts(con, REGISTRY_SQL)
    finally:
        con.unregister("_fas")
    area = recorded_area(paths.home)
    for r in rows:
        _registry_row(con, report, rel, r, area)
    return loaded


def _registry_row(con: duckdb.DuckDBPyConnection, report: Report, rel: str, r: dict,
                  area: dict | None) -> None:
    who = f"{r['kode']} {r['nama'] or ''}".rstrip()
    row = r["_row"]

    def add(check: str, column: str, message: str) -> None:
        report.add(check, rel, f"{who}: {message}", row, column)

    wil = r["wil"] or ""
    if not wil:
        add("wilayah_unknown", "kode_wilayah", "empty; write the Kemendagri kecamatan or desa "
            "code (e.g. 36.72.02)")
    elif r["wil_level"] is None:
        if r["archived_nama"] or r["archived_kec"]:
            add("wilayah_closed", "kode_wilayah",
                f"{wil} ({r['archived_nama'] or r['archived_kec']}) is a 2020 Kemendagri code "
                "that no longer exists; write its 2025 code")
        else:
            add("wilayah_unknown", "kode_wilayah",
                f"{wil} is not a Kemendagri code (2025 list; dotted, e.g. 36.72.02 or "
                "36.72.02.1001)")
    elif r["wil_level"] in ("kabkota", "provinsi"):
        add("wilayah_not_kecamatan", "kode_wilayah",
            f"{wil} is a {r['wil_level']} code ({r['wil_nama']}): the facility counts in no "
            "kecamatan; write its kecamatan or desa code")
    if area and wil and r["wil_level"] is not None and not wil.startswith(area["kode"]):
        add("outside_area", "kode_wilayah",
            f"{wil} is outside {area['nama']} ({area['kode']}), the area `kolab init` set up")
    if r["jenis"] == "puskesmas":
        _puskesmas_row(con, add, r, wil)
        if r["induk"]:
            add("induk_on_puskesmas", "kode_puskesmas_induk",
                f"{r['induk']} is ignored: a puskesmas heads its own network; leave it empty")
    elif r["jenis"]:
        if not r["induk"]:
            add("induk_missing", "kode_puskesmas_induk",
                f"a {r['jenis']} needs the puskesmas it reports to (its P-code)")
        elif r["induk_jenis"] is None:
            add("induk_unknown", "kode_puskesmas_induk",
                f"{r['induk']} is not a kode_faskes of this registry")
        elif r["induk_jenis"] != "puskesmas":
            add("induk_unknown", "kode_puskesmas_induk",
                f"{r['induk']} is a {r['induk_jenis']}, not a puskesmas")
    bad = [f for f in r["forms"] or [] if f not in FORMS]
    if bad:
        add("form_unknown", "formulir",
            f"{', '.join(bad)} not a form (use {';'.join(FORMS)}, separated by ;)")


def _puskesmas_row(con: duckdb.DuckDBPyConnection, add: Callable[[str, str, str], None],
                   r: dict, wil: str) -> None:
    if not r["is_pcode"]:
        add("puskesmas_code_unknown", "kode_faskes",
            "not a Kemenkes puskesmas code (P + 10 digits), so its kecamatan cannot be checked"
            + _closest_puskesmas(con, r["kode"], r["nama"] or "", wil))
    elif not r["in_2019"]:
        add("puskesmas_code_unknown", "kode_faskes",
            "not in the Kemenkes 2019 puskesmas list (a new puskesmas, or a typo)"
            + _closest_puskesmas(con, r["kode"], r["nama"] or "", wil))
    elif r["bridged_kec"] is None:
        add("puskesmas_kecamatan_gone", "kode_wilayah",
            f"the BPS kecamatan {r['kode_bps_kec']} of its P-code no longer exists, so its "
            "Kemendagri kecamatan cannot be checked; make sure kode_wilayah is right")
    elif wil and r["wil_level"] is not None and wil[:8] != r["bridged_kec"]:
        here = f"{wil[:8]} {r['kec_nama']}" if r["kec_nama"] else wil
        add("kecamatan_mismatch", "kode_wilayah",
            f"its P-code's BPS kecamatan {r['kode_bps_kec']} is Kemendagri kecamatan "
            f"{r['bridged_kec']} {r['bridged_kec_nama']} (BPS↔Kemendagri bridge), but "
            f"kode_wilayah says {here}; write {r['bridged_kec']} (the P-code's digits are BPS "
            "codes, not Kemendagri)")


# --- sasaran -------------------------------------------------------------------------------------

def _number(text: object) -> float | None:
    try:
        return float(str(text).strip().replace(",", "."))
    except ValueError:
        return None


_UNPLACED = {  # sasaran.sasaran_placement → why a row is not used
    "not_puskesmas": "is a facility but not a puskesmas: sasaran are per puskesmas (its network) "
                     "or wilayah",
    "outside": "is neither a puskesmas of the registry nor a wilayah code (provinsi, kab/kota, "
               "kecamatan, desa) of a kab/kota it holds",
    "partial_province": "is a province the registry holds only some kab/kota of: its sasaran is "
                        "the sum of theirs",
}


def check_sasaran_file(con: duckdb.DuckDBPyConnection, settings: Settings, report: Report,
                       registry_loaded: bool) -> None:
    """Findings on the rows of `sasaran.csv` (codes, numbers, units)."""
    path = reference._registry_file(settings, "sasaran", required=False)
    if path is None:
        return
    rel = _rel(settings.paths, path)
    frame = reference._read_registry(path)
    missing = [c for c in ("tahun", "kode_unit", "sasaran", "nilai", "metode")
               if c not in frame.columns]
    if missing:
        report.add("sasaran_invalid", rel, f"missing column(s) {', '.join(missing)}")
        return
    known = set(OFFICIAL_SASARAN) | {f.sasaran for f in load_sasaran_formulas()}
    placement: dict[str, str] = {}
    if registry_loaded:
        placement = sasaran_placement(con, [str(u).strip() for u in frame["kode_unit"].dropna()])
    filled = 0
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        tahun, code = rec.get("tahun"), str(rec.get("sasaran") or "").strip()
        unit, nilai = str(rec.get("kode_unit") or "").strip(), rec.get("nilai")
        if pd.isna(tahun) or not re.fullmatch(r"\s*\d{4}\s*", str(tahun)):
            report.add("sasaran_invalid", rel, f"tahun {tahun!r} is not a year", i, "tahun")
        if not pd.isna(nilai) and str(nilai).strip():
            filled += 1
            if _number(nilai) is None:
                report.add("sasaran_invalid", rel, f"nilai {nilai!r} is not a number (write "
                           "digits, a decimal comma or point; no thousands separator)", i,
                           "nilai")
        if pd.isna(nilai) or not str(nilai).strip():
            continue  # a blank skeleton row is inert (a puskesmas you removed keeps its rows)
        if code not in known:
            close = difflib.get_close_matches(code, sorted(known), n=1)
            report.add("sasaran_code_unknown", rel, f"{code!r} is not a sasaran code"
                       + (f"; did you mean {close[0]}?" if close else ""), i, "sasaran")
        why = unit and _UNPLACED.get(placement.get(unit, "placed"))
        if why:
            report.add("sasaran_unit_unknown", rel, f"{unit} {why}: the row is not used", i,
                       "kode_unit")
    report.looked_at.append(f"{len(frame)} sasaran rows ({filled} with nilai) in {rel}")


# Units × sasaran codes indicators need, and whether the resolution found a value. Units: every
# level the indicator catalogue computes with a sasaran denominator.
GAPS_SQL = """
    WITH units AS (
        SELECT DISTINCT 'puskesmas_network' AS unit_level, f.kode_jejaring AS kode_unit,
               p.nama_faskes AS nama
          FROM reference.facility f
          LEFT JOIN reference.facility p ON p.kode_faskes = f.kode_jejaring
         WHERE f.kode_jejaring IS NOT NULL
        UNION SELECT DISTINCT 'kecamatan', f.kode_kec, w.nama FROM reference.facility f
          LEFT JOIN reference.wilayah w ON w.kode = f.kode_kec WHERE length(f.kode_kec) = 8
        UNION SELECT DISTINCT 'kabkota', f.kode_kabkota, w.nama FROM reference.facility f
          LEFT JOIN reference.wilayah w ON w.kode = f.kode_kabkota
         WHERE length(f.kode_kabkota) = 5
    ), needed AS (
        SELECT unnest($codes::VARCHAR[]) AS sasaran, unnest($levels::VARCHAR[]) AS unit_level,
               unnest($indicators::VARCHAR[]) AS indicators
    ), years AS (SELECT unnest($years::INTEGER[]) AS tahun)
    SELECT n.sasaran, n.unit_level, y.tahun, n.indicators,
           list(u.kode_unit || ' ' || coalesce(u.nama, '') ORDER BY u.kode_unit) AS units_missing,
           (SELECT count(*) FROM units a WHERE a.unit_level = n.unit_level) AS n_units
      FROM needed n JOIN units u USING (unit_level) CROSS JOIN years y
      LEFT JOIN indicators.sasaran_resolved r
             ON r.tahun = y.tahun AND r.unit_level = n.unit_level
            AND r.kode_unit = u.kode_unit AND r.sasaran = n.sasaran
     WHERE r.nilai IS NULL
     GROUP BY ALL ORDER BY y.tahun, n.unit_level DESC, n.sasaran
"""

_LEVEL_WORDS = {"puskesmas_network": "puskesmas networks", "kecamatan": "kecamatan",
                "kabkota": "kab/kota"}


def sasaran_gaps(con: duckdb.DuckDBPyConnection, settings: Settings,
                 years: list[int], resolve: bool = True) -> list[dict]:
    """(sasaran, level, year) groups of units with no value for a sasaran an indicator needs
    there. `resolve`: run the sasaran resolution first (a scratch warehouse); after `kolab run`
    `indicators.sasaran_resolved` is already there."""
    if resolve:
        resolve_sasaran(con, settings, years)
    pairs: dict[tuple[str, str], list[str]] = {}
    for ind in load_catalogue():
        for level in ind.levels:
            if ind.sasaran and level in _LEVEL_WORDS:
                pairs.setdefault((ind.sasaran, level), []).append(ind.code)
    keys = sorted(pairs)
    return feedback._dicts(con, GAPS_SQL, {
        "codes": [k[0] for k in keys], "levels": [k[1] for k in keys],
        "indicators": [", ".join(pairs[k]) for k in keys], "years": sorted(set(years))})


def group_gaps(gaps: list[dict]) -> list[dict]:
    """Gaps of the same level, year and units as one: `sasaran` becomes a list of codes and
    `indicators` the indicators of all of them (an empty skeleton gives one line per level)."""
    grouped: dict[tuple, dict] = {}
    for gap in gaps:
        key = (gap["unit_level"], gap["tahun"], tuple(gap["units_missing"]))
        g = grouped.setdefault(key, {**gap, "sasaran": [], "indicators": []})
        g["sasaran"].append(gap["sasaran"])
        g["indicators"] += [i for i in gap["indicators"].split(", ") if i not in g["indicators"]]
    return list(grouped.values())


def gap_message(gap: dict) -> str:
    """One grouped gap in words: which units, which sasaran, which indicators, what to fill."""
    units = gap["units_missing"]
    listed = ", ".join(units[:4]) + (f", … ({len(units) - 4} more)" if len(units) > 4 else "")
    level = _LEVEL_WORDS[gap["unit_level"]]
    codes = gap["sasaran"]
    bases = {f.sasaran: f.base for f in load_sasaran_formulas()}
    roots = sorted({c for c in codes if c not in bases} | {bases[c] for c in codes if c in bases
                                                           and bases[c] not in codes})
    derive = (f" (with {', '.join(roots)} alone the formulas derive the rest)"
              if roots and len(codes) > len(roots) else "")
    where = " per puskesmas or per kecamatan" if gap["unit_level"] == "kecamatan" else ""
    shown = ", ".join(gap["indicators"][:6]) + (", …" if len(gap["indicators"]) > 6 else "")
    return (f"tahun {gap['tahun']}: no {', '.join(codes)} for {len(units)} of {gap['n_units']} "
            f"{level} ({listed}), so {shown} stay empty there; fill nilai{where}{derive}")


def _sasaran_row(settings: Settings, gap: dict) -> int | None:
    """The first row of sasaran.csv (e.g. a blank skeleton row) for a unit and code of `gap`."""
    path = reference._registry_file(settings, "sasaran", required=False)
    if path is None:
        return None
    frame = reference._read_registry(path)
    units = {u.split(" ", 1)[0] for u in gap["units_missing"]}
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        if (str(rec.get("sasaran") or "").strip() in gap["sasaran"]
                and str(rec.get("kode_unit") or "").strip() in units
                and str(rec.get("tahun") or "").strip() == str(gap["tahun"])):
            return i
    return None


def add_sasaran_gaps(report: Report, settings: Settings, gaps: list[dict]) -> None:
    for gap in group_gaps(gaps):
        row = _sasaran_row(settings, gap)
        report.add("sasaran_missing", "registry/sasaran.csv", gap_message(gap), row,
                   "nilai" if row else None)


# --- landing folder ------------------------------------------------------------------------------

def check_receipt_log(settings: Settings, report: Report) -> tuple[set[str], list[str]]:
    """Rows of `landing/_diterima.csv` that are unreadable or name no landing file; returns the
    paths it lists and the landing files (relative paths, submissions only)."""
    landing = settings.paths.landing
    files = [e.rel for e in list_landing(landing) if not is_ignored(e.rel)]
    existing = set(files)
    listed: set[str] = set()
    path = landing / RECEIPT_MANIFEST
    rel = f"landing/{RECEIPT_MANIFEST}"
    if not path.exists():
        return listed, files
    try:
        text, _ = decode_text(path.read_bytes())
    except Exception as exc:  # FileRejected: unreadable encoding
        report.add("receipt_log_unreadable", rel, f"unreadable ({exc}); file dates are used")
        return listed, files
    tz = settings.config.timezones.default
    records = csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(text))
    for i, rec in enumerate(records, start=2):
        written = (rec.get("file") or "").strip()
        name = manifest_key(written)
        try:
            ts = parse_timestamp(rec.get("received_at"), tz)
        except ValueError:
            ts = None
        if not name or ts is None:
            report.add("receipt_log_unreadable", rel,
                       f"file {written!r}, received_at {rec.get('received_at')!r}: "
                       "both are needed (received_at as 2025-04-08 or 2025-04-08T09:30+07:00)",
                       i, "received_at" if name else "file")
            continue
        listed.add(name)
        if name not in existing:
            report.add("receipt_log_missing_file", rel,
                       f"{written!r} is not in the landing folder; paths are relative to "
                       f"KOLAB_HOME/landing{_closest_path(name, files)}", i, "file")
    return listed, files


def _closest_path(name: str, files: list[str]) -> str:
    base = name.rsplit("/", 1)[-1]
    same = [f for f in files if f.rsplit("/", 1)[-1] == base]
    close = same or difflib.get_close_matches(name, files, n=1, cutoff=0.85)
    return f"; did you mean {close[0]!r}?" if close else ""


def unlisted_files(settings: Settings, report: Report, listed: set[str],
                   files: list[str]) -> None:
    """Quick form (no reading): landing files the receipt log does not list."""
    by_rel = {e.rel: e for e in list_landing(settings.paths.landing)}
    tz = settings.config.timezones.default
    for rel in files:
        if rel in listed or rel.split("/", 1)[0] == DHIS2_DIR:
            continue
        mtime = feedback.local_text(by_rel[rel].mtime, tz)
        report.add("receipt_from_file_date", f"landing/{rel}",
                   f"not in landing/{RECEIPT_MANIFEST}: its receipt at the Dinkes is the file's "
                   f"date ({mtime}) unless its rows carry tanggal_lapor of a network facility; "
                   f"add a line `{rel},<received_at>`")


def content_findings(con: duckdb.DuckDBPyConnection, settings: Settings,
                     report: Report) -> None:
    """What the scratch ingest + clean of the landing files says (receipt sources, after
    as_of, rejected files, quarantined rows)."""
    tz = settings.config.timezones.default
    for r in feedback._dicts(con, """
            SELECT source_path, any_value(received_source) AS source, count(*) AS n,
                   min(received_at) AS received_at, list(row_number ORDER BY row_number) AS rows
              FROM clean.submission WHERE list_contains($sources::VARCHAR[], received_source)
             GROUP BY source_path ORDER BY source_path""",
            {"sources": list(feedback.FILE_DATE_SOURCES)}):
        which = (f"row {_rows(r['rows'])} takes its" if r["n"] == 1
                 else f"rows {_rows(r['rows'])} take their")
        report.add("receipt_from_file_date", f"landing/{r['source_path']}",
                   f"{which} receipt time from "
                   f"{feedback.source_words(r['source'])}: "
                   f"{feedback.local_text(r['received_at'], tz)}; add a line "
                   f"`{r['source_path']},<received_at>` to landing/{RECEIPT_MANIFEST}")
    for r in feedback.received_after_as_of(con, settings):
        report.add("received_after_as_of", f"landing/{r['source_path']}",
                   f"{feedback._facility(r)} {r['form']} {r['period']}: received "
                   f"{feedback.local_text(r['received_at'], r['tz'])} "
                   f"({feedback.source_words(r['received_source'])}), after as_of "
                   f"{settings.config.reporting.as_of_text()}: not counted by this run",
                   r["row_number"])
    for path, rule, reason in con.execute(
            "SELECT source_path, reject_rule, reject_reason FROM raw.landing_file "
            "WHERE status = 'rejected' ORDER BY source_path").fetchall():
        report.add("file_rejected", f"landing/{path}", f"{rule}: {reason}")
    columns = dict(((p, n), c) for p, n, c in con.execute(
        "SELECT source_path, row_number, any_value(column_name) FROM clean.quarantine "
        "WHERE row_number IS NOT NULL GROUP BY ALL").fetchall())
    for q in feedback.quarantined_rows(con):
        if q.row_number is None:
            continue
        text = f"{'/'.join(q.rules)}: {q.reason}"
        if q.suggestion:
            text += f"; did you mean {q.suggestion}?"
        report.add("row_quarantined", f"landing/{q.source_path}", text, q.row_number,
                   columns.get((q.source_path, q.row_number)))


def _rows(rows: list[int]) -> str:
    return ", ".join(str(r) for r in rows[:8]) + (", …" if len(rows) > 8 else "")


# --- running the checks --------------------------------------------------------------------------

def _config(home: Path, report: Report) -> KolabConfig:
    try:
        return load_config(home)
    except ConfigError as exc:
        report.add("config_invalid", "kolab.yaml", str(exc).replace(f"{home / 'kolab.yaml'}: ",
                                                                    "").splitlines()[0])
        return KolabConfig()


def run_checks(home: Path, deep: bool = True) -> Report:
    """Every check on `home`. `deep`: also ingest and clean the landing files into a scratch
    warehouse (what `kolab check` does); without it only the quick checks (start of `kolab run`)."""
    report = Report()
    settings = Settings(paths=Paths(home=home), config=_config(home, report))
    with tempfile.TemporaryDirectory(prefix="kolab_check_") as tmp:
        con = connect(Path(tmp) / "check.duckdb")
        try:
            reference.load_wilayah(con)
            reference.load_catalogues(con)
            loaded = check_registry(con, settings, report)
            check_sasaran_file(con, settings, report, loaded)
            listed, files = check_receipt_log(settings, report)
            report.looked_at.append(f"{len(files)} landing files, {len(listed)} in "
                                    f"landing/{RECEIPT_MANIFEST}")
            if not deep:
                unlisted_files(settings, report, listed, files)
            elif loaded:
                _deep(con, settings, report)
        finally:
            con.close()
    return report


def _deep(con: duckdb.DuckDBPyConnection, settings: Settings, report: Report) -> None:
    from kolab_pipeline.clean import build_clean
    from kolab_pipeline.raw import ingest_landing

    ingest_landing(con, settings, run_id="kolab-check")
    build_clean(con, settings, full=True)
    content_findings(con, settings, report)
    years = sorted({int(p[:4]) for (p,) in con.execute(
        "SELECT DISTINCT period FROM clean.submission").fetchall()})
    if not years:
        as_of = settings.config.reporting.as_of
        years = [as_of.year] if as_of else []
    if years:
        add_sasaran_gaps(report, settings, sasaran_gaps(con, settings, years))
    n_rows = con.execute("SELECT count(*) FROM raw.submission_row").fetchone()[0]
    report.looked_at.append(f"{n_rows} rows read")
