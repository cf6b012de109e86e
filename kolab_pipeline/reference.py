"""Reference layer: bundled wilayah/BPS/puskesmas tables, the facility registry and catalogues,
rebuilt whole on every run (small, and a full reload is idempotent). Grain of each table:
`catalog/tables.yaml`.

Registry files (`KOLAB_HOME/registry/`, CSV or XLSX):
- `fasilitas.csv` — one row per facility: kode_faskes, nama_faskes, jenis_faskes,
  kode_puskesmas_induk, kode_wilayah, tanggal_buka, tanggal_tutup, formulir (e.g. `tb;ptm`),
  optional kode_lokal, is_synthetic, telepon (shown in the report's call list).
- `sasaran.csv` — tahun, kode_unit, sasaran, nilai, metode.
- `jejaring.csv` (optional) — dated overrides: kode_faskes, kode_puskesmas_induk, formulir,
  berlaku_mulai, berlaku_sampai.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import ensure_schema, replace_rows

REFERENCE_DIR = Path(__file__).parent / "reference_data"
SOURCE_VERSION = "kepmendagri_300.2.2-2430_2025"

FACILITY_TYPES = ("puskesmas", "pustu", "klinik_pratama", "klinik_utama", "tpmd", "tpmdg",
                  "tpmb", "rs", "lab", "lainnya")


class RegistryError(ValueError):
    """The facility registry is unusable; the message names the file, row and column."""


def _ref(name: str) -> str:
    """`read_csv(...)` of a bundled file (a path of the package, never user text)."""
    return f"read_csv('{REFERENCE_DIR / name}', all_varchar=true)"


def norm_sql(expr: str) -> str:
    """SQL for the matching key used everywhere: upper case, letters and digits only."""
    return f"regexp_replace(upper(coalesce({expr}, '')), '[^A-Z0-9]', '', 'g')"


def norm_text(text: str | None) -> str:
    """Python twin of `norm_sql` (same rule, for code that matches outside DuckDB)."""
    return "".join(ch for ch in (text or "").upper() if ch.isascii() and ch.isalnum())


BRIDGE_SQL = """
    SELECT 'provinsi' AS level, kode_bps, nama_bps, kode_dagri, nama_dagri
      FROM {provinsi}
    UNION ALL
    SELECT 'kabkota', kode_bps, nama_bps, kode_dagri, nama_dagri FROM {kabkota}
    UNION ALL
    SELECT 'kecamatan', kode_bps, nama_bps, kode_dagri, nama_dagri FROM {kecamatan}
"""
WILAYAH_SQL = """
    WITH units AS (
        SELECT kode_prov AS kode, 'provinsi' AS level, 'provinsi' AS jenis,
               NULL AS parent_kode, kode_prov, NULL AS kode_kabkota, NULL AS kode_kec, nama
          FROM {provinsi}
        UNION ALL
        SELECT kode_kabkota, 'kabkota', lower(jenis), kode_prov, kode_prov, kode_kabkota, NULL,
               nama
          FROM {kabkota}
        UNION ALL
        SELECT kode_kec, 'kecamatan', 'kecamatan', kode_kabkota, kode_prov, kode_kabkota,
               kode_kec, nama
          FROM {kecamatan}
        UNION ALL
        SELECT kode_desa, 'desa', lower(jenis), kode_kec, kode_prov, kode_kabkota, kode_kec, nama
          FROM {desa}
    ), bridge AS (
        -- a Kemendagri unit can bridge to several BPS codes (splits): keep the lowest
        SELECT level, kode_dagri, min(kode_bps) AS kode_bps
          FROM reference.bps_bridge GROUP BY ALL
    )
    SELECT u.kode, replace(u.kode, '.', '') AS kode_digits, u.level, u.jenis, u.parent_kode,
           u.kode_prov, u.kode_kabkota, u.kode_kec, u.nama, {nama_norm} AS nama_norm,
           bridge.kode_bps, CAST(pop.total AS BIGINT) AS penduduk,
           '{version}' AS source_version
      FROM units u
      LEFT JOIN bridge ON bridge.kode_dagri = u.kode AND bridge.level = u.level
      LEFT JOIN {penduduk} pop ON pop.kode = u.kode AND pop.level = u.level
"""
PUSKESMAS_2019_SQL = """
    SELECT f.kode_faskes, trim(f.nama_faskes) AS nama_faskes, f.kode_prov,
           f.alamat_faskes AS alamat, TRY_CAST(f.lat_ AS DOUBLE) AS lat,
           TRY_CAST(f.long_ AS DOUBLE) AS lon, substr(f.kode_faskes, 2, 7) AS kode_bps_kec,
           bridge.kode_dagri AS kode_kec
      FROM {faskes} f
      LEFT JOIN reference.bps_bridge bridge
        ON bridge.level = 'kecamatan' AND bridge.kode_bps = substr(f.kode_faskes, 2, 7)
     WHERE f.jenis_faskes = 'PUSKESMAS'
