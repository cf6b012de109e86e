"""`kolab sample-data`: a deterministic, realistic evaluation setting plus its answer key.

What it writes into `KOLAB_HOME` (contract: `docs/SAMPLE_DATA.md`): `kolab.yaml` (partition start,
as-of), `registry/{fasilitas,sasaran,jejaring}.csv`, `landing/**` (CSV/XLSX submissions, DHIS2
dataValueSets, `_diterima.csv`) and `ground_truth/**` (reports, invalid rows, broken files,
resubmissions, summary). Same seed + as_of + scale + months + messy ⇒ byte-identical files: all
randomness comes from `numpy.random.default_rng([seed, component])`, outputs are sorted, XLSX zip
entries get a fixed timestamp and workbook properties the file's received time, and every file's
mtime is set to its generated `received_at`.

Places
    `kabupaten` scale: the five places of the news reports — Kota Cilegon (36.72), Kota Balikpapan
    (64.71, WITA), Kabupaten Probolinggo (35.13), Kabupaten Tegal (33.28), Kota Metro (18.72) — with
    their real 2019 puskesmas (P-code prefix `P` + BPS kab/kota code: 8, 22, 33, 29, 10). A P-code's
    chars 2–8 are the BPS kecamatan code; it is mapped to a Kemendagri kecamatan through the bundled
    bridge and given a real Kemendagri desa of that kecamatan. A puskesmas whose BPS kecamatan is not
    in the bridge goes to the kab/kota's first kecamatan (listed in summary.json). Each network gets
    2–4 synthetic Klinik Pratama (`KP<kab><nnnn>`) and 2–5 TPMD (`DR<kab><nnnn>`), `is_synthetic=1`.
    `national` scale: every kab/kota, every 2019 puskesmas whose BPS kab/kota is bridged, 2–4 KP and
    1–4 TPMD each (≈ 57,000 facilities), one clean recap CSV per kab/kota × month × form.

Sasaran (`registry/sasaran.csv`; parameters from `kolab.yaml` `sasaran:`; domain.md §8.4)
    pend_total              = Dukcapil Dec-2024 population (same figure used for every year)
    pend_15plus             = share_15plus × pend_total                       metode share_estimate
    bumil                   = 1.10 × CBR × pend_total / 1000                  metode cbr_formula
    bulin = bufas           = 1.05 × CBR × pend_total / 1000                  metode cbr_formula
    lahir_hidup             = CBR × pend_total / 1000                         metode cbr_formula
    bayi (surviving inf.)   = lahir_hidup × (1 − IMR / 1000)                  metode cbr_formula
    baduta                  = share_baduta × pend_total                       metode share_estimate
    est_penderita_ht_15plus = prevalence_ht_15plus × pend_15plus              metode prevalence_estimate
    est_penderita_dm_15plus = prevalence_dm_15plus × pend_15plus              metode prevalence_estimate
    est_insiden_tb          = tb_incidence_per_100k × pend_total / 100000     metode prevalence_estimate
    Every value is computed from unrounded inputs and rounded to whole persons (numpy round half to
    even). Puskesmas-level rows (kode_unit = P-code) split the kab/kota population over its puskesmas
    by weight 5 + staff count of the 2019 list (largest remainder, so they add up exactly) and apply
    the same formulas to that share — so indicators per puskesmas network have denominators.

Reporting behaviour (decided here, then written, then scored into the ground truth)
    Periods: `months` months ending with the last month whose puskesmas→dinkes due date has passed
    at as_of. Per facility a reliability profile (good/average/poor) draws whether it reports, and
    when: on time (day 1..due of M+1), late (after due, by the cut-off) or after the cut-off; a few
    chronic non-reporters never send one form; nil reports; resubmissions with corrected values.
    Flows: a puskesmas forwards one recap per month × form (its own row plus its network's rows with
    `tanggal_lapor`), supplementary recaps (`_susulan1` late rows, `_susulan2` after the cut-off) and
    revisions (`_revisi`); some clinics send their own files (no `tanggal_lapor`: the `_diterima.csv`
    time counts); one Kota Metro network reports its last three months through DHIS2 dataValueSets.
    Nothing received after as_of is written.

Ground truth (`ground_truth/`) is computed from the generator's own record of every row it wrote
(never from pipeline code), with the status semantics of SAMPLE_DATA.md: the first valid version
gives the status, local dates in the kab/kota's zone, quarantined rows and broken files count as
nothing received.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import yaml

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months, month_end, month_start, period_of
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import KolabConfig, load_config

REFERENCE_DIR = Path(__file__).parent / "reference_data"

KABUPATEN_BPS = ("3672", "6471", "3513", "3328", "1872")
FORMS_BY_TYPE = {"puskesmas": FORMS, "klinik_pratama": FORMS, "tpmd": ("tb", "ptm")}
FORM_TITLE = {"tb": "TBC", "ptm": "PTM (HIPERTENSI DAN DIABETES MELITUS)", "kia": "KIA",
              "imun": "IMUNISASI"}
SHEET_NAME = {"tb": "TB", "ptm": "PTM", "kia": "KIA", "imun": "Imunisasi"}
MONTHS_ID = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
             "September", "Oktober", "November", "Desember")
MONTHS_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
META_COLS = ("periode", "kode_faskes", "nama_faskes", "tanggal_lapor", "laporan_nihil")
META_LABELS = {"periode": "Periode", "kode_faskes": "Kode Faskes", "nama_faskes": "Nama Faskes",
               "tanggal_lapor": "Tanggal Lapor", "laporan_nihil": "Laporan Nihil"}
DHIS2_DEFAULT_COC = "HllvX50cXC0"  # DHIS2's built-in "default" category option combo uid
FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)

# Value model: element → ("rate", sasaran key of the network, annual count per person of it)
#                        ("thin", parent element, share of the parent)  — binomial, never > parent
#                        ("ytd", parent element, share of the parent's year-to-date sum)
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


class SampleDataError(ValueError):
    """The generator cannot run with these arguments; the message says which and why."""


# --------------------------------------------------------------------------------------------
# reference data
# --------------------------------------------------------------------------------------------

@cache
def _ref(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / name, dtype=str, keep_default_na=False)


@cache
def data_element_table() -> pd.DataFrame:
    return catalog.data_elements()


@cache
def form_elements(form: str) -> tuple[str, ...]:
    """Data-element codes of a form, in catalogue order (the template's value columns)."""
    de = data_element_table()
    return tuple(de.loc[de["form"] == form, "code"])


@cache
def _expected_mask(form: str, jenis: str) -> np.ndarray:
    """Which elements of `form` a facility type is expected to report (data_elements.csv)."""
    de = data_element_table()
    sub = de[de["form"] == form]
    return np.array([jenis in str(x).split(";") for x in sub["expected_from"]])


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def _places(bps_codes: tuple[str, ...] | None) -> pd.DataFrame:
    """kab/kota rows: kode_bps, kode_kabkota (Kemendagri), nama, jenis, penduduk, slug."""
    bridge = _ref("bps_kemendagri_kabkota.csv.gz")[["kode_bps", "kode_dagri"]]
    bridge = bridge.sort_values(["kode_bps", "kode_dagri"]).drop_duplicates("kode_bps")
    kab = _ref("wilayah_kabkota.csv.gz").rename(columns={"kode_kabkota": "kode_dagri"})
    pop = _ref("penduduk_wilayah.csv.gz")
    pop = pop[pop["level"] == "kabkota"][["kode", "total"]].rename(columns={"kode": "kode_dagri"})
    out = bridge.merge(kab[["kode_dagri", "nama", "jenis"]], on="kode_dagri").merge(pop, on="kode_dagri")
    if bps_codes is not None:
        out = out[out["kode_bps"].isin(bps_codes)]
    out = out.rename(columns={"kode_dagri": "kode_kabkota", "total": "penduduk"})
    out["penduduk"] = out["penduduk"].astype(np.int64)
    out["slug"] = out["kode_kabkota"].str.replace(".", "", regex=False) + "_" + out["nama"].map(_slug)
    return out.sort_values("kode_kabkota").reset_index(drop=True)


def _puskesmas(places: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, list[dict]]:
    """The real 2019 puskesmas of `places`, mapped to a Kemendagri kecamatan and a desa in it."""
    f = _ref("faskes_bppsdmk_2019.csv.gz")
    f = f[(f["jenis_faskes"] == "PUSKESMAS") & f["kode_faskes"].str.startswith("P")].copy()
    f["kode_bps_kab"] = f["kode_faskes"].str[1:5]
    f["kode_bps_kec"] = f["kode_faskes"].str[1:8]
    f = f.merge(places[["kode_bps", "kode_kabkota"]], left_on="kode_bps_kab", right_on="kode_bps")
    kec_bridge = _ref("bps_kemendagri_kecamatan.csv.gz")[["kode_bps", "kode_dagri"]]
    kec_bridge = kec_bridge.sort_values(["kode_bps", "kode_dagri"]).drop_duplicates("kode_bps")
    f = f.merge(kec_bridge.rename(columns={"kode_bps": "kode_bps_kec", "kode_dagri": "kode_kec"}),
                on="kode_bps_kec", how="left")
    # a bridged kecamatan must belong to the same kab/kota (else treat as unbridged)
    wrong_kab = f["kode_kec"].notna() & (f["kode_kec"].str[:5] != f["kode_kabkota"])
    f.loc[wrong_kab, "kode_kec"] = np.nan
    kec = _ref("wilayah_kecamatan.csv.gz")
    first_kec = kec.sort_values("kode_kec").groupby("kode_kabkota")["kode_kec"].first()
    unbridged = f["kode_kec"].isna()
    notes = [{"kode_faskes": k, "kode_bps_kec": b, "placed_in": first_kec.get(kk, "")}
             for k, b, kk in f.loc[unbridged, ["kode_faskes", "kode_bps_kec", "kode_kabkota"]]
             .sort_values("kode_faskes").itertuples(index=False)]
    f.loc[unbridged, "kode_kec"] = f.loc[unbridged, "kode_kabkota"].map(first_kec)
    f = f[f["kode_kec"].notna()].sort_values("kode_faskes").reset_index(drop=True)
    f["kode_wilayah"] = _pick_desa(f["kode_kec"], rng)
    f["weight"] = 5 + pd.to_numeric(f["tenaga_medis_total"], errors="coerce").fillna(0).clip(lower=0)
    f["nama_faskes"] = "Puskesmas " + f["nama_faskes"].str.strip().str.title()
    return f[["kode_faskes", "nama_faskes", "kode_kabkota", "kode_kec", "kode_wilayah", "weight"]], notes


def _pick_desa(kode_kec: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """A real Kemendagri desa of each kecamatan (vectorised; kecamatan code when it has none)."""
    desa = _ref("wilayah_desa.csv.gz")[["kode_desa", "kode_kec"]].sort_values("kode_desa")
    desa = desa.reset_index(drop=True)
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


# --------------------------------------------------------------------------------------------
# calendar
# --------------------------------------------------------------------------------------------

def sample_periods(as_of: date, months: int, cfg: KolabConfig) -> list[str]:
    """`months` periods ending with the last month whose puskesmas→dinkes due date is before as_of."""
    if months < 1:
        raise SampleDataError(f"--months must be at least 1 (got {months})")
    last = add_months(period_of(as_of), -1)
    if not as_of > month_start(add_months(last, 1)) + timedelta(days=cfg.reporting.due_day.pkm_to_dinkes - 1):
        last = add_months(last, -1)
    return [add_months(last, -i) for i in range(months - 1, -1, -1)]


def due_date(period: str, jenis: str, cfg: KolabConfig) -> date:
    day = cfg.reporting.due_day.pkm_to_dinkes if jenis == "puskesmas" else cfg.reporting.due_day.network_to_pkm
    return month_start(add_months(period, 1)) + timedelta(days=day - 1)


def cutoff_date(period: str, cfg: KolabConfig) -> date:
    return month_end(add_months(period, cfg.reporting.cutoff_months_after_period))


def _tz_offset_text(tz: str) -> str:
    """`+07:00` for Asia/Jakarta (Indonesian zones have no daylight saving)."""
    return datetime(2020, 1, 1, tzinfo=ZoneInfo(tz)).isoformat()[-6:]


def _local_dt(day: date, hour: int, minute: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz))


# --------------------------------------------------------------------------------------------
# sasaran
# --------------------------------------------------------------------------------------------

def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    raw = total * weights / weights.sum()
    base = np.floor(raw).astype(np.int64)
    rest = total - base.sum()
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base


def sasaran_values(pend_total: np.ndarray | float, cfg: KolabConfig) -> dict[str, Any]:
    """Unrounded sasaran from total population (formulas in the module docstring)."""
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
        "baduta": s.share_baduta * pop,
        "est_penderita_ht_15plus": s.prevalence_ht_15plus * pend15,
        "est_penderita_dm_15plus": s.prevalence_dm_15plus * pend15,
        "est_insiden_tb": s.tb_incidence_per_100k * pop / 100000,
    }


