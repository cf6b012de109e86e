"""What both scales of `kolab sample-data` share besides the places (`places`): the run record,
the calendar, the values and the answer key (registry, manifest, ground truth).

Grain: `slots` one facility × period × form; ground-truth `reports` one facility × period × form
(expected, or unexpected but received).
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


@cache
def _expected_mask(form: str, jenis: str) -> np.ndarray:
    """Which elements of `form` a facility type is expected to report (data_elements.csv)."""
    de = catalog.data_elements()
    sub = de[de["form"] == form]
    return np.array([jenis in str(x).split(";") for x in sub["expected_from"]])


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