"""


def load_wilayah(con: duckdb.DuckDBPyConnection) -> int:
    """Load `reference.wilayah`, `reference.bps_bridge` and `reference.puskesmas_2019`."""
    ensure_schema(con)
    replace_rows(con, "reference.bps_bridge", BRIDGE_SQL.format(
        **{level: _ref(f"bps_kemendagri_{level}.csv.gz")
           for level in ("provinsi", "kabkota", "kecamatan")}))
    n = replace_rows(con, "reference.wilayah", WILAYAH_SQL.format(
        **{level: _ref(f"wilayah_{level}.csv.gz")
           for level in ("provinsi", "kabkota", "kecamatan", "desa")},
        nama_norm=norm_sql("u.nama"), version=SOURCE_VERSION,
        penduduk=_ref("penduduk_wilayah.csv.gz")))
    replace_rows(con, "reference.puskesmas_2019",
                 PUSKESMAS_2019_SQL.format(faskes=_ref("faskes_bppsdmk_2019.csv.gz")))
    return n


def load_catalogues(con: duckdb.DuckDBPyConnection) -> int:
    """Load the data-element catalogue (`catalog/data_elements.csv`)."""
    ensure_schema(con)
    return replace_rows(
        con, "reference.data_element",
        f"SELECT * FROM read_csv('{catalog.DATA_ELEMENTS}', all_varchar=true)",
    )


def registry_file(settings: Settings, stem: str, required: bool = True) -> Path | None:
    """`registry/<stem>.csv` or `.xlsx` of KOLAB_HOME; a missing required file raises
    `RegistryError`, an optional one gives None."""
    for ext in (".csv", ".xlsx"):
        path = settings.paths.registry / f"{stem}{ext}"
        if path.exists():
            return path
    if required:
        raise RegistryError(
            f"{settings.paths.registry / (stem + '.csv')}: registry file not found "
            "(run `kolab sample-data` or put your registry there; format in README)"
        )
    return None


def read_registry(path: Path) -> pd.DataFrame:
    """A registry file as text (CSV with any delimiter, or XLSX), column names lower case."""
    if path.suffix == ".xlsx":
        df = pd.read_excel(path, dtype=str, engine="openpyxl")
    else:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                         encoding="utf-8-sig", sep=None, engine="python")
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df


def _require(df: pd.DataFrame, path: Path, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise RegistryError(f"{path}: missing column(s) {', '.join(missing)}")


FACILITY_COLUMNS = ["kode_faskes", "nama_faskes", "jenis_faskes", "kode_puskesmas_induk",
                    "kode_wilayah", "tanggal_buka", "tanggal_tutup", "formulir"]
JEJARING_COLUMNS = ["kode_faskes", "kode_puskesmas_induk", "formulir", "berlaku_mulai",
                    "berlaku_sampai"]


def _facilities(path: Path) -> pd.DataFrame:
    """`fasilitas.csv` read and checked: codes unique, known types, dates that parse."""
    fas = read_registry(path)
    _require(fas, path, FACILITY_COLUMNS)
    fas["kode_faskes"] = fas["kode_faskes"].str.strip()
    dup = fas[fas["kode_faskes"].duplicated(keep=False)]
    if not dup.empty:
        rows = ", ".join(str(i + 2) for i in dup.index[:10])
        raise RegistryError(f"{path}: duplicate kode_faskes {sorted(set(dup['kode_faskes']))[:5]} "
                            f"(rows {rows}); each facility must appear once")
    bad_type = fas[~fas["jenis_faskes"].str.strip().str.lower().isin(FACILITY_TYPES)]
    if not bad_type.empty:
        i = bad_type.index[0]
        raise RegistryError(f"{path}: row {i + 2}, column jenis_faskes: unknown type "
                            f"{bad_type.loc[i, 'jenis_faskes']!r} "
                            f"(expected one of {', '.join(FACILITY_TYPES)})")
    for col in ("tanggal_buka", "tanggal_tutup"):
        parsed = pd.to_datetime(fas[col], errors="coerce", format="mixed", dayfirst=False)
        bad = fas[col].notna() & parsed.isna()
        if bad.any():
            i = bad[bad].index[0]
            raise RegistryError(
                f"{path}: row {i + 2}, column {col}: not a date {fas.loc[i, col]!r}")
        fas[col] = parsed.dt.date
    for col in ("kode_lokal", "is_synthetic", "telepon"):
        if col not in fas.columns:
            fas[col] = None
    return fas


def _jejaring(path: Path | None) -> pd.DataFrame:
    """`jejaring.csv` (dated overrides), or an empty frame when there is none."""
    if path is None:
        return pd.DataFrame(columns=JEJARING_COLUMNS)
    jej = read_registry(path)
    _require(jej, path, JEJARING_COLUMNS)
    for col in ("berlaku_mulai", "berlaku_sampai"):
        jej[col] = pd.to_datetime(jej[col], errors="coerce").dt.date
    return jej


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection,
                frames: dict[str, pd.DataFrame]) -> Iterator[None]:
    """The frames as DuckDB views named by their keys, unregistered when the block ends."""
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        yield
    finally:
        for name in frames:
            con.unregister(name)


def _forms_sql(column: str) -> str:
    """`tb;ptm` → ['tb', 'ptm'] (lower case, trimmed, empty parts dropped)."""
    return (f"list_filter(list_transform(string_split(lower(coalesce({column}, '')), ';'), "
            "lambda x: trim(x)), lambda x: x <> '')")


# `_fasilitas`: the registered registry frame; `{tz_case}`: WHEN province THEN zone (validated
# by config), `{tz_default}` the default zone.
FACILITY_SQL = """
    WITH fas AS (
        SELECT trim(kode_faskes) AS kode_faskes, trim(nama_faskes) AS nama_faskes,
               lower(trim(jenis_faskes)) AS jenis_faskes,
               nullif(trim(kode_puskesmas_induk), '') AS kode_puskesmas_induk,
               trim(kode_wilayah) AS kode_wilayah,
               CAST(tanggal_buka AS DATE) AS tanggal_buka,
               CAST(tanggal_tutup AS DATE) AS tanggal_tutup,
               {forms} AS formulir,
               coalesce(lower(CAST(is_synthetic AS VARCHAR)) IN ('1', 'true', 'ya', 'yes'),
                        false) AS is_synthetic,
               nullif(trim(CAST(telepon AS VARCHAR)), '') AS telepon
          FROM _fasilitas
    )
    SELECT fas.kode_faskes, fas.nama_faskes, fas.jenis_faskes, fas.kode_puskesmas_induk,
           CASE WHEN fas.jenis_faskes = 'puskesmas' THEN fas.kode_faskes
                ELSE fas.kode_puskesmas_induk END AS kode_jejaring,
           fas.kode_wilayah, substr(fas.kode_wilayah, 1, 8) AS kode_kec,
           substr(fas.kode_wilayah, 1, 5) AS kode_kabkota,
           substr(fas.kode_wilayah, 1, 2) AS kode_prov, fas.tanggal_buka, fas.tanggal_tutup,
           fas.formulir,
           CASE WHEN fas.jenis_faskes = 'puskesmas' THEN 'pkm_to_dinkes'
                ELSE 'network_to_pkm' END AS reporting_level,
           CASE substr(fas.kode_wilayah, 1, 2) {tz_case} ELSE '{tz_default}' END AS timezone,
           fas.is_synthetic, fas.telepon
      FROM fas