SASARAN_METODE = {"pend_total": "dukcapil", "pend_15plus": "share_estimate", "bumil": "cbr_formula",
                  "bulin": "cbr_formula", "bufas": "cbr_formula", "lahir_hidup": "cbr_formula",
                  "bayi": "cbr_formula", "baduta": "share_estimate",
                  "est_penderita_ht_15plus": "prevalence_estimate",
                  "est_penderita_dm_15plus": "prevalence_estimate",
                  "est_insiden_tb": "prevalence_estimate"}


def _sasaran_table(places: pd.DataFrame, pkm: pd.DataFrame, years: list[int],
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


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------

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
        elements = form_elements(form)
        mat = np.zeros((n, len(elements)), dtype=np.int64)
        if n == 0:
            out[form] = mat
            continue
        base = s["share"].to_numpy() * _season(s["period"]) / 12
        lam_of: dict[str, np.ndarray] = {}
        col = {e: i for i, e in enumerate(elements)}
        year = s["period"].str[:4].to_numpy()
        month = s["period"].str[5:7].astype(int).to_numpy()
        for e in elements:
            kind, ref, p = ELEMENT_MODEL[e]
            if kind == "rate":
                lam = base * p * s["network"].map(sas[ref]).to_numpy()
                lam_of[e] = lam
                mat[:, col[e]] = rng.poisson(lam)
            elif kind == "thin":
                mat[:, col[e]] = rng.binomial(mat[:, col[ref]], p)
            else:  # ytd
                parent = pd.Series(mat[:, col[ref]])
                key = [s["kode_faskes"].to_numpy(), year]
                cum = parent.groupby(key).cumsum().to_numpy()
                seen = parent.groupby(key).cumcount().to_numpy() + 1
                earlier = month - seen  # months of the year before the data start
                mat[:, col[e]] = np.floor(p * (cum + np.maximum(earlier, 0) * lam_of[ref])).astype(np.int64)
        for jenis in ("klinik_pratama", "tpmd", "puskesmas"):
            rows = (s["jenis_faskes"] == jenis).to_numpy()
            mat[np.ix_(rows, ~_expected_mask(form, jenis))] = -1
        nil = s["nil"].to_numpy()
        mat[nil] = np.where(mat[nil] < 0, -1, 0)
        out[form] = mat
    return out


# --------------------------------------------------------------------------------------------
# file styles and writers
# --------------------------------------------------------------------------------------------

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


def _draw_style(rng: np.random.Generator, messy: bool, sender: str) -> Style:
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


def _xlsx_bytes(sheets: list[tuple[str, list[list[Any]]]], stamp: datetime) -> bytes:
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


def _csv_bytes(lines: list[list[Any]], st: Style) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=st.delim, lineterminator="\r\n" if st.encoding == "cp1252" else "\n")
    w.writerows([["" if c is None else c for c in r] for r in lines])
    text = buf.getvalue()
    return text.encode(st.encoding, errors="replace")


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------

