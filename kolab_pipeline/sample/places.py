"""Where the sample's facilities are and whom they serve: kab/kota places, the real 2019
puskesmas placed in a Kemendagri kecamatan and desa, synthetic clinics and TPMD, the registry
columns both scales share, and the sasaran (one row per year × unit × sasaran).

Grain: `places` one kab/kota; facility frames one facility. Contract: `docs/SAMPLE_DATA.md`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.config import KolabConfig
from kolab_pipeline.reference import REFERENCE_DIR

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

@cache
def reference_table(name: str) -> pd.DataFrame:
    """A bundled `reference_data/` table, all text."""
    return pd.read_csv(REFERENCE_DIR / name, dtype=str, keep_default_na=False)


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
    fac["formulir"] = fac["jenis_faskes"].map(lambda j: ";".join(catalog.type_forms(j)))
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
