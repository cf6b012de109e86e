"""Reference layer: bundled wilayah/BPS/puskesmas tables, the facility registry and catalogues.

Grain of each table: see `catalog/tables.yaml`. Everything here is loaded with DuckDB's CSV reader
(gzip and XLSX registries included) and rebuilt whole on every run — reference data is small and a
full reload is the simplest way to stay idempotent.

Registry files (`KOLAB_HOME/registry/`, CSV or XLSX):
- `fasilitas.csv` — one row per facility: kode_faskes, nama_faskes, jenis_faskes,
  kode_puskesmas_induk, kode_wilayah, tanggal_buka, tanggal_tutup, formulir (e.g. `tb;ptm`),
  optional kode_lokal, is_synthetic, telepon (shown in the report's call list).
- `sasaran.csv` — tahun, kode_unit, sasaran, nilai, metode.
- `jejaring.csv` (optional) — dated overrides: kode_faskes, kode_puskesmas_induk, formulir,
  berlaku_mulai, berlaku_sampai.
"""

from __future__ import annotations

import contextlib
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
    return str(REFERENCE_DIR / name)


def norm_sql(expr: str) -> str:
    """SQL for the matching key used everywhere: upper case, letters and digits only."""
    return f"regexp_replace(upper(coalesce({expr}, '')), '[^A-Z0-9]', '', 'g')"


def norm_text(text: str | None) -> str:
    """Python twin of `norm_sql` (same rule, for code that matches outside DuckDB)."""
    return "".join(ch for ch in (text or "").upper() if ch.isascii() and ch.isalnum())


def load_wilayah(con: duckdb.DuckDBPyConnection) -> int:
    """Load `reference.wilayah`, `reference.bps_bridge` and `reference.puskesmas_2019`."""
    ensure_schema(con)
    bridge = f"""
        SELECT 'provinsi' AS level, kode_bps, nama_bps, kode_dagri, nama_dagri
          FROM read_csv('{_ref("bps_kemendagri_provinsi.csv.gz")}', all_varchar=true)
        UNION ALL
        SELECT 'kabkota', kode_bps, nama_bps, kode_dagri, nama_dagri
          FROM read_csv('{_ref("bps_kemendagri_kabkota.csv.gz")}', all_varchar=true)
        UNION ALL
        SELECT 'kecamatan', kode_bps, nama_bps, kode_dagri, nama_dagri
          FROM read_csv('{_ref("bps_kemendagri_kecamatan.csv.gz")}', all_varchar=true)
    """
    replace_rows(con, "reference.bps_bridge", bridge)
    pop = f"read_csv('{_ref('penduduk_wilayah.csv.gz')}', all_varchar=true)"
    wilayah = f"""
        WITH units AS (
            SELECT kode_prov AS kode, 'provinsi' AS level, 'provinsi' AS jenis, NULL AS parent_kode,
                   kode_prov, NULL AS kode_kabkota, NULL AS kode_kec, nama
              FROM read_csv('{_ref("wilayah_provinsi.csv.gz")}', all_varchar=true)
            UNION ALL
            SELECT kode_kabkota, 'kabkota', lower(jenis), kode_prov, kode_prov, kode_kabkota, NULL, nama
              FROM read_csv('{_ref("wilayah_kabkota.csv.gz")}', all_varchar=true)
            UNION ALL
            SELECT kode_kec, 'kecamatan', 'kecamatan', kode_kabkota, kode_prov, kode_kabkota, kode_kec, nama
              FROM read_csv('{_ref("wilayah_kecamatan.csv.gz")}', all_varchar=true)
            UNION ALL
            SELECT kode_desa, 'desa', lower(jenis), kode_kec, kode_prov, kode_kabkota, kode_kec, nama
              FROM read_csv('{_ref("wilayah_desa.csv.gz")}', all_varchar=true)
        )
        SELECT u.kode, replace(u.kode, '.', '') AS kode_digits, u.level, u.jenis, u.parent_kode,
               u.kode_prov, u.kode_kabkota, u.kode_kec, u.nama, {norm_sql('u.nama')} AS nama_norm,
               b.kode_bps, CAST(p.total AS BIGINT) AS penduduk, '{SOURCE_VERSION}' AS source_version
          FROM units u
          -- a Kemendagri unit can bridge to several BPS codes (splits): keep the lowest
          LEFT JOIN (SELECT level, kode_dagri, min(kode_bps) AS kode_bps FROM reference.bps_bridge GROUP BY ALL) b
            ON b.kode_dagri = u.kode AND b.level = u.level
          LEFT JOIN {pop} p ON p.kode = u.kode AND p.level = u.level
    """
    n = replace_rows(con, "reference.wilayah", wilayah)
    puskesmas = f"""
        SELECT f.kode_faskes, trim(f.nama_faskes) AS nama_faskes, f.kode_prov,
               f.alamat_faskes AS alamat, TRY_CAST(f.lat_ AS DOUBLE) AS lat,
               TRY_CAST(f.long_ AS DOUBLE) AS lon, substr(f.kode_faskes, 2, 7) AS kode_bps_kec,
               b.kode_dagri AS kode_kec
          FROM read_csv('{_ref("faskes_bppsdmk_2019.csv.gz")}', all_varchar=true) f
          LEFT JOIN reference.bps_bridge b
            ON b.level = 'kecamatan' AND b.kode_bps = substr(f.kode_faskes, 2, 7)
         WHERE f.jenis_faskes = 'PUSKESMAS'
    """
    replace_rows(con, "reference.puskesmas_2019", puskesmas)
    return n