@dataclass
class Run:
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

    def write(self, rel: str, data: bytes, received: datetime, kind: str) -> None:
        path = self.landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        ts = received.timestamp()
        os.utime(path, (ts, ts))
        self.files.append({"file": rel, "received_at": received, "kind": kind})

    def as_of_local(self, tz: str) -> date:
        return self.as_of_utc.astimezone(ZoneInfo(tz)).date()


def _prepare_home(home: Path) -> None:
    """Remove the previous sample (landing/registry/ground_truth) so re-runs are byte-identical;
    refuse when landing/ holds files a previous `kolab sample-data` did not write."""
    gt = home / "ground_truth" / "summary.json"
    landing = home / "landing"
    if landing.exists() and any(landing.iterdir()) and not gt.exists():
        raise SampleDataError(f"{landing}: holds files not written by `kolab sample-data`; "
                              "move them away or choose another --home")
    for sub in ("landing", "registry", "ground_truth"):
        if (home / sub).exists():
            shutil.rmtree(home / sub)
    home.mkdir(parents=True, exist_ok=True)


def _write_kolab_yaml(home: Path, first_period: str, as_of: date) -> None:
    path = home / "kolab.yaml"
    data: dict[str, Any] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise SampleDataError(f"{path}: expected a mapping at the top level; cannot merge")
    data.setdefault("partitions", {})
    data.setdefault("reporting", {})
    data["partitions"]["start"] = f"{first_period}-01"
    data["reporting"]["as_of"] = as_of.isoformat()
    path.write_text("# written by `kolab sample-data` (partitions.start, reporting.as_of)\n"
                    + yaml.safe_dump(data, sort_keys=True, allow_unicode=True), encoding="utf-8")


