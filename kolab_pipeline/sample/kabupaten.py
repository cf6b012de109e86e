"""Kabupaten scale of `kolab sample-data`: the five places, every messy flow, the answer key.

Split from `sample_data.py` (shared helpers, national scale, formulas) only for length. Grain of
the intermediate tables:
- `fac`: one facility (real puskesmas or synthetic KP/TPMD) with its network, style and profile;
- `slots`: one facility × period × form that is expected, or that the generator decided to send
  although not expected (the `unexpected` cases);
- `rows`: one row instance written to one landing file (a slot can have several: versions, the
  duplicate of a V15 pair); V01 rows (unregistered facilities) have no slot.
Ground truth is computed from `rows` after writing, so it describes exactly the files on disk.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kolab_pipeline.calendar import add_months, month_end, month_start
from kolab_pipeline.sample_data import (
    DHIS2_DEFAULT_COC,
    FORM_TITLE,
    FORMS,
    FORMS_BY_TYPE,
    KABUPATEN_BPS,
    META_COLS,
    META_LABELS,
    SHEET_NAME,
    Run,
    SampleDataError,
    Style,
    _csv_bytes,
    _draw_style,
    _local_dt,
    _network_shares,
    _places,
    _puskesmas,
    _sasaran_table,
    _synthetic_clinics,
    _xlsx_bytes,
    cutoff_date,
    data_element_table,
    due_date,
    form_elements,
    format_period,
    format_value,
    generate_values,
    ground_truth_reports,
    write_ground_truth,
    write_manifest,
    write_registry,
)

EXPECTED_PUSKESMAS = {"36.72": 8, "64.71": 22, "35.13": 33, "33.28": 29, "18.72": 10}
PROFILES = {  # P(report), P(late | report), P(after cut-off | late)
    "good": (0.985, 0.06, 0.15),
    "average": (0.93, 0.25, 0.25),
    "poor": (0.75, 0.45, 0.4),
}
UNREADABLE_PERIODS = ("13/{y}", "Maret", "{y}-13", "bln lalu", "")


def _uid(rng: np.random.Generator) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    alnum = letters + "0123456789"
    return letters[rng.integers(len(letters))] + "".join(alnum[i] for i in rng.integers(0, len(alnum), 10))


def _facilities(run: Run) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Registry of the five places plus the dated events (openings, closings, jejaring change)."""
    rng = run.rng(10)
    places = _places(KABUPATEN_BPS)
    pkm, unbridged = _puskesmas(places, rng)
    counts = pkm.groupby("kode_kabkota").size().to_dict()
    if counts != EXPECTED_PUSKESMAS:
        raise SampleDataError(f"faskes_bppsdmk_2019.csv.gz: puskesmas per kab/kota {counts}, "
                              f"expected {EXPECTED_PUSKESMAS}")
    clinics = _synthetic_clinics(pkm, rng.integers(2, 5, len(pkm)), rng.integers(2, 6, len(pkm)), rng)
    # unique names within a kab/kota (a shared name would be an ambiguous alias)
    dup = clinics.groupby(["kode_kabkota", "nama_faskes"]).cumcount()
    clinics.loc[dup > 0, "nama_faskes"] = clinics["nama_faskes"] + " " + (dup + 1).astype(str)
    fac = pd.concat([pkm.assign(jenis_faskes="puskesmas", kode_puskesmas_induk="", share_w=1.0), clinics],
                    ignore_index=True).sort_values("kode_faskes").reset_index(drop=True)
    fac["network"] = np.where(fac["jenis_faskes"] == "puskesmas", fac["kode_faskes"], fac["kode_puskesmas_induk"])
    fac["share"] = _network_shares(fac)
    fac["formulir"] = fac["jenis_faskes"].map(lambda j: ";".join(FORMS_BY_TYPE[j]))
    fac["tanggal_buka"] = ""
    fac["tanggal_tutup"] = ""
    fac["kode_lokal"] = ""
    fac["is_synthetic"] = (fac["jenis_faskes"] != "puskesmas").astype(int)
    fac["timezone"] = fac["kode_kabkota"].map(run.cfg.timezones.for_wilayah)
    fac["profile"] = np.where(
        fac["jenis_faskes"] == "puskesmas",
        rng.choice(["good", "average", "poor"], len(fac), p=[0.8, 0.15, 0.05]),
        rng.choice(["good", "average", "poor"], len(fac), p=[0.7, 0.2, 0.1]))
    fac["self_report"] = (fac["jenis_faskes"] != "puskesmas") & (rng.random(len(fac)) < 0.02)
    fac = fac.set_index("kode_faskes", drop=False)

    P = run.periods
    n = len(P)
    dhis2_pkm = fac[(fac["kode_kabkota"] == "18.72") & (fac["jenis_faskes"] == "puskesmas")].index[0]
    # two Balikpapan clinics that send their own files: the WITA 23:30 / 00:30 cases
    bpp = fac[(fac["kode_kabkota"] == "64.71") & (fac["jenis_faskes"] == "klinik_pratama")].index[:2].tolist()
    fac.loc[bpp, "self_report"] = True
    fac.loc[bpp, "profile"] = "good"
    network = fac[(fac["jenis_faskes"] != "puskesmas") & (fac["network"] != dhis2_pkm)
                  & ~fac.index.isin(bpp)].index.to_numpy()
    pool = list(rng.permutation(network))
    events: dict[str, Any] = {}

    def take(jenis: str | None = None, kab: str | None = None) -> str:
        for i, k in enumerate(pool):
            if (jenis is None or fac.at[k, "jenis_faskes"] == jenis) and (kab is None or fac.at[k, "kode_kabkota"] == kab):
                return pool.pop(i)
        raise SampleDataError("not enough network facilities for the sample events")

    k = take()
    fac.at[k, "tanggal_buka"] = month_start(P[n // 3]).replace(day=15).isoformat()
    events["opens_on_15th"] = k
    k = take()
    fac.at[k, "tanggal_buka"] = month_start(P[n // 2]).isoformat()
    events["opens_on_1st"] = k
    for j, per in enumerate((P[n // 4], P[(2 * n) // 3])):
        k = take()
        fac.at[k, "tanggal_buka"] = month_start(per).replace(day=int(rng.integers(2, 28))).isoformat()
        events[f"opens_mid_month_{j + 1}"] = k
    k = take()
    fac.at[k, "tanggal_tutup"] = month_end(P[(2 * n) // 3]).isoformat()
    events["closes_at_month_end"] = k
    for j, per in enumerate((P[n // 2], P[(3 * n) // 4])):
        k = take()
        fac.at[k, "tanggal_tutup"] = month_start(per).replace(day=int(rng.integers(10, 21))).isoformat()
        events[f"closes_mid_month_{j + 1}"] = k
    old = fac.index[(fac["tanggal_buka"] == "") & (rng.random(len(fac)) < 0.3)]
    fac.loc[old, "tanggal_buka"] = [date(int(y), int(m), int(d)).isoformat() for y, m, d in zip(
        rng.integers(2008, 2020, len(old)), rng.integers(1, 13, len(old)), rng.integers(1, 29, len(old)), strict=True)]
    # jejaring: a Kabupaten Tegal clinic moves to another puskesmas and gains KIA/imunisasi on the 1st of M_c
    jk = take("klinik_pratama", "33.28")
    old_induk = fac.at[jk, "kode_puskesmas_induk"]
    tegal = sorted(fac[(fac["kode_kabkota"] == "33.28") & (fac["jenis_faskes"] == "puskesmas")].index)
    new_induk = tegal[(tegal.index(old_induk) + 1) % len(tegal)]
    m_c = P[n // 2] if n > 1 else P[0]
    change = month_start(m_c).isoformat()
    jejaring = pd.DataFrame([
        {"kode_faskes": jk, "kode_puskesmas_induk": old_induk, "formulir": "tb;ptm", "berlaku_mulai": "",
         "berlaku_sampai": change},
        {"kode_faskes": jk, "kode_puskesmas_induk": new_induk, "formulir": "tb;ptm;kia;imun",
         "berlaku_mulai": change, "berlaku_sampai": ""},
    ])
    fac.at[jk, "kode_puskesmas_induk"] = new_induk
    fac.at[jk, "network"] = new_induk
    events["jejaring_change"] = {"kode_faskes": jk, "from_induk": old_induk, "to_induk": new_induk,
                                 "on": change, "forms_before": "tb;ptm", "forms_after": "tb;ptm;kia;imun"}
    tpmd_kia = take("tpmd")
    chronic = [(take(), None) for _ in range(6)]
    chronic.append((str(rng.choice(sorted(fac[fac["jenis_faskes"] == "puskesmas"].index.drop(dhis2_pkm)))), "ptm"))
    chronic = [(c, f or str(rng.choice(FORMS_BY_TYPE[fac.at[c, "jenis_faskes"]]))) for c, f in chronic]
    meta = {"places": places, "unbridged": unbridged, "events": events, "jejaring_kode": jk,
            "jejaring_change": m_c, "old_induk": old_induk, "tpmd_kia": tpmd_kia, "chronic": chronic,
            "dhis2_pkm": dhis2_pkm, "wita": bpp, "pkm": pkm}
    return fac, jejaring, places, meta


def _slots(run: Run, fac: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """facility × period × form: expected (open the whole month, form assigned) or a planned
    unexpected arrival."""
    P = run.periods
    per = pd.DataFrame({"period": P, "m_start": [month_start(p) for p in P], "m_end": [month_end(p) for p in P]})
    base = fac[["kode_faskes", "nama_faskes", "jenis_faskes", "network", "share", "kode_kabkota", "timezone",
                "formulir", "tanggal_buka", "tanggal_tutup"]].reset_index(drop=True)
    grid = base.merge(per, how="cross").merge(pd.DataFrame({"form": FORMS}), how="cross")
    buka = pd.to_datetime(grid["tanggal_buka"].replace("", None)).dt.date
    tutup = pd.to_datetime(grid["tanggal_tutup"].replace("", None)).dt.date
    open_any = (buka.isna() | (buka <= grid["m_end"])) & (tutup.isna() | (tutup >= grid["m_start"]))
    whole = (buka.isna() | (buka <= grid["m_start"])) & (tutup.isna() | (tutup >= grid["m_end"]))
    assigned = np.array([f in fl.split(";") for f, fl in zip(grid["form"], grid["formulir"], strict=True)])
    jk, m_c = meta["jejaring_kode"], meta["jejaring_change"]
    is_j = (grid["kode_faskes"] == jk).to_numpy()
    before = (grid["period"] < m_c).to_numpy()
    assigned = np.where(is_j & before, grid["form"].isin(["tb", "ptm"]).to_numpy(), assigned)
    grid.loc[is_j & before, "network"] = meta["old_induk"]
    grid["expected"] = whole.to_numpy() & assigned
    grid["planned_unexpected"] = False
    ev = meta["events"]
    first_partial = grid["kode_faskes"].eq(ev["opens_on_15th"]) & grid["period"].eq(
        fac.at[ev["opens_on_15th"], "tanggal_buka"][:7])
    closing = ev["closes_mid_month_1"]
    last_partial = grid["kode_faskes"].eq(closing) & grid["period"].eq(fac.at[closing, "tanggal_tutup"][:7])
    tpmd_kia = grid["kode_faskes"].eq(meta["tpmd_kia"]) & grid["period"].eq(run.periods[len(P) // 2]) & grid["form"].eq("kia")
    early = grid["kode_faskes"].eq(jk) & grid["period"].eq(add_months(m_c, -1)) & grid["form"].eq("kia")
    grid.loc[((first_partial | last_partial) & open_any & assigned) | tpmd_kia | early, "planned_unexpected"] = True
    slots = grid[grid["expected"] | grid["planned_unexpected"]].copy()
    slots = slots.sort_values(["form", "kode_faskes", "period"]).reset_index(drop=True)
    slots["row"] = slots.groupby("form").cumcount()
    return slots


def _schedule(run: Run, fac: pd.DataFrame, slots: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """Whether and when (local date `tl`) each slot is reported, nil or not, by which channel."""
    rng = run.rng(20)
    n = len(slots)
    prof = slots["kode_faskes"].map(fac["profile"])
    p_send = prof.map({k: v[0] for k, v in PROFILES.items()}).to_numpy()
    p_late = prof.map({k: v[1] for k, v in PROFILES.items()}).to_numpy()
    p_after = prof.map({k: v[2] for k, v in PROFILES.items()}).to_numpy()
    u1, u2, u3, u4 = (rng.random(n) for _ in range(4))
    sends = (slots["expected"] & (u1 < p_send)) | slots["planned_unexpected"]
    chronic = pd.Series(False, index=slots.index)
    for kode, form in meta["chronic"]:
        chronic |= slots["kode_faskes"].eq(kode) & slots["form"].eq(form)
    sends &= ~chronic
    due = np.array([due_date(p, j, run.cfg) for p, j in zip(slots["period"], slots["jenis_faskes"], strict=True)])
    cut = np.array([cutoff_date(p, run.cfg) for p in slots["period"]])
    first = np.array([month_start(add_months(p, 1)) for p in slots["period"]])
    late = u2 < p_late
    after = late & (u3 < p_after)
    span_on = np.array([(d - f).days + 1 for d, f in zip(due, first, strict=True)])
    span_late = np.array([(c - d).days for c, d in zip(cut, due, strict=True)])
    # a puskesmas collects its network's reports (due day network_to_pkm) before sending its recap
    lo = np.where(slots["jenis_faskes"].eq("puskesmas"), run.cfg.reporting.due_day.network_to_pkm - 1, 0)
    off_on = lo + np.floor(u4 * (span_on - lo)).astype(int)
    off_late = span_on + np.floor(u4 * np.maximum(span_late, 1)).astype(int)
    off_after = span_on + span_late + 1 + np.floor(u4 * 60).astype(int)
    offset = np.where(after, off_after, np.where(late, off_late, off_on))
    slots = slots.assign(sends=sends.to_numpy(), chronic=chronic.to_numpy(), due=due, cut=cut)
    slots["tl"] = [f + timedelta(days=int(o)) for f, o in zip(first, offset, strict=True)]
    # a puskesmas sending one multi-sheet workbook per month sends all its forms on the tb date
    multi = fac.index[(fac["jenis_faskes"] == "puskesmas") & (fac["style"].map(lambda s: s.fmt) == "xlsx_multi")]
    is_multi = slots["kode_faskes"].isin(multi)
    tb_date = slots[is_multi & slots["form"].eq("tb")].set_index(["kode_faskes", "period"])["tl"]
    keys = list(zip(slots.loc[is_multi, "kode_faskes"], slots.loc[is_multi, "period"], strict=True))
    slots.loc[is_multi, "tl"] = [tb_date.get(k, t) for k, t in zip(keys, slots.loc[is_multi, "tl"], strict=True)]
    nil_p = slots["jenis_faskes"].map({"puskesmas": 0.0, "klinik_pratama": 0.04, "tpmd": 0.10}).to_numpy()
    slots["nil"] = rng.random(n) < nil_p
    dhis2_periods = run.periods[-3:]
    slots["channel"] = np.where(
        slots["network"].eq(meta["dhis2_pkm"]) & slots["period"].isin(dhis2_periods), "dhis2",
        # self-reporting clinics started sending their own files for the last six months
        np.where(slots["kode_faskes"].map(fac["self_report"]) & slots["period"].isin(run.periods[-6:]), "own",
                 "recap"))
    slots.loc[slots["channel"] == "dhis2", "nil"] = False
    # the WITA cases: received on the due date 23:30 and the day after 00:30 (Balikpapan, UTC+8)
    p_w = run.periods[-3] if len(run.periods) >= 3 else run.periods[0]
    slots["wita"] = ""
    for label, kode in zip(("due_2330", "next_0030"), meta["wita"], strict=True):
        m = slots["kode_faskes"].eq(kode) & slots["period"].eq(p_w) & slots["form"].eq("tb")
        slots.loc[m, ["sends", "nil", "wita"]] = [True, False, label]
        slots.loc[m, "tl"] = [d + timedelta(days=0 if label == "due_2330" else 1) for d in slots.loc[m, "due"]]
    special = (slots["wita"] != "") | slots["planned_unexpected"] | slots["nil"] | ~slots["sends"]
    slots["resub"] = (~special) & slots["channel"].ne("dhis2") & (rng.random(n) < 0.025)
    slots["resub_tl"] = [t + timedelta(days=int(d)) for t, d in zip(slots["tl"], rng.integers(3, 26, n), strict=True)]
    slots["invalid"] = ""
    slots["broken"] = ""
    if run.messy:
        cand = slots.index[(~special) & ~slots["resub"] & slots["channel"].ne("dhis2")].to_numpy()
        pick = rng.permutation(cand)
        rules = (["V05"] * 10 + ["V05F"] * 5 + ["V06"] * 12 + ["V06N"] * 6 + ["V15"] * 6)
        own = [i for i in pick if slots.at[i, "channel"] == "own"][:7]
        rest = [i for i in pick if i not in set(own)][:len(rules)]
        slots.loc[rest, "invalid"] = rules[:len(rest)]
        # half of the rejected rows are corrected later (a resubmission with the right values)
        fix = [i for j, i in enumerate(rest) if j % 2 == 0]
        slots.loc[fix, "resub"] = True
        kinds = ["truncated_xlsx", "zero_bytes", "junk", "mixed_forms", "header_only", "no_header", "zero_bytes"]
        slots.loc[own, "broken"] = kinds[:len(own)]
        # the first four broken files are sent again 1–3 days later
        for j, i in enumerate(own[:4]):
            slots.at[i, "resub"] = True
            slots.at[i, "resub_tl"] = slots.at[i, "tl"] + timedelta(days=1 + j % 3)
    return slots


def _perturb(vals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The first (wrong) version of a resubmitted report: one to three counts off."""
    v = vals.copy()
    ok = np.flatnonzero(v >= 0)
    for j, i in enumerate(rng.permutation(ok)[: int(rng.integers(1, 4))]):
        v[i] = v[i] + int(rng.integers(1, 6)) if j == 0 else max(v[i] + int(rng.integers(-3, 4)), 0)
    return v


def build_kabupaten(run: Run) -> str:
    fac, jejaring, places, meta = _facilities(run)
    srng = run.rng(11)
    fac["style"] = [_draw_style(srng, run.messy, j) for j in fac["jenis_faskes"]]
    # the WITA senders write plain CSV so the received time comes from _diterima.csv
    for k in meta["wita"]:
        fac.at[k, "style"] = Style()
    years = sorted({int(p[:4]) for p in run.periods})
    sasaran, network_sas = _sasaran_table(places, meta["pkm"], years, run.cfg)
    write_registry(run, fac.reset_index(drop=True), sasaran, jejaring)
    slots = _slots(run, fac, meta)
    slots = _schedule(run, fac, slots, meta)
    values = generate_values(slots, network_sas, run.rng(30))
    writer = _Writer(run, fac, places, values, meta)
    writer.plan(slots)
    writer.write_all()
    write_manifest(run)
    ver = pd.DataFrame(writer.versions)
    reports = ground_truth_reports(slots, ver, run.cfg, run.as_of_utc)
    resub = writer.resubmissions(reports)
    extra = {
        "facilities": int(len(fac)),
        "facilities_by_type": {k: int(v) for k, v in sorted(fac.groupby("jenis_faskes").size().items())},
        "puskesmas_by_kabkota": {k: int(v) for k, v in sorted(
            fac[fac["jenis_faskes"] == "puskesmas"].groupby("kode_kabkota").size().items())},
        "kabkota": {r.kode_kabkota: r.nama for r in places.itertuples()},
        "puskesmas_unbridged_kecamatan": meta["unbridged"],
        "events": meta["events"],
        "unexpected_planned": {"tpmd_sends_kia": meta["tpmd_kia"], "jejaring_kia_month_before": meta["jejaring_kode"]},
        "chronic_non_reporters": [{"kode_faskes": k, "form": f} for k, f in meta["chronic"]],
        "self_reporting_facilities": int(fac["self_report"].sum()),
        "dhis2_network": {"kode_puskesmas": meta["dhis2_pkm"], "periods": run.periods[-3:]},
        "wita_cases": writer.wita,
        "landing_rows": int(len(ver)),
        "received_at_semantics": "rows with tanggal_lapor count at 00:00 local of that date; other rows at "
                                 "the file's _diterima.csv time (DHIS2: completeDate, written in WIB)",
        "multi_sheet_workbooks": "landing/<kab>/semua/<YYYY-MM>/rekap_<puskesmas>_semua_<YYYY-MM>.xlsx: "
                                 "one sheet per form, form detected from each sheet's header",
    }
    summary = write_ground_truth(run, reports, resub, extra)
    st = summary["reports_by_status"]
    return (f"Sample data (kabupaten, seed {run.seed}, as of {run.as_of}): 5 kab/kota, "
            f"{extra['facilities_by_type'].get('puskesmas', 0)} puskesmas, "
            f"{len(fac) - extra['facilities_by_type'].get('puskesmas', 0)} network facilities, "
            f"{len(run.periods)} months {run.periods[0]}..{run.periods[-1]}; {len(run.files):,} landing files "
            f"({len(ver):,} rows) in {run.landing}; statuses {st}; registry in {run.home / 'registry'}; "
            f"ground truth in {run.home / 'ground_truth'}")


class _Writer:
    """Turns the scheduled slots into files, recording every row it writes (for the ground truth)."""

    def __init__(self, run: Run, fac: pd.DataFrame, places: pd.DataFrame, values: dict[str, np.ndarray],
                 meta: dict[str, Any]) -> None:
        self.run, self.fac, self.values, self.meta = run, fac, values, meta
        self.slug = places.set_index("kode_kabkota")["slug"].to_dict()
        self.rng = run.rng(40)
        self.files: dict[str, dict[str, Any]] = {}
        self.versions: list[dict[str, Any]] = []
        self.resub_values: dict[tuple[str, str, str], tuple[str, np.ndarray]] = {}
        self.wita: list[dict[str, str]] = []
        de = data_element_table()
        self.labels = dict(zip(de["code"], de["name_id"], strict=True))

    # ---- planning: which row goes into which file, received when -------------------------
    def _file(self, key: str, rel: str, style: Style, received: datetime, kind: str, sender: str) -> dict:
        if key not in self.files:
            self.files[key] = {"rel": rel, "style": style, "received": received, "kind": kind, "sender": sender,
                               "rows": []}
        return self.files[key]

    def _recap_file(self, pkm: str, period: str, form: str, st: Style, tz: str, slug: str) -> dict:
        """The regular recap of a puskesmas for a month (× form, or all forms in one workbook)."""
        multi = st.fmt == "xlsx_multi"
        key = f"recap|{pkm}|{period}|{'semua' if multi else form}"
        if key not in self.files:
            day = self.pkm_tl[(pkm, period, "tb" if multi else form)]
            if multi:
                rel = f"{slug}/semua/{period}/rekap_{pkm}_semua_{period}.xlsx"
            else:
                ext = "csv" if st.fmt == "csv" else "xlsx"
                rel = f"{slug}/{form}/{period}/rekap_{pkm}_{form}_{period}.{ext}"
            self._file(key, rel, st, self._time(day, tz, 8, 16), "recap", pkm)
        return self.files[key]

    def _place(self, pkm: str, period: str, form: str, tl: date, kode: str, st: Style, tz: str, slug: str,
               suffix: str) -> dict:
        """First recap (this month or later) sent on/after `tl` that has no row of this facility ×
        period × form yet; else a separate `_susulan` / `_revisi` file."""
        start = self.run.periods.index(period)
        for later in self.run.periods[start:]:
            if self.pkm_tl[(pkm, later, "tb" if st.fmt == "xlsx_multi" else form)] >= tl:
                f = self._recap_file(pkm, later, form, st, tz, slug)
                if (kode, period, form) not in f.setdefault("keys", set()):
                    f["keys"].add((kode, period, form))
                    return f
                break
        ext = "csv" if st.fmt == "csv" else "xlsx"
        n = 1
        while True:
            key = f"{suffix}|{pkm}|{period}|{form}|{n}"
            f = self._file(key, f"{slug}/{form}/{period}/rekap_{pkm}_{form}_{period}_{suffix}{n}.{ext}", st, None,
                           f"recap_{suffix}", pkm)
            if (kode, period, form) not in f.setdefault("keys", set()):
                f["keys"].add((kode, period, form))
                return f
            n += 1

    def _time(self, day: date, tz: str, lo: int, hi: int) -> datetime:
        return _local_dt(day, int(self.rng.integers(lo, hi + 1)), int(self.rng.integers(0, 60)), tz)

    def plan(self, slots: pd.DataFrame) -> None:
        fac, rng = self.fac, self.rng
        s = slots[slots["sends"]]
        pkm_tl = slots[slots["jenis_faskes"] == "puskesmas"].set_index(["kode_faskes", "period", "form"])["tl"]
        self.pkm_tl = pkm_tl.to_dict()
        for r in s.itertuples():
            kab, tz = r.kode_kabkota, r.timezone
            slug = self.slug[kab]
            vals = self.values[r.form][r.row]
            row = {"slot": r, "kode": r.kode_faskes, "nama": r.nama_faskes, "period": r.period, "form": r.form,
                   "nil": bool(r.nil), "values": vals, "invalid": "", "tl": None}
            first_vals = _perturb(vals, rng) if (r.resub and not r.invalid and not r.broken) else vals
            if r.channel == "dhis2":
                complete_day = self.pkm_tl[(r.network, r.period, r.form)]
                if r.tl > complete_day:
                    continue  # entered after the dataset was completed: never arrives
                key = f"dhis2|{kab}|{r.period}|{r.form}"
                if key not in self.files:
                    ext = "json" if r.form in ("tb", "ptm") else "csv"
                    rel = f"dhis2/{kab.replace('.', '')}_{r.form}_{r.period.replace('-', '')}.{ext}"
                    self._file(key, rel, Style(), self._time(complete_day, tz, 8, 15), f"dhis2_{ext}", r.network)
                self.files[key]["rows"].append(dict(row, values=vals))
                continue
            if r.channel == "own":
                st = fac.at[r.kode_faskes, "style"]
                ext = "xlsx" if st.fmt != "csv" else "csv"
                base = f"{slug}/{r.form}/{r.period}/{r.kode_faskes}_{r.form}_{r.period}"
                if r.wita:
                    due = r.due
                    t = (_local_dt(due, 23, 30, tz) if r.wita == "due_2330"
                         else _local_dt(due + timedelta(days=1), 0, 30, tz))
                    self.wita.append({"file": f"{base}.csv", "received_at": t.isoformat(),
                                      "due_date": due.isoformat(),
                                      "expected_status": "on_time" if r.wita == "due_2330" else "late"})
                else:
                    t = self._time(r.tl, tz, 7, 20)
                if r.broken:
                    bext = "xlsx" if r.broken == "truncated_xlsx" else "csv"
                    f = self._file(f"own|{r.Index}|1", f"{base}.{bext}", st, t, "broken", r.kode_faskes)
                    f["broken"] = r.broken
                    f["rows"].append(dict(row, values=first_vals))
                    if r.resub:
                        t2 = self._time(r.resub_tl, tz, 7, 20)
                        f2 = self._file(f"own|{r.Index}|2", f"{base}_kirim_ulang.{ext}", st, t2, "clinic_file",
                                        r.kode_faskes)
                        f2["rows"].append(dict(row, values=vals))
                    continue
                f = self._file(f"own|{r.Index}|1", f"{base}.{ext}", st, t, "clinic_file", r.kode_faskes)
                f["rows"].append(dict(row, values=first_vals, invalid=r.invalid))
                if r.resub:
                    t2 = self._time(r.resub_tl, tz, 7, 20)
                    f2 = self._file(f"own|{r.Index}|2", f"{base}_revisi.{ext}", st, t2, "clinic_file", r.kode_faskes)
                    f2["rows"].append(dict(row, values=vals))
                    self.resub_values[(r.kode_faskes, r.period, r.form)] = (f2["rel"], vals)
                continue
            # recap flow: the puskesmas forwards its own row and its network's rows; a row that
            # reaches the puskesmas after it sent the month's recap travels in its next recap
            pkm = r.network
            st = fac.at[pkm, "style"]
            f = self._place(pkm, r.period, r.form, r.tl, r.kode_faskes, st, tz, slug, "susulan")
            f["rows"].append(dict(row, values=first_vals, invalid=r.invalid, tl=r.tl))
            if r.resub:
                f2 = self._place(pkm, r.period, r.form, r.resub_tl, r.kode_faskes, st, tz, slug, "revisi")
                f2["rows"].append(dict(row, values=vals, tl=r.resub_tl))
                self.resub_values[(r.kode_faskes, r.period, r.form)] = (f2["rel"], vals)
        # received times of supplementary and revision recaps: the day of their latest row + 0–2 days
        for key in sorted(self.files):
            f = self.files[key]
            if f["received"] is None:
                tz = self.fac.at[f["sender"], "timezone"]
                last = max(row["tl"] for row in f["rows"])
                f["received"] = self._time(last + timedelta(days=int(self.rng.integers(0, 3))), tz, 8, 16)
        if self.run.messy:
            self._add_unregistered_rows()

    def _add_unregistered_rows(self) -> None:
        """V01: rows for clinics that are not in the registry, added to a few recap files."""
        recaps = sorted(k for k, f in self.files.items() if f["kind"] == "recap" and not k.endswith("semua"))
        for i, key in enumerate(self.rng.choice(recaps, size=min(8, len(recaps)), replace=False)):
            f = self.files[key]
            proto = f["rows"][0]
            kab = self.fac.at[f["sender"], "kode_kabkota"].replace(".", "")
            f["rows"].append({"slot": None, "kode": f"KP{kab}X{i + 1:02d}", "nama": f"Klinik Pratama Belum Terdaftar {i + 1}",
                              "period": proto["period"], "form": proto["form"], "nil": False,
                              "values": proto["values"].copy(), "invalid": "V01", "tl": proto["tl"]})

    # ---- writing -------------------------------------------------------------------------
    def write_all(self) -> None:
        run = self.run
        for key in sorted(self.files):
            f = self.files[key]
            recv: datetime = f["received"]
            if recv > run.as_of_utc or recv.date() > run.as_of_local(str(recv.tzinfo)):
                continue  # not arrived yet at as_of
            rows = [r for r in f["rows"] if r["tl"] is None or r["tl"] <= recv.date()]
            if f["kind"] == "broken":
                self._write_broken(f, rows)
            elif f["kind"].startswith("dhis2"):
                self._write_dhis2(f, rows)
            else:
                self._write_table(f, rows)

    def _record(self, f: dict, sheet: str, row_number: int, row: dict, valid: bool, seq: int) -> None:
        if row["slot"] is None:
            return
        recv: datetime = f["received"]
        tz = row["slot"].timezone
        if row["tl"] is not None:
            local = row["tl"]
            at = _local_dt(local, 0, 0, tz)
        else:
            at = recv
            local = recv.astimezone(ZoneInfo(tz)).date()
        self.versions.append({"kode_faskes": row["kode"], "period": row["period"], "form": row["form"],
                              "file": f["rel"], "sheet": sheet, "row_number": row_number,
                              "received_at": at, "received_local_date": local, "valid": valid,
                              "is_nil": row["nil"], "seq": seq, "values": row["values"]})

    def _header(self, form: str, st: Style, with_tl: bool) -> tuple[list[str], list[str]]:
        cols = [c for c in META_COLS if with_tl or c != "tanggal_lapor"] + list(form_elements(form))
        labels = [META_LABELS.get(c, self.labels.get(c, c)) for c in cols]
        return cols, labels

    def _sheet_rows(self, f: dict, form: str, rows: list[dict], xlsx: bool) -> tuple[list[list[Any]], int]:
        """Lines of one table (title rows, header, optional label row, data); records versions and
        invalid rows. Returns the lines and how many were written before the data."""
        st: Style = f["style"]
        with_tl = f["kind"].startswith("recap")
        cols, labels = self._header(form, st, with_tl)
        lines: list[list[Any]] = []
        titles = [[f"LAPORAN BULANAN {FORM_TITLE[form]}"], [str(self.fac.at[f["sender"], "nama_faskes"]).upper()],
                  [] if xlsx else [""] * len(cols)]
        lines += titles[: st.title_rows]
        lines.append(labels if st.header == "label" else cols)
        if xlsx and st.label_row:
            lines.append(labels)
        head = len(lines)
        sheet = SHEET_NAME[form] if xlsx else ""
        n_elem = len(form_elements(form))
        first_el = len(cols) - n_elem
        rows = sorted(rows, key=lambda r: (r["kode"], r["period"], r["tl"] or date.min))
        out_rows: list[tuple[list[Any], dict, str, int | None, Any]] = []
        for r in rows:
            cells: list[Any] = [format_period(r["period"], st.period_style, xlsx), r["kode"], r["nama"]]
            if with_tl:
                cells.append(r["tl"] if xlsx else r["tl"].isoformat())
            cells.append(st.nil_yes if r["nil"] else st.nil_no)
            cells += [format_value(int(v), st, xlsx) for v in r["values"]]
            rule, col, bad = r["invalid"], None, None
            y = int(r["period"][:4])
            if rule == "V05":
                bad = UNREADABLE_PERIODS[int(self.rng.integers(len(UNREADABLE_PERIODS)))].format(y=y)
                col = 0
                cells[0] = bad
            elif rule == "V05F":
                col = 0
                cells[0] = format_period(add_months(r["period"], 13), st.period_style, xlsx)
                bad = cells[0]
            elif rule == "V06":
                ok = [i for i, v in enumerate(r["values"]) if v >= 0]
                col = first_el + ok[int(self.rng.integers(len(ok)))]
                kind = int(self.rng.integers(3))
                bad = [-int(self.rng.integers(1, 9)), "2,5" if not xlsx else 2.5, "lima"][kind]
                if kind == 0 and not xlsx:
                    bad = str(bad)
                cells[col] = bad
            elif rule == "V06N":
                if max(r["values"]) <= 0:  # needs a non-zero count to contradict the nil flag
                    r["values"] = r["values"].copy()
                    r["values"][np.argmax(r["values"] >= 0)] = 3
                    cells[first_el:] = [format_value(int(v), st, xlsx) for v in r["values"]]
                col = first_el - 1
                cells[col] = st.nil_yes
                bad = st.nil_yes
            elif rule in ("V15", "V01"):
                col = 1
                bad = r["kode"]
            out_rows.append((cells, r, rule, col, bad))
            if rule == "V15":
                out_rows.append((list(cells), r, rule, col, bad))
        for i, (cells, r, rule, col, bad) in enumerate(out_rows):
            number = head + i + 1
            lines.append(cells)
            if rule:
                self.run.invalid_rows.append({
                    "file": f["rel"], "sheet": sheet, "row_number": number, "rule_id": rule,
                    "column_name": cols[col], "column_index": col,
                    "value": bad.isoformat() if isinstance(bad, datetime) else ("" if bad is None else str(bad)),
                    "kode_faskes": r["kode"], "period": r["period"], "form": r["form"]})
            self._record(f, sheet, number, r, valid=not rule, seq=len(self.versions))
        return lines, head

    def _write_table(self, f: dict, rows: list[dict]) -> None:
        if not rows:
            return
        st: Style = f["style"]
        xlsx = f["rel"].endswith(".xlsx")
        forms = [fm for fm in FORMS if any(r["form"] == fm for r in rows)]
        sheets = []
        for fm in forms:
            lines, _ = self._sheet_rows(f, fm, [r for r in rows if r["form"] == fm], xlsx)
            sheets.append((SHEET_NAME[fm], lines))
        data = _xlsx_bytes(sheets, f["received"]) if xlsx else _csv_bytes(sheets[0][1], st)
        self.run.write(f["rel"], data, f["received"], f["kind"])

    def _write_broken(self, f: dict, rows: list[dict]) -> None:
        what = f["broken"]
        r = rows[0]
        st = Style()
        cols, _ = self._header(r["form"], st, False)
        line = [r["period"], r["kode"], r["nama"], ""] + [str(max(int(v), 0)) for v in r["values"]]
        if what == "zero_bytes":
            data, rule, text = b"", "F02", "zero bytes"
        elif what == "header_only":
            data, rule, text = _csv_bytes([cols], st), "F02", "only the header row, no data rows"
        elif what == "junk":
            data = b"\x00\x01\x02PK\xff\xfe" + self.rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
            rule, text = "F01", "binary junk named .csv"
        elif what == "truncated_xlsx":
            full = _xlsx_bytes([(SHEET_NAME[r["form"]], [cols, line])], f["received"])
            data, rule, text = full[: len(full) // 2], "F01", f"XLSX cut after {len(full) // 2} of {len(full)} bytes"
        elif what == "no_header":
            data, rule, text = _csv_bytes([line], st), "F04", "data rows without a header row"
        else:  # mixed_forms: tb and ptm columns in one file
            other = "ptm" if r["form"] != "ptm" else "tb"
            mixed = cols + list(form_elements(other))
            line2 = line + ["0"] * len(form_elements(other))
            data, rule, text = _csv_bytes([mixed, line2], st), "F09", f"columns of forms {r['form']} and {other}"
        self.run.broken.append({"file": f["rel"], "rule_id": rule, "what": text})
        self.run.write(f["rel"], data, f["received"], "broken")

    def _write_dhis2(self, f: dict, rows: list[dict]) -> None:
        if not rows:
            return
        uid = self._dhis2_uids()
        recv: datetime = f["received"]
        stamp = recv.strftime("%Y-%m-%dT%H:%M:%S.000")
        rows = sorted(rows, key=lambda r: r["kode"])
        dv = []
        for r in rows:
            for code, v in zip(form_elements(r["form"]), r["values"], strict=True):
                if v >= 0:
                    dv.append({"dataElement": uid[code], "period": r["period"].replace("-", ""),
                               "orgUnit": uid[r["kode"]], "value": str(int(v)), "completeDate": stamp})
            self._record(f, "", 0, r, valid=True, seq=len(self.versions))
        if f["rel"].endswith(".json"):
            data = (json.dumps({"completeDate": stamp, "dataValues": dv}, indent=1, ensure_ascii=False) + "\n").encode()
        else:
            lines = [["dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo", "value",
                      "storedby", "lastupdated", "comment", "followup"]]
            lines += [[d["dataElement"], d["period"], d["orgUnit"], DHIS2_DEFAULT_COC, DHIS2_DEFAULT_COC, d["value"],
                       "admin_puskesmas", stamp, "", "false"] for d in dv]
            data = _csv_bytes(lines, Style())
        self.run.write(f["rel"], data, recv, f["kind"])

    def _dhis2_uids(self) -> dict[str, str]:
        if not hasattr(self, "_uids"):
            rng = self.run.rng(50)
            pkm = self.meta["dhis2_pkm"]
            units = sorted(self.fac.index[(self.fac["network"] == pkm) | (self.fac.index == pkm)])
            codes = [c for fm in FORMS for c in form_elements(fm)]
            self._uids = {c: _uid(rng) for c in codes + units}
            lines = [["kind", "dhis2_id", "kode"]]
            lines += [["data_element", self._uids[c], c] for c in codes]
            lines += [["org_unit", self._uids[u], u] for u in units]
            path = self.run.landing / "dhis2" / "mapping.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_csv_bytes(lines, Style()))
        return self._uids

    def resubmissions(self, reports: pd.DataFrame) -> pd.DataFrame:
        """Final values of every report with two or more valid versions."""
        multi = reports[reports["n_versions"] >= 2]
        ver = pd.DataFrame(self.versions)
        ver = ver[ver["valid"]].rename(columns={"file": "final_file"})
        final = multi.merge(ver[["kode_faskes", "period", "form", "final_file", "sheet", "row_number", "values"]],
                            on=["kode_faskes", "period", "form", "final_file"])
        out = []
        for r in final.itertuples():
            for code, val in zip(form_elements(r.form), r.values, strict=True):
                out.append({"kode_faskes": r.kode_faskes, "period": r.period, "form": r.form,
                            "version": int(r.n_versions), "file": r.final_file, "sheet": r.sheet,
                            "row_number": int(r.row_number), "data_element": code,
                            "value": "" if val < 0 else int(val)})
        cols = ["kode_faskes", "period", "form", "version", "file", "sheet", "row_number", "data_element", "value"]
        return pd.DataFrame(out, columns=cols)
