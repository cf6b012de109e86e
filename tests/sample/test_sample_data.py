"""`kolab sample-data`: determinism, the answer key matches the files, the five places, sasaran."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from kolab_pipeline.catalog import form_elements
from kolab_pipeline.config import load_config
from kolab_pipeline.reference import REFERENCE_DIR
from kolab_pipeline.sample import generate, sample_periods

AS_OF = date(2025, 6, 15)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("messy")
    generate(home, seed=7, as_of=AS_OF, scale="kabupaten", months=6, messy=True)
    return home


def _gt(home: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(home / "ground_truth" / name, dtype=str, keep_default_na=False)


def _read_table(path: Path, sheet: str) -> list[list[str]]:
    """A landing CSV/XLSX as rows of cell texts (spreadsheet rows, 1-based = index + 1)."""
    if path.suffix == ".xlsx":
        ws = openpyxl.load_workbook(path)[sheet]
        return [["" if c is None else (c.isoformat() if isinstance(c, datetime) else str(c))
                 for c in r]
                for r in ws.iter_rows(values_only=True)]
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    first = next(line for line in text.splitlines()
                 if "periode" in line.lower() or "kode" in line.lower())
    delim = ";" if first.count(";") > first.count(",") else ","
    return list(csv.reader(io.StringIO(text), delimiter=delim))


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for home, seed in ((a, 3), (b, 3), (c, 4)):
        generate(home, seed=seed, as_of=AS_OF, scale="kabupaten", months=4, messy=True)
    ha, hb, hc = _tree_hashes(a), _tree_hashes(b), _tree_hashes(c)
    assert len(ha) > 500
    assert ha == hb
    assert ha != hc
    # a re-run into the same home replaces the previous sample and is again identical
    generate(a, seed=3, as_of=AS_OF, scale="kabupaten", months=4, messy=True)
    assert _tree_hashes(a) == hb
    # XLSX files are among the compared files (byte stability of openpyxl output)
    assert any(k.endswith(".xlsx") for k in ha)


def test_periods_end_with_last_month_whose_puskesmas_due_date_passed() -> None:
    cfg = load_config(Path("/nonexistent"))
    # due date of 2025-05 is 2025-06-10: passed on the 15th, not yet passed on the 10th itself
    assert sample_periods(date(2025, 6, 15), 3, cfg) == ["2025-03", "2025-04", "2025-05"]
    assert sample_periods(date(2025, 6, 10), 2, cfg) == ["2025-03", "2025-04"]
    assert sample_periods(date(2025, 1, 11), 2, cfg) == ["2024-11", "2024-12"]


def test_kolab_yaml_is_written_and_merged(kolab_home: Path) -> None:
    (kolab_home / "kolab.yaml").write_text("thresholds:\n  completeness_pct: 85\n",
                                           encoding="utf-8")
    generate(kolab_home, seed=1, as_of=AS_OF, scale="kabupaten", months=2, messy=False)
    data = yaml.safe_load((kolab_home / "kolab.yaml").read_text(encoding="utf-8"))
    assert data["thresholds"]["completeness_pct"] == 85  # the user's key survives
    assert str(data["partitions"]["start"]) == "2025-04-01"  # 2 months ending 2025-05
    assert str(data["reporting"]["as_of"]) == "2025-06-15"


def test_five_places_with_their_real_puskesmas(messy: Path) -> None:
    fas = pd.read_csv(messy / "registry" / "fasilitas.csv", dtype=str, keep_default_na=False)
    pkm = fas[fas["jenis_faskes"] == "puskesmas"]
    per_kab = pkm["kode_wilayah"].str[:5].value_counts().to_dict()
    assert per_kab == {"36.72": 8, "64.71": 22, "35.13": 33, "33.28": 29, "18.72": 10}
    real = pd.read_csv(REFERENCE_DIR / "faskes_bppsdmk_2019.csv.gz", dtype=str)
    real = set(real.loc[real["jenis_faskes"] == "PUSKESMAS", "kode_faskes"])
    assert set(pkm["kode_faskes"]) <= real
    assert (pkm["is_synthetic"] == "0").all()
    # every facility sits in a real Kemendagri desa; puskesmas in the kecamatan the BPS bridge gives
    desa = set(pd.read_csv(REFERENCE_DIR / "wilayah_desa.csv.gz", dtype=str)["kode_desa"])
    assert fas["kode_wilayah"].isin(desa).all()
    bridge = pd.read_csv(REFERENCE_DIR / "bps_kemendagri_kecamatan.csv.gz", dtype=str)
    kec_of = bridge.groupby("kode_bps")["kode_dagri"].min()
    mapped = pkm["kode_faskes"].str[1:8].map(kec_of)
    assert (mapped == pkm["kode_wilayah"].str[:8]).all()
    net = fas[fas["jenis_faskes"] != "puskesmas"]
    assert (net["is_synthetic"] == "1").all()
    assert net["kode_faskes"].str.match(r"^(KP|DR)\d{8}$").all()
    assert net["kode_puskesmas_induk"].isin(pkm["kode_faskes"]).all()
    # 2–4 KP and 2–5 TPMD per network
    kp = net[net["jenis_faskes"] == "klinik_pratama"].groupby("kode_puskesmas_induk").size()
    assert kp.between(1, 5).all() and 2 * len(pkm) - 2 <= kp.sum() <= 4 * len(pkm) + 2
    assert set(fas.loc[fas["jenis_faskes"] == "tpmd", "formulir"]) == {"tb;ptm"}
    assert set(pkm["formulir"]) == {"tb;ptm;kia;imun"}
    # dated events: one opening on the 15th, one closing at a month end, one jejaring change
    assert fas["tanggal_buka"].str.endswith("-15").any()
    closes = pd.to_datetime(fas.loc[fas["tanggal_tutup"] != "", "tanggal_tutup"])
    assert closes.dt.is_month_end.any()
    jej = pd.read_csv(messy / "registry" / "jejaring.csv", dtype=str, keep_default_na=False)
    assert len(jej) == 2 and jej["kode_faskes"].nunique() == 1
    assert jej["kode_puskesmas_induk"].nunique() == 2


def test_sasaran_equal_the_formulas_for_kota_metro(messy: Path) -> None:
    sas = pd.read_csv(messy / "registry" / "sasaran.csv", dtype={"kode_unit": str})
    metro_2025 = sas[(sas["kode_unit"] == "18.72") & (sas["tahun"] == 2025)].set_index("sasaran")
    metro = metro_2025["nilai"]
    # Kota Metro, Dukcapil Dec 2024: 182,293 people; CBR 16, IMR 16.9, shares from kolab.yaml
    assert metro["pend_total"] == 182_293
    assert metro["lahir_hidup"] == 2917  # 16 × 182,293 / 1000 = 2,916.688
    assert metro["bumil"] == 3208  # 1.10 × 2,916.688 = 3,208.357
    assert metro["bulin"] == metro["bufas"] == 3063  # 1.05 × 2,916.688 = 3,062.522
    assert metro["bayi"] == 2867  # 2,916.688 × (1 − 0.0169) = 2,867.376
    # one birth cohort (issue 17.1; before 0.034 × 182,293 = 6,198, two cohorts): last year's
    # surviving infants, the population being the same figure every year = bayi
    assert metro["baduta"] == 2867  # 2,916.688 × (1 − 0.0169) = 2,867.376
    assert metro["pend_15plus"] == 131_251  # 0.72 × 182,293 = 131,250.96
    assert metro["est_penderita_ht_15plus"] == 39_375  # 0.30 × 131,250.96 = 39,375.288
    assert metro["est_penderita_dm_15plus"] == 2625  # 0.02 × 131,250.96 = 2,625.019
    assert metro["est_insiden_tb"] == 705  # 387 × 182,293 / 100,000 = 705.474
    metode = metro_2025["metode"]
    assert metode["bumil"] == "cbr_formula"
    assert metode["est_penderita_ht_15plus"] == "prevalence_estimate"
    # puskesmas rows split the population exactly over the 10 puskesmas of Kota Metro
    pkm = sas[sas["kode_unit"].str.startswith("P1872") & (sas["sasaran"] == "pend_total")
              & (sas["tahun"] == 2025)]
    assert len(pkm) == 10 and pkm["nilai"].sum() == 182_293
    assert set(sas["tahun"]) == {2024, 2025}  # periods 2024-12 .. 2025-05


def test_manifest_and_ground_truth_point_at_real_files(messy: Path) -> None:
    landing = messy / "landing"
    manifest = pd.read_csv(landing / "_diterima.csv", dtype=str)
    on_disk = {str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file()}
    on_disk -= {"_diterima.csv", "dhis2/mapping.csv"}
    summary = json.loads((messy / "ground_truth" / "summary.json").read_text(encoding="utf-8"))
    # issue 16: Kota Cilegon's clinic files and Balikpapan's DHIS2 exports have no receipt-log
    # line (their mtime, resp. completeDate, is their receipt); every other file has one
    unlogged = set(summary["landing_files_unlogged"])
    assert unlogged and not unlogged & set(manifest["file"])
    assert set(manifest["file"]) | unlogged == on_disk
    assert all(f.startswith(("3672_kota_cilegon/", "dhis2/6471_")) for f in unlogged)
    assert manifest["received_at"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[789]:00$").all()
    # mtime = received_at, but for the month Kabupaten Probolinggo copied to the server late
    bulk = summary["bulk_uploaded"]
    folder = bulk["folder"].split("*")
    in_bulk = manifest["file"].map(lambda f: f.startswith(folder[0]) and folder[1] in f)
    assert in_bulk.sum() == bulk["files"] > 0
    row = manifest[~in_bulk].iloc[len(manifest) // 2]
    received_at = datetime.fromisoformat(row["received_at"]).timestamp()
    assert (landing / row["file"]).stat().st_mtime == received_at
    copied = datetime.fromisoformat(bulk["mtime"]).timestamp()
    for f, at in manifest[in_bulk][["file", "received_at"]].itertuples(index=False):
        assert (landing / f).stat().st_mtime == copied > datetime.fromisoformat(at).timestamp()
    rep = _gt(messy, "reports.csv")
    finals = set(rep.loc[rep["final_file"] != "", "final_file"])
    assert finals and finals <= on_disk
    assert set(_gt(messy, "invalid_rows.csv")["file"]) <= on_disk
    assert set(_gt(messy, "broken_files.csv")["file"]) <= on_disk
    # statuses follow from the recorded dates (independent recomputation of the semantics)
    got = rep[rep["expected"] == "1"]
    rec = got[got["n_versions"] != "0"]
    assert ((rec["received_local_date"] <= rec["due_date"]) == (rec["status"] == "on_time")).all()
    assert set(got.loc[got["n_versions"] == "0", "status"]) <= {"missing", "pending"}
    assert summary["landing_files"] == len(manifest) + len(unlogged)
    assert sum(summary["reports_by_status"].values()) == len(rep)


def test_broken_files_are_really_broken(messy: Path) -> None:
    broken = _gt(messy, "broken_files.csv")
    assert set(broken["rule_id"]) == {"F01", "F02", "F04", "F09"}
    for r in broken.itertuples():
        data = (messy / "landing" / r.file).read_bytes()
        if r.what == "zero bytes":
            assert data == b""
        elif r.rule_id == "F02":
            assert len(data.decode().strip().splitlines()) == 1 and data.startswith(b"periode,")
        elif r.file.endswith(".xlsx"):
            with pytest.raises(Exception):  # noqa: B017 - any reader error is the point
                openpyxl.load_workbook(io.BytesIO(data))
        elif r.rule_id == "F01":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        elif r.rule_id == "F04":
            assert b"periode" not in data and b"kode_faskes" not in data and data.count(b"\n") == 1
        else:  # F09: data elements of two forms in one header
            header = data.decode().splitlines()[0].split(",")
            forms = {f for f in ("tb", "ptm", "kia", "imun") if set(form_elements(f)) & set(header)}
            assert len(forms) == 2


def test_invalid_rows_point_at_cells_that_are_invalid(messy: Path) -> None:
    inv = _gt(messy, "invalid_rows.csv")
    assert set(inv["rule_id"]) == {"V01", "V05", "V05F", "V06", "V06N", "V15"}
    registry = set(pd.read_csv(messy / "registry" / "fasilitas.csv", dtype=str)["kode_faskes"])
    manifest = pd.read_csv(messy / "landing" / "_diterima.csv", dtype=str)
    received = manifest.set_index("file")["received_at"]
    for r in inv.itertuples():
        rows = _read_table(messy / "landing" / r.file, r.sheet)
        row = rows[int(r.row_number) - 1]
        cell = row[int(r.column_index)]
        assert cell == r.value, (r.file, r.row_number)
        if r.rule_id == "V01":
            assert cell not in registry
        elif r.rule_id == "V05":
            assert cell in ("", "Maret", "bln lalu") or "-13" in cell or cell.startswith("13/")
        elif r.rule_id == "V05F":
            # the period written is more than a year after the intended one, after the file arrived
            assert received[r.file][:4] <= str(int(r.period[:4]) + 1)
            assert cell != r.period
        elif r.rule_id == "V06":
            assert cell.startswith("-") or cell in ("2,5", "2.5", "lima")
        elif r.rule_id == "V06N":
            values = row[int(r.column_index) + 1:]
            assert cell in ("1", "ya", "nihil")
            assert any(v not in ("", "0", "-", "nihil", "tidak ada") for v in values)
        else:  # V15: another row of the same facility and period in the same file
            twins = [x for x in rows if len(x) > 1 and x[1] == r.kode_faskes and x[0] == row[0]]
            assert len(twins) >= 2
    # a quarantined row never counts as received from its own file
    rep = _gt(messy, "reports.csv").set_index(["kode_faskes", "period", "form"])
    for r in inv[inv["rule_id"] != "V01"].itertuples():
        final = rep.loc[(r.kode_faskes, r.period, r.form)]
        assert final["final_file"] != r.file
        if final["n_versions"] == "0":
            assert final["status"] in ("missing", "pending")


def test_wita_cases_and_resubmissions(messy: Path) -> None:
    summary = json.loads((messy / "ground_truth" / "summary.json").read_text(encoding="utf-8"))
    rep = _gt(messy, "reports.csv")
    cases = {c["expected_status"]: c for c in summary["wita_cases"]}
    assert cases["on_time"]["received_at"].endswith("T23:30:00+08:00")
    assert cases["late"]["received_at"].endswith("T00:30:00+08:00")
    for status, case in cases.items():
        r = rep[rep["final_file"] == case["file"]].iloc[0]
        assert r["status"] == status and r["timezone"] == "Asia/Makassar"
    # on time: received on the due date itself; late: the next local day (still the due date in UTC)
    assert cases["on_time"]["received_at"][:10] == cases["on_time"]["due_date"]
    late = datetime.fromisoformat(cases["late"]["received_at"])
    due = date.fromisoformat(cases["late"]["due_date"])
    assert late.date() == due + timedelta(days=1)
    assert late.astimezone(UTC).date() == due  # 00:30 WITA is 16:30 UTC of the due date
    # resubmissions: the final values are the ones in the final file's row
    resub = _gt(messy, "resubmissions.csv")
    assert len(resub) > 0
    checked = 0
    for (kode, _period, form, file, sheet, number), g in resub.groupby(
            ["kode_faskes", "period", "form", "file", "sheet", "row_number"]):
        if not file.endswith(".csv"):
            continue
        row = _read_table(messy / "landing" / file, sheet)[int(number) - 1]
        assert row[1] == kode
        values = row[-len(form_elements(form)):]
        for written, expected in zip(values, g["value"], strict=True):
            number = written.replace(".", "").replace(",", "")
            assert (expected == "" and written == "") or number == expected or (
                expected == "0" and written in ("-", "nihil", "tidak ada"))
        checked += 1
    assert checked > 0


def test_dhis2_files_use_mapped_uids_and_complete_date(messy: Path) -> None:
    mapping = pd.read_csv(messy / "landing" / "dhis2" / "mapping.csv", dtype=str)
    assert set(mapping["kind"]) == {"data_element", "org_unit"}
    # a uid, or a dataElement.categoryOptionCombo pair of uids (issue 16: BCG of Balikpapan)
    uid = r"[A-Za-z][A-Za-z0-9]{10}"
    assert mapping["dhis2_id"].str.match(rf"^{uid}(\.{uid})?$").all()
    uids = {i.split(".")[0] for i in mapping["dhis2_id"]}
    rep = _gt(messy, "reports.csv")
    jsons = sorted((messy / "landing" / "dhis2").glob("*.json"))
    assert jsons
    for path in jsons:
        payload = json.loads(path.read_text(encoding="utf-8"))
        assert {v["orgUnit"] for v in payload["dataValues"]} <= uids
        assert {v["dataElement"] for v in payload["dataValues"]} <= uids
        rel = str(path.relative_to(messy / "landing"))
        got = rep[rep["final_file"] == rel]
        assert len(got) > 0
        assert (got["received_local_date"] == payload["completeDate"][:10]).all()
    # Balikpapan's instance: values split over category option combos, BCG's extra combo
    # unmapped (reported by the import summary), completeDate local time without an offset
    summary = json.loads((messy / "ground_truth" / "summary.json").read_text(encoding="utf-8"))
    unmapped = summary["dhis2_disaggregated"]["unmapped_combo"]["dhis2_id"]
    assert unmapped not in set(mapping["dhis2_id"])
    imun = json.loads(sorted((messy / "landing" / "dhis2").glob("6471_imun_*.json"))[0]
                      .read_text(encoding="utf-8"))
    combos = {f"{v['dataElement']}.{v.get('categoryOptionCombo')}" for v in imun["dataValues"]}
    assert unmapped in combos and len({c.split(".")[1] for c in combos}) == 3
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000$", imun["completeDate"])
    csvs = sorted((messy / "landing" / "dhis2").glob("1872_*.csv"))
    header = csvs[0].read_text(encoding="utf-8").splitlines()[0]
    assert header == ("dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,"
                      "value,storedby,lastupdated,comment,followup")


def test_clean_mode_has_only_well_formed_files(tmp_path: Path) -> None:
    generate(tmp_path, seed=5, as_of=AS_OF, scale="kabupaten", months=2, messy=False)
    assert len(_gt(tmp_path, "invalid_rows.csv")) == 0
    assert len(_gt(tmp_path, "broken_files.csv")) == 0
    files = [p for p in (tmp_path / "landing").rglob("*") if p.is_file() and "dhis2" not in p.parts]
    for p in files:
        if p.suffix == ".csv" and p.name != "_diterima.csv":
            text = p.read_bytes().decode("utf-8")  # plain UTF-8, no BOM
            assert text.startswith("periode,kode_faskes,nama_faskes,")
        elif p.suffix == ".xlsx":
            ws = openpyxl.load_workbook(p).worksheets[0]
            assert next(ws.iter_rows(values_only=True))[:2] == ("periode", "kode_faskes")


def test_default_24_months_kabupaten(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    generate(tmp_path, seed=42, as_of=AS_OF, scale="kabupaten", months=24, messy=True)
    elapsed = time.perf_counter() - t0
    summary = json.loads((tmp_path / "ground_truth" / "summary.json").read_text(encoding="utf-8"))
    assert summary["periods"] == {"first": "2023-06", "last": "2025-05", "n": 24}
    assert summary["facilities_by_type"]["puskesmas"] == 102
    assert 500 <= summary["facilities"] - 102 <= 800
    assert 2000 <= summary["landing_files"] <= 9000
    st = summary["reports_by_status"]
    # most reports on time, a tail of late and missing ones, pending only in the last month(s)
    assert st["on_time"] > 0.7 * summary["reports_expected"]
    assert 0 < st["late"] < 0.2 * summary["reports_expected"]
    assert 0 < st["missing"] < 0.1 * summary["reports_expected"]
    assert st["unexpected"] >= 3
    assert elapsed < 150  # ~25 s of CPU; the margin is for a busy CI machine


@pytest.mark.slow
def test_national_scale_is_fast_and_covers_every_kabkota(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    generate(tmp_path, seed=1, as_of=AS_OF, scale="national", months=1, messy=False)
    elapsed = time.perf_counter() - t0
    summary = json.loads((tmp_path / "ground_truth" / "summary.json").read_text(encoding="utf-8"))
    assert 55_000 <= summary["facilities"] <= 70_000
    # 486 of the 514 kab/kota have a 2019 puskesmas (the newest ones, e.g. Papua 2022, have none)
    assert summary["kabkota"] >= 480
    # one recap per kab/kota × form for the single month
    assert summary["landing_files"] <= summary["kabkota"] * 4
    assert summary["landing_files"] >= 0.95 * summary["kabkota"] * 4
    fas = pd.read_csv(tmp_path / "registry" / "fasilitas.csv", dtype=str, usecols=["kode_faskes"])
    assert fas["kode_faskes"].is_unique and len(fas) == summary["facilities"]
    assert elapsed < 120


def test_area_recaps_are_declared_and_add_up(messy: Path) -> None:
    """Issue 16: area recaps by template column (Kab. Probolinggo) and by kolab.yaml (Kota
    Cilegon): recap = own + network on every element, the column written on the recap row."""
    cfg = yaml.safe_load((messy / "kolab.yaml").read_text(encoding="utf-8"))
    assert cfg["reporting"]["puskesmas_scope_by_kabkota"] == {
        "36.72": {"kia": "wilayah", "imun": "wilayah"}}
    summary = json.loads((messy / "ground_truth" / "summary.json").read_text(encoding="utf-8"))
    recaps = summary["area_recaps"]
    assert recaps["declared_by_column"] and recaps["declared_by_kolab_yaml"]
    assert all(k.startswith("P3513") for k in recaps["declared_by_column"])
    assert all(k.startswith("P3672") for k in recaps["declared_by_kolab_yaml"])
    truth = pd.read_csv(messy / "ground_truth" / "area_recaps.csv",
                        dtype={"reported_value": "Int64", "own_value": "Int64"})
    assert set(truth["form"]) == {"kia", "imun"} and set(truth["lingkup_source"]) == {
        "column", "kolab.yaml"}
    with_value = truth[truth["own_value"].notna()]
    assert (with_value["reported_value"] == with_value["own_value"]
            + with_value["network_value"]).all()
    assert (truth["network_value"] > 0).any()
    # a recap row of a column-declaring puskesmas, in its final file, says so in its cell
    row = truth[truth["lingkup_source"] == "column"].iloc[0]
    rep = _gt(messy, "reports.csv").set_index(["kode_faskes", "period", "form"])
    final = rep.loc[(row["kode_faskes"], row["period"], row["form"])]["final_file"]
    sheet = {"kia": "KIA", "imun": "Imunisasi"}[row["form"]] if final.endswith(".xlsx") else ""
    table = _read_table(messy / "landing" / final, sheet)
    header = next(r for r in table if any(c.lower().startswith("periode") for c in r))
    col = [c.lower().replace(" ", "_") for c in header].index("lingkup_laporan")
    cells = [r[col] for r in table if len(r) > col and r[1] == row["kode_faskes"]]
    assert cells and all(c in ("wilayah", "Wilayah Kerja", "WILAYAH", "rekap wilayah")
                         for c in cells)