def generate(home: Path, seed: int, as_of: date, scale: str, months: int, messy: bool,
             fraction: float = 1.0) -> str:
    """Generate the sample into `home`; returns a short human summary (where, how many).

    `fraction` (national scale only, 0 < f ≤ 1) keeps an evenly spread share of the kab/kota
    (`subset_places`), so the benchmark can measure how cost grows with the data.
    """
    if scale not in ("kabupaten", "national"):
        raise SampleDataError(f"--scale must be kabupaten or national (got {scale!r})")
    if not 0 < fraction <= 1:
        raise SampleDataError(f"fraction must be in (0, 1] (got {fraction!r})")
    home = Path(home).resolve()
    cfg0 = load_config(home)
    periods = sample_periods(as_of, months, cfg0)
    _prepare_home(home)
    _write_kolab_yaml(home, periods[0], as_of)
    cfg = load_config(home)
    run = Run(home=home, seed=seed, as_of=as_of, scale=scale, months=months, messy=messy, cfg=cfg,
              periods=periods, as_of_utc=cfg.reporting.as_of_utc(), fraction=fraction)
    if scale == "kabupaten":
        from kolab_pipeline.sample_data_kabupaten import build_kabupaten

        facts = build_kabupaten(run)
    else:
        facts = build_national(run)
    return facts


