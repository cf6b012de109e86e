"""`kolab init --kabkota 36.72` (or `--provinsi 36`): a starter `KOLAB_HOME` for one kab/kota or
provinsi, from the bundled reference data (paths under KOLAB_HOME):

- `registry/fasilitas.csv`: the area's puskesmas of the Kemenkes 2019 list, placed in their
  **Kemendagri** kecamatan through the BPS↔Kemendagri bridge, with the forms a puskesmas reports
  (`catalog/forms.csv` `assigned_to`); the Dinkes adds its network facilities;
- `registry/sasaran.csv`: sasaran code × unit (kab/kota, each puskesmas) × year, `nilai` blank;
- `kolab.yaml` (the area's time zone and first keys) and `templates/` (`kolab template`).

Idempotent, never overwriting a file the user edited (`.kolab/init.json` records each file's
sha256 as written). Design: docs/design/onboarding.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from kolab_pipeline import catalog, labels
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import load_config
from kolab_pipeline.indicators.catalogue import load_catalogue, load_sasaran_formulas
from kolab_pipeline.onboarding import reference_db
from kolab_pipeline.reference import FACILITY_COLUMNS, norm_text

RECORD = Path(".kolab") / "init.json"
TEMPLATES_DIR = "templates"


class InitError(ValueError):
    """The area asked for is unknown or ambiguous; the message says what to write instead."""


@dataclass(frozen=True)
class Area:
    """The kab/kota or provinsi a KOLAB_HOME is set up for."""

    level: str                   # kabkota | provinsi
    kode: str                    # Kemendagri code (36.72 / 36)
    nama: str
    nama_prov: str
    timezone: str
    kabkota: tuple[str, ...]     # Kemendagri kab/kota codes of the area

    @property
    def label(self) -> str:
        return f"{self.nama} ({self.kode})" + (f", {self.nama_prov}"
                                                 if self.level == "kabkota" else "")


# --- the area ------------------------------------------------------------------------------------

# A kab/kota name without its kind: `KOTACILEGON` and `CILEGON` both → `CILEGON`.
_BARE = "regexp_replace({0}, '^(KABUPATEN|KAB|KOTA)', '')"


def _suggest(con: duckdb.DuckDBPyConnection, level: str, text: str) -> str:
    rows = con.execute(
        "SELECT kode, nama FROM reference.wilayah WHERE level = $level ORDER BY "
        f"jaro_winkler_similarity({_BARE.format('nama_norm')}, {_BARE.format('$norm')}) DESC, "
        "kode LIMIT 3", {"level": level, "norm": norm_text(text)}).fetchall()
    return ", ".join(f"{k} {n}" for k, n in rows)


def _by_name(con: duckdb.DuckDBPyConnection, level: str, text: str) -> tuple[str, str] | None:
    """The unit named `text` (`Kota Cilegon`, `cilegon`); an error when the bare name is both a
    kabupaten and a kota (Bogor) and the kind was not written."""
    rows = con.execute(
        "SELECT kode, nama, nama_norm = $norm AS exact FROM reference.wilayah "
        f"WHERE level = $level AND {_BARE.format('nama_norm')} = {_BARE.format('$norm')} "
        "ORDER BY exact DESC, kode", {"level": level, "norm": norm_text(text)}).fetchall()
    if len(rows) > 1 and not rows[0][2]:
        raise InitError(f"--{level} {text!r} is ambiguous: "
                        + " or ".join(f"{k} {n}" for k, n, _ in rows) + "; write the code")
    return (rows[0][0], rows[0][1]) if rows else None


def find_area(con: duckdb.DuckDBPyConnection, tz_of, kabkota: str | None = None,
              provinsi: str | None = None) -> Area:
    """The area of `--kabkota` (Kemendagri code `36.72` or a name) or `--provinsi` (`36` or a
    name). `tz_of(kode)` gives the time zone of a Kemendagri code (kolab.yaml `timezones`)."""
    level, text = ("kabkota", kabkota) if kabkota else ("provinsi", provinsi or "")
    text = text.strip()
    pattern = r"\d{2}\.\d{2}" if level == "kabkota" else r"\d{2}"
    if re.fullmatch(pattern, text):
        row = con.execute("SELECT kode, nama FROM reference.wilayah WHERE level = $level "
                          "AND kode = $kode", {"level": level, "kode": text}).fetchone()
    elif re.fullmatch(r"\d+", text) and level == "kabkota":
        bridged = con.execute(
            "SELECT kode_dagri FROM reference.bps_bridge WHERE level = 'kabkota' "
            "AND kode_bps = $text", {"text": text}).fetchone()
        hint = (f"; BPS code {text} is Kemendagri {bridged[0]}" if bridged
                and bridged[0].replace(".", "") != text else "")
        raise InitError(f"--kabkota {text}: write the Kemendagri code with its dot, e.g. "
                        f"{text[:2]}.{text[2:]} (BPS and Kemendagri kab/kota codes differ{hint})")
    else:
        row = _by_name(con, level, text)
    if row is None:
        raise InitError(f"--{level} {text!r}: not a Kemendagri {level} code or name "
                        f"(closest: {_suggest(con, level, text)})")
    kode, nama = row
    prov = kode[:2]
    nama_prov = con.execute("SELECT nama FROM reference.wilayah WHERE level = 'provinsi' "
                            "AND kode = $p", {"p": prov}).fetchone()[0]
    kabs = (kode,) if level == "kabkota" else tuple(r[0] for r in con.execute(
        "SELECT kode FROM reference.wilayah WHERE level = 'kabkota' AND kode_prov = $p "
        "ORDER BY kode", {"p": prov}).fetchall())
    return Area(level, kode, nama, nama_prov, tz_of(kode), kabs)


# --- the starter registry ------------------------------------------------------------------------

# Puskesmas of the 2019 list placed in a Kemendagri kab/kota: through the kecamatan bridge (the
# `kode_kec` of reference.puskesmas_2019), else — the BPS kecamatan no longer exists — through the
# kab/kota bridge of its BPS kab/kota (then its kecamatan is unknown and kode_wilayah is the
# kab/kota code, which `kolab check` reports).
PUSKESMAS_SQL = """
    WITH kab_bridge AS (
        SELECT kode_bps, min(kode_dagri) AS kode_dagri
          FROM reference.bps_bridge WHERE level = 'kabkota' GROUP BY ALL
    ), located AS (
        SELECT p.kode_faskes, p.nama_faskes, p.kode_bps_kec, p.kode_kec,
               coalesce(substr(p.kode_kec, 1, 5), kab.kode_dagri) AS kode_kabkota
          FROM reference.puskesmas_2019 p
          LEFT JOIN kab_bridge kab ON kab.kode_bps = substr(p.kode_bps_kec, 1, 4)
    )
    SELECT located.*, kec.nama AS nama_kec
      FROM located
      LEFT JOIN reference.wilayah kec ON kec.level = 'kecamatan' AND kec.kode = located.kode_kec
     WHERE list_contains($kabs, located.kode_kabkota)
     ORDER BY located.kode_kabkota, located.kode_kec NULLS LAST, located.kode_faskes
