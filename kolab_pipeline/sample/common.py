"""What both scales of `kolab sample-data` share: places, facilities, sasaran, values, the run
record and the answer key (registry, manifest, ground truth).

Grain: `places` one kab/kota; facility frames one facility; `slots` one facility × period × form;
ground-truth `reports` one facility × period × form (expected, or unexpected but received).
Contract: `docs/SAMPLE_DATA.md`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months, due_date, period_of
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import KolabConfig, ReportingConfig
from kolab_pipeline.reference import REFERENCE_DIR

FORMS_BY_TYPE = {"puskesmas": FORMS, "klinik_pratama": FORMS, "tpmd": ("tb", "ptm")}
META_COLS = ("periode", "kode_faskes", "nama_faskes", "tanggal_lapor", "laporan_nihil")

# Value model: element → ("rate", sasaran key of the network, annual count per person of it)
#                        ("thin", parent element, share of the parent) — binomial, never > parent
#                        ("ytd", parent element, share of the parent's year-to-date sum)
#                        ("cohort", parent element, share of the parent 12 months earlier) —
#                        treatment outcomes of the facility's cohort that started then; the
#                        cohort elements of one parent split it (binomial in turn), so their sum
#                        never exceeds it
ELEMENT_MODEL: dict[str, tuple[str, str, float]] = {
    "tb_skrining": ("rate", "pend_total", 0.06),
    "tb_terduga_ditemukan": ("rate", "est_insiden_tb", 6.0),
    "tb_terduga_diperiksa": ("thin", "tb_terduga_ditemukan", 0.8),
    "tb_terduga_dirujuk": ("thin", "tb_terduga_ditemukan", 0.12),
    "tb_kasus_ditemukan": ("thin", "tb_terduga_diperiksa", 0.14),
    "tb_kasus_ternotifikasi": ("thin", "tb_kasus_ditemukan", 0.92),
    "tb_kasus_diobati": ("thin", "tb_kasus_ditemukan", 0.85),
    "tb_kasus_dirujuk_obat": ("thin", "tb_kasus_ditemukan", 0.1),
    "tb_kontak_diinvestigasi": ("rate", "est_insiden_tb", 3.0),
    "tb_tpt_mulai": ("thin", "tb_kontak_diinvestigasi", 0.3),
    "tb_hasil_sembuh": ("cohort", "tb_kasus_diobati", 0.55),
    "tb_hasil_lengkap": ("cohort", "tb_kasus_diobati", 0.30),
    "tb_hasil_gagal": ("cohort", "tb_kasus_diobati", 0.02),
    "tb_hasil_meninggal": ("cohort", "tb_kasus_diobati", 0.04),
    "tb_hasil_putus_obat": ("cohort", "tb_kasus_diobati", 0.05),
    "tb_hasil_tidak_dievaluasi": ("cohort", "tb_kasus_diobati", 0.02),
    "ptm_skrining_usia_produktif_ytd_unik": ("ytd", "ht_skrining", 0.6),
    "ht_skrining": ("rate", "pend_15plus", 0.35),
    "ht_kasus_baru": ("thin", "ht_skrining", 0.08),
    "ht_dilayani_standar": ("rate", "est_penderita_ht_15plus", 1.8),
    "ht_dilayani_standar_ytd_unik": ("ytd", "ht_dilayani_standar", 0.4),
    "ht_terkendali": ("thin", "ht_dilayani_standar", 0.45),
    "dm_skrining": ("rate", "pend_15plus", 0.12),
    "dm_kasus_baru": ("thin", "dm_skrining", 0.05),
    "dm_dilayani_standar": ("rate", "est_penderita_dm_15plus", 2.4),
    "dm_dilayani_standar_ytd_unik": ("ytd", "dm_dilayani_standar", 0.35),
    "dm_terkendali": ("thin", "dm_dilayani_standar", 0.35),
    "kia_k1": ("rate", "bumil", 0.97),
    "kia_k4": ("rate", "bumil", 0.88),
    "kia_k6": ("rate", "bumil", 0.78),
    "kia_persalinan_fasyankes": ("rate", "bulin", 0.9),
    "kia_kf1": ("rate", "bufas", 0.9),
    "kia_kf_lengkap": ("thin", "kia_kf1", 0.85),
    "kia_kn1": ("rate", "lahir_hidup", 0.95),
    "kia_kn_lengkap": ("thin", "kia_kn1", 0.9),
    "kia_lahir_hidup": ("rate", "lahir_hidup", 0.9),
    "kia_lahir_mati": ("rate", "lahir_hidup", 0.008),
    "kia_kematian_ibu": ("rate", "lahir_hidup", 0.0012),
    "kia_kematian_neonatal": ("rate", "lahir_hidup", 0.007),
    "imun_hb0": ("rate", "lahir_hidup", 0.9),
    "imun_bcg": ("rate", "bayi", 0.95),
    "imun_polio4": ("rate", "bayi", 0.9),
    "imun_dpt1": ("rate", "bayi", 0.97),
    "imun_dpt3": ("thin", "imun_dpt1", 0.93),
    "imun_mr1": ("thin", "imun_dpt1", 0.92),
    "imun_idl": ("thin", "imun_mr1", 0.95),
    "imun_dpt4": ("rate", "baduta", 0.75),
    "imun_mr2": ("rate", "baduta", 0.72),
    "imun_ibl": ("thin", "imun_mr2", 0.9),
}

KP_WORDS_A = ("Sehat", "Medika", "Husada", "Sentosa", "Bunda", "Kasih", "Mitra", "Utama", "Prima",
              "Permata", "Citra", "Anugerah", "Harapan", "Sejahtera", "Insani", "Amanah",
              "Al Ikhlas", "Bakti", "Rahma", "Pelita", "Santé", "Ren’s")
KP_WORDS_B = ("Keluarga", "Mandiri", "Medical Center", "Farma", "Sehati", "Nusantara", "Asih",
              "Jaya", "Abadi", "Bersama", "Lestari", "Mulia", "Médical", "Insan")
DR_FIRST = ("André", "Budi", "Siti", "Dewi", "Rina", "Agus", "Hendra", "Maria", "Yohanes", "Fitri",
            "Rudi", "Wayan", "Made", "Ahmad", "Irma", "Yusuf", "Linda", "Bambang", "Ratna", "Eko")
DR_LAST = ("Wijaya", "Santoso", "Hartono", "Pratama", "Siregar", "Nasution", "Lestari", "Kusuma",
           "Gunawan", "D’Costa", "Saputra", "Halim", "Setiawan", "Hidayat", "Purba", "Nugroho")

SASARAN_METODE = {"pend_total": "dukcapil", "pend_15plus": "share_estimate",
                  "bumil": "cbr_formula", "bulin": "cbr_formula", "bufas": "cbr_formula",
                  "lahir_hidup": "cbr_formula", "bayi": "cbr_formula",
                  "baduta": "surviving_infants_previous_year",
                  "est_penderita_ht_15plus": "prevalence_estimate",
                  "est_penderita_dm_15plus": "prevalence_estimate",
                  "est_insiden_tb": "prevalence_estimate"}
REGISTRY_COLS = ["kode_faskes", "nama_faskes", "jenis_faskes", "kode_puskesmas_induk",
                 "kode_wilayah", "tanggal_buka", "tanggal_tutup", "formulir", "kode_lokal",
                 "is_synthetic"]
INVALID_ROW_COLS = ["file", "sheet", "row_number", "rule_id", "column_name", "column_index",
                    "value", "kode_faskes", "period", "form"]
RESUBMISSION_COLS = ["kode_faskes", "period", "form", "version", "file", "sheet", "row_number",
                     "data_element", "value", "own_value"]
# ground_truth/area_recaps.csv: one current declared area recap (lingkup_laporan = wilayah) ×
# data element
AREA_RECAP_COLS = ["kode_faskes", "period", "form", "lingkup_source", "data_element",
                   "reported_value", "network_value", "own_value"]


class SampleDataError(ValueError):
    """The generator cannot run with these arguments; the message says which and why."""


# --- the run ----------------------------------------------------------------------------------

@dataclass
class Run:
    """One generation: its arguments, and the record of every file and row it wrote."""

    home: Path
    seed: int
    as_of: date
    scale: str
    months: int
    messy: bool
    cfg: KolabConfig
    periods: list[str]
    as_of_utc: datetime
    fraction: float = 1.0   # national scale: share of the kab/kota kept (benchmark scaling series)
    files: list[dict] = field(default_factory=list)  # relpath, received_at (aware dt), kind
    versions: list[dict] = field(default_factory=list)
    invalid_rows: list[dict] = field(default_factory=list)
    broken: list[dict] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def rng(self, component: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, component])

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    def write(self, rel: str, data: bytes, received: datetime, kind: str,
              in_manifest: bool = True) -> None:
        """Write a landing file, its mtime its received time; `in_manifest` False = no line in
        `_diterima.csv` (its receipt is its mtime, or the source's own timestamp)."""
        path = self.landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        ts = received.timestamp()
        os.utime(path, (ts, ts))
        self.files.append({"file": rel, "received_at": received, "kind": kind,
                           "in_manifest": in_manifest})

    def as_of_at(self, tz: str) -> datetime:
        """`as_of` in UTC for time zone `tz` (a date ends at midnight local time)."""
        return self.cfg.as_of_utc(tz)

    def as_of_local(self, tz: str) -> date:
        return self.as_of_at(tz).astimezone(ZoneInfo(tz)).date()


# --- calendar ---------------------------------------------------------------------------------

def sample_periods(as_of: date, months: int, cfg: KolabConfig) -> list[str]:
    """`months` periods ending with the last month whose puskesmas→dinkes due date is before
    as_of."""
    if months < 1:
        raise SampleDataError(f"--months must be at least 1 (got {months})")
    last = add_months(period_of(as_of), -1)
    if not as_of > due_date(cfg.reporting, last, "pkm_to_dinkes"):
        last = add_months(last, -1)
    return [add_months(last, -i) for i in range(months - 1, -1, -1)]


def due_and_cutoff(periods: pd.Series, jenis: pd.Series,
                   reporting: ReportingConfig) -> tuple[pd.Series, pd.Series]:
    """Vectorised `calendar.due_date` (puskesmas → dinkes for a puskesmas, network → puskesmas
    otherwise) and `calendar.cutoff_date` of each row, as datetime64 series."""
    start = pd.to_datetime(periods + "-01")
    day = np.where(jenis == "puskesmas", reporting.due_day.pkm_to_dinkes,
                   reporting.due_day.network_to_pkm)
    due = start + pd.DateOffset(months=1) + pd.to_timedelta(day - 1, unit="D")
    cut = (start + pd.DateOffset(months=reporting.cutoff_months_after_period + 1)
           - pd.Timedelta(days=1))
    return due, cut


def tz_offset_text(tz: str) -> str:
    """`+07:00` for Asia/Jakarta (Indonesian zones have no daylight saving)."""
    return datetime(2020, 1, 1, tzinfo=ZoneInfo(tz)).isoformat()[-6:]


def local_dt(day: date, hour: int, minute: int, tz: str) -> datetime:
    """`day` at `hour:minute` local time of zone `tz`."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz))


# --- places and facilities ----------------------------------------------------------------------

@cache
def reference_table(name: str) -> pd.DataFrame:
    """A bundled `reference_data/` table, all text."""
    return pd.read_csv(REFERENCE_DIR / name, dtype=str, keep_default_na=False)


@cache
def _expected_mask(form: str, jenis: str) -> np.ndarray:
    """Which elements of `form` a facility type is expected to report (data_elements.csv)."""
    de = catalog.data_elements()
    sub = de[de["form"] == form]
    return np.array([jenis in str(x).split(";") for x in sub["expected_from"]])


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def kabkota_places(bps_codes: tuple[str, ...] | None) -> pd.DataFrame:
    """kab/kota rows: kode_bps, kode_kabkota (Kemendagri), nama, jenis, penduduk, slug."""
    bridge = reference_table("bps_kemendagri_kabkota.csv.gz")[["kode_bps", "kode_dagri"]]
    bridge = bridge.sort_values(["kode_bps", "kode_dagri"]).drop_duplicates("kode_bps")
    kab = reference_table("wilayah_kabkota.csv.gz").rename(columns={"kode_kabkota": "kode_dagri"})
    pop = reference_table("penduduk_wilayah.csv.gz")
    pop = pop[pop["level"] == "kabkota"][["kode", "total"]].rename(columns={"kode": "kode_dagri"})
    out = bridge.merge(kab[["kode_dagri", "nama", "jenis"]], on="kode_dagri").merge(
        pop, on="kode_dagri")
    if bps_codes is not None:
        out = out[out["kode_bps"].isin(bps_codes)]
    out = out.rename(columns={"kode_dagri": "kode_kabkota", "total": "penduduk"})
    out["penduduk"] = out["penduduk"].astype(np.int64)
    out["slug"] = (out["kode_kabkota"].str.replace(".", "", regex=False) + "_"
                   + out["nama"].map(_slug))
    return out.sort_values("kode_kabkota").reset_index(drop=True)


def real_puskesmas(places: pd.DataFrame,
                   rng: np.random.Generator) -> tuple[pd.DataFrame, list[dict]]:
    """The real 2019 puskesmas of `places`, mapped to a Kemendagri kecamatan and a desa in it;
    plus the notes on those whose BPS kecamatan is not bridged."""
    f = reference_table("faskes_bppsdmk_2019.csv.gz")
    f = f[(f["jenis_faskes"] == "PUSKESMAS") & f["kode_faskes"].str.startswith("P")].copy()
    f["kode_bps_kab"] = f["kode_faskes"].str[1:5]
    f["kode_bps_kec"] = f["kode_faskes"].str[1:8]
    f = f.merge(places[["kode_bps", "kode_kabkota"]], left_on="kode_bps_kab",
                right_on="kode_bps")
    kec_bridge = reference_table("bps_kemendagri_kecamatan.csv.gz")[["kode_bps", "kode_dagri"]]
    kec_bridge = kec_bridge.sort_values(["kode_bps", "kode_dagri"]).drop_duplicates("kode_bps")
    f = f.merge(kec_bridge.rename(columns={"kode_bps": "kode_bps_kec", "kode_dagri": "kode_kec"}),
                on="kode_bps_kec", how="left")
    # a bridged kecamatan must belong to the same kab/kota (else treat as unbridged)
    wrong_kab = f["kode_kec"].notna() & (f["kode_kec"].str[:5] != f["kode_kabkota"])
    f.loc[wrong_kab, "kode_kec"] = np.nan
    kec = reference_table("wilayah_kecamatan.csv.gz")
    first_kec = kec.sort_values("kode_kec").groupby("kode_kabkota")["kode_kec"].first()
    unbridged = f["kode_kec"].isna()
    notes = [{"kode_faskes": k, "kode_bps_kec": b, "placed_in": first_kec.get(kk, "")}
             for k, b, kk in f.loc[unbridged, ["kode_faskes", "kode_bps_kec", "kode_kabkota"]]
             .sort_values("kode_faskes").itertuples(index=False)]
    f.loc[unbridged, "kode_kec"] = f.loc[unbridged, "kode_kabkota"].map(first_kec)
    f = f[f["kode_kec"].notna()].sort_values("kode_faskes").reset_index(drop=True)
    f["kode_wilayah"] = _pick_desa(f["kode_kec"], rng)
    staff = pd.to_numeric(f["tenaga_medis_total"], errors="coerce").fillna(0).clip(lower=0)
    f["weight"] = 5 + staff
    f["nama_faskes"] = "Puskesmas " + f["nama_faskes"].str.strip().str.title()
    cols = ["kode_faskes", "nama_faskes", "kode_kabkota", "kode_kec", "kode_wilayah", "weight"]
    return f[cols], notes


def _pick_desa(kode_kec: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """A real Kemendagri desa of each kecamatan (vectorised; kecamatan code when it has none)."""
    desa = reference_table("wilayah_desa.csv.gz")[["kode_desa", "kode_kec"]]
    desa = desa.sort_values("kode_desa").reset_index(drop=True)
    grp = desa.groupby("kode_kec").indices
    starts = pd.Series({k: v[0] for k, v in grp.items()})
    counts = pd.Series({k: len(v) for k, v in grp.items()})
    s = kode_kec.map(starts)
    n = kode_kec.map(counts)
    u = rng.random(len(kode_kec))
    has = s.notna().to_numpy()
    out = kode_kec.to_numpy(dtype=object).copy()
    idx = (s[has].to_numpy() + np.floor(u[has] * n[has].to_numpy())).astype(np.int64)
    out[has] = desa["kode_desa"].to_numpy()[idx]
    return out


def _word_names(prefix: str, first: tuple[str, ...], second: tuple[str, ...], step: int,
                a: np.ndarray) -> np.ndarray:
    """`prefix first second` names picked from two word lists by the draws `a`."""
    return (prefix + pd.Series(first).iloc[a % len(first)].to_numpy() + " "
            + pd.Series(second).iloc[(a // step) % len(second)].to_numpy())


def synthetic_clinics(pkm: pd.DataFrame, n_kp: np.ndarray, n_dr: np.ndarray,
                      rng: np.random.Generator) -> pd.DataFrame:
    """KP/TPMD rows for every network at once: codes numbered per kab/kota, desa in the induk's
    kecamatan, names from word lists (vectorised)."""
    parts = []
    for jenis, prefix, counts in (("klinik_pratama", "KP", n_kp), ("tpmd", "DR", n_dr)):
        idx = np.repeat(np.arange(len(pkm)), counts)
        c = pd.DataFrame({
            "jenis_faskes": jenis,
            "kode_puskesmas_induk": pkm["kode_faskes"].to_numpy()[idx],
            "kode_kabkota": pkm["kode_kabkota"].to_numpy()[idx],
            "kode_kec": pkm["kode_kec"].to_numpy()[idx],
        })
        seq = c.groupby("kode_kabkota").cumcount() + 1
        c["kode_faskes"] = (prefix + c["kode_kabkota"].str.replace(".", "", regex=False)
                            + seq.map("{:04d}".format))
        a = rng.integers(0, 10_000, len(c))
        if jenis == "klinik_pratama":
            c["nama_faskes"] = _word_names("Klinik Pratama ", KP_WORDS_A, KP_WORDS_B, 31, a)
            c["share_w"] = rng.uniform(0.1, 0.3, len(c))
        else:
            c["nama_faskes"] = _word_names("Praktik dr. ", DR_FIRST, DR_LAST, 37, a)
            c["share_w"] = rng.uniform(0.03, 0.1, len(c))
        parts.append(c)
    out = pd.concat(parts, ignore_index=True)
    out["kode_wilayah"] = _pick_desa(out["kode_kec"], rng)
    return out


def puskesmas_and_clinics(pkm: pd.DataFrame, clinics: pd.DataFrame) -> pd.DataFrame:
    """Puskesmas (induk none, share weight 1) and clinics in one frame, in that order."""
    pk = pkm.assign(jenis_faskes="puskesmas", kode_puskesmas_induk="", share_w=1.0)
    return pd.concat([pk, clinics], ignore_index=True)


def add_network_columns(fac: pd.DataFrame) -> None:
    """The registry columns both scales derive alike: `network` (the puskesmas), `share` (of
    the network's service volume: puskesmas weight 1, clinics 0.1–0.3, TPMD 0.03–0.1,
    normalised per network), `formulir`, open dates (none), kode_lokal, is_synthetic."""
    fac["network"] = np.where(fac["jenis_faskes"] == "puskesmas", fac["kode_faskes"],
                              fac["kode_puskesmas_induk"])
    fac["share"] = fac["share_w"] / fac.groupby("network")["share_w"].transform("sum")
    fac["formulir"] = fac["jenis_faskes"].map(lambda j: ";".join(FORMS_BY_TYPE[j]))
    fac["tanggal_buka"] = ""
    fac["tanggal_tutup"] = ""
    fac["kode_lokal"] = ""
    fac["is_synthetic"] = (fac["jenis_faskes"] != "puskesmas").astype(int)


# --- sasaran ------------------------------------------------------------------------------------

def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    raw = total * weights / weights.sum()
    base = np.floor(raw).astype(np.int64)
    rest = total - base.sum()
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base


def sasaran_values(pend_total: np.ndarray | float, cfg: KolabConfig) -> dict[str, Any]:
    """Unrounded sasaran from total population (formulas: docs/SAMPLE_DATA.md, sasaran.csv)."""
    s = cfg.sasaran
    pop = np.asarray(pend_total, dtype=float)
    pend15 = s.share_15plus * pop
    lahir_hidup = s.cbr_per_1000 * pop / 1000
    return {
        "pend_total": pop,
        "pend_15plus": pend15,
        "bumil": 1.10 * s.cbr_per_1000 * pop / 1000,
        "bulin": 1.05 * s.cbr_per_1000 * pop / 1000,
        "bufas": 1.05 * s.cbr_per_1000 * pop / 1000,
        "lahir_hidup": lahir_hidup,
        "bayi": lahir_hidup * (1 - s.imr_per_1000 / 1000),
        # one birth cohort (12–23 months): last year's surviving infants (population constant)
        "baduta": lahir_hidup * (1 - s.imr_per_1000 / 1000),
        "est_penderita_ht_15plus": s.prevalence_ht_15plus * pend15,
        "est_penderita_dm_15plus": s.prevalence_dm_15plus * pend15,
        "est_insiden_tb": s.tb_incidence_per_100k * pop / 100000,
    }


def sasaran_table(places: pd.DataFrame, pkm: pd.DataFrame, years: list[int],
                  cfg: KolabConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sasaran.csv rows, unrounded per-puskesmas-network sasaran for the value model)."""
    pkm = pkm.copy()
    pkm["pend_total"] = 0
    for kab, idx in pkm.groupby("kode_kabkota").indices.items():
        total = int(places.loc[places["kode_kabkota"] == kab, "penduduk"].iloc[0])
        pkm.iloc[idx, pkm.columns.get_loc("pend_total")] = _largest_remainder(
            total, pkm["weight"].to_numpy(dtype=float)[idx])
    units = pd.concat([
        pd.DataFrame({"kode_unit": places["kode_kabkota"], "pop": places["penduduk"]}),
        pd.DataFrame({"kode_unit": pkm["kode_faskes"], "pop": pkm["pend_total"]}),
    ], ignore_index=True)
    vals = sasaran_values(units["pop"].to_numpy(), cfg)
    frames = []
    for code, arr in vals.items():
        frames.append(pd.DataFrame({"kode_unit": units["kode_unit"], "sasaran": code,
                                    "nilai": np.round(arr).astype(np.int64),
                                    "metode": SASARAN_METODE[code]}))
    one_year = pd.concat(frames, ignore_index=True)
    rows = pd.concat([one_year.assign(tahun=y) for y in years], ignore_index=True)
    rows = rows[["tahun", "kode_unit", "sasaran", "nilai", "metode"]]
    rows = rows.sort_values(["tahun", "kode_unit", "sasaran"]).reset_index(drop=True)
    network = pd.DataFrame({k: v[len(places):] for k, v in vals.items()})
    network.insert(0, "kode_faskes", pkm["kode_faskes"].to_numpy())
    return rows, network


# --- values -------------------------------------------------------------------------------------

def _season(periods: pd.Series) -> np.ndarray:
    month = periods.str[5:7].astype(int).to_numpy()
    return 1 + 0.08 * np.cos(2 * np.pi * (month - 1) / 12)


def generate_values(slots: pd.DataFrame, network_sasaran: pd.DataFrame,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per form an int matrix (slot rows of that form × its data elements); -1 = blank.

    `slots` needs kode_faskes, jenis_faskes, network, share, period, form, nil and a `row`
    column (0..n-1 within its form, sorted by kode_faskes, period). Counts are Poisson around
    rate × network sasaran / 12 × facility share × mild seasonality; dependent elements are
    binomial thinnings of their parent (DPT3 ≤ DPT1, cases ≤ tested); YTD-unique elements are
    a share of the running yearly sum (months before the data start filled with the mean).
    """
    out: dict[str, np.ndarray] = {}
    sas = network_sasaran.set_index("kode_faskes")
    for form in FORMS:
        s = slots[slots["form"] == form].sort_values("row")
        n = len(s)
        elements = catalog.form_elements(form)
        mat = np.zeros((n, len(elements)), dtype=np.int64)
        if n == 0:
            out[form] = mat
            continue
        base = s["share"].to_numpy() * _season(s["period"]) / 12
        lam_of: dict[str, np.ndarray] = {}
        col = {e: i for i, e in enumerate(elements)}
        year = s["period"].str[:4].to_numpy()
        month = s["period"].str[5:7].astype(int).to_numpy()
        cohort_row = _cohort_rows(s)
        cohort_left: dict[str, tuple[np.ndarray, float]] = {}
        for e in elements:
            kind, ref, p = ELEMENT_MODEL[e]
            if kind == "rate":
                lam = base * p * s["network"].map(sas[ref]).to_numpy()
                lam_of[e] = lam
                mat[:, col[e]] = rng.poisson(lam)
            elif kind == "thin":
                mat[:, col[e]] = rng.binomial(mat[:, col[ref]], p)
            elif kind == "cohort":
                mat[:, col[e]] = _cohort_outcome(mat[:, col[ref]], cohort_row,
                                                 s["nil"].to_numpy(), cohort_left, ref, p, rng)
            else:  # ytd
                parent = pd.Series(mat[:, col[ref]])
                key = [s["kode_faskes"].to_numpy(), year]
                cum = parent.groupby(key).cumsum().to_numpy()
                seen = parent.groupby(key).cumcount().to_numpy() + 1
                earlier = month - seen  # months of the year before the data start
                mat[:, col[e]] = np.floor(
                    p * (cum + np.maximum(earlier, 0) * lam_of[ref])).astype(np.int64)
        for jenis in ("klinik_pratama", "tpmd", "puskesmas"):
            rows = (s["jenis_faskes"] == jenis).to_numpy()
            mat[np.ix_(rows, ~_expected_mask(form, jenis))] = -1
        nil = s["nil"].to_numpy()
        mat[nil] = np.where(mat[nil] < 0, -1, 0)
        out[form] = mat
    return out


def _cohort_rows(s: pd.DataFrame) -> np.ndarray:
    """Per slot row, the row of the same facility 12 months earlier (−1 when not generated)."""
    rows = pd.DataFrame({"kode_faskes": s["kode_faskes"].to_numpy(),
                         "period": s["period"].to_numpy(), "row": np.arange(len(s))})
    earlier = rows.assign(period=[add_months(p, 12) for p in rows["period"]])
    merged = rows.merge(earlier, on=["kode_faskes", "period"], how="left",
                        suffixes=("", "_cohort"))
    return merged["row_cohort"].fillna(-1).astype(np.int64).to_numpy()


def _cohort_outcome(parent: np.ndarray, cohort_row: np.ndarray, nil: np.ndarray,
                    left: dict[str, tuple[np.ndarray, float]], ref: str, p: float,
                    rng: np.random.Generator) -> np.ndarray:
    """One outcome of the cohort that started 12 months earlier: binomial over what the earlier
    outcomes left of it, with the share conditional on them. A cohort month before the data
    starts takes the facility's own month as its size; a nil report's cohort is empty."""
    if ref not in left:
        earlier = np.maximum(cohort_row, 0)
        cohort = np.where(nil[earlier], 0, parent[earlier])
        left[ref] = (np.where(cohort_row >= 0, cohort, parent), 1.0)
    remaining, share_left = left[ref]
    drawn = rng.binomial(remaining, min(1.0, p / share_left))
    left[ref] = (remaining - drawn, share_left - p)
    return drawn


# --- registry, manifest, ground truth -----------------------------------------------------------

def write_registry(run: Run, fac: pd.DataFrame, sasaran: pd.DataFrame,
                   jejaring: pd.DataFrame) -> None:
    """`registry/{fasilitas,sasaran,jejaring}.csv`."""
    reg = run.home / "registry"
    reg.mkdir(parents=True, exist_ok=True)
    f = fac[REGISTRY_COLS].sort_values("kode_faskes")
    f.to_csv(reg / "fasilitas.csv", index=False, lineterminator="\n")
    sasaran.to_csv(reg / "sasaran.csv", index=False, lineterminator="\n")
    jejaring.sort_values(["kode_faskes", "berlaku_mulai"]).to_csv(
        reg / "jejaring.csv", index=False, lineterminator="\n")


def write_manifest(run: Run) -> None:
    """`landing/_diterima.csv`: every landing file with its received time (but the ones written
    with `in_manifest=False`)."""
    files = sorted((f for f in run.files if f.get("in_manifest", True)), key=lambda f: f["file"])
    lines = ["file,received_at"] + [f"{f['file']},{f['received_at'].isoformat()}" for f in files]
    (run.landing / "_diterima.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def ground_truth_reports(slots: pd.DataFrame, versions: pd.DataFrame, cfg: KolabConfig,
                         as_of_utc: datetime) -> pd.DataFrame:
    """Status of every expected facility × period × form (plus unexpected valid arrivals).

    `slots`: kode_faskes, period, form, expected, jenis_faskes, kode_kabkota, timezone.
    `versions`: kode_faskes, period, form, file, received_at (aware, for ordering),
    received_local_date, valid, is_nil, seq. Only valid versions count; the first decides the
    status, the last is the current (final) one.
    """
    v = versions[versions["valid"]].copy()
    v["received_utc"] = pd.to_datetime(
        v["received_at"].map(lambda d: d.astimezone(UTC).isoformat()))
    v = v.sort_values(["kode_faskes", "period", "form", "received_local_date", "received_utc",
                       "seq"])
    g = v.groupby(["kode_faskes", "period", "form"], sort=False)
    agg = pd.DataFrame({
        "first_received_at": g["received_at"].first().map(lambda d: d.isoformat()),
        "received_local_date": g["received_local_date"].first(),
        "n_versions": g.size(),
        "is_nil_report": g["is_nil"].last(),
        "final_file": g["file"].last(),
    }).reset_index()
    rep = slots.merge(agg, on=["kode_faskes", "period", "form"], how="left")
    rep = rep[rep["expected"] | rep["n_versions"].notna()].copy()
    grace = timedelta(days=cfg.reporting.grace_days)
    due, cut = due_and_cutoff(rep["period"], rep["jenis_faskes"], cfg.reporting)
    rep["due_date"] = due.dt.date
    rep["cutoff_date"] = cut.dt.date
    tz_asof = {tz: cfg.as_of_utc(tz).astimezone(ZoneInfo(tz)).date()
               for tz in rep["timezone"].unique()}
    as_of_local = rep["timezone"].map(tz_asof)
    received = rep["n_versions"].notna()
    limit = rep["due_date"].map(lambda d: d + grace)
    rld = rep["received_local_date"].where(received, date.max)  # never compared if not received
    status = np.select(
        [~rep["expected"], received & (rld <= limit), received, as_of_local > rep["cutoff_date"]],
        ["unexpected", "on_time", "late", "missing"], default="pending")
    rep["status"] = status
    rep["overdue"] = (rep["status"] == "pending") & (as_of_local > limit)
    rep["received_after_cutoff"] = received & rep["expected"] & (rld > rep["cutoff_date"])
    rep["days_late"] = np.where(
        received, [max((r - d).days, 0) if isinstance(r, date) else 0
                   for r, d in zip(rep["received_local_date"], rep["due_date"], strict=True)], -1)
    rep["n_versions"] = rep["n_versions"].fillna(0).astype(np.int64)
    rep["is_nil_report"] = rep["is_nil_report"].astype("boolean").fillna(False).astype(bool)
    cols = ["kode_faskes", "period", "form", "expected", "status", "first_received_at",
            "received_local_date", "due_date", "n_versions", "is_nil_report", "final_file",
            "cutoff_date", "overdue", "received_after_cutoff", "days_late", "jenis_faskes",
            "kode_kabkota", "timezone"]
    rep = rep[cols].rename(columns={"first_received_at": "received_at"})
    rep["days_late"] = rep["days_late"].astype("Int64").where(rep["days_late"] >= 0)
    return rep.sort_values(["kode_faskes", "period", "form"]).reset_index(drop=True)


def _counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
    """Rows per value of `column`, sorted by value ({} for an empty frame)."""
    if not len(frame):
        return {}
    return {k: int(n) for k, n in sorted(frame.groupby(column).size().items())}


def write_ground_truth(run: Run, reports: pd.DataFrame, resub: pd.DataFrame,
                       extra: dict[str, Any], area_recaps: pd.DataFrame | None = None) -> dict:
    """`ground_truth/{reports,invalid_rows,broken_files,resubmissions,area_recaps}.csv` and
    `summary.json` (counts, plus `extra` and the run's notes); returns the summary."""
    gt = run.home / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    rep = reports.copy()
    for c in ("expected", "is_nil_report", "overdue", "received_after_cutoff"):
        rep[c] = rep[c].astype(bool).astype(int)
    rep.to_csv(gt / "reports.csv", index=False, lineterminator="\n")
    inv = pd.DataFrame(run.invalid_rows, columns=INVALID_ROW_COLS)
    inv = inv.sort_values(["file", "sheet", "row_number"]) if len(inv) else inv
    inv.to_csv(gt / "invalid_rows.csv", index=False, lineterminator="\n")
    br = pd.DataFrame(run.broken, columns=["file", "rule_id", "what"])
    br = br.sort_values("file") if len(br) else br
    br.to_csv(gt / "broken_files.csv", index=False, lineterminator="\n")
    resub.to_csv(gt / "resubmissions.csv", index=False, lineterminator="\n")
    recaps = area_recaps if area_recaps is not None else pd.DataFrame(columns=AREA_RECAP_COLS)
    recaps.to_csv(gt / "area_recaps.csv", index=False, lineterminator="\n")
    resubmitted = resub[["kode_faskes", "period", "form"]].drop_duplicates() if len(resub) else []
    summary = {
        "scale": run.scale, "seed": run.seed, "as_of": run.as_of.isoformat(), "messy": run.messy,
        "periods": {"first": run.periods[0], "last": run.periods[-1], "n": len(run.periods)},
        "landing_files": len(run.files),
        "landing_files_by_kind": _counts(pd.DataFrame(run.files), "kind"),
        # no _diterima.csv line: received at their mtime (kept by the pipeline's receipt
        # journal) or, for DHIS2, their completeDate
        "landing_files_unlogged": sorted(f["file"] for f in run.files
                                         if not f.get("in_manifest", True)),
        "reports_by_status": _counts(reports, "status"),
        "reports_expected": int(reports["expected"].sum()),
        "reports_nil": int(reports["is_nil_report"].sum()),
        "reports_received_after_cutoff": int(reports["received_after_cutoff"].sum()),
        "reports_overdue": int(reports["overdue"].sum()),
        "invalid_rows_by_rule": _counts(inv, "rule_id"),
        "broken_files_by_rule": _counts(br, "rule_id"),
        "resubmitted_reports": len(resubmitted),
        "area_recap_reports": (len(recaps[["kode_faskes", "period", "form"]].drop_duplicates())
                               if len(recaps) else 0),
    }
    summary.update(extra)
    summary.update(run.notes)
    text = json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    (gt / "summary.json").write_text(text + "\n", encoding="utf-8")
    return summary
