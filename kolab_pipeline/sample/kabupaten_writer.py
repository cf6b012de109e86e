"""The messy kabupaten-scale landing files: turns the scheduled slots into recaps, clinic files,
DHIS2 dataValueSets and broken files, recording every row it writes.

Grain: `rows` one row instance written to one landing file (a slot can have several: versions,
the duplicate of a V15 pair; V01 rows of unregistered facilities have no slot); `versions` one
row as written (file, sheet, row number, received time, valid or not) — the ground truth is
computed from it, so it describes exactly the files on disk.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.sample.common import META_COLS, RESUBMISSION_COLS, Run, local_dt
from kolab_pipeline.sample.formats import (
    Style,
    csv_bytes,
    format_period,
    format_value,
    xlsx_bytes,
)

FORM_TITLE = {"tb": "TBC", "ptm": "PTM (HIPERTENSI DAN DIABETES MELITUS)", "kia": "KIA",
              "imun": "IMUNISASI"}
SHEET_NAME = {"tb": "TB", "ptm": "PTM", "kia": "KIA", "imun": "Imunisasi"}
META_LABELS = {"periode": "Periode", "kode_faskes": "Kode Faskes", "nama_faskes": "Nama Faskes",
               "tanggal_lapor": "Tanggal Lapor", "laporan_nihil": "Laporan Nihil"}
DHIS2_DEFAULT_COC = "HllvX50cXC0"  # DHIS2's built-in "default" category option combo uid
DHIS2_CSV_HEADER = ["dataelement", "period", "orgunit", "categoryoptioncombo",
                    "attributeoptioncombo", "value", "storedby", "lastupdated", "comment",
                    "followup"]
UNREADABLE_PERIODS = ("13/{y}", "Maret", "{y}-13", "bln lalu", "")


def _uid(rng: np.random.Generator) -> str:
    """A DHIS2-shaped uid: a letter and ten letters or digits."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    alnum = letters + "0123456789"
    return (letters[rng.integers(len(letters))]
            + "".join(alnum[i] for i in rng.integers(0, len(alnum), 10)))