"""


def _display_name(raw: str) -> str:
    """`LIMA KAUM  I` → `Puskesmas Lima Kaum I` (roman numerals kept upper case)."""
    words = []
    for w in raw.split():
        words.append(w.upper() if re.fullmatch(r"[IVXL]+\.?", w.upper()) else w.capitalize())
    name = " ".join(words)
    return name if norm_text(name).startswith("PUSKESMAS") else f"Puskesmas {name}"


def default_forms(jenis: str) -> list[str]:
    """Forms a facility type reports by default (`catalog/forms.csv` `assigned_to`)."""
    return catalog.type_forms(jenis)


def starter_facilities(con: duckdb.DuckDBPyConnection, area: Area) -> pd.DataFrame:
    """The area's puskesmas as `fasilitas.csv` rows (every FACILITY_COLUMNS column + telepon)."""
    found = con.execute(PUSKESMAS_SQL, {"kabs": list(area.kabkota)}).df()
    forms = ";".join(default_forms("puskesmas"))
    out = pd.DataFrame({
        "kode_faskes": found["kode_faskes"],
        "nama_faskes": found["nama_faskes"].map(_display_name),
        "jenis_faskes": "puskesmas",
        "kode_puskesmas_induk": "",
        "kode_wilayah": found["kode_kec"].fillna(found["kode_kabkota"]),
        "tanggal_buka": "", "tanggal_tutup": "", "formulir": forms, "telepon": "",
    }, columns=[*FACILITY_COLUMNS, "telepon"])
    return out


# --- the sasaran skeleton ------------------------------------------------------------------------

