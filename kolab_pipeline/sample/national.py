"""National scale of `kolab sample-data`: every bridged kab/kota, clean recaps, vectorised.

One recap CSV per kab/kota × month × form, received on the puskesmas → Dinkes due date of that
month, with the rows of every facility of the kab/kota that had reported by then, each with
`tanggal_lapor`: the month's own rows and the late rows of earlier months (a late report travels
with the next recap; one that would travel after the last month has not arrived). At most one
version per facility × period × form, so the ground truth is computed here in one vectorised
pass: a network facility's report counts on its `tanggal_lapor`, a puskesmas's on the recap's
receipt (README "Inputs").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.sample.common import (
    META_COLS,
    RESUBMISSION_COLS,
    Run,
    due_and_cutoff,
    generate_values,
    local_dt,
    tz_offset_text,
    write_ground_truth,
    write_manifest,
    write_registry,
)
from kolab_pipeline.sample.places import (
    add_network_columns,
    kabkota_places,
    puskesmas_and_clinics,
    real_puskesmas,
    sasaran_table,
    synthetic_clinics,
)

SLOT_COLS = ["kode_faskes", "nama_faskes", "jenis_faskes", "network", "share", "kode_kabkota",
             "timezone"]
JEJARING_COLS = ["kode_faskes", "kode_puskesmas_induk", "formulir", "berlaku_mulai",
                 "berlaku_sampai"]


def subset_places(places: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """An evenly spread `fraction` of the kab/kota (sorted by code): row i is kept when
    floor((i + 1) × f) > floor(i × f), so 1/2 keeps every 2nd, 1/8 every 8th, 1 keeps all."""
    if fraction >= 1:
        return places
    i = np.arange(len(places))
    keep = np.floor((i + 1) * fraction) > np.floor(i * fraction)
    return places[keep].reset_index(drop=True)


def _facilities(run: Run) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict]]:
    """(facilities, places, puskesmas, unbridged notes): 2–4 KP and 1–4 TPMD per puskesmas."""
    rng = run.rng(1)
    places = subset_places(kabkota_places(None), run.fraction)
    pkm, unbridged = real_puskesmas(places, rng)
    n_kp = rng.integers(2, 5, len(pkm))
    n_dr = rng.integers(1, 5, len(pkm))
    fac = puskesmas_and_clinics(pkm, synthetic_clinics(pkm, n_kp, n_dr, rng))
    add_network_columns(fac)
    tzmap = {k: run.cfg.timezones.for_wilayah(k) for k in places["kode_kabkota"]}
    fac["timezone"] = fac["kode_kabkota"].map(tzmap)
    fac = fac.sort_values("kode_faskes").reset_index(drop=True)
    return fac, places, pkm, unbridged


def _slots(run: Run, fac: pd.DataFrame) -> pd.DataFrame:
    """facility × period × assigned form, each with whether (`sends`), when (`tl`, local date)
    and whether nil it is reported."""
    frames = []
    for form in FORMS:
        f = fac[fac["formulir"].str.contains(form)]
        n = len(f)
        idx = np.tile(np.arange(n), len(run.periods))
        sub = f.iloc[idx][SLOT_COLS].reset_index(drop=True)
        sub["period"] = np.repeat(np.array(run.periods), n)
        sub["form"] = form
        frames.append(sub)
    slots = pd.concat(frames, ignore_index=True)
    slots = slots.sort_values(["form", "kode_faskes", "period"]).reset_index(drop=True)
    slots["row"] = slots.groupby("form").cumcount()
    slots["expected"] = True
    return slots


def build_national(run: Run) -> str:
    """≈ 57k facilities, one clean recap CSV per kab/kota × month × form, vectorised."""
    fac, places, pkm, unbridged = _facilities(run)
    years = sorted({int(p[:4]) for p in run.periods})
    sasaran, network_sas = sasaran_table(places, pkm, years, run.cfg)
    write_registry(run, fac, sasaran, pd.DataFrame(columns=JEJARING_COLS))
    slots = _slots(run, fac)
    r2 = run.rng(2)
    n = len(slots)
    is_pkm = (slots["jenis_faskes"] == "puskesmas").to_numpy()
    p_send = np.where(is_pkm, 0.97,
                      np.where(slots["jenis_faskes"] == "klinik_pratama", 0.9, 0.85))
    sends = r2.random(n) < p_send
    slots["nil"] = (~is_pkm) & (r2.random(n) < 0.05)
    values = generate_values(slots, network_sas, run.rng(3))
    due_day = run.cfg.reporting.due_day
    due = np.where(is_pkm, due_day.pkm_to_dinkes, due_day.network_to_pkm)
    u = r2.random(n)
    offset = np.where(u < 0.8, r2.integers(0, 1_000_000, n) % due,  # on time: day 1..due
                      np.where(u < 0.95, due + r2.integers(0, 20, n), 31 + r2.integers(0, 60, n)))
    nxt = (pd.to_datetime(slots["period"] + "-01")
           + pd.DateOffset(months=1)).to_numpy().astype("datetime64[D]")
    tl = nxt + offset.astype("timedelta64[D]")
    slots["tl"] = tl
    # the recap that carries a row: the first of its month or later received (on that month's
    # puskesmas → Dinkes due date) on or after its tanggal_lapor; none after the last month
    recap_due = (pd.to_datetime(pd.Series(run.periods) + "-01") + pd.DateOffset(months=1)
                 + pd.Timedelta(days=due_day.pkm_to_dinkes - 1)).to_numpy().astype("datetime64[D]")
    own = slots["period"].map({p: i for i, p in enumerate(run.periods)}).to_numpy()
    vehicle = np.maximum(own, np.searchsorted(recap_due, tl, side="left"))
    keep = sends & (vehicle < len(run.periods))
    rows = slots[keep].copy()
    rows["vehicle"] = np.array(run.periods)[vehicle[keep]]
    rows["recap_due"] = recap_due[vehicle[keep]]
    ver = _write_recaps(run, rows, values, places)
    write_manifest(run)
    # one version each: its received local date decides
    reports = _national_reports(slots, ver, run)
    resub = pd.DataFrame(columns=RESUBMISSION_COLS)
    by_type = fac.groupby("jenis_faskes").size().items()
    extra = {"facilities": int(len(fac)),
             "facilities_by_type": {k: int(v) for k, v in sorted(by_type)},
             "kabkota": int(fac["kode_kabkota"].nunique()),
             "landing_rows": int(len(ver)),
             "puskesmas_unbridged_kecamatan": len(unbridged)}
    write_ground_truth(run, reports, resub, extra)
    return (f"Sample data (national, seed {run.seed}, as of {run.as_of}): {len(fac):,} facilities "
            f"in {extra['kabkota']} kab/kota, {len(run.periods)} months "
            f"{run.periods[0]}..{run.periods[-1]}; {len(run.files):,} recap files "
            f"({len(ver):,} rows) in {run.landing}; registry in {run.home / 'registry'}; "
            f"ground truth in {run.home / 'ground_truth'}")


def _write_recaps(run: Run, rows: pd.DataFrame, values: dict[str, np.ndarray],
                  places: pd.DataFrame) -> pd.DataFrame:
    """One file per kab/kota × month × form (the `vehicle` month of its rows), received at
    10:00 local on that month's puskesmas → Dinkes due date; returns the versions (one per row
    written)."""
    rows["group"] = rows["kode_kabkota"] + "|" + rows["vehicle"] + "|" + rows["form"]
    grp_recv = rows.groupby("group")["recap_due"].first()
    kab_tz = rows.groupby("group")["timezone"].first()
    slug = places.set_index("kode_kabkota")["slug"]
    versions = []
    for form in FORMS:
        fr = rows[rows["form"] == form].sort_values(["kode_kabkota", "vehicle", "period",
                                                     "kode_faskes"])
        if fr.empty:
            continue
        elements = catalog.form_elements(form)
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
            rel = (f"{slug[kab]}/{form}/{period}/"
                   f"rekap_{kab.replace('.', '')}_{form}_{period}.csv")
            recv = local_dt(pd.Timestamp(grp_recv[g]).date(), 10, 0, kab_tz[g])
            data = (header + "\n" + "\n".join(body[a:b]) + "\n").encode("utf-8")
            run.write(rel, data, recv, "recap_kabkota")
            files_col[a:b] = rel
        # a network facility's row counts at the start of its tanggal_lapor (local); a
        # puskesmas's at the recap's receipt (its own date is only declared)
        offset = fr["timezone"].map(tz_offset_text).to_numpy()
        is_pkm = (fr["jenis_faskes"] == "puskesmas").to_numpy()
        recv_date = pd.to_datetime(fr["recap_due"]).dt.strftime("%Y-%m-%d").to_numpy()
        versions.append(pd.DataFrame({
            "kode_faskes": fr["kode_faskes"].to_numpy(), "period": fr["period"].to_numpy(),
            "form": form, "file": files_col,
            "received_at": np.where(is_pkm, recv_date + "T10:00:00" + offset,
                                    table["tanggal_lapor"].to_numpy() + "T00:00:00" + offset),
            "received_local_date": np.where(is_pkm, pd.to_datetime(fr["recap_due"]).dt.date,
                                            pd.to_datetime(fr["tl"]).dt.date),
            "valid": True, "is_nil": fr["nil"].to_numpy(), "seq": 0}))
    return pd.concat(versions, ignore_index=True)


def _national_reports(slots: pd.DataFrame, ver: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Vectorised ground truth for the national scale: one version per slot at most."""
    reporting = run.cfg.reporting
    slot_cols = ["kode_faskes", "period", "form", "expected", "jenis_faskes", "kode_kabkota",
                 "timezone"]
    ver_cols = ["kode_faskes", "period", "form", "file", "received_at", "received_local_date",
                "is_nil"]
    rep = slots[slot_cols].merge(ver[ver_cols], on=["kode_faskes", "period", "form"], how="left")
    received = rep["file"].notna().to_numpy()
    due_s, cut_s = due_and_cutoff(rep["period"], rep["jenis_faskes"], reporting)
    due = due_s.to_numpy().astype("datetime64[D]")
    cut = cut_s.to_numpy().astype("datetime64[D]")
    limit = due + np.timedelta64(reporting.grace_days, "D")
    rld = pd.to_datetime(rep["received_local_date"]).to_numpy().astype("datetime64[D]")
    as_of_by_tz = {tz: np.datetime64(run.as_of_local(tz)) for tz in rep["timezone"].unique()}
    as_of = rep["timezone"].map(as_of_by_tz).to_numpy().astype("datetime64[D]")
    status = np.select([received & (rld <= limit), received, as_of > cut],
                       ["on_time", "late", "missing"], default="pending")
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
        "jenis_faskes": rep["jenis_faskes"], "kode_kabkota": rep["kode_kabkota"],
        "timezone": rep["timezone"],
    })
    out.loc[~received, "days_late"] = pd.NA
    return out.sort_values(["kode_faskes", "period", "form"]).reset_index(drop=True)
