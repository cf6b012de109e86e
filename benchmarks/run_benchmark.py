"""Benchmark the whole pipeline at kabupaten or national scale (issue 9).

    .venv/bin/python benchmarks/run_benchmark.py --scale national|kabupaten [--months 12]
        [--fraction 1] [--series] [--keep] [--no-dagster] [--no-incremental] [--workdir DIR]

What it does (every number is printed, none is asserted):

1. Generates the sample (`kolab sample-data --scale S --months M+1 --as-of A`, in a subprocess,
   timed separately) into a temp KOLAB_HOME, and hides the last month's landing folders so the
   first run sees exactly M months.
2. Runs the **reference floor** (`benchmarks/floor.py`: DuckDB alone, read_csv glob → unpivot →
   join facility → kab/kota → month and YTD sums) on the same landing files.
3. Runs the pipeline stage by stage — reference, ingest, clean, compliance, indicators,
   evaluation, each with its asset checks — calling the same pure functions the Dagster assets
   call, into a fresh DuckDB file. **Each stage runs in its own subprocess**; its peak resident
   memory is that process's `ru_maxrss` as returned by `os.wait4` (pinned method: the kernel's
   high-water mark of the whole process, DuckDB's native memory included, Python interpreter and
   imports included — about 0.2 GB of every figure is that baseline).
4. Runs one full `kolab run` (Dagster, in-process executor, checks included) on a second fresh
   warehouse, so Dagster's overhead is visible next to the stage total.
5. Reveals the hidden month and runs the stages again for that month only (incremental), then once
   more with nothing new (the fixed overhead of a run: landing scan, clean with nothing to rebuild
   and its checks), and the Dagster run for that month (`kolab run --month`).
6. `--series`: generates and runs 1/8, 1/4, 1/2 and 1 of the national kab/kota list and fits
   seconds ≈ a × rows^b (least squares on logs) per stage and for the total.

Rows per second are **rows in** ÷ wall seconds, where "rows in" is what the stage reads: landing
data rows (ingest), raw rows (clean), clean submissions (compliance), clean values (indicators),
indicator + rate rows (evaluation). Rows out are the rows the stage writes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

STAGES = ("reference", "ingest", "clean", "compliance", "indicators", "evaluation")
RESULT_MARK = "BENCH_RESULT "
DEFAULT_AS_OF = "2026-02-20"   # last complete month 2026-01: 13 months = 2025-01..2026-01
SERIES = (1 / 8, 1 / 4, 1 / 2, 1.0)


# --- stage bodies (run inside the child process) ---------------------------------------------

def _count(con, sql: str, params: list | None = None) -> int:
    return int(con.execute(sql, params or []).fetchone()[0])


def stage_reference(con, settings, periods):
    from kolab_pipeline import reference

    reference.load_wilayah(con)
    reference.load_catalogues(con)
    counts = reference.load_registry(con, settings)
    rows_in = _count(con, "SELECT count(*) FROM reference.facility")
    return rows_in, sum(int(v) for v in counts.values() if isinstance(v, int)), {}


def stage_ingest(con, settings, periods):
    from kolab_pipeline import raw

    summary = raw.ingest_landing(con, settings, run_id="bench")
    bad = raw.unreconciled_files(con)                      # blocking check rows_read_reconcile
    con.close()
    gx = _gx("raw_submission_row", settings)
    return summary.rows_read, summary.rows_kept + summary.cells, {
        "files": summary.files_ingested + summary.files_rejected,
        "files_skipped": summary.files_skipped, "cells": summary.cells,
        "unreconciled": len(bad), "gx_raw_row": gx}


def _gx(suite_name: str, settings) -> bool:
    """The GX warning check `suite_name`, run by the function the asset check calls."""
    from data_quality import clean_checks
    from kolab_pipeline.orchestration.resources import KolabHome
    from kolab_pipeline.warehouse import connect

    con = connect(_DB[0])
    try:
        result = clean_checks.run_gx_suite(con, KolabHome(home=str(settings.paths.home)),
                                           suite_name)
        return bool(result.passed)
    finally:
        con.close()


def stage_clean(con, settings, periods):
    from kolab_pipeline import clean

    summary = clean.build_clean(con, settings)
    acc = clean.accounting(con, sample_size=10)             # blocking checks of clean_checks.py
    dup, _ = clean.duplicate_current_versions(con, 10)
    unresolved, _ = clean.unresolved_keys(con, 10)
    out = _count(con, "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})"
                                             for t in clean.CLEAN_TABLES))
    con.close()
    gx = all(_gx(s, settings)
             for s in ("clean_submission", "clean_submission_value", "clean_quarantine"))
    return int(summary["raw_rows"]), out, {
        "kept_rows": int(summary["kept_rows"]), "quarantined": int(summary["quarantined_rows"]),
        "accounted": bool(acc["ok"]), "dup_current": int(dup), "unresolved": int(unresolved),
        "gx": gx}


def stage_compliance(con, settings, periods):
    from kolab_pipeline import compliance

    rows_in = _count(con, "SELECT count(*) FROM clean.submission WHERE list_contains(?, period)",
                     [periods])
    written = compliance.run_compliance(con, settings, periods)
    th = settings.config.thresholds
    below = compliance.units_below_threshold
    flagged = sum(len(compliance.missing_after_cutoff(con, p))
                  + len(below(con, p, "completeness", th.completeness_pct))
                  + len(below(con, p, "timeliness", th.timeliness_pct))
                  for p in periods)
    return rows_in, sum(written.values()), {**written, "check_rows": flagged}


def stage_indicators(con, settings, periods):
    from kolab_pipeline import indicators
    from kolab_pipeline.indicators import dq

    rows_in = _count(con, "SELECT count(*) FROM clean.submission_value "
                          "WHERE list_contains(?, period)",
                     [periods])
    years = sorted({int(p[:4]) for p in periods})
    n_sas = indicators.resolve_sasaran(con, settings, years)
    t = time.perf_counter()
    written = indicators.compute_indicator_values(con, settings, periods)
    t_values = time.perf_counter() - t
    t = time.perf_counter()
    flags = dq.compute_dq_flags(con, settings, periods)
    t_dq = time.perf_counter() - t
    t = time.perf_counter()
    mismatches = sum(len(indicators.reconcile_totals(con, p)) for p in periods)   # blocking check
    above = sum(len(indicators.coverage_above_100(con, p)) for p in periods)
    t_checks = time.perf_counter() - t
    out = _count(con, "SELECT (SELECT count(*) FROM indicators.indicator_value "
                      "WHERE list_contains(?, period)) + "
                      "(SELECT count(*) FROM indicators.network_contribution "
                      "WHERE list_contains(?, period)) + "
                      "(SELECT count(*) FROM indicators.dq_flag WHERE list_contains(?, period))",
                 [periods, periods, periods])
    return rows_in, out + n_sas, {"mismatches": mismatches, "above_100": above,
                                  "s_values": round(t_values, 1), "s_dq": round(t_dq, 1),
                                  "s_checks": round(t_checks, 1),
                                  "written": str(written)[:80], "flags": str(flags)[:80]}


def stage_evaluation(con, settings, periods):
    from kolab_pipeline import evaluation, exports, report

    rows_in = _count(con, "SELECT (SELECT count(*) FROM indicators.indicator_value "
                          "WHERE list_contains(?, period)) + "
                          "(SELECT count(*) FROM compliance.reporting_rate "
                          "WHERE list_contains(?, period))",
                     [periods, periods])
    timings = {}
    t = time.perf_counter()
    evaluation.build_followup(con, settings, periods)  # moved from compliance.run_compliance
    evaluation.build_key_indicator(con, settings, periods)
    evaluation.build_scorecard(con, settings, periods)
    evaluation.build_wilayah_scorecard(con, settings, periods)
    timings["s_scorecards"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    parquet = exports.write_parquet(con, settings)
    timings["s_parquet"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    # the assets write documents for the run's latest month (kolab.yaml evaluation.documents)
    doc_periods = settings.config.evaluation.document_periods(periods)
    workbooks = exports.write_workbooks(con, settings, doc_periods)
    timings["s_workbooks"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    reports = report.render_reports(con, settings, doc_periods)
    timings["s_reports"] = round(time.perf_counter() - t, 1)
    out = _count(con, "SELECT (SELECT count(*) FROM evaluation.scorecard "
                      "WHERE list_contains(?, period)) + "
                      "(SELECT count(*) FROM evaluation.key_indicator "
                      "WHERE list_contains(?, period)) + "
                      "(SELECT count(*) FROM evaluation.wilayah_scorecard "
                      "WHERE list_contains(?, period))",
                 [periods, periods, periods])
    return rows_in, out, {**timings, "parquet_files": len(parquet), "workbooks": len(workbooks),
                          "reports": len(reports)}


_DB: list[str] = [""]


def run_stage_child(name: str, home: Path, db: Path, periods: list[str]) -> None:
    """Child process body: one stage on the warehouse `db`; prints one JSON result line."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["KOLAB_HOME"] = str(home)
    from kolab_pipeline.config import Settings
    from kolab_pipeline.warehouse import connect, ensure_schema

    settings = Settings.load(home)
    _DB[0] = str(db)
    t0 = time.perf_counter()
    con = connect(db)
    ensure_schema(con)
    body = globals()[f"stage_{name}"]
    rows_in, rows_out, extra = body(con, settings, periods)
    with contextlib.suppress(Exception):  # ingest/clean close it before their GX checks
        con.close()
    seconds = time.perf_counter() - t0
    print(RESULT_MARK + json.dumps({"stage": name, "seconds": seconds, "rows_in": rows_in,
                                    "rows_out": rows_out, "extra": extra}), flush=True)