# --------------------------------------------------------------------------------------------
# shared: registry, ground truth, manifest
# --------------------------------------------------------------------------------------------

REGISTRY_COLS = ["kode_faskes", "nama_faskes", "jenis_faskes", "kode_puskesmas_induk", "kode_wilayah",
                 "tanggal_buka", "tanggal_tutup", "formulir", "kode_lokal", "is_synthetic"]


def write_registry(run: Run, fac: pd.DataFrame, sasaran: pd.DataFrame, jejaring: pd.DataFrame) -> None:
    reg = run.home / "registry"
    reg.mkdir(parents=True, exist_ok=True)
    f = fac[REGISTRY_COLS].sort_values("kode_faskes")
    f.to_csv(reg / "fasilitas.csv", index=False, lineterminator="\n")
    sasaran.to_csv(reg / "sasaran.csv", index=False, lineterminator="\n")
    jejaring.sort_values(["kode_faskes", "berlaku_mulai"]).to_csv(
        reg / "jejaring.csv", index=False, lineterminator="\n")


def ground_truth_reports(slots: pd.DataFrame, versions: pd.DataFrame, cfg: KolabConfig,
                         as_of_utc: datetime) -> pd.DataFrame:
    """Status of every expected facility × period × form (plus unexpected valid arrivals).

    `slots`: kode_faskes, period, form, expected, jenis_faskes, kode_kabkota, timezone.
    `versions`: kode_faskes, period, form, file, received_at (aware, for ordering),
    received_local_date, valid, is_nil, seq. Only valid versions count; the first decides the
    status, the last is the current (final) one.
    """
    v = versions[versions["valid"]].copy()
    v["received_utc"] = pd.to_datetime(v["received_at"].map(lambda d: d.astimezone(UTC).isoformat()))
    v = v.sort_values(["kode_faskes", "period", "form", "received_local_date", "received_utc", "seq"])
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
    day = cfg.reporting.due_day
    nxt = pd.to_datetime(rep["period"] + "-01") + pd.DateOffset(months=1)
    due_day = np.where(rep["jenis_faskes"] == "puskesmas", day.pkm_to_dinkes, day.network_to_pkm)
    rep["due_date"] = (nxt + pd.to_timedelta(due_day - 1, unit="D")).dt.date
    cut = (pd.to_datetime(rep["period"] + "-01") + pd.DateOffset(months=cfg.reporting.cutoff_months_after_period + 1)
           - pd.Timedelta(days=1))
    rep["cutoff_date"] = cut.dt.date
    tz_asof = {tz: as_of_utc.astimezone(ZoneInfo(tz)).date() for tz in rep["timezone"].unique()}
    as_of_local = rep["timezone"].map(tz_asof)
    received = rep["n_versions"].notna()
    limit = rep["due_date"].map(lambda d: d + grace)
    rld = rep["received_local_date"].where(received, date.max)  # never compared when not received
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


def _bool01(s: pd.Series) -> pd.Series:
    return s.astype(bool).astype(int)


def write_ground_truth(run: Run, reports: pd.DataFrame, resub: pd.DataFrame, extra: dict[str, Any]) -> dict:
    gt = run.home / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    rep = reports.copy()
    for c in ("expected", "is_nil_report", "overdue", "received_after_cutoff"):
        rep[c] = _bool01(rep[c])
    rep.to_csv(gt / "reports.csv", index=False, lineterminator="\n")
    inv = pd.DataFrame(run.invalid_rows, columns=["file", "sheet", "row_number", "rule_id", "column_name",
                                                  "column_index", "value", "kode_faskes", "period", "form"])
    inv = inv.sort_values(["file", "sheet", "row_number"]) if len(inv) else inv
    inv.to_csv(gt / "invalid_rows.csv", index=False, lineterminator="\n")
    br = pd.DataFrame(run.broken, columns=["file", "rule_id", "what"])
    br = br.sort_values("file") if len(br) else br
    br.to_csv(gt / "broken_files.csv", index=False, lineterminator="\n")
    resub.to_csv(gt / "resubmissions.csv", index=False, lineterminator="\n")
    files = pd.DataFrame(run.files)
    summary = {
        "scale": run.scale, "seed": run.seed, "as_of": run.as_of.isoformat(), "messy": run.messy,
        "periods": {"first": run.periods[0], "last": run.periods[-1], "n": len(run.periods)},
        "landing_files": int(len(files)),
        "landing_files_by_kind": {k: int(n) for k, n in sorted(files.groupby("kind").size().items())},
        "reports_by_status": {k: int(n) for k, n in sorted(reports.groupby("status").size().items())},
        "reports_expected": int(reports["expected"].sum()),
        "reports_nil": int(reports["is_nil_report"].sum()),
        "reports_received_after_cutoff": int(reports["received_after_cutoff"].sum()),
        "reports_overdue": int(reports["overdue"].sum()),
        "invalid_rows_by_rule": {k: int(n) for k, n in sorted(inv.groupby("rule_id").size().items())} if len(inv) else {},
        "broken_files_by_rule": {k: int(n) for k, n in sorted(br.groupby("rule_id").size().items())} if len(br) else {},
        "resubmitted_reports": int(resub[["kode_faskes", "period", "form"]].drop_duplicates().shape[0]) if len(resub) else 0,
    }
    summary.update(extra)
    summary.update(run.notes)
    (gt / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True,
                                                default=str) + "\n", encoding="utf-8")
    return summary


