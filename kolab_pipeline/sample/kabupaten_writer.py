"""The messy kabupaten-scale landing files: turns the scheduled slots into recaps, clinic files,
DHIS2 dataValueSets and broken files, recording every row it writes.

Grain: `rows` one row instance written to one landing file (a slot can have several: versions,
the duplicate of a V15 pair; V01 rows of unregistered facilities have no slot); `versions` one
row as written (file, sheet, row number, received time, valid or not) — the ground truth is
computed from it, so it describes exactly the files on disk.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.sample.common import (
    AREA_RECAP_COLS,
    META_COLS,
    RESUBMISSION_COLS,
    Run,
    local_dt,
)
from kolab_pipeline.sample.formats import (
    Style,
    csv_bytes,
    format_period,
    format_value,
    xlsx_bytes,
)
from kolab_pipeline.sample.kabupaten_dhis2 import Dhis2Files

FORM_TITLE = {"tb": "TBC", "ptm": "PTM (HIPERTENSI DAN DIABETES MELITUS)", "kia": "KIA",
              "imun": "IMUNISASI"}
SHEET_NAME = {"tb": "TB", "ptm": "PTM", "kia": "KIA", "imun": "Imunisasi"}
META_LABELS = {"periode": "Periode", "kode_faskes": "Kode Faskes", "nama_faskes": "Nama Faskes",
               "tanggal_lapor": "Tanggal Lapor", "laporan_nihil": "Laporan Nihil",
               "lingkup_laporan": "Lingkup Laporan"}
# How a puskesmas writes "area recap" in its lingkup_laporan cell (picked by its code, no draw),
# and what its network's rows of the same file say.
WILAYAH_SPELLINGS = ("wilayah", "Wilayah Kerja", "WILAYAH", "rekap wilayah")
FASKES_SPELLINGS = ("faskes", "")
UNLOGGED_KABKOTA = "36.72"  # Kota Cilegon: clinic files without a _diterima.csv line
UNREADABLE_PERIODS = ("13/{y}", "Maret", "{y}-13", "bln lalu", "")


def _perturb(vals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The first (wrong) version of a resubmitted report: one to three counts off."""
    v = vals.copy()
    ok = np.flatnonzero(v >= 0)
    for j, i in enumerate(rng.permutation(ok)[: int(rng.integers(1, 4))]):
        v[i] = v[i] + int(rng.integers(1, 6)) if j == 0 else max(v[i] + int(rng.integers(-3, 4)), 0)
    return v