# --- parent: subprocesses with peak memory ---------------------------------------------------

@dataclass
class Measured:
    name: str
    seconds: float
    peak_mb: float
    rows_in: int = 0
    rows_out: int = 0
    extra: dict = field(default_factory=dict)
    output: str = ""


def run_measured(name: str, argv: list[str], env: dict[str, str] | None = None,
                 log: Path | None = None) -> Measured:
    """Run `argv` as a child; wall seconds and its peak RSS (`os.wait4` ru_maxrss, KiB on Linux)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    t0 = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    if log is not None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"\n===== {name}: {' '.join(argv)}\n{text}")
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise RuntimeError(f"{name} failed (exit {proc.returncode}):\n{tail}")
    m = Measured(name, seconds, usage.ru_maxrss / 1024, output=text)
    for line in text.splitlines():
        if line.startswith(RESULT_MARK):
            r = json.loads(line[len(RESULT_MARK):])
            m.rows_in, m.rows_out, m.extra = r["rows_in"], r["rows_out"], r["extra"]
    return m


def run_stages(home: Path, db: Path, periods: list[str], log: Path,
               stages: tuple[str, ...] = STAGES) -> list[Measured]:
    out = []
    for name in stages:
        argv = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--home", str(home),
                "--db", str(db), "--periods", ",".join(periods)]
        m = run_measured(name, argv, log=log)
        print(f"    … {name:<11} {m.seconds:8.1f} s  peak {m.peak_mb:7.0f} MB", flush=True)
        out.append(m)
    return out


# --- data ------------------------------------------------------------------------------------

def generate(home: Path, scale: str, months: int, as_of: str, fraction: float,
             log: Path) -> Measured:
    code = ("import sys; from datetime import date; from pathlib import Path; "
            "from kolab_pipeline.sample import generate; "
            "print(generate(Path(sys.argv[1]), seed=42, as_of=date.fromisoformat(sys.argv[2]), "
            "scale=sys.argv[3], months=int(sys.argv[4]), messy=True, fraction=float(sys.argv[5])))")
    return run_measured("generate", [sys.executable, "-c", code, str(home), as_of, scale,
                                     str(months), str(fraction)], log=log)


def month_dirs(landing: Path, period: str) -> list[Path]:
    """Landing folders/files of one month: `<kab>/<form>/<period>/` (both scales), plus any file
    whose name carries the period (clinic files, DHIS2 sets)."""
    found = [p for p in landing.glob(f"*/*/{period}") if p.is_dir()]
    month_folders = set(found)   # a set: national landing has ~25,000 files and ~2,000 such folders
    compact = period.replace("-", "")
    for p in landing.rglob("*"):
        if p.is_file() and month_folders.isdisjoint(p.parents) and not p.name.startswith("_") \
                and (period in p.name or compact in p.name):
            found.append(p)
    return found


def hide(landing: Path, period: str, store: Path) -> int:
    n = 0
    for p in month_dirs(landing, period):
        target = store / p.relative_to(landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(p), str(target))
        n += 1
    return n


def reveal(landing: Path, store: Path) -> None:
    for p in sorted(store.rglob("*")):
        if p.is_file():
            target = landing / p.relative_to(store)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)   # keeps the mtime (= received time when no manifest entry)


OUTPUTS = ("exports", "reports", "data_docs")


def use_outputs(home: Path, which: str) -> None:
    """Give the warehouse `which` ('stages' or 'dagster') its own exports, reports and GX results:
    documents and suite results are reused when their inputs are unchanged, so the `kolab run`
    on the second warehouse must not find the ones the stage run wrote (and vice versa)."""
    other = "dagster" if which == "stages" else "stages"
    for name in OUTPUTS:
        live, parked, mine = home / name, home / f".{name}_{other}", home / f".{name}_{which}"
        if live.exists():
            if parked.exists():
                shutil.rmtree(parked)
            live.rename(parked)
        if mine.exists():
            mine.rename(live)


# --- report ----------------------------------------------------------------------------------

def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>11,.0f}" if seconds > 0 else f"{'-':>11}"


def print_stages(title: str, stages: list[Measured], dagster: Measured | None = None,
                 floor_s: float | None = None) -> float:
    print(f"\n{title}")
    print(f"  {'stage':<12}{'wall s':>9}{'rows in':>13}{'rows out':>13}"
          f"{'rows in/s':>12}{'peak MB':>9}")
    for m in stages:
        print(f"  {m.name:<12}{m.seconds:>9.1f}{m.rows_in:>13,}{m.rows_out:>13,}"
              f"{_rate(m.rows_in, m.seconds)}{m.peak_mb:>9.0f}")
    total = sum(m.seconds for m in stages)
    rows = next((m.rows_in for m in stages if m.name == "ingest"), 0)
    peak = max((m.peak_mb for m in stages), default=0)
    print(f"  {'TOTAL':<12}{total:>9.1f}{rows:>13,}{'':>13}{_rate(rows, total)}{peak:>9.0f}"
          "   (rows in = landing rows; peak = max of the stages)")
    if dagster is not None:
        print(f"  {'kolab run':<12}{dagster.seconds:>9.1f}{'':>13}{'':>13}"
              f"{_rate(rows, dagster.seconds)}"
              f"{dagster.peak_mb:>9.0f}   (Dagster in-process, checks included; overhead "
              f"{dagster.seconds - total:+.1f} s vs stage total)")
    if floor_s:
        print(f"  ratio pipeline ÷ floor: {total / floor_s:.1f}× (stages), "
              + (f"{dagster.seconds / floor_s:.1f}× (kolab run)" if dagster else ""))
    for m in stages:
        if m.extra:
            print(f"    {m.name}: " + ", ".join(f"{k}={v}" for k, v in m.extra.items()))
    return total


def fit_exponent(xs: list[float], ys: list[float]) -> float:
    """b of y = a·x^b, least squares on logs."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((x - mx) ** 2 for x in lx)
    if not den:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / den