def _perturb(vals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The first (wrong) version of a resubmitted report: one to three counts off."""
    v = vals.copy()
    ok = np.flatnonzero(v >= 0)
    for j, i in enumerate(rng.permutation(ok)[: int(rng.integers(1, 4))]):
        v[i] = v[i] + int(rng.integers(1, 6)) if j == 0 else max(v[i] + int(rng.integers(-3, 4)), 0)
    return v


class LandingWriter:
    """Turns the scheduled slots into files, recording every row it writes (for the ground
    truth)."""

    def __init__(self, run: Run, fac: pd.DataFrame, places: pd.DataFrame,
                 values: dict[str, np.ndarray], dhis2_pkm: str) -> None:
        self.run, self.fac, self.values, self.dhis2_pkm = run, fac, values, dhis2_pkm
        self.slug = places.set_index("kode_kabkota")["slug"].to_dict()
        self.rng = run.rng(40)
        self.files: dict[str, dict[str, Any]] = {}
        self.versions: list[dict[str, Any]] = []
        self.wita: list[dict[str, str]] = []
        self.labels = catalog.element_names()
        self.pkm_tl: dict[tuple[str, str, str], date] = {}
        self._uids: dict[str, str] | None = None

    # ---- planning: which row goes into which file, received when -------------------------
    def _file(self, key: str, rel: str, style: Style, received: datetime | None, kind: str,
              sender: str) -> dict:
        if key not in self.files:
            self.files[key] = {"rel": rel, "style": style, "received": received, "kind": kind,
                               "sender": sender, "rows": []}
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
        pkm_slots = slots[slots["jenis_faskes"] == "puskesmas"]
        self.pkm_tl = pkm_slots.set_index(["kode_faskes", "period", "form"])["tl"].to_dict()
        for r in s.itertuples():
            vals = self.values[r.form][r.row]
            row = {"slot": r, "kode": r.kode_faskes, "nama": r.nama_faskes, "period": r.period,
                   "form": r.form, "nil": bool(r.nil), "values": vals, "invalid": "", "tl": None}
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
            ext = "json" if r.form in ("tb", "ptm") else "csv"
            rel = f"dhis2/{kab.replace('.', '')}_{r.form}_{r.period.replace('-', '')}.{ext}"
            received = self._time(complete_day, r.timezone, 8, 15)
            self._file(key, rel, Style(), received, f"dhis2_{ext}", r.network)
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
        f = self._file(f"own|{r.Index}|1", f"{base}.{ext}", st, t, "clinic_file", r.kode_faskes)
        f["rows"].append(dict(row, values=first_vals, invalid=r.invalid))
        if r.resub:
            t2 = self._time(r.resub_tl, tz, 7, 20)
            f2 = self._file(f"own|{r.Index}|2", f"{base}_revisi.{ext}", st, t2, "clinic_file",
                            r.kode_faskes)
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

    # ---- writing -------------------------------------------------------------------------
    def write_all(self) -> None:
        """Write every planned file that has arrived by as_of (with the rows it then holds)."""
        run = self.run
        for key in sorted(self.files):
            f = self.files[key]
            recv: datetime = f["received"]
            if recv > run.as_of_at(str(recv.tzinfo)):
                continue  # not arrived yet at as_of
            rows = [r for r in f["rows"] if r["tl"] is None or r["tl"] <= recv.date()]
            if f["kind"] == "broken":
                self._write_broken(f, rows)
            elif f["kind"].startswith("dhis2"):
                self._write_dhis2(f, rows)
            else:
                self._write_table(f, rows)

    def _record(self, f: dict, sheet: str, row_number: int, row: dict, valid: bool,
                seq: int) -> None:
        if row["slot"] is None:
            return
        recv: datetime = f["received"]
        tz = row["slot"].timezone
        if row["tl"] is not None:
            local = row["tl"]
            at = local_dt(local, 0, 0, tz)
        else:
            at = recv
            local = recv.astimezone(ZoneInfo(tz)).date()
        self.versions.append({"kode_faskes": row["kode"], "period": row["period"],
                              "form": row["form"], "file": f["rel"], "sheet": sheet,
                              "row_number": row_number, "received_at": at,
                              "received_local_date": local, "valid": valid,
                              "is_nil": row["nil"], "seq": seq, "values": row["values"]})

    def _header(self, form: str, with_tl: bool) -> tuple[list[str], list[str]]:
        cols = ([c for c in META_COLS if with_tl or c != "tanggal_lapor"]
                + catalog.form_elements(form))
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
        cols, labels = self._header(form, with_tl)
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
            if with_tl:
                cells.append(r["tl"] if xlsx else r["tl"].isoformat())
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
        self.run.write(f["rel"], data, f["received"], f["kind"])

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
            for code, v in zip(catalog.form_elements(r["form"]), r["values"], strict=True):
                if v >= 0:
                    dv.append({"dataElement": uid[code], "period": r["period"].replace("-", ""),
                               "orgUnit": uid[r["kode"]], "value": str(int(v)),
                               "completeDate": stamp})
            self._record(f, "", 0, r, valid=True, seq=len(self.versions))
        if f["rel"].endswith(".json"):
            body = {"completeDate": stamp, "dataValues": dv}
            data = (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode()
        else:
            lines = [DHIS2_CSV_HEADER]
            lines += [[d["dataElement"], d["period"], d["orgUnit"], DHIS2_DEFAULT_COC,
                       DHIS2_DEFAULT_COC, d["value"], "admin_puskesmas", stamp, "", "false"]
                      for d in dv]
            data = csv_bytes(lines, Style())
        self.run.write(f["rel"], data, recv, f["kind"])

    def _dhis2_uids(self) -> dict[str, str]:
        """uids of the DHIS2 network's data elements and org units (written once to
        `landing/dhis2/mapping.csv`)."""
        if self._uids is None:
            rng = self.run.rng(50)
            pkm = self.dhis2_pkm
            units = sorted(self.fac.index[(self.fac["network"] == pkm) | (self.fac.index == pkm)])
            codes = [c for fm in FORMS for c in catalog.form_elements(fm)]
            self._uids = {c: _uid(rng) for c in codes + units}
            lines = [["kind", "dhis2_id", "kode"]]
            lines += [["data_element", self._uids[c], c] for c in codes]
            lines += [["org_unit", self._uids[u], u] for u in units]
            path = self.run.landing / "dhis2" / "mapping.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(csv_bytes(lines, Style()))
        return self._uids

    def resubmissions(self, reports: pd.DataFrame) -> pd.DataFrame:
        """Final values of every report with two or more valid versions."""
        multi = reports[reports["n_versions"] >= 2]
        ver = pd.DataFrame(self.versions)
        ver = ver[ver["valid"]].rename(columns={"file": "final_file"})
        ver_cols = ["kode_faskes", "period", "form", "final_file", "sheet", "row_number",
                    "values"]
        final = multi.merge(ver[ver_cols], on=["kode_faskes", "period", "form", "final_file"])
        out = []
        for r in final.itertuples():
            for code, val in zip(catalog.form_elements(r.form), r.values, strict=True):
                out.append({"kode_faskes": r.kode_faskes, "period": r.period, "form": r.form,
                            "version": int(r.n_versions), "file": r.final_file, "sheet": r.sheet,
                            "row_number": int(r.row_number), "data_element": code,
                            "value": "" if val < 0 else int(val)})
        return pd.DataFrame(out, columns=RESUBMISSION_COLS)