class LandingWriter(Dhis2Files):
    """Turns the scheduled slots into files, recording every row it writes (for the ground
    truth)."""

    def __init__(self, run: Run, fac: pd.DataFrame, places: pd.DataFrame,
                 values: dict[str, np.ndarray], dhis2_pkm: str, dhis2_bpp: str = "") -> None:
        self.run, self.fac, self.values, self.dhis2_pkm = run, fac, values, dhis2_pkm
        self.dhis2_bpp = dhis2_bpp
        self.dhis2_wita: set[tuple[str, str, str]] = set()   # (network, period, form) at 23:30
        self._bpp_ids: dict[str, str] | None = None
        self.slug = places.set_index("kode_kabkota")["slug"].to_dict()
        self.rng = run.rng(40)
        self.files: dict[str, dict[str, Any]] = {}
        self.versions: list[dict[str, Any]] = []
        self.wita: list[dict[str, str]] = []
        self.labels = catalog.element_names()
        self.pkm_tl: dict[tuple[str, str, str], date] = {}
        self._uids: dict[str, str] | None = None
        # facility × period × form → its puskesmas network that month (dated, from the slots)
        self.network_of: dict[tuple[str, str, str], str] = {}
        # puskesmas × period × form that reports its whole area: how it is declared
        # (`column`, `kolab.yaml`) or `undeclared` (a recap sent as own services: warning L03)
        self.area_recap: dict[tuple[str, str, str], str] = {}

    # ---- planning: which row goes into which file, received when -------------------------
    def _file(self, key: str, rel: str, style: Style, received: datetime | None, kind: str,
              sender: str, in_manifest: bool = True) -> dict:
        if key not in self.files:
            self.files[key] = {"rel": rel, "style": style, "received": received, "kind": kind,
                               "sender": sender, "rows": [], "in_manifest": in_manifest}
        return self.files[key]

    def _recap_file(self, pkm: str, period: str, form: str, st: Style, tz: str,
                    slug: str) -> dict:
        """The regular recap of a puskesmas for a month (× form, or all forms in one
        workbook)."""
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

    def _place(self, pkm: str, period: str, form: str, tl: date, kode: str, st: Style, tz: str,
               slug: str, suffix: str) -> dict:
        """First recap (this month or later) sent on/after `tl` that has no row of this
        facility × period × form yet; else a separate `_susulan` / `_revisi` file."""
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
            rel = f"{slug}/{form}/{period}/rekap_{pkm}_{form}_{period}_{suffix}{n}.{ext}"
            f = self._file(key, rel, st, None, f"recap_{suffix}", pkm)
            if (kode, period, form) not in f.setdefault("keys", set()):
                f["keys"].add((kode, period, form))
                return f
            n += 1

    def _time(self, day: date, tz: str, lo: int, hi: int) -> datetime:
        hour = int(self.rng.integers(lo, hi + 1))
        return local_dt(day, hour, int(self.rng.integers(0, 60)), tz)

    def plan(self, slots: pd.DataFrame) -> None:
        """Assign every sent slot's row(s) to files and fix each file's received time."""
        s = slots[slots["sends"]]
        self.network_of = dict(zip(zip(slots["kode_faskes"], slots["period"], slots["form"],
                                       strict=True), slots["network"], strict=True))
        pkm_slots = slots[slots["jenis_faskes"] == "puskesmas"]
        self.pkm_tl = pkm_slots.set_index(["kode_faskes", "period", "form"])["tl"].to_dict()
        if "dhis2_wita" in slots:
            wita = slots[slots["dhis2_wita"]]
            self.dhis2_wita = set(zip(wita["network"], wita["period"], wita["form"], strict=True))
        for r in s.itertuples():
            vals = self.values[r.form][r.row]
            row = {"slot": r, "kode": r.kode_faskes, "nama": r.nama_faskes, "period": r.period,
                   "form": r.form, "nil": bool(r.nil), "values": vals, "invalid": "", "tl": None,
                   "declared": getattr(r, "declared", None)}
            perturbed = r.resub and not r.invalid and not r.broken
            first_vals = _perturb(vals, self.rng) if perturbed else vals
            if r.channel == "dhis2":
                self._plan_dhis2(r, row)
            elif r.channel == "own":
                self._plan_own(r, row, first_vals)
            else:
                self._plan_recap(r, row, first_vals)
        # received times of supplementary and revision recaps: the day of their latest row
        # + 0–2 days
        for key in sorted(self.files):
            f = self.files[key]
            if f["received"] is None:
                tz = self.fac.at[f["sender"], "timezone"]
                last = max(row["tl"] for row in f["rows"])
                lag = timedelta(days=int(self.rng.integers(0, 3)))
                f["received"] = self._time(last + lag, tz, 8, 16)
        if self.run.messy:
            self._add_unregistered_rows()

    def _plan_dhis2(self, r: Any, row: dict) -> None:
        """A row entered in DHIS2: in the dataset's export once the puskesmas completed it."""
        kab = r.kode_kabkota
        complete_day = self.pkm_tl[(r.network, r.period, r.form)]
        if r.tl > complete_day:
            return  # entered after the dataset was completed: never arrives
        key = f"dhis2|{kab}|{r.period}|{r.form}"
        if key not in self.files:
            own_instance = r.network == self.dhis2_bpp   # Balikpapan: JSON with combos
            ext = "json" if r.form in ("tb", "ptm") or own_instance else "csv"
            rel = f"dhis2/{kab.replace('.', '')}_{r.form}_{r.period.replace('-', '')}.{ext}"
            received = self._time(complete_day, r.timezone, 8, 15)
            if (r.network, r.period, r.form) in self.dhis2_wita:
                received = local_dt(complete_day, 23, 30, r.timezone)
                self.run.notes["dhis2_wita_case"] = {
                    "file": rel, "completeDate": received.strftime("%Y-%m-%dT%H:%M:%S.000"),
                    "timezone": r.timezone, "expected_status_of": r.network}
            # pulled from the DHIS2 API, not logged in _diterima.csv: completeDate decides
            self._file(key, rel, Style(), received, f"dhis2_{ext}", r.network,
                       in_manifest=not own_instance)
        self.files[key]["rows"].append(dict(row))

    def _plan_own(self, r: Any, row: dict, first_vals: np.ndarray) -> None:
        """A clinic's own file (received at its `_diterima.csv` time), maybe broken, maybe sent
        again."""
        tz = r.timezone
        st = self.fac.at[r.kode_faskes, "style"]
        ext = "xlsx" if st.fmt != "csv" else "csv"
        folder = f"{self.slug[r.kode_kabkota]}/{r.form}/{r.period}"
        base = f"{folder}/{r.kode_faskes}_{r.form}_{r.period}"
        if r.wita:
            due = r.due
            t = (local_dt(due, 23, 30, tz) if r.wita == "due_2330"
                 else local_dt(due + timedelta(days=1), 0, 30, tz))
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
                f2 = self._file(f"own|{r.Index}|2", f"{base}_kirim_ulang.{ext}", st, t2,
                                "clinic_file", r.kode_faskes)
                f2["rows"].append(dict(row))
            return
        # Kota Cilegon's clinics drop their files in the shared folder without a receipt-log
        # line: their mtime is the receipt, kept by the pipeline's receipt journal
        logged = r.kode_kabkota != UNLOGGED_KABKOTA
        f = self._file(f"own|{r.Index}|1", f"{base}.{ext}", st, t, "clinic_file", r.kode_faskes,
                       in_manifest=logged)
        f["rows"].append(dict(row, values=first_vals, invalid=r.invalid))
        if r.resub:
            t2 = self._time(r.resub_tl, tz, 7, 20)
            f2 = self._file(f"own|{r.Index}|2", f"{base}_revisi.{ext}", st, t2, "clinic_file",
                            r.kode_faskes, in_manifest=logged)
            f2["rows"].append(dict(row))

    def _plan_recap(self, r: Any, row: dict, first_vals: np.ndarray) -> None:
        """The puskesmas forwards its own row and its network's rows; a row that reaches the
        puskesmas after it sent the month's recap travels in its next recap."""
        tz, slug = r.timezone, self.slug[r.kode_kabkota]
        pkm = r.network
        st = self.fac.at[pkm, "style"]
        f = self._place(pkm, r.period, r.form, r.tl, r.kode_faskes, st, tz, slug, "susulan")
        f["rows"].append(dict(row, values=first_vals, invalid=r.invalid, tl=r.tl))
        if r.resub:
            f2 = self._place(pkm, r.period, r.form, r.resub_tl, r.kode_faskes, st, tz, slug,
                             "revisi")
            f2["rows"].append(dict(row, tl=r.resub_tl))

    def _add_unregistered_rows(self) -> None:
        """V01: rows for clinics that are not in the registry, added to a few recap files."""
        recaps = sorted(k for k, f in self.files.items()
                        if f["kind"] == "recap" and not k.endswith("semua"))
        picked = self.rng.choice(recaps, size=min(8, len(recaps)), replace=False)
        for i, key in enumerate(picked):
            f = self.files[key]
            proto = f["rows"][0]
            kab = self.fac.at[f["sender"], "kode_kabkota"].replace(".", "")
            f["rows"].append({"slot": None, "kode": f"KP{kab}X{i + 1:02d}",
                              "nama": f"Klinik Pratama Belum Terdaftar {i + 1}",
                              "period": proto["period"], "form": proto["form"], "nil": False,
                              "values": proto["values"].copy(), "invalid": "V01",
                              "tl": proto["tl"]})

    # ---- area recaps (lingkup_laporan = wilayah) -----------------------------------------
    def _arrived(self, f: dict) -> list[dict] | None:
        """The rows of planned file `f` as written, or None when it has not arrived by as_of."""
        recv: datetime = f["received"]
        if recv > self.run.as_of_at(str(recv.tzinfo)):
            return None
        return [r for r in f["rows"] if r["tl"] is None or r["tl"] <= recv.date()]

    def _current_values(self) -> dict[tuple[str, str, str], np.ndarray]:
        """Facility × period × form → the values of its current valid version at as_of: the
        last valid row written, ordered as the ground truth orders versions (local received
        date, received instant, order written)."""
        latest: dict[tuple[str, str, str], tuple[tuple, np.ndarray]] = {}
        for n, key in enumerate(sorted(self.files)):
            f = self.files[key]
            rows = self._arrived(f)
            if rows is None or f["kind"] == "broken":
                continue
            for r in rows:
                if r["slot"] is None or r["invalid"]:
                    continue
                tz = r["slot"].timezone
                # as `_record` dates a version: a network row by its tanggal_lapor, a puskesmas
                # row (and a row without one) by the file's receipt at the Dinkes
                if r["tl"] is not None and r["slot"].jenis_faskes != "puskesmas":
                    order = (r["tl"], local_dt(r["tl"], 0, 0, tz).astimezone(UTC), n)
                else:
                    recv = f["received"]
                    order = (recv.astimezone(ZoneInfo(tz)).date(), recv.astimezone(UTC), n)
                k = (r["kode"], r["period"], r["form"])
                if k not in latest or order >= latest[k][0]:
                    latest[k] = (order, r["values"])
        return {k: v for k, (_, v) in latest.items()}

    def make_area_recaps(self, declared: dict[tuple[str, str, str], str]) -> None:
        """Turn the own rows of the puskesmas × period × form in `declared` (→ `column`,
        `kolab.yaml` or `undeclared`) into area recaps: each element = its own count + the sum
        of its network's current valid reports of that month (blank stays blank), so the
        pipeline's own share (recap − network) is exactly the generated own count. Rows
        declared by `column` put their file's `lingkup_laporan` column in."""
        self.area_recap = dict(declared)
        current = self._current_values()
        network: dict[tuple[str, str, str], np.ndarray] = {}
        for (kode, period, form), values in sorted(current.items()):
            pkm = self.network_of.get((kode, period, form))
            if pkm is None or pkm == kode or (pkm, period, form) not in declared:
                continue
            add = np.where(values > 0, values, 0)
            key = (pkm, period, form)
            network[key] = network[key] + add if key in network else add
        for key in sorted(self.files):
            f = self.files[key]
            for r in f["rows"]:
                k = (r["kode"], r["period"], r["form"])
                if r["slot"] is None or k not in declared:
                    continue
                total = network.get(k, np.zeros_like(r["values"]))
                r["own"], r["network"] = r["values"], total
                r["values"] = np.where(r["own"] >= 0, r["own"] + total, r["own"])
                if declared[k] == "column":
                    f.setdefault("scope_forms", set()).add(r["form"])

    # ---- writing -------------------------------------------------------------------------
    def write_all(self) -> None:
        """Write every planned file that has arrived by as_of (with the rows it then holds)."""
        for key in sorted(self.files):
            f = self.files[key]
            rows = self._arrived(f)
            if rows is None:
                continue  # not arrived yet at as_of
            if f["kind"] == "broken":
                self._write_broken(f, rows)
            elif f["kind"].startswith("dhis2"):
                self._write_dhis2(f, rows)
            else:
                self._write_table(f, rows)

    def _record(self, f: dict, sheet: str, row_number: int, row: dict, valid: bool,
                seq: int) -> None:
        """A row as written. Its received time at its reporting stage: a network facility's
        `tanggal_lapor` (the day it reported to its puskesmas), else — and always for a
        puskesmas, whose own date is only declared — the file's receipt at the Dinkes."""
        if row["slot"] is None:
            return
        recv: datetime = f["received"]
        tz = row["slot"].timezone
        if row["tl"] is not None and row["slot"].jenis_faskes != "puskesmas":
            local = row["tl"]
            at = local_dt(local, 0, 0, tz)
        else:
            at = recv
            local = recv.astimezone(ZoneInfo(tz)).date()
        declared = self.area_recap.get((row["kode"], row["period"], row["form"]))
        self.versions.append({"kode_faskes": row["kode"], "period": row["period"],
                              "form": row["form"], "file": f["rel"], "sheet": sheet,
                              "row_number": row_number, "received_at": at,
                              "received_local_date": local, "valid": valid,
                              "is_nil": row["nil"], "seq": seq, "values": row["values"],
                              # what the pipeline must count: a declared recap's own share
                              "own_values": (row["own"] if declared in ("column", "kolab.yaml")
                                             else row["values"]),
                              "network_values": row.get("network"), "lingkup": declared})

    def _header(self, form: str, with_tl: bool,
                with_scope: bool = False) -> tuple[list[str], list[str]]:
        # lingkup_laporan after nama_faskes: laporan_nihil stays right before the elements
        meta = [c for c in META_COLS if with_tl or c != "tanggal_lapor"]
        if with_scope:
            meta.insert(meta.index("nama_faskes") + 1, "lingkup_laporan")
        cols = meta + catalog.form_elements(form)
        labels = [META_LABELS.get(c, self.labels.get(c, c)) for c in cols]
        return cols, labels

    def _break_row(self, cells: list[Any], r: dict, st: Style, xlsx: bool,
                   first_el: int) -> tuple[int | None, Any]:
        """Make the row's cells break its rule `r["invalid"]`; returns (column, bad value)."""
        rule = r["invalid"]
        y = int(r["period"][:4])
        if rule == "V05":
            bad = UNREADABLE_PERIODS[int(self.rng.integers(len(UNREADABLE_PERIODS)))].format(y=y)
            cells[0] = bad
            return 0, bad
        if rule == "V05F":
            cells[0] = format_period(add_months(r["period"], 13), st.period_style, xlsx)
            return 0, cells[0]
        if rule == "V06":
            ok = [i for i, v in enumerate(r["values"]) if v >= 0]
            col = first_el + ok[int(self.rng.integers(len(ok)))]
            kind = int(self.rng.integers(3))
            bad = [-int(self.rng.integers(1, 9)), "2,5" if not xlsx else 2.5, "lima"][kind]
            if kind == 0 and not xlsx:
                bad = str(bad)
            cells[col] = bad
            return col, bad
        if rule == "V06N":
            if max(r["values"]) <= 0:  # needs a non-zero count to contradict the nil flag
                r["values"] = r["values"].copy()
                r["values"][np.argmax(r["values"] >= 0)] = 3
                cells[first_el:] = [format_value(int(v), st, xlsx) for v in r["values"]]
            cells[first_el - 1] = st.nil_yes
            return first_el - 1, st.nil_yes
        if rule in ("V15", "V01"):
            return 1, r["kode"]
        return None, None

    def _sheet_rows(self, f: dict, form: str, rows: list[dict],
                    xlsx: bool) -> list[list[Any]]:
        """Lines of one table (title rows, header, optional label row, data); records versions
        and invalid rows."""
        st: Style = f["style"]
        with_tl = f["kind"].startswith("recap")
        with_scope = form in f.get("scope_forms", ())
        cols, labels = self._header(form, with_tl, with_scope)
        lines: list[list[Any]] = []
        titles = [[f"LAPORAN BULANAN {FORM_TITLE[form]}"],
                  [str(self.fac.at[f["sender"], "nama_faskes"]).upper()],
                  [] if xlsx else [""] * len(cols)]
        lines += titles[: st.title_rows]
        lines.append(labels if st.header == "label" else cols)
        if xlsx and st.label_row:
            lines.append(labels)
        head = len(lines)
        sheet = SHEET_NAME[form] if xlsx else ""
        first_el = len(cols) - len(catalog.form_elements(form))
        rows = sorted(rows, key=lambda r: (r["kode"], r["period"], r["tl"] or date.min))
        out_rows: list[tuple[list[Any], dict, str, int | None, Any]] = []
        for r in rows:
            cells: list[Any] = [format_period(r["period"], st.period_style, xlsx), r["kode"],
                                r["nama"]]
            if with_scope:
                cells.append(self._scope_cell(r, len(out_rows)))
            if with_tl:
                tl = r.get("declared") or r["tl"]   # a puskesmas may declare another date
                cells.append(tl if xlsx else tl.isoformat())
            cells.append(st.nil_yes if r["nil"] else st.nil_no)
            cells += [format_value(int(v), st, xlsx) for v in r["values"]]
            rule = r["invalid"]
            col, bad = self._break_row(cells, r, st, xlsx, first_el)
            out_rows.append((cells, r, rule, col, bad))
            if rule == "V15":
                out_rows.append((list(cells), r, rule, col, bad))
        for i, (cells, r, rule, col, bad) in enumerate(out_rows):
            number = head + i + 1
            lines.append(cells)
            if rule:
                text = (bad.isoformat() if isinstance(bad, datetime)
                        else ("" if bad is None else str(bad)))
                self.run.invalid_rows.append({
                    "file": f["rel"], "sheet": sheet, "row_number": number, "rule_id": rule,
                    "column_name": cols[col], "column_index": col, "value": text,
                    "kode_faskes": r["kode"], "period": r["period"], "form": r["form"]})
            self._record(f, sheet, number, r, valid=not rule, seq=len(self.versions))
        return lines

    def _scope_cell(self, r: dict, i: int) -> str:
        """The `lingkup_laporan` cell: a spelling of `wilayah` on a declared recap (chosen by
        the puskesmas code), else `faskes` or blank alternately."""
        if self.area_recap.get((r["kode"], r["period"], r["form"])) == "column":
            return WILAYAH_SPELLINGS[sum(map(ord, r["kode"])) % len(WILAYAH_SPELLINGS)]
        return FASKES_SPELLINGS[i % len(FASKES_SPELLINGS)]

    def _write_table(self, f: dict, rows: list[dict]) -> None:
        if not rows:
            return
        st: Style = f["style"]
        xlsx = f["rel"].endswith(".xlsx")
        forms = [fm for fm in FORMS if any(r["form"] == fm for r in rows)]
        sheets = []
        for fm in forms:
            lines = self._sheet_rows(f, fm, [r for r in rows if r["form"] == fm], xlsx)
            sheets.append((SHEET_NAME[fm], lines))
        data = xlsx_bytes(sheets, f["received"]) if xlsx else csv_bytes(sheets[0][1], st)
        self.run.write(f["rel"], data, f["received"], f["kind"], f["in_manifest"])

    def _write_broken(self, f: dict, rows: list[dict]) -> None:
        what = f["broken"]
        r = rows[0]
        st = Style()
        cols, _ = self._header(r["form"], False)
        line = [r["period"], r["kode"], r["nama"], ""] + [str(max(int(v), 0)) for v in r["values"]]
        if what == "zero_bytes":
            data, rule, text = b"", "F02", "zero bytes"
        elif what == "header_only":
            data, rule, text = csv_bytes([cols], st), "F02", "only the header row, no data rows"
        elif what == "junk":
            noise = self.rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
            data = b"\x00\x01\x02PK\xff\xfe" + noise
            rule, text = "F01", "binary junk named .csv"
        elif what == "truncated_xlsx":
            full = xlsx_bytes([(SHEET_NAME[r["form"]], [cols, line])], f["received"])
            half = len(full) // 2
            data, rule, text = full[:half], "F01", f"XLSX cut after {half} of {len(full)} bytes"
        elif what == "no_header":
            data, rule, text = csv_bytes([line], st), "F04", "data rows without a header row"
        else:  # mixed_forms: tb and ptm columns in one file
            other = "ptm" if r["form"] != "ptm" else "tb"
            other_cols = catalog.form_elements(other)
            mixed = cols + other_cols
            line2 = line + ["0"] * len(other_cols)
            data, rule = csv_bytes([mixed, line2], st), "F09"
            text = f"columns of forms {r['form']} and {other}"
        self.run.broken.append({"file": f["rel"], "rule_id": rule, "what": text})
        self.run.write(f["rel"], data, f["received"], "broken", f["in_manifest"])

    def resubmissions(self, reports: pd.DataFrame) -> pd.DataFrame:
        """Final values of every report with two or more valid versions."""
        multi = reports[reports["n_versions"] >= 2]
        ver = pd.DataFrame(self.versions)
        ver = ver[ver["valid"]].rename(columns={"file": "final_file"})
        ver_cols = ["kode_faskes", "period", "form", "final_file", "sheet", "row_number",
                    "values", "own_values"]
        final = multi.merge(ver[ver_cols], on=["kode_faskes", "period", "form", "final_file"])
        out = []
        for r in final.itertuples():
            for code, val, own in zip(catalog.form_elements(r.form), r.values, r.own_values,
                                      strict=True):
                out.append({"kode_faskes": r.kode_faskes, "period": r.period, "form": r.form,
                            "version": int(r.n_versions), "file": r.final_file, "sheet": r.sheet,
                            "row_number": int(r.row_number), "data_element": code,
                            "value": "" if val < 0 else int(val),
                            "own_value": "" if own < 0 else int(own)})
        return pd.DataFrame(out, columns=RESUBMISSION_COLS)

    def area_recaps(self, reports: pd.DataFrame) -> pd.DataFrame:
        """Every current declared area recap, per element: the recap as written, its network's
        sum and the own share the pipeline must count (`AREA_RECAP_COLS`)."""
        ver = pd.DataFrame(self.versions)
        if ver.empty:
            return pd.DataFrame(columns=AREA_RECAP_COLS)
        ver = ver[ver["valid"] & ver["lingkup"].isin(["column", "kolab.yaml"])]
        final = reports[["kode_faskes", "period", "form", "final_file"]].merge(
            ver.rename(columns={"file": "final_file"}),
            on=["kode_faskes", "period", "form", "final_file"])
        out = []
        for r in final.itertuples():
            for code, rec, net, own in zip(catalog.form_elements(r.form), r.values,
                                           r.network_values, r.own_values, strict=True):
                out.append({"kode_faskes": r.kode_faskes, "period": r.period, "form": r.form,
                            "lingkup_source": r.lingkup, "data_element": code,
                            "reported_value": "" if rec < 0 else int(rec),
                            "network_value": int(net), "own_value": "" if own < 0 else int(own)})
        frame = pd.DataFrame(out, columns=AREA_RECAP_COLS)
        return frame.sort_values(["kode_faskes", "period", "form", "data_element"])