# --- main ------------------------------------------------------------------------------------

def load_line() -> str:
    try:
        return ("load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
                + f" on {os.cpu_count()} cores")
    except OSError:
        return "load average unknown"


def full_run(work: Path, args: argparse.Namespace, fraction: float, log: Path, *,
             dagster: bool, incremental: bool) -> dict:
    """Generate, floor, stages (+ Dagster, + incremental) for one data size; prints as it goes."""
    extra_month = 1 if incremental else 0
    home = work / f"home_{args.scale}_{fraction:.3f}_{args.months + extra_month}m"
    print(f"\n## {args.scale} scale, fraction {fraction:g}, {args.months} months"
          f"{' + 1 incremental' if incremental else ''} — KOLAB_HOME={home}", flush=True)
    if args.reuse and (home / "ground_truth" / "summary.json").exists():
        # the warehouses of an earlier run go; the generated landing files stay (as generated)
        for stale in ("bench_stages.duckdb", "kolab.duckdb", ".dagster", *OUTPUTS,
                      *(f".{n}_{w}" for n in OUTPUTS for w in ("stages", "dagster"))):
            path = home / stale
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        gen = Measured("generate", 0.0, 0.0,
                       output="(reused the sample generated by an earlier run)")
    else:
        if home.exists():
            shutil.rmtree(home)
        gen = generate(home, args.scale, args.months + extra_month, args.as_of, fraction, log)
    print(f"generation: {gen.seconds:.1f} s, peak {gen.peak_mb:.0f} MB (not part of the pipeline)")
    print("  " + gen.output.strip().splitlines()[-1][:300])
    from kolab_pipeline.config import Settings
    from kolab_pipeline.sample import sample_periods as sp

    cfg = Settings.load(home).config
    periods = sp(date.fromisoformat(args.as_of), args.months + extra_month, cfg)
    landing = home / "landing"
    held = work / f"held_{fraction:.3f}"
    if held.exists():
        shutil.rmtree(held)
    full_periods = periods[:args.months]
    inc_period = periods[-1] if incremental else None
    if inc_period:
        n = hide(landing, inc_period, held)
        print(f"hid month {inc_period} ({n} folders/files) for the full-year run")
    print(load_line())

    result: dict = {"fraction": fraction, "generate": gen}
    if args.scale == "national":
        code = ("import sys, json; sys.path.insert(0, sys.argv[4]); from floor import run_floor; "
                "from pathlib import Path; "
                "r = run_floor(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])); "
                f"print('{RESULT_MARK}' + json.dumps({{'stage': 'floor', 'seconds': r.seconds, "
                "'rows_in': r.rows_in, 'rows_out': r.rows_out, "
                "'extra': {'files': r.files, 'cells': r.cells}}))")
        fl = run_measured("floor", [sys.executable, "-c", code, str(landing),
                                    str(home / "registry" / "fasilitas.csv"),
                                    str(work / "floor.duckdb"),
                                    str(Path(__file__).resolve().parent)], log=log)
        print(f"floor (DuckDB alone: read_csv glob → unpivot → join kab/kota → month + YTD): "
              f"{fl.seconds:.1f} s, peak {fl.peak_mb:.0f} MB, {fl.rows_in:,} rows in, "
              f"{fl.extra.get('cells', 0):,} cells, {fl.rows_out:,} rows out", flush=True)
        result["floor"] = fl
    else:
        fl = None
        print("floor: skipped (kabupaten files are deliberately messy: "
              "a read_csv glob cannot read them)")

    db = home / "bench_stages.duckdb"
    stages = run_stages(home, db, full_periods, log)
    result["stages"] = stages
    dg_run = None
    if dagster:
        use_outputs(home, "dagster")
        dg_run = run_measured("kolab run", [sys.executable, "-m", "kolab_pipeline.cli",
                                            "--home", str(home), "run"],
                              log=log)
        use_outputs(home, "stages")
        result["dagster"] = dg_run
    print_stages(f"### full run: {len(full_periods)} months {full_periods[0]}..{full_periods[-1]} "
                 f"({load_line()})", stages, dg_run, fl.seconds if fl else None)

    if inc_period:
        reveal(landing, held)
        inc = run_stages(home, db, [inc_period], log)
        result["incremental"] = inc
        noop = run_stages(home, db, [inc_period], log, stages=("ingest", "clean"))
        result["noop"] = noop
        dg_inc = None
        if dagster:
            use_outputs(home, "dagster")
            dg_inc = run_measured("kolab run --month",
                                  [sys.executable, "-m", "kolab_pipeline.cli", "--home",
                                   str(home), "run", "--month", inc_period], log=log)
        print_stages(f"### incremental: month {inc_period} added after the full year "
                     f"({load_line()})",
                     inc, dg_inc)
        full_total = sum(m.seconds for m in stages)
        inc_total = sum(m.seconds for m in inc)
        print(f"  full year ÷ 12 = {full_total / len(full_periods):.1f} s; "
              f"incremental month = {inc_total:.1f} s "
              f"→ {inc_total / (full_total / len(full_periods)):.2f}× a twelfth")
        print("  per stage (incremental vs full ÷ months): " + ", ".join(
            f"{a.name} {b.seconds:.1f}/{a.seconds / len(full_periods):.1f}"
            for a, b in zip(stages, inc, strict=True)))
        print("  fixed overhead, nothing new (ingest scan + clean with its checks): "
              + ", ".join(f"{m.name} {m.seconds:.1f} s" for m in noop)
              + f" = {sum(m.seconds for m in noop):.1f} s")
        if dg_inc is not None:
            print(f"  kolab run --month {inc_period}: {dg_inc.seconds:.1f} s, "
                  f"peak {dg_inc.peak_mb:.0f} MB")
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(held, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=["national", "kabupaten"], default="national")
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--fraction", type=float, default=1.0,
                   help="share of the national kab/kota list")
    p.add_argument("--series", action="store_true",
                   help="also run 1/8, 1/4, 1/2, 1 and fit the exponent")
    p.add_argument("--keep", action="store_true", help="keep the generated homes and warehouses")
    p.add_argument("--no-dagster", action="store_true", help="skip the `kolab run` comparison")
    p.add_argument("--no-incremental", action="store_true",
                   help="skip the one-month incremental run")
    p.add_argument("--as-of", default=DEFAULT_AS_OF)
    p.add_argument("--reuse", action="store_true",
                   help="reuse a sample generated into --workdir by an earlier --keep run")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where homes go (default: a temp folder)")
    # child mode
    p.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    p.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--periods", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.stage:
        run_stage_child(args.stage, args.home, args.db, [x for x in args.periods.split(",") if x])
        return 0
    if not 0 < args.fraction <= 1:
        p.error("--fraction must be in (0, 1]")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kolab_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "bench_children.log"
    print(f"kolab benchmark: scale {args.scale}, {args.months} months, fraction {args.fraction:g}; "
          f"work folder {work}; child output in {log}")
    print("peak memory = ru_maxrss of each stage's own subprocess (os.wait4); "
          f"rows/s = rows in ÷ wall s; {load_line()}")
    main_result = full_run(work, args, args.fraction, log, dagster=not args.no_dagster,
                           incremental=not args.no_incremental)
    if args.series:
        if args.scale != "national":
            print("\n--series is for the national scale (fractions of its kab/kota list); skipped")
        else:
            points = []
            for f in SERIES:
                if abs(f - args.fraction) < 1e-9:
                    r = main_result
                else:
                    r = full_run(work, args, f, log, dagster=False, incremental=False)
                points.append(r)
            print("\n### scaling series (fractions of the national kab/kota list)")
            print(f"  {'fraction':>8}{'landing rows':>14}" + "".join(f"{s:>12}" for s in STAGES)
                  + f"{'total s':>10}{'floor s':>9}{'peak MB':>9}")
            for r in points:
                st = r["stages"]
                rows = next(m.rows_in for m in st if m.name == "ingest")
                fl = r.get("floor")
                print(f"  {r['fraction']:>8.3f}{rows:>14,}"
                      + "".join(f"{m.seconds:>12.1f}" for m in st)
                      + f"{sum(m.seconds for m in st):>10.1f}"
                      + f"{fl.seconds if fl else float('nan'):>9.1f}"
                      + f"{max(m.peak_mb for m in st):>9.0f}")
            xs = [next(m.rows_in for m in r["stages"] if m.name == "ingest") for r in points]
            exps = {s: fit_exponent(xs, [max(next(m.seconds for m in r["stages"] if m.name == s),
                                             1e-3)
                                         for r in points]) for s in STAGES}
            total_exp = fit_exponent(xs, [sum(m.seconds for m in r["stages"]) for r in points])
            print("  fitted exponent b (seconds ∝ rows^b): "
                  + ", ".join(f"{s} {b:.2f}" for s, b in exps.items())
                  + f"; TOTAL {total_exp:.2f}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