"""
ALIAS_SQL = """
    SELECT DISTINCT alias_norm, kode_faskes, alias_type FROM (
        SELECT {kode} AS alias_norm, kode_faskes, 'kode' AS alias_type FROM reference.facility
        UNION ALL
        SELECT {nama}, kode_faskes, 'nama' FROM reference.facility
        UNION ALL
        SELECT {kode_lokal}, trim(kode_faskes), 'kode_lokal' FROM _fasilitas
         WHERE kode_lokal IS NOT NULL
    ) WHERE alias_norm <> ''
      -- a name shared by two facilities is ambiguous: it must not resolve to either
      QUALIFY count(DISTINCT kode_faskes) OVER (PARTITION BY alias_norm) = 1
"""
ASSIGNMENT_SQL = """
    SELECT kode_faskes, unnest(formulir) AS form, kode_puskesmas_induk,
           NULL::DATE AS valid_from, NULL::DATE AS valid_to, 'fasilitas' AS basis
      FROM reference.facility
     WHERE kode_faskes NOT IN (SELECT trim(kode_faskes) FROM _jejaring)
    UNION ALL
    SELECT trim(kode_faskes), unnest({forms}), nullif(trim(kode_puskesmas_induk), ''),
           CAST(berlaku_mulai AS DATE), CAST(berlaku_sampai AS DATE), 'jejaring'
      FROM _jejaring
