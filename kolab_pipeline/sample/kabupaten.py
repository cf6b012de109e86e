"""Kabupaten scale of `kolab sample-data`: the five places, what each facility reports and when,
and the answer key (the files themselves are written by `kabupaten_writer`).

Grain of the intermediate tables:
- `fac`: one facility (real puskesmas or synthetic KP/TPMD) with its network, style and profile;
- `slots`: one facility × period × form that is expected, or that the generator decided to send
  although not expected (the `unexpected` cases).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months, cutoff_date, due_date, month_end, month_start
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.sample.common import (
    Run,
    SampleDataError,
    generate_values,
    ground_truth_reports,
    write_ground_truth,
    write_manifest,
    write_registry,
)
from kolab_pipeline.sample.formats import Style, draw_style
from kolab_pipeline.sample.kabupaten_writer import LandingWriter
from kolab_pipeline.sample.places import (
    add_network_columns,
    kabkota_places,
    puskesmas_and_clinics,
    real_puskesmas,
    sasaran_table,
    synthetic_clinics,
)

KABUPATEN_BPS = ("3672", "6471", "3513", "3328", "1872")
EXPECTED_PUSKESMAS = {"36.72": 8, "64.71": 22, "35.13": 33, "33.28": 29, "18.72": 10}
PROFILES = {  # P(report), P(late | report), P(after cut-off | late)
    "good": (0.985, 0.06, 0.15),
    "average": (0.93, 0.25, 0.25),
    "poor": (0.75, 0.45, 0.4),
}
SLOT_COLS = ["kode_faskes", "nama_faskes", "jenis_faskes", "network", "share", "kode_kabkota",
             "timezone", "formulir", "tanggal_buka", "tanggal_tutup"]
INVALID_RULES = ["V05"] * 10 + ["V05F"] * 5 + ["V06"] * 12 + ["V06N"] * 6 + ["V15"] * 6
# Area recaps (lingkup_laporan = wilayah, issue 16): forms recapped; the kab/kota whose puskesmas
# declare it in the file (every `RECAP_COLUMN_EVERY`-th of them, by code); the kab/kota whose
# kolab.yaml declares it (written by `sample.generate`); one puskesmas of `RECAP_UNDECLARED_KABKOTA`
# that sends recaps of `RECAP_UNDECLARED_FORM` as own services for the last
# `RECAP_UNDECLARED_MONTHS` months (what warning L03 is for).
RECAP_FORMS = ("kia", "imun")
RECAP_COLUMN_KABKOTA = "35.13"
RECAP_COLUMN_EVERY = 6
RECAP_SCOPE_BY_KABKOTA = {"36.72": {form: "wilayah" for form in RECAP_FORMS}}
RECAP_UNDECLARED_KABKOTA = "18.72"
RECAP_UNDECLARED_FORM = "imun"
RECAP_UNDECLARED_MONTHS = 4
BULK_KABKOTA = "35.13"  # Kabupaten Probolinggo: a month of files copied to the server late
BROKEN_KINDS = ["truncated_xlsx", "zero_bytes", "junk", "mixed_forms", "header_only",
                "no_header", "zero_bytes"]


def _facilities(run: Run) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Registry of the five places plus the dated events (openings, closings, jejaring
    change)."""
    rng = run.rng(10)
    places = kabkota_places(KABUPATEN_BPS)
    pkm, unbridged = real_puskesmas(places, rng)
    counts = pkm.groupby("kode_kabkota").size().to_dict()
    if counts != EXPECTED_PUSKESMAS:
        raise SampleDataError(f"faskes_bppsdmk_2019.csv.gz: puskesmas per kab/kota {counts}, "
                              f"expected {EXPECTED_PUSKESMAS}")
    clinics = synthetic_clinics(pkm, rng.integers(2, 5, len(pkm)), rng.integers(2, 6, len(pkm)),
                                rng)
    # unique names within a kab/kota (a shared name would be an ambiguous alias)
    dup = clinics.groupby(["kode_kabkota", "nama_faskes"]).cumcount()
    clinics.loc[dup > 0, "nama_faskes"] = clinics["nama_faskes"] + " " + (dup + 1).astype(str)
    fac = puskesmas_and_clinics(pkm, clinics)
    fac = fac.sort_values("kode_faskes").reset_index(drop=True)
    add_network_columns(fac)
    fac["timezone"] = fac["kode_kabkota"].map(run.cfg.timezones.for_wilayah)
    fac["profile"] = np.where(
        fac["jenis_faskes"] == "puskesmas",
        rng.choice(["good", "average", "poor"], len(fac), p=[0.8, 0.15, 0.05]),
        rng.choice(["good", "average", "poor"], len(fac), p=[0.7, 0.2, 0.1]))
    fac["self_report"] = (fac["jenis_faskes"] != "puskesmas") & (rng.random(len(fac)) < 0.02)
    fac = fac.set_index("kode_faskes", drop=False)

    P = run.periods
    n = len(P)
    is_pkm = fac["jenis_faskes"] == "puskesmas"
    dhis2_pkm = fac[(fac["kode_kabkota"] == "18.72") & is_pkm].index[0]
    # two Balikpapan clinics that send their own files: the WITA 23:30 / 00:30 cases
    bpp = fac[(fac["kode_kabkota"] == "64.71")
              & (fac["jenis_faskes"] == "klinik_pratama")].index[:2].tolist()
    fac.loc[bpp, "self_report"] = True
    fac.loc[bpp, "profile"] = "good"
    network = fac[~is_pkm & (fac["network"] != dhis2_pkm)
                  & ~fac.index.isin(bpp)].index.to_numpy()
    pool = list(rng.permutation(network))
    events: dict[str, Any] = {}

    def take(jenis: str | None = None, kab: str | None = None) -> str:
        for i, k in enumerate(pool):
            if ((jenis is None or fac.at[k, "jenis_faskes"] == jenis)
                    and (kab is None or fac.at[k, "kode_kabkota"] == kab)):
                return pool.pop(i)
        raise SampleDataError("not enough network facilities for the sample events")

    def mark(column: str, day: date, event: str) -> None:
        k = take()
        fac.at[k, column] = day.isoformat()
        events[event] = k

    mark("tanggal_buka", month_start(P[n // 3]).replace(day=15), "opens_on_15th")
    mark("tanggal_buka", month_start(P[n // 2]), "opens_on_1st")
    for j, per in enumerate((P[n // 4], P[(2 * n) // 3])):
        day = month_start(per).replace(day=int(rng.integers(2, 28)))
        mark("tanggal_buka", day, f"opens_mid_month_{j + 1}")
    mark("tanggal_tutup", month_end(P[(2 * n) // 3]), "closes_at_month_end")
    for j, per in enumerate((P[n // 2], P[(3 * n) // 4])):
        day = month_start(per).replace(day=int(rng.integers(10, 21)))
        mark("tanggal_tutup", day, f"closes_mid_month_{j + 1}")
    old = fac.index[(fac["tanggal_buka"] == "") & (rng.random(len(fac)) < 0.3)]
    fac.loc[old, "tanggal_buka"] = [date(int(y), int(m), int(d)).isoformat() for y, m, d in zip(
        rng.integers(2008, 2020, len(old)), rng.integers(1, 13, len(old)),
        rng.integers(1, 29, len(old)), strict=True)]
    # jejaring: a Kabupaten Tegal clinic moves to another puskesmas and gains KIA/imunisasi on
    # the 1st of M_c
    jk = take("klinik_pratama", "33.28")
    old_induk = fac.at[jk, "kode_puskesmas_induk"]
    tegal = sorted(fac[(fac["kode_kabkota"] == "33.28") & is_pkm].index)
    new_induk = tegal[(tegal.index(old_induk) + 1) % len(tegal)]
    m_c = P[n // 2] if n > 1 else P[0]
    change = month_start(m_c).isoformat()
    jejaring = pd.DataFrame([
        {"kode_faskes": jk, "kode_puskesmas_induk": old_induk, "formulir": "tb;ptm",
         "berlaku_mulai": "", "berlaku_sampai": change},
        {"kode_faskes": jk, "kode_puskesmas_induk": new_induk, "formulir": "tb;ptm;kia;imun",
         "berlaku_mulai": change, "berlaku_sampai": ""},
    ])
    fac.at[jk, "kode_puskesmas_induk"] = new_induk
    fac.at[jk, "network"] = new_induk
    events["jejaring_change"] = {"kode_faskes": jk, "from_induk": old_induk,
                                 "to_induk": new_induk, "on": change, "forms_before": "tb;ptm",
                                 "forms_after": "tb;ptm;kia;imun"}
    tpmd_kia = take("tpmd")
    chronic = [(take(), None) for _ in range(6)]
    other_pkm = sorted(fac[is_pkm].index.drop(dhis2_pkm))
    chronic.append((str(rng.choice(other_pkm)), "ptm"))
    chronic = [(c, f or str(rng.choice(catalog.type_forms(fac.at[c, "jenis_faskes"]))))
               for c, f in chronic]
    meta = {"places": places, "unbridged": unbridged, "events": events, "jejaring_kode": jk,
            "jejaring_change": m_c, "old_induk": old_induk, "tpmd_kia": tpmd_kia,
            "chronic": chronic, "dhis2_pkm": dhis2_pkm, "wita": bpp, "pkm": pkm}
    meta["dhis2_bpp"] = _balikpapan_dhis2_network(fac, meta)
    return fac, jejaring, places, meta


def _balikpapan_dhis2_network(fac: pd.DataFrame, meta: dict[str, Any]) -> str:
    """The Balikpapan puskesmas whose network reports through its own DHIS2 instance, with values
    disaggregated by category option combo (issue 16): the first, by code, whose network holds
    none of the planned special cases (chosen without a draw, so no other choice moves)."""
    special = {c for c in meta["events"].values() if isinstance(c, str)}
    special |= {meta["jejaring_kode"], meta["tpmd_kia"], *meta["wita"]}
    special |= {k for k, _ in meta["chronic"]}
    is_pkm = fac["jenis_faskes"] == "puskesmas"
    for pkm in sorted(fac.index[is_pkm & (fac["kode_faskes"].str[1:5] == "6471")]):
        members = set(fac.index[fac["network"] == pkm]) | {pkm}
        if not members & special:
            return str(pkm)
    raise SampleDataError("no Balikpapan network free of special cases for the DHIS2 sample")


def _slots(run: Run, fac: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """facility × period × form: expected (open the whole month, form assigned) or a planned
    unexpected arrival."""
    P = run.periods
    per = pd.DataFrame({"period": P, "m_start": [month_start(p) for p in P],
                        "m_end": [month_end(p) for p in P]})
    base = fac[SLOT_COLS].reset_index(drop=True)
    grid = base.merge(per, how="cross").merge(pd.DataFrame({"form": FORMS}), how="cross")
    buka = pd.to_datetime(grid["tanggal_buka"].replace("", None)).dt.date
    tutup = pd.to_datetime(grid["tanggal_tutup"].replace("", None)).dt.date
    open_any = (buka.isna() | (buka <= grid["m_end"])) & (tutup.isna() | (tutup >= grid["m_start"]))
    whole = (buka.isna() | (buka <= grid["m_start"])) & (tutup.isna() | (tutup >= grid["m_end"]))
    assigned = np.array([f in fl.split(";")
                         for f, fl in zip(grid["form"], grid["formulir"], strict=True)])
    jk, m_c = meta["jejaring_kode"], meta["jejaring_change"]
    is_j = (grid["kode_faskes"] == jk).to_numpy()
    before = (grid["period"] < m_c).to_numpy()
    assigned = np.where(is_j & before, grid["form"].isin(["tb", "ptm"]).to_numpy(), assigned)
    grid.loc[is_j & before, "network"] = meta["old_induk"]
    grid["expected"] = whole.to_numpy() & assigned
    grid["planned_unexpected"] = False
    ev = meta["events"]
    opening = ev["opens_on_15th"]
    first_partial = (grid["kode_faskes"].eq(opening)
                     & grid["period"].eq(fac.at[opening, "tanggal_buka"][:7]))
    closing = ev["closes_mid_month_1"]
    last_partial = (grid["kode_faskes"].eq(closing)
                    & grid["period"].eq(fac.at[closing, "tanggal_tutup"][:7]))
    tpmd_kia = (grid["kode_faskes"].eq(meta["tpmd_kia"])
                & grid["period"].eq(run.periods[len(P) // 2]) & grid["form"].eq("kia"))
    early = (grid["kode_faskes"].eq(jk) & grid["period"].eq(add_months(m_c, -1))
             & grid["form"].eq("kia"))
    partial = (first_partial | last_partial) & open_any & assigned
    grid.loc[partial | tpmd_kia | early, "planned_unexpected"] = True
    slots = grid[grid["expected"] | grid["planned_unexpected"]].copy()
    slots = slots.sort_values(["form", "kode_faskes", "period"]).reset_index(drop=True)
    slots["row"] = slots.groupby("form").cumcount()
    return slots


def _schedule(run: Run, fac: pd.DataFrame, slots: pd.DataFrame,
              meta: dict[str, Any]) -> pd.DataFrame:
    """Whether and when (local date `tl`) each slot is reported, nil or not, by which
    channel."""
    rng = run.rng(20)
    rep = run.cfg.reporting
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
    levels = np.where(slots["jenis_faskes"] == "puskesmas", "pkm_to_dinkes", "network_to_pkm")
    due = np.array([due_date(rep, p, lv) for p, lv in zip(slots["period"], levels, strict=True)])
    cut = np.array([cutoff_date(rep, p) for p in slots["period"]])
    first = np.array([month_start(add_months(p, 1)) for p in slots["period"]])
    late = u2 < p_late
    after = late & (u3 < p_after)
    span_on = np.array([(d - f).days + 1 for d, f in zip(due, first, strict=True)])
    span_late = np.array([(c - d).days for c, d in zip(cut, due, strict=True)])
    # a puskesmas collects its network's reports (due day network_to_pkm) before sending its
    # recap
    lo = np.where(slots["jenis_faskes"].eq("puskesmas"), rep.due_day.network_to_pkm - 1, 0)
    off_on = lo + np.floor(u4 * (span_on - lo)).astype(int)
    off_late = span_on + np.floor(u4 * np.maximum(span_late, 1)).astype(int)
    off_after = span_on + span_late + 1 + np.floor(u4 * 60).astype(int)
    offset = np.where(after, off_after, np.where(late, off_late, off_on))
    slots = slots.assign(sends=sends.to_numpy(), chronic=chronic.to_numpy(), due=due, cut=cut)
    slots["tl"] = [f + timedelta(days=int(o)) for f, o in zip(first, offset, strict=True)]
    # a puskesmas sending one multi-sheet workbook per month sends all its forms on the tb date
    multi = fac.index[(fac["jenis_faskes"] == "puskesmas")
                      & (fac["style"].map(lambda s: s.fmt) == "xlsx_multi")]
    is_multi = slots["kode_faskes"].isin(multi)
    tb_date = slots[is_multi & slots["form"].eq("tb")].set_index(["kode_faskes", "period"])["tl"]
    keys = list(zip(slots.loc[is_multi, "kode_faskes"], slots.loc[is_multi, "period"],
                    strict=True))
    slots.loc[is_multi, "tl"] = [tb_date.get(k, t)
                                 for k, t in zip(keys, slots.loc[is_multi, "tl"], strict=True)]
    nil_p = slots["jenis_faskes"].map({"puskesmas": 0.0, "klinik_pratama": 0.04,
                                       "tpmd": 0.10}).to_numpy()
    slots["nil"] = rng.random(n) < nil_p
    dhis2_periods = run.periods[-3:]
    # self-reporting clinics started sending their own files for the last six months
    own = slots["kode_faskes"].map(fac["self_report"]) & slots["period"].isin(run.periods[-6:])
    dhis2_networks = [meta["dhis2_pkm"], meta["dhis2_bpp"]]
    slots["channel"] = np.where(
        slots["network"].isin(dhis2_networks) & slots["period"].isin(dhis2_periods), "dhis2",
        np.where(own, "own", "recap"))
    slots.loc[slots["channel"] == "dhis2", "nil"] = False
    # the WITA cases: received on the due date 23:30 and the day after 00:30 (Balikpapan, UTC+8)
    p_w = run.periods[-3] if len(run.periods) >= 3 else run.periods[0]
    slots["wita"] = ""
    for label, kode in zip(("due_2330", "next_0030"), meta["wita"], strict=True):
        m = slots["kode_faskes"].eq(kode) & slots["period"].eq(p_w) & slots["form"].eq("tb")
        slots.loc[m, ["sends", "nil", "wita"]] = [True, False, label]
        slots.loc[m, "tl"] = [d + timedelta(days=0 if label == "due_2330" else 1)
                              for d in slots.loc[m, "due"]]
    _dhis2_wita_case(slots, meta, dhis2_periods)
    special = (slots["wita"] != "") | slots["planned_unexpected"] | slots["nil"] | ~slots["sends"]
    slots["resub"] = (~special) & slots["channel"].ne("dhis2") & (rng.random(n) < 0.025)
    slots["resub_tl"] = [t + timedelta(days=int(d))
                         for t, d in zip(slots["tl"], rng.integers(3, 26, n), strict=True)]
    slots["invalid"] = ""
    slots["broken"] = ""
    if run.messy:
        _plan_mess(slots, special, rng)
    _plan_declared_dates(slots, fac, run.as_of)
    return slots


def _dhis2_wita_case(slots: pd.DataFrame, meta: dict[str, Any], dhis2_periods: list[str]) -> None:
    """The Balikpapan DHIS2 puskesmas completes its first imunisasi dataset on its due date: the
    writer stamps it 23:30 without an offset — on time in WITA, the org unit's own time; 00:30 of
    the next day, late, if it were read as WIB."""
    m = (slots["kode_faskes"].eq(meta["dhis2_bpp"]) & slots["period"].eq(dhis2_periods[0])
         & slots["form"].eq("imun"))
    slots.loc[m, ["sends", "nil"]] = [True, False]
    slots.loc[m, "tl"] = list(slots.loc[m, "due"])
    slots["dhis2_wita"] = m.to_numpy()


DECLARED_EARLY = 3    # late puskesmas recaps whose own row declares the 3rd (issue 16 item 4)
DECLARED_AFTER = 2    # on-time recaps whose own row declares a date after the receipt (V05D)


def _plan_declared_dates(slots: pd.DataFrame, fac: pd.DataFrame, as_of: date) -> None:
    """`declared`: the tanggal_lapor a puskesmas writes in its own row when it is not the day it
    sent the recap — never its receipt, so these reports are judged on the recap's receipt.
    Chosen in slot order among plain recap rows (no draw): the first late ones declare the 3rd
    of M+1, the first on-time ones two days after they sent (both sent by `as_of`)."""
    slots["declared"] = None
    multi = fac.index[fac["style"].map(lambda st: st.fmt) == "xlsx_multi"]
    plain = (slots["jenis_faskes"].eq("puskesmas") & slots["sends"] & slots["channel"].eq("recap")
             & ~slots["resub"] & slots["invalid"].eq("") & slots["broken"].eq("")
             & ~slots["kode_faskes"].isin(multi) & slots["wita"].eq("")
             & (slots["tl"] < as_of))
    late = plain & (slots["tl"] > slots["due"]) & (slots["tl"] <= slots["cut"])
    for i in slots.index[late][:DECLARED_EARLY]:
        slots.at[i, "declared"] = month_start(add_months(slots.at[i, "period"], 1)) + timedelta(2)
    on_time = plain & (slots["tl"] <= slots["due"] - timedelta(2))
    for i in slots.index[on_time][:DECLARED_AFTER]:
        slots.at[i, "declared"] = slots.at[i, "tl"] + timedelta(2)


def _plan_mess(slots: pd.DataFrame, special: pd.Series, rng: np.random.Generator) -> None:
    """Pick the rows that break a validation rule and the clinic files that arrive broken
    (`special`: slots kept out of it: WITA cases, unexpected, nil, not sent)."""
    cand = slots.index[(~special) & ~slots["resub"] & slots["channel"].ne("dhis2")].to_numpy()
    pick = rng.permutation(cand)
    own = [i for i in pick if slots.at[i, "channel"] == "own"][:7]
    rest = [i for i in pick if i not in set(own)][:len(INVALID_RULES)]
    slots.loc[rest, "invalid"] = INVALID_RULES[:len(rest)]
    # half of the rejected rows are corrected later (a resubmission with the right values)
    fix = [i for j, i in enumerate(rest) if j % 2 == 0]
    slots.loc[fix, "resub"] = True
    slots.loc[own, "broken"] = BROKEN_KINDS[:len(own)]
    # the first four broken files are sent again 1–3 days later
    for j, i in enumerate(own[:4]):
        slots.at[i, "resub"] = True
        slots.at[i, "resub_tl"] = slots.at[i, "tl"] + timedelta(days=1 + j % 3)


def build_kabupaten(run: Run) -> str:
    """Registry, landing files and ground truth of the five places; returns the summary line."""
    fac, jejaring, places, meta = _facilities(run)
    srng = run.rng(11)
    fac["style"] = [draw_style(srng, run.messy, j) for j in fac["jenis_faskes"]]
    # the WITA senders write plain CSV so the received time comes from _diterima.csv
    for k in meta["wita"]:
        fac.at[k, "style"] = Style()
    years = sorted({int(p[:4]) for p in run.periods})
    sasaran, network_sas = sasaran_table(places, meta["pkm"], years, run.cfg)
    write_registry(run, fac.reset_index(drop=True), sasaran, jejaring)
    slots = _slots(run, fac, meta)
    slots = _schedule(run, fac, slots, meta)
    run.notes["declared_dates"] = [
        {"kode_faskes": r.kode_faskes, "period": r.period, "form": r.form,
         "declared": r.declared.isoformat(), "sent": r.tl.isoformat()}
        for r in slots[slots["declared"].notna()].itertuples()]
    values = generate_values(slots, network_sas, run.rng(30))
    writer = LandingWriter(run, fac, places, values, meta["dhis2_pkm"], meta["dhis2_bpp"])
    writer.plan(slots)
    recaps = _area_recaps(run, fac, slots, meta)
    writer.make_area_recaps(recaps)
    writer.write_all()
    _bulk_upload(run, places)
    write_manifest(run)
    ver = pd.DataFrame(writer.versions)
    reports = ground_truth_reports(slots, ver, run.cfg, run.as_of_utc)
    resub = writer.resubmissions(reports)
    extra = _summary_extra(run, fac, places, meta, writer, len(ver))
    extra["area_recaps"] = _recap_summary(run, recaps)
    summary = write_ground_truth(run, reports, resub, extra, writer.area_recaps(reports))
    st = summary["reports_by_status"]
    n_pkm = extra["facilities_by_type"].get("puskesmas", 0)
    return (f"Sample data (kabupaten, seed {run.seed}, as of {run.as_of}): 5 kab/kota, "
            f"{n_pkm} puskesmas, {len(fac) - n_pkm} network facilities, "
            f"{len(run.periods)} months {run.periods[0]}..{run.periods[-1]}; "
            f"{len(run.files):,} landing files ({len(ver):,} rows) in {run.landing}; "
            f"statuses {st}; registry in {run.home / 'registry'}; "
            f"ground truth in {run.home / 'ground_truth'}")


def _area_recaps(run: Run, fac: pd.DataFrame, slots: pd.DataFrame,
                 meta: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    """Puskesmas × period × form whose own row is an area recap → how it is declared:
    `column` (every `RECAP_COLUMN_EVERY`-th puskesmas of `RECAP_COLUMN_KABKOTA`, `RECAP_FORMS`),
    `kolab.yaml` (whatever `reporting.puskesmas_scope[_by_kabkota]` of this home declares — the
    generator honours the configuration the pipeline reads) or `undeclared` (one puskesmas of
    `RECAP_UNDECLARED_KABKOTA` besides the DHIS2 one, its last months). No random draws."""
    rep = run.cfg.reporting
    pkm = fac[fac["jenis_faskes"] == "puskesmas"]
    column = set(sorted(pkm.index[pkm["kode_kabkota"] == RECAP_COLUMN_KABKOTA])
                 [::RECAP_COLUMN_EVERY])
    # the undeclared one: a reliable puskesmas with the largest network of *reliable* Klinik
    # Pratama (KIA and imunisasi come from clinics, not TPMD) — a recap must visibly exceed its
    # own variation, so the network reports it adds must be in by `as_of` in its last months
    reliable = (fac["jenis_faskes"] == "klinik_pratama") & (fac["profile"] == "good")
    clinics = fac[reliable].groupby("network")["share_w"].sum()
    metro = pkm[(pkm["kode_kabkota"] == RECAP_UNDECLARED_KABKOTA)
                & (pkm.index != meta["dhis2_pkm"]) & (pkm["profile"] == "good")]
    ranked = sorted(metro.index, key=lambda k: (-clinics.get(k, 0.0), k))
    undeclared = (ranked[0] if ranked and len(run.periods) > RECAP_UNDECLARED_MONTHS
                  else None)
    late = set(run.periods[-RECAP_UNDECLARED_MONTHS:])
    out: dict[tuple[str, str, str], str] = {}
    rows = slots[slots["jenis_faskes"] == "puskesmas"]
    for kode, period, form, kab in zip(rows["kode_faskes"], rows["period"], rows["form"],
                                       rows["kode_kabkota"], strict=True):
        by_config = (rep.puskesmas_scope_by_kabkota.get(kab, {}).get(form)
                     or rep.puskesmas_scope.get(form))
        if kode in column and form in RECAP_FORMS:
            out[(kode, period, form)] = "column"
        elif by_config == "wilayah":
            out[(kode, period, form)] = "kolab.yaml"
        elif kode == undeclared and form == RECAP_UNDECLARED_FORM and period in late:
            out[(kode, period, form)] = "undeclared"
    return out


def _recap_summary(run: Run, recaps: dict[tuple[str, str, str], str]) -> dict[str, Any]:
    """The `area_recaps` entry of summary.json: who sends area recaps, declared how."""
    by_how: dict[str, set[str]] = {}
    for (kode, _period, _form), how in recaps.items():
        by_how.setdefault(how, set()).add(kode)
    undeclared = sorted({(k, f) for (k, _p, f), how in recaps.items() if how == "undeclared"})
    return {
        "forms": list(RECAP_FORMS),
        "declared_by_column": sorted(by_how.get("column", ())),
        "declared_by_kolab_yaml": sorted(by_how.get("kolab.yaml", ())),
        "scope_by_kabkota_in_kolab_yaml": run.cfg.reporting.puskesmas_scope_by_kabkota,
        "undeclared": [{"kode_faskes": k, "form": f,
                        "periods": sorted(p for (kk, p, ff), how in recaps.items()
                                          if how == "undeclared" and (kk, ff) == (k, f))}
                       for k, f in undeclared],
        "meaning": "a declared recap's own row = own services + its network's current valid "
                   "reports of that month, so the pipeline's own share (recap − network) is "
                   "the generated own count (ground_truth/area_recaps.csv); an undeclared "
                   "recap is counted as written (double) and should raise warning L03 from its "
                   "third month",
    }


def _bulk_upload(run: Run, places: pd.DataFrame) -> None:
    """Kabupaten Probolinggo copies the files of the second-last month to the server in one batch
    after the last of them arrived: their mtime is that copy, their `_diterima.csv` line the real
    receipt (the line decides, the mtime never does)."""
    if len(run.periods) < 2:
        return
    slug = places.set_index("kode_kabkota").at[BULK_KABKOTA, "slug"]
    folder = f"/{run.periods[-2]}/"
    chosen = [f for f in run.files if f["file"].startswith(f"{slug}/") and folder in f["file"]
              and f.get("in_manifest", True)]
    if not chosen:
        return
    copied = max(f["received_at"] for f in chosen) + timedelta(hours=2)
    for f in chosen:
        ts = copied.timestamp()
        os.utime(run.landing / f["file"], (ts, ts))
    run.notes["bulk_uploaded"] = {"files": len(chosen), "folder": f"{slug}/*{folder}",
                                  "mtime": copied.isoformat(),
                                  "received_at": "their _diterima.csv lines"}


def _summary_extra(run: Run, fac: pd.DataFrame, places: pd.DataFrame, meta: dict[str, Any],
                   writer: LandingWriter, landing_rows: int) -> dict[str, Any]:
    """The kabupaten-only entries of `summary.json`: places, events, planned special cases."""
    pkm_by_kab = fac[fac["jenis_faskes"] == "puskesmas"].groupby("kode_kabkota").size()
    return {
        "facilities": int(len(fac)),
        "facilities_by_type": {k: int(v) for k, v in sorted(
            fac.groupby("jenis_faskes").size().items())},
        "puskesmas_by_kabkota": {k: int(v) for k, v in sorted(pkm_by_kab.items())},
        "kabkota": {r.kode_kabkota: r.nama for r in places.itertuples()},
        "puskesmas_unbridged_kecamatan": meta["unbridged"],
        "events": meta["events"],
        "unexpected_planned": {"tpmd_sends_kia": meta["tpmd_kia"],
                               "jejaring_kia_month_before": meta["jejaring_kode"]},
        "chronic_non_reporters": [{"kode_faskes": k, "form": f} for k, f in meta["chronic"]],
        "self_reporting_facilities": int(fac["self_report"].sum()),
        "dhis2_network": {"kode_puskesmas": meta["dhis2_pkm"], "periods": run.periods[-3:]},
        "dhis2_networks": [meta["dhis2_pkm"], meta["dhis2_bpp"]],
        "wita_cases": writer.wita,
        "landing_rows": landing_rows,
        "received_at_semantics": "network facilities' rows with tanggal_lapor count at 00:00 "
                                 "local of that date; puskesmas rows (whatever tanggal_lapor "
                                 "they declare) and rows without one at the file's receipt: its "
                                 "_diterima.csv time, else DHIS2 completeDate (local time of the "
                                 "org unit), else its mtime",
        "multi_sheet_workbooks": "landing/<kab>/semua/<YYYY-MM>/"
                                 "rekap_<puskesmas>_semua_<YYYY-MM>.xlsx: one sheet per form, "
                                 "form detected from each sheet's header",
    }