def write_manifest(run: Run) -> None:
    files = sorted(run.files, key=lambda f: f["file"])
    lines = ["file,received_at"] + [f"{f['file']},{f['received_at'].isoformat()}" for f in files]
    (run.landing / "_diterima.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# national scale (vectorised)
# --------------------------------------------------------------------------------------------

def _synthetic_clinics(pkm: pd.DataFrame, n_kp: np.ndarray, n_dr: np.ndarray,
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
        c["kode_faskes"] = prefix + c["kode_kabkota"].str.replace(".", "", regex=False) + seq.map("{:04d}".format)
        a = rng.integers(0, 10_000, len(c))
        if jenis == "klinik_pratama":
            c["nama_faskes"] = ("Klinik Pratama " + pd.Series(KP_WORDS_A).iloc[a % len(KP_WORDS_A)].to_numpy()
                                + " " + pd.Series(KP_WORDS_B).iloc[(a // 31) % len(KP_WORDS_B)].to_numpy())
        else:
            c["nama_faskes"] = ("Praktik dr. " + pd.Series(DR_FIRST).iloc[a % len(DR_FIRST)].to_numpy()
                                + " " + pd.Series(DR_LAST).iloc[(a // 37) % len(DR_LAST)].to_numpy())
        c["share_w"] = rng.uniform(0.1, 0.3, len(c)) if jenis == "klinik_pratama" else rng.uniform(0.03, 0.1, len(c))
        parts.append(c)
    out = pd.concat(parts, ignore_index=True)
    out["kode_wilayah"] = _pick_desa(out["kode_kec"], rng)
    return out


def subset_places(places: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """An evenly spread `fraction` of the kab/kota (sorted by code): row i is kept when
    floor((i + 1) × f) > floor(i × f), so 1/2 keeps every 2nd, 1/8 every 8th, 1 keeps all."""
    if fraction >= 1:
        return places
    i = np.arange(len(places))
    keep = np.floor((i + 1) * fraction) > np.floor(i * fraction)
    return places[keep].reset_index(drop=True)


def _network_shares(fac: pd.DataFrame) -> pd.Series:
    """Share of its network's service volume per facility (puskesmas weight 1, clinics 0.1–0.3,
    TPMD 0.03–0.1, normalised per network)."""
    return fac["share_w"] / fac.groupby("network")["share_w"].transform("sum")


def build_national(run: Run) -> str:
    """≈ 57k facilities, one clean recap CSV per kab/kota × month × form, vectorised."""
    rng = run.rng(1)
    places = subset_places(_places(None), run.fraction)
    pkm, unbridged = _puskesmas(places, rng)
    n_kp = rng.integers(2, 5, len(pkm))
    n_dr = rng.integers(1, 5, len(pkm))
    clinics = _synthetic_clinics(pkm, n_kp, n_dr, rng)
    pk = pkm.assign(jenis_faskes="puskesmas", kode_puskesmas_induk="", share_w=1.0)
    fac = pd.concat([pk, clinics], ignore_index=True)
    fac["network"] = np.where(fac["jenis_faskes"] == "puskesmas", fac["kode_faskes"], fac["kode_puskesmas_induk"])
    fac["share"] = _network_shares(fac)
    fac["tanggal_buka"] = ""
    fac["tanggal_tutup"] = ""
    fac["formulir"] = fac["jenis_faskes"].map(lambda j: ";".join(FORMS_BY_TYPE[j]))
    fac["kode_lokal"] = ""
    fac["is_synthetic"] = (fac["jenis_faskes"] != "puskesmas").astype(int)
    tzmap = {k: run.cfg.timezones.for_wilayah(k) for k in places["kode_kabkota"]}
    fac["timezone"] = fac["kode_kabkota"].map(tzmap)
    fac = fac.sort_values("kode_faskes").reset_index(drop=True)
    years = sorted({int(p[:4]) for p in run.periods})
    sasaran, network_sas = _sasaran_table(places, pkm, years, run.cfg)
    write_registry(run, fac, sasaran, pd.DataFrame(columns=["kode_faskes", "kode_puskesmas_induk", "formulir",
                                                            "berlaku_mulai", "berlaku_sampai"]))
    # slots: facility × period × assigned form
    frames = []
    for form in FORMS:
        f = fac[fac["formulir"].str.contains(form)]
        n = len(f)
        idx = np.tile(np.arange(n), len(run.periods))
        per = np.repeat(np.array(run.periods), n)
        sub = f.iloc[idx][["kode_faskes", "nama_faskes", "jenis_faskes", "network", "share", "kode_kabkota",
                            "timezone"]].reset_index(drop=True)
        sub["period"] = per
        sub["form"] = form
        frames.append(sub)
    slots = pd.concat(frames, ignore_index=True)
    slots = slots.sort_values(["form", "kode_faskes", "period"]).reset_index(drop=True)
    slots["row"] = slots.groupby("form").cumcount()
    slots["expected"] = True
    r2 = run.rng(2)
    n = len(slots)
    is_pkm = (slots["jenis_faskes"] == "puskesmas").to_numpy()
    p_send = np.where(is_pkm, 0.97, np.where(slots["jenis_faskes"] == "klinik_pratama", 0.9, 0.85))
    sends = r2.random(n) < p_send
    slots["nil"] = (~is_pkm) & (r2.random(n) < 0.05)
    values = generate_values(slots, network_sas, run.rng(3))
    due = np.where(is_pkm, run.cfg.reporting.due_day.pkm_to_dinkes, run.cfg.reporting.due_day.network_to_pkm)
    u = r2.random(n)
    offset = np.where(u < 0.8, r2.integers(0, 1_000_000, n) % due,  # on time: day 1..due
                      np.where(u < 0.95, due + r2.integers(0, 20, n), 31 + r2.integers(0, 60, n)))
    nxt = (pd.to_datetime(slots["period"] + "-01") + pd.DateOffset(months=1)).to_numpy().astype("datetime64[D]")
    tl = nxt + offset.astype("timedelta64[D]")
    as_of_local = slots["timezone"].map({tz: np.datetime64(run.as_of_local(tz)) for tz in tzmap.values()}).to_numpy()
    keep = sends & (tl <= as_of_local.astype("datetime64[D]"))
    slots["tl"] = tl
    rows = slots[keep].copy()
    # one file per kab/kota × period × form; received the day after its latest row (≤ as_of), 10:00
    rows["group"] = rows["kode_kabkota"] + "|" + rows["period"] + "|" + rows["form"]
    grp_recv = rows.groupby("group")["tl"].max() + np.timedelta64(1, "D")
    kab_tz = rows.groupby("group")["timezone"].first()
    cap = kab_tz.map({tz: np.datetime64(run.as_of_local(tz)) for tz in tzmap.values()}).astype("datetime64[ns]")
    grp_recv = grp_recv.where(grp_recv <= cap, cap)
    slug = places.set_index("kode_kabkota")["slug"]
    versions = []
    for form in FORMS:
        fr = rows[rows["form"] == form].sort_values(["kode_kabkota", "period", "kode_faskes"])
        if fr.empty:
            continue
        elements = form_elements(form)
        mat = values[form][fr["row"].to_numpy()]
        table = pd.DataFrame({
            "periode": fr["period"].to_numpy(), "kode_faskes": fr["kode_faskes"].to_numpy(),
            "nama_faskes": fr["nama_faskes"].to_numpy(),
            "tanggal_lapor": pd.to_datetime(fr["tl"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "laporan_nihil": np.where(fr["nil"].to_numpy(), "1", ""),
        })
        for i, e in enumerate(elements):
            table[e] = pd.array(np.where(mat[:, i] < 0, 0, mat[:, i]), dtype="Int64")
            table.loc[mat[:, i] < 0, e] = pd.NA
        body = table.to_csv(index=False, header=False, lineterminator="\n").splitlines()
        header = ",".join(list(META_COLS) + list(elements))
        groups = fr["group"].to_numpy()
        bounds = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True])
        files_col = np.empty(len(fr), dtype=object)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            g = groups[a]
            kab, period, _ = g.split("|")
            rel = f"{slug[kab]}/{form}/{period}/rekap_{kab.replace('.', '')}_{form}_{period}.csv"
            recv = _local_dt(pd.Timestamp(grp_recv[g]).date(), 10, 0, kab_tz[g])
            data = (header + "\n" + "\n".join(body[a:b]) + "\n").encode("utf-8")
            run.write(rel, data, recv, "recap_kabkota")
            files_col[a:b] = rel
        # a row with tanggal_lapor counts as received at the start of that local date
        offset = fr["timezone"].map(_tz_offset_text).to_numpy()
        versions.append(pd.DataFrame({
            "kode_faskes": fr["kode_faskes"].to_numpy(), "period": fr["period"].to_numpy(), "form": form,
            "file": files_col, "received_at": table["tanggal_lapor"].to_numpy() + "T00:00:00" + offset,
            "received_local_date": pd.to_datetime(fr["tl"]).dt.date.to_numpy(),
            "valid": True, "is_nil": fr["nil"].to_numpy(), "seq": 0}))
    write_manifest(run)
    ver = pd.concat(versions, ignore_index=True)
    # rows share their file's received_at: order by local date is what decides (one version each)
    reports = _national_reports(slots, ver, run)
    resub = pd.DataFrame(columns=["kode_faskes", "period", "form", "version", "file", "sheet", "row_number",
                                  "data_element", "value"])
    extra = {"facilities": int(len(fac)),
             "facilities_by_type": {k: int(v) for k, v in sorted(fac.groupby("jenis_faskes").size().items())},
             "kabkota": int(fac["kode_kabkota"].nunique()),
             "landing_rows": int(len(ver)),
             "puskesmas_unbridged_kecamatan": len(unbridged)}
    write_ground_truth(run, reports, resub, extra)
    return (f"Sample data (national, seed {run.seed}, as of {run.as_of}): {len(fac):,} facilities in "
            f"{extra['kabkota']} kab/kota, {len(run.periods)} months {run.periods[0]}..{run.periods[-1]}; "
            f"{len(run.files):,} recap files ({len(ver):,} rows) in {run.landing}; registry in "
            f"{run.home / 'registry'}; ground truth in {run.home / 'ground_truth'}")


def _national_reports(slots: pd.DataFrame, ver: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Vectorised ground truth for the national scale: one version per slot at most."""
    cfg = run.cfg
    rep = slots[["kode_faskes", "period", "form", "expected", "jenis_faskes", "kode_kabkota", "timezone"]].merge(
        ver[["kode_faskes", "period", "form", "file", "received_at", "received_local_date", "is_nil"]],
        on=["kode_faskes", "period", "form"], how="left")
    received = rep["file"].notna().to_numpy()
    per = pd.to_datetime(rep["period"] + "-01")
    nxt = per + pd.DateOffset(months=1)
    dd = np.where(rep["jenis_faskes"] == "puskesmas", cfg.reporting.due_day.pkm_to_dinkes,
                  cfg.reporting.due_day.network_to_pkm)
    due = (nxt + pd.to_timedelta(dd - 1, unit="D")).to_numpy().astype("datetime64[D]")
    cut = (per + pd.DateOffset(months=cfg.reporting.cutoff_months_after_period + 1)
           - pd.Timedelta(days=1)).to_numpy().astype("datetime64[D]")
    limit = due + np.timedelta64(cfg.reporting.grace_days, "D")
    rld = pd.to_datetime(rep["received_local_date"]).to_numpy().astype("datetime64[D]")
    as_of = rep["timezone"].map({tz: np.datetime64(run.as_of_local(tz)) for tz in rep["timezone"].unique()}
                                ).to_numpy().astype("datetime64[D]")
    status = np.select([received & (rld <= limit), received, as_of > cut], ["on_time", "late", "missing"],
                       default="pending")
    days_late = np.where(received, np.maximum((rld - due).astype(np.int64), 0), -1)
    out = pd.DataFrame({
        "kode_faskes": rep["kode_faskes"], "period": rep["period"], "form": rep["form"],
        "expected": True, "status": status,
        "received_at": rep["received_at"].fillna(""),
        "received_local_date": np.where(received, pd.Series(rld).dt.strftime("%Y-%m-%d"), ""),
        "due_date": pd.Series(due).dt.strftime("%Y-%m-%d"),
        "n_versions": received.astype(int),
        "is_nil_report": rep["is_nil"].astype("boolean").fillna(False).astype(bool),
        "final_file": rep["file"].fillna(""),
        "cutoff_date": pd.Series(cut).dt.strftime("%Y-%m-%d"),
        "overdue": (status == "pending") & (as_of > limit),
        "received_after_cutoff": received & (rld > cut),
        "days_late": pd.array(np.where(days_late >= 0, days_late, 0), dtype="Int64"),
        "jenis_faskes": rep["jenis_faskes"], "kode_kabkota": rep["kode_kabkota"], "timezone": rep["timezone"],
    })
    out.loc[~received, "days_late"] = pd.NA
    return out.sort_values(["kode_faskes", "period", "form"]).reset_index(drop=True)