"""
SASARAN_SQL = """
    SELECT CAST(s.tahun AS INTEGER) AS tahun,
           CASE WHEN s.kode_unit IN (SELECT kode_faskes FROM reference.facility)
                THEN 'puskesmas_network'
                WHEN length(s.kode_unit) = 2 THEN 'provinsi'
                WHEN length(s.kode_unit) = 5 THEN 'kabkota'
                WHEN length(s.kode_unit) = 8 THEN 'kecamatan'
                ELSE 'desa' END AS unit_level,
           trim(s.kode_unit) AS kode_unit, trim(s.sasaran) AS sasaran,
           CAST(replace(CAST(s.nilai AS VARCHAR), ',', '.') AS DOUBLE) AS nilai,
           trim(s.metode) AS metode, NULL AS params
      FROM _sasaran s
"""


# --- the network of a facility in a month ---------------------------------------------------------

# `reference.form_assignment` as dated intervals: open ends made explicit, ends exclusive, empty
# intervals dropped.
ASSIGNMENT_INTERVALS_SQL = """
    SELECT kode_faskes, form, kode_puskesmas_induk,
           coalesce(valid_from, DATE '0001-01-01') AS assigned_from,
           coalesce(valid_to, DATE '9999-12-31') AS assigned_until
      FROM reference.form_assignment
     WHERE valid_to IS NULL OR valid_from IS NULL OR valid_to > valid_from
"""

# The one rule (`network_of_month_sql`). `{keys}`: a relation (kode_faskes, form, period).
NETWORK_OF_MONTH_SQL = """
    SELECT keyed.kode_faskes, keyed.form, keyed.period,
           CASE WHEN any_value(facility.jenis_faskes) = 'puskesmas' THEN keyed.kode_faskes
                ELSE coalesce(arg_max(assignment.kode_puskesmas_induk,
                                      (assignment.assigned_from <= keyed.month_last
                                       AND assignment.assigned_until > keyed.month_last,
                                       assignment.assigned_from)),
                              any_value(facility.kode_jejaring)) END AS kode_jejaring
      FROM (SELECT kode_faskes, form, period,
                   CAST(period || '-01' AS DATE) AS month_first,
                   last_day(CAST(period || '-01' AS DATE)) AS month_last
              FROM {keys}) keyed
      JOIN reference.facility facility ON facility.kode_faskes = keyed.kode_faskes
      LEFT JOIN ({intervals}) assignment
        ON assignment.kode_faskes = keyed.kode_faskes AND assignment.form = keyed.form
       AND assignment.assigned_from <= keyed.month_last
       AND assignment.assigned_until > keyed.month_first
     GROUP BY keyed.kode_faskes, keyed.form, keyed.period
"""


def network_of_month_sql(keys: str) -> str:
    """SELECT giving, for each facility × form × period (`YYYY-MM`) of the relation `keys`
    (a table name or a parenthesised subquery), `kode_jejaring`: the facility's puskesmas network
    that month. A puskesmas is its own network; any other facility belongs to the induk of its
    assignment of that form in force on the month's last day, else of the latest assignment
    overlapping the month, else to the registry's induk. Facilities not in the registry drop out.
    """
    return NETWORK_OF_MONTH_SQL.format(keys=keys, intervals=ASSIGNMENT_INTERVALS_SQL)


def load_registry(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Load fasilitas / jejaring / sasaran into `reference.facility`, `facility_alias`,
    `form_assignment` and `reference.sasaran` (official numbers only; derived sasaran are added
    by the indicator layer, which records their method)."""
    ensure_schema(con)
    fas = _facilities(registry_file(settings, "fasilitas"))
    jej = _jejaring(registry_file(settings, "jejaring", required=False))
    tz = settings.config.timezones
    tz_case = " ".join(f"WHEN '{p}' THEN '{z}'" for p, z in tz.by_province.items())
    with _registered(con, {"_fasilitas": fas, "_jejaring": jej}):
        n_fac = replace_rows(con, "reference.facility", FACILITY_SQL.format(
            forms=_forms_sql("formulir"), tz_case=tz_case, tz_default=tz.default))
        replace_rows(con, "reference.facility_alias", ALIAS_SQL.format(
            kode=norm_sql("kode_faskes"), nama=norm_sql("nama_faskes"),
            kode_lokal=norm_sql("kode_lokal")))
        n_assign = replace_rows(con, "reference.form_assignment",
                                ASSIGNMENT_SQL.format(forms=_forms_sql("formulir")))
    n_sas = 0
    sas_path = registry_file(settings, "sasaran", required=False)
    if sas_path is not None:
        sas = read_registry(sas_path)
        _require(sas, sas_path, ["tahun", "kode_unit", "sasaran", "nilai", "metode"])
        with _registered(con, {"_sasaran": sas}):
            n_sas = replace_rows(con, "reference.sasaran", SASARAN_SQL)
    return {"facility": n_fac, "form_assignment": n_assign, "sasaran": n_sas}
