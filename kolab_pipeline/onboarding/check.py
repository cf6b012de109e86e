"""`kolab check`: pre-flight findings on a KOLAB_HOME, one line each with file, row and column
(`findings`). The registry and sasaran checks are here, the landing folder's in `landing_check`.

An **error** (`catalog/checks.csv`) makes `kolab check` exit 1; a **warning** is probably wrong
but has a defined meaning. `kolab run` runs the quick checks at its start and prints them as
warnings. `kolab check` also ingests and cleans the landing files into a scratch warehouse (a
temporary folder) with the pipeline's own code; the warehouse in KOLAB_HOME is never opened.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from kolab_pipeline import reference
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import ConfigError, KolabConfig, Paths, Settings, load_config
from kolab_pipeline.indicators.catalogue import (
    OFFICIAL_SASARAN,
    load_catalogue,
    load_sasaran_formulas,
)
from kolab_pipeline.indicators.sasaran import resolve_sasaran, sasaran_placement
from kolab_pipeline.onboarding import feedback
from kolab_pipeline.onboarding.findings import Report
from kolab_pipeline.onboarding.init import recorded_area
from kolab_pipeline.onboarding.landing_check import (
    check_receipt_log,
    content_findings,
    unlisted_files,
)
from kolab_pipeline.raw.landing import RECEIPT_MANIFEST
from kolab_pipeline.reference import REFERENCE_DIR, RegistryError, norm_text
from kolab_pipeline.warehouse import connect

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
    path = reference.registry_file(settings, "fasilitas", required=False)
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
    frame = reference.read_registry(path)
    needed = ["kode_faskes", "nama_faskes", "jenis_faskes", "kode_puskesmas_induk",
              "kode_wilayah", "formulir"]
    if any(c not in frame.columns for c in needed):
        return False
    frame = frame.astype(object).where(frame.notna(), None)
    frame["_row"] = range(2, len(frame) + 2)
    report.looked_at.append(f"{len(frame)} facilities in {rel}")
    con.register("_fas", frame)
    try:
        rows = feedback.query_dicts(con, REGISTRY_SQL)
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
    path = reference.registry_file(settings, "sasaran", required=False)
    if path is None:
        return
    rel = _rel(settings.paths, path)
    frame = reference.read_registry(path)
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
    return feedback.query_dicts(con, GAPS_SQL, {
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
    path = reference.registry_file(settings, "sasaran", required=False)
    if path is None:
        return None
    frame = reference.read_registry(path)
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
