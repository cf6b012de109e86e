"""The DHIS2 files of the kabupaten sample: Kota Metro's dataValueSets (JSON and CSV, mapped in
`landing/dhis2/mapping.csv`) and Balikpapan's own instance, disaggregated by category option
combo. `Dhis2Files` is the part of `kabupaten_writer.LandingWriter` that writes them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.sample.common import Run
from kolab_pipeline.sample.formats import Style, csv_bytes

DHIS2_DEFAULT_COC = "HllvX50cXC0"  # DHIS2's built-in "default" category option combo uid
DHIS2_CSV_HEADER = ["dataelement", "period", "orgunit", "categoryoptioncombo",
                    "attributeoptioncombo", "value", "storedby", "lastupdated", "comment",
                    "followup"]
# Balikpapan's own DHIS2 instance (issue 16): data sets disaggregated by category option combo.
# form → (combo names, share of the first); kia stays on the default combo.
BPP_COMBOS = {"tb": (("Laki-laki", "Perempuan"), (1, 2)),
              "ptm": (("Laki-laki", "Perempuan"), (1, 2)),
              "imun": (("Dalam gedung", "Luar gedung"), (7, 10))}
# BCG is mapped pair by pair (both infant combos → imun_bcg); a third combo, doses given at one
# year or older, is in the export but not mapped: the import summary reports it, never counted.
BPP_PAIRED = "imun_bcg"
BPP_UNMAPPED_COMBO = "Usia 1 tahun ke atas"



def _uid(rng: np.random.Generator) -> str:
    """A DHIS2-shaped uid: a letter and ten letters or digits."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    alnum = letters + "0123456789"
    return (letters[rng.integers(len(letters))]
            + "".join(alnum[i] for i in rng.integers(0, len(alnum), 10)))


class Dhis2Files:
    """The DHIS2 writers of `LandingWriter`: they read its run, facilities and uids and record
    each row through its `_record`."""

    run: Run
    fac: pd.DataFrame
    versions: list[dict[str, Any]]
    dhis2_pkm: str
    dhis2_bpp: str
    _uids: dict[str, str] | None
    _bpp_ids: dict[str, str] | None

    def _write_dhis2(self, f: dict, rows: list[dict]) -> None:
        if not rows:
            return
        uid = self._dhis2_uids()
        recv: datetime = f["received"]
        stamp = recv.strftime("%Y-%m-%dT%H:%M:%S.000")   # local time, no offset (as DHIS2 does)
        rows = sorted(rows, key=lambda r: r["kode"])
        if not f["in_manifest"]:   # Balikpapan's instance
            self._write_dhis2_combos(f, rows, stamp)
            return
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

    def _write_dhis2_combos(self, f: dict, rows: list[dict], stamp: str) -> None:
        """A dataValueSet of Balikpapan's instance: each value split over its category option
        combos (`BPP_COMBOS`, integer shares that add up to the value), BCG with its unmapped
        combo besides; `completeDate` in the org unit's local time (WITA), without an offset."""
        ids = self._bpp_uids()
        dv = []
        for r in rows:
            combos, (num, den) = BPP_COMBOS.get(r["form"], ((), (1, 1)))
            for code, v in zip(catalog.form_elements(r["form"]), r["values"], strict=True):
                if v < 0:
                    continue
                v = int(v)
                base = {"dataElement": ids[f"de:{code}"], "period": r["period"].replace("-", ""),
                        "orgUnit": ids[f"ou:{r['kode']}"], "completeDate": stamp}
                if not combos:
                    dv.append({**base, "value": str(v)})
                    continue
                first = (v * num + den // 2) // den
                for combo, part in zip(combos, (first, v - first), strict=True):
                    dv.append({**base, "categoryOptionCombo": ids[f"coc:{combo}"],
                               "value": str(part)})
                if code == BPP_PAIRED:
                    dv.append({**base, "categoryOptionCombo": ids[f"coc:{BPP_UNMAPPED_COMBO}"],
                               "value": str(v % 3)})
            self._record(f, "", 0, r, valid=True, seq=len(self.versions))
        body = {"dataSet": ids[f"ds:{rows[0]['form']}"], "completeDate": stamp, "dataValues": dv}
        data = (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode()
        self.run.write(f["rel"], data, f["received"], f["kind"], in_manifest=False)

    def _bpp_uids(self) -> dict[str, str]:
        """uids of Balikpapan's instance (`de:<code>`, `coc:<combo>`, `ou:<kode>`, `ds:<form>`),
        from their own draw (Kota Metro's uids do not move); appended to the mapping: data
        elements whole, BCG pair by pair without its `BPP_UNMAPPED_COMBO`."""
        if self._bpp_ids is None:
            self._dhis2_uids()
        assert self._bpp_ids is not None
        return self._bpp_ids

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
            lines += self._bpp_mapping(codes)
            path = self.run.landing / "dhis2" / "mapping.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(csv_bytes(lines, Style()))
        return self._uids

    def _bpp_mapping(self, codes: list[str]) -> list[list[str]]:
        """Balikpapan's uids (rng component 60) and their mapping rows."""
        if not self.dhis2_bpp:
            self._bpp_ids = {}
            return []
        rng = self.run.rng(60)
        pkm = self.dhis2_bpp
        units = sorted(self.fac.index[(self.fac["network"] == pkm) | (self.fac.index == pkm)])
        combos = sorted({c for names, _ in BPP_COMBOS.values() for c in names}
                        | {BPP_UNMAPPED_COMBO})
        keys = ([f"de:{c}" for c in codes] + [f"coc:{c}" for c in combos]
                + [f"ou:{u}" for u in units] + [f"ds:{fm}" for fm in FORMS])
        ids = {k: _uid(rng) for k in keys}
        self._bpp_ids = ids
        lines = [["data_element", ids[f"de:{c}"], c] for c in codes if c != BPP_PAIRED]
        lines += [["data_element", f"{ids['de:' + BPP_PAIRED]}.{ids['coc:' + combo]}", BPP_PAIRED]
                  for combo in BPP_COMBOS["imun"][0]]
        lines += [["org_unit", ids[f"ou:{u}"], u] for u in units]
        self.run.notes["dhis2_disaggregated"] = {
            "kode_puskesmas": pkm, "format": "dataValueSet JSON, completeDate in WITA without "
            "offset, not in _diterima.csv",
            "combos": {fm: list(names) for fm, (names, _) in BPP_COMBOS.items()},
            "paired_element": BPP_PAIRED,
            "unmapped_combo": {"dhis2_id": f"{ids['de:' + BPP_PAIRED]}."
                                           f"{ids['coc:' + BPP_UNMAPPED_COMBO]}",
                               "name": BPP_UNMAPPED_COMBO,
                               "value": "BCG value % 3, reported as ignored, never counted"}}
        return lines