def load_catalogues(con: duckdb.DuckDBPyConnection) -> int:
    """Load the data-element catalogue (`catalog/data_elements.csv`)."""
    ensure_schema(con)
    return replace_rows(
        con, "reference.data_element",
        f"SELECT * FROM read_csv('{catalog.DATA_ELEMENTS}', all_varchar=true)",
    )


def _registry_file(settings: Settings, stem: str, required: bool = True) -> Path | None:
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


def _read_registry(path: Path) -> pd.DataFrame:
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


def load_registry(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Load fasilitas / jejaring / sasaran into `reference.facility`, `facility_alias`,
    `form_assignment` and `reference.sasaran` (official numbers only; derived sasaran are added
    by the indicator layer, which records their method)."""
    ensure_schema(con)
    path = _registry_file(settings, "fasilitas")
    fas = _read_registry(path)
    _require(fas, path, ["kode_faskes", "nama_faskes", "jenis_faskes", "kode_puskesmas_induk",
                         "kode_wilayah", "tanggal_buka", "tanggal_tutup", "formulir"])
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
                            f"{bad_type.loc[i, 'jenis_faskes']!r} (expected one of {', '.join(FACILITY_TYPES)})")
    for col in ("tanggal_buka", "tanggal_tutup"):
        parsed = pd.to_datetime(fas[col], errors="coerce", format="mixed", dayfirst=False)
        bad = fas[col].notna() & parsed.isna()
        if bad.any():
            i = bad[bad].index[0]
            raise RegistryError(f"{path}: row {i + 2}, column {col}: not a date {fas.loc[i, col]!r}")
        fas[col] = parsed.dt.date
    for col in ("kode_lokal", "is_synthetic", "telepon"):
        if col not in fas.columns:
            fas[col] = None
    con.register("_fasilitas", fas)
    jej_path = _registry_file(settings, "jejaring", required=False)
    if jej_path is not None:
        jej = _read_registry(jej_path)
        _require(jej, jej_path, ["kode_faskes", "kode_puskesmas_induk", "formulir",
                                 "berlaku_mulai", "berlaku_sampai"])
        for col in ("berlaku_mulai", "berlaku_sampai"):
            jej[col] = pd.to_datetime(jej[col], errors="coerce").dt.date
    else:
        jej = pd.DataFrame(columns=["kode_faskes", "kode_puskesmas_induk", "formulir",
                                    "berlaku_mulai", "berlaku_sampai"])
    con.register("_jejaring", jej)
    tz = settings.config.timezones
    tz_case = " ".join(f"WHEN '{p}' THEN '{z}'" for p, z in tz.by_province.items())
    facility = f"""
        WITH f AS (
            SELECT trim(kode_faskes) AS kode_faskes, trim(nama_faskes) AS nama_faskes,
                   lower(trim(jenis_faskes)) AS jenis_faskes,
                   nullif(trim(kode_puskesmas_induk), '') AS kode_puskesmas_induk,
                   trim(kode_wilayah) AS kode_wilayah,
                   CAST(tanggal_buka AS DATE) AS tanggal_buka, CAST(tanggal_tutup AS DATE) AS tanggal_tutup,
                   list_filter(list_transform(string_split(lower(coalesce(formulir, '')), ';'), lambda x: trim(x)),
                               lambda x: x <> '') AS formulir,
                   coalesce(lower(CAST(is_synthetic AS VARCHAR)) IN ('1', 'true', 'ya', 'yes'), false) AS is_synthetic,
                   nullif(trim(CAST(telepon AS VARCHAR)), '') AS telepon
              FROM _fasilitas
        )
        SELECT f.kode_faskes, f.nama_faskes, f.jenis_faskes, f.kode_puskesmas_induk,
               CASE WHEN f.jenis_faskes = 'puskesmas' THEN f.kode_faskes ELSE f.kode_puskesmas_induk END AS kode_jejaring,
               f.kode_wilayah, substr(f.kode_wilayah, 1, 8) AS kode_kec, substr(f.kode_wilayah, 1, 5) AS kode_kabkota,
               substr(f.kode_wilayah, 1, 2) AS kode_prov, f.tanggal_buka, f.tanggal_tutup, f.formulir,
               CASE WHEN f.jenis_faskes = 'puskesmas' THEN 'pkm_to_dinkes' ELSE 'network_to_pkm' END AS reporting_level,
               CASE substr(f.kode_wilayah, 1, 2) {tz_case} ELSE '{tz.default}' END AS timezone,
               f.is_synthetic, f.telepon
          FROM f
    """
    n_fac = replace_rows(con, "reference.facility", facility)
    aliases = f"""
        SELECT DISTINCT alias_norm, kode_faskes, alias_type FROM (
            SELECT {norm_sql('kode_faskes')} AS alias_norm, kode_faskes, 'kode' AS alias_type FROM reference.facility
            UNION ALL
            SELECT {norm_sql('nama_faskes')}, kode_faskes, 'nama' FROM reference.facility
            UNION ALL
            SELECT {norm_sql('kode_lokal')}, trim(kode_faskes), 'kode_lokal' FROM _fasilitas WHERE kode_lokal IS NOT NULL
        ) WHERE alias_norm <> ''
          -- a name shared by two facilities is ambiguous: it must not resolve to either
          QUALIFY count(DISTINCT kode_faskes) OVER (PARTITION BY alias_norm) = 1
    """
    replace_rows(con, "reference.facility_alias", aliases)
    assignment = """
        SELECT kode_faskes, unnest(formulir) AS form, kode_puskesmas_induk,
               NULL::DATE AS valid_from, NULL::DATE AS valid_to, 'fasilitas' AS basis
          FROM reference.facility
         WHERE kode_faskes NOT IN (SELECT trim(kode_faskes) FROM _jejaring)
        UNION ALL
        SELECT trim(kode_faskes), unnest(list_filter(list_transform(string_split(lower(coalesce(formulir, '')), ';'), lambda x: trim(x)), lambda x: x <> '')),
               nullif(trim(kode_puskesmas_induk), ''), CAST(berlaku_mulai AS DATE), CAST(berlaku_sampai AS DATE), 'jejaring'
          FROM _jejaring
    """
    n_assign = replace_rows(con, "reference.form_assignment", assignment)
    n_sas = 0
    sas_path = _registry_file(settings, "sasaran", required=False)
    if sas_path is not None:
        sas = _read_registry(sas_path)
        _require(sas, sas_path, ["tahun", "kode_unit", "sasaran", "nilai", "metode"])
        con.register("_sasaran", sas)
        n_sas = replace_rows(con, "reference.sasaran", """
            SELECT CAST(s.tahun AS INTEGER) AS tahun,
                   CASE WHEN s.kode_unit IN (SELECT kode_faskes FROM reference.facility) THEN 'puskesmas_network'
                        WHEN length(s.kode_unit) = 2 THEN 'provinsi'
                        WHEN length(s.kode_unit) = 5 THEN 'kabkota'
                        WHEN length(s.kode_unit) = 8 THEN 'kecamatan'
                        ELSE 'desa' END AS unit_level,
                   trim(s.kode_unit) AS kode_unit, trim(s.sasaran) AS sasaran,
                   CAST(replace(CAST(s.nilai AS VARCHAR), ',', '.') AS DOUBLE) AS nilai,
                   trim(s.metode) AS metode, NULL AS params
              FROM _sasaran s
        """)
    for name in ("_fasilitas", "_jejaring", "_sasaran"):
        # `_sasaran` is not registered when the file is absent
        with contextlib.suppress(Exception):
            con.unregister(name)
    return {"facility": n_fac, "form_assignment": n_assign, "sasaran": n_sas}