def sasaran_codes() -> list[str]:
    """Every sasaran code the indicator catalogue uses as a denominator, with the bases its
    formulas derive it from (`catalog/sasaran_formulas.csv`), in formula order."""
    used = {i.sasaran for i in load_catalogue() if i.sasaran}
    formulas = {f.sasaran: f for f in load_sasaran_formulas()}
    todo, needed = list(used), set()
    while todo:
        code = todo.pop()
        if code in needed:
            continue
        needed.add(code)
        if code in formulas:
            todo.append(formulas[code].base)
    order = ["pend_total", *formulas]
    return sorted(needed, key=lambda c: (order.index(c) if c in order else len(order), c))


def sasaran_note(code: str, level: str) -> str:
    """`keterangan` of a skeleton row: what the code is and what is used while `nilai` is blank
    (no commas or semicolons: the registry reader sniffs the delimiter)."""
    name = labels.label("sasaran", code)
    formula = {f.sasaran: f for f in load_sasaran_formulas()}.get(code)
    described = {r["sasaran"]: r["description"] for r in catalog.rows(catalog.SASARAN_FORMULAS)}
    if code == "pend_total":
        blank = ("bila kosong: penduduk Dukcapil (penduduk_dukcapil)" if level == "kabkota"
                 else "bila kosong: tidak ada - sasaran lain unit ini juga tidak bisa dihitung")
    elif formula is None:
        blank = "bila kosong: tidak ada"
    else:
        rule = f"{formula.metode}: {described.get(code, '')}".strip()
        blank = (f"bila kosong: {rule}" if level == "kabkota"
                 else f"bila kosong: {rule} (hanya bila {formula.base} unit ini ada)")
    return f"{name}. {blank}".replace(",", " ").replace(";", " ")


def sasaran_skeleton(area: Area, facilities: pd.DataFrame, tahun: int) -> pd.DataFrame:
    """`sasaran.csv` rows: every sasaran code × (each kab/kota of the area, each puskesmas) for
    `tahun`, nilai and metode blank."""
    units = [(k, "kabkota") for k in area.kabkota]
    units += [(k, "puskesmas_network") for k in facilities["kode_faskes"]]
    rows = [{"tahun": tahun, "kode_unit": unit, "sasaran": code, "nilai": "", "metode": "",
             "keterangan": sasaran_note(code, level)}
            for unit, level in units for code in sasaran_codes()]
    return pd.DataFrame(rows, columns=["tahun", "kode_unit", "sasaran", "nilai", "metode",
                                       "keterangan"])


# --- kolab.yaml ----------------------------------------------------------------------------------

def kolab_yaml_text(area: Area) -> str:
    abbrev = labels.zone_abbrev(area.timezone)
    return f"""\
# kolab.yaml for {area.label}, written by `kolab init`.
# Keys left out keep the shipped defaults (kolab_pipeline/defaults/kolab.yaml, README
# "Configuration"). Edit freely: `kolab init` never overwrites this file once you changed it.

timezones:
  # Local time of {area.nama}: {abbrev}. Due dates, cut-offs and as_of are read in it.
  default: {area.timezone}

reporting:
  # The moment reports are judged at. A date means the end of that day in local time
  # (2025-04-30 = 2025-04-30 23:59:59 {abbrev}); a timestamp without offset is local time.
  # Empty = now (what a scheduled production run wants).
  as_of: null
  # Day of the next month a report is due: network facility → puskesmas, puskesmas → Dinkes.
  due_day:
    network_to_pkm: 5
    pkm_to_dinkes: 10

partitions:
  # First month of your data (YYYY-MM-01); empty = two years before today.
  start: null
"""


# --- writing without overwriting the user's edits -----------------------------------------------

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class InitResult:
    """What `kolab init` did, one line per file."""

    area: Area
    lines: list[str] = field(default_factory=list)
    n_puskesmas: int = 0

    def __str__(self) -> str:
        return "\n".join(self.lines)


class _Writer:
    """Places files under `home`, refusing to overwrite one the user changed."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / RECORD
        self.record: dict[str, dict[str, str]] = {}
        if self.path.exists():
            try:
                self.record = json.loads(self.path.read_text(encoding="utf-8")).get("files", {})
            except (ValueError, AttributeError):
                self.record = {}
        self.lines: list[str] = []

    def place(self, rel: str, content: bytes, fingerprint: str, what: str,
              shadowed_by: str | None = None) -> None:
        """Write `content` to `rel` unless the user owns that file. `fingerprint` identifies
        the content (a rewrite is needed only when it changed); `shadowed_by`: a user file that
        takes precedence (fasilitas.xlsx over fasilitas.csv)."""
        target = self.home / rel
        if shadowed_by and (self.home / shadowed_by).exists() and not target.exists():
            self.lines.append(f"kept    {shadowed_by}: yours (used instead of {rel})")
            return
        rec = self.record.get(rel)
        if target.exists():
            current = sha256(target)
            if rec is None:
                self.lines.append(f"kept    {rel}: not written by kolab init (yours)")
                return
            if current != rec["sha256"]:
                self.lines.append(f"kept    {rel}: edited since kolab init wrote it")
                return
            if rec.get("fingerprint") == fingerprint:
                self.lines.append(f"same    {rel}: unchanged ({what})")
                return
        verb = "updated" if target.exists() else "wrote  "
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        self.record[rel] = {"sha256": sha256(target), "fingerprint": fingerprint}
        self.lines.append(f"{verb} {rel}: {what}")

    def save(self, area: Area) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"area": {"level": area.level, "kode": area.kode,
                                                  "nama": area.nama},
                                         "files": self.record}, indent=1, sort_keys=True),
                             encoding="utf-8")


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def recorded_area(home: Path) -> dict[str, str] | None:
    """The area `kolab init` set this home up for (None when it never ran)."""
    path = home / RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("area")
    except (OSError, ValueError, AttributeError):
        return None


def init_home(home: Path, kabkota: str | None = None, provinsi: str | None = None,
              tahun: int | None = None) -> InitResult:
    """Write the starter files of `home` for the area; see the module docstring."""
    if bool(kabkota) == bool(provinsi):
        raise InitError("give exactly one of --kabkota (e.g. 36.72) or --provinsi (e.g. 36)")
    cfg = load_config(home)
    con = reference_db()
    try:
        area = find_area(con, cfg.timezones.for_wilayah, kabkota, provinsi)
        facilities = starter_facilities(con, area)
    finally:
        con.close()
    year = tahun or (cfg.reporting.as_of.year if cfg.reporting.as_of else date.today().year)
    writer = _Writer(home)
    fas = _csv_bytes(facilities)
    writer.place("registry/fasilitas.csv", fas, _fingerprint(fas),
                 f"{len(facilities)} puskesmas of {area.label}; add your Klinik Pratama, TPMD, …",
                 shadowed_by="registry/fasilitas.xlsx")
    sas_frame = sasaran_skeleton(area, facilities, year)
    sas = _csv_bytes(sas_frame)
    writer.place("registry/sasaran.csv", sas, _fingerprint(sas),
                 f"{len(sas_frame)} rows ({len(sasaran_codes())} sasaran codes × "
                 f"{len(sas_frame) // max(len(sasaran_codes()), 1)} units, tahun {year}); "
                 "fill nilai and metode",
                 shadowed_by="registry/sasaran.xlsx")
    conf = kolab_yaml_text(area).encode("utf-8")
    yaml.safe_load(conf)  # what we write must be valid YAML
    writer.place("kolab.yaml", conf, _fingerprint(conf),
                 f"time zone {area.timezone} ({labels.zone_abbrev(area.timezone)})")
    for rel, content, fingerprint in _templates():
        writer.place(rel, content, fingerprint, "blank template")
    (home / "landing").mkdir(parents=True, exist_ok=True)
    writer.save(area)
    result = InitResult(area, n_puskesmas=len(facilities))
    result.lines = [f"kolab init: {area.label}, time zone {area.timezone}, "
                    f"KOLAB_HOME={home}", *writer.lines,
                    "next: add your network facilities to registry/fasilitas.csv, fill "
                    "registry/sasaran.csv, put report files in landing/, then `kolab check` and "
                    "`kolab run` (README: Your own data)"]
    return result


def _templates() -> list[tuple[str, bytes, str]]:
    """(relative path, bytes, fingerprint) of every form's blank templates. The XLSX bytes carry
    a creation time, so the fingerprint is the template's columns, not its bytes."""
    from kolab_pipeline.templates import template_columns, write_template

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for form in FORMS:
            codes, names = template_columns(form)
            fingerprint = _fingerprint("\n".join([*codes, *names]).encode("utf-8"))
            for path in write_template(form, Path(tmp)):
                out.append((f"{TEMPLATES_DIR}/{path.name}", path.read_bytes(), fingerprint))
    return out
