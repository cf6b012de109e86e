"""The offline evaluation report `KOLAB_HOME/reports/<kode_kabkota>/<YYYY-MM>.html`: one
self-contained Indonesian HTML page per kab/kota × month for the Dinkes evaluation meeting.

CSS and SVG charts are inline, there is no script and nothing is fetched from a network. Section
ids (used by the tests): `ringkasan`, `indikator`, `peringkat`, `tren` (`grafik-tren`),
`tindak-lanjut`, `capaian` (`grafik-capaian-<program>`), `kontribusi` (`grafik-kontribusi`),
`peta`, `kualitas-data`. `data` reads the warehouse, `context` decides what to show, `charts`
draws, this module renders and writes.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from kolab_pipeline.config import Settings, document_workers
from kolab_pipeline.exports import fingerprint
from kolab_pipeline.labels import period_label
from kolab_pipeline.report import charts, context, geo
from kolab_pipeline.report.context import Job
from kolab_pipeline.report.data import ReportData, extract

__all__ = ["Job", "ReportData", "build_context", "extract", "period_label", "render_report",
           "render_reports", "report_path", "workers"]

TEMPLATES = Path(__file__).parent.parent / "templates_html"
WORKBOOK_NAME = "evaluasi_{kab}_{period}.xlsx"  # exports.workbook_path names the same file


def report_path(settings: Settings, kode_kabkota: str, period: str) -> Path:
    return settings.paths.reports / kode_kabkota / f"{period}.html"


def _job(settings: Settings, kode_kabkota: str, period: str,
         generated_at: datetime | None = None) -> Job:
    th = settings.config.thresholds
    path = report_path(settings, kode_kabkota, period)
    workbook = settings.paths.exports / WORKBOOK_NAME.format(kab=kode_kabkota, period=period)
    features = geo.features_for(settings.paths.registry, kode_kabkota)
    return Job(kode_kabkota=kode_kabkota, period=period, path=path,
               completeness_pct=th.completeness_pct, timeliness_pct=th.timeliness_pct,
               key_indicators=tuple(settings.config.evaluation.key_indicators),
               generated_at=generated_at or datetime.now(UTC),
               timezone=settings.config.timezones.for_wilayah(kode_kabkota),
               workbook=Path(os.path.relpath(workbook, path.parent)).as_posix(),
               boundary_file=str(settings.paths.registry / geo.FILE_NAME),
               features=None if features is None else tuple(features))


def build_context(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                  period: str) -> dict[str, Any]:
    """Everything the template shows for one kab/kota × month."""
    return context.build(_job(settings, kode_kabkota, period),
                         extract(con, period, [kode_kabkota])[kode_kabkota])


@cache
def _template() -> jinja2.Template:
    """The compiled template, once per process."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2")


def _write(path: Path, html: str) -> Path:
    """Write via a temp file + rename: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _render(item: tuple[Job, ReportData]) -> Path:
    job, data = item
    charts.new_page()
    return _write(job.path, _template().render(**context.build(job, data)))


# Fewer reports than this are rendered in the run's own process: starting a worker (Python,
# the package, vl-convert's renderer) costs about as much as rendering two reports.
MIN_PARALLEL = 4
# Chunks per worker: large enough that pickling stays cheap, small enough to balance the load
# (kab/kota differ in size).
CHUNKS_PER_WORKER = 4


# What a report depends on besides its data and job (`exports.fingerprint.code_digest`).
REPORT_CODE = ("report", "templates_html", "labels.py", "judgement.py", "catalog")


def inputs_key(job: Job, data: ReportData) -> str:
    """The report's inputs: its data, its job without the time it is made, the boundary file
    (by size and time) and the code that renders it."""
    boundary = Path(job.boundary_file)
    stat = boundary.stat() if boundary.exists() else None
    return fingerprint.inputs_key(
        [data, replace(job, generated_at=None, features=None),
         (stat.st_size, stat.st_mtime_ns) if stat else None], REPORT_CODE)


def render_report(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                  period: str) -> Path:
    """Render and write the report of one kab/kota × month."""
    job = _job(settings, kode_kabkota, period)
    return _render((job, extract(con, period, [kode_kabkota])[kode_kabkota]))


def workers() -> int:
    """Rendering processes (`config.document_workers`, shared with the workbooks)."""
    return document_workers()


def _render_parallel(todo: list[tuple[Job, ReportData]], n: int) -> Iterator[Path]:
    """`_render` of every item in `n` spawned processes, yielded in item order as they are
    written. Each worker imports the renderer once and renders chunks of items (one pickle per
    chunk)."""
    chunk = max(1, math.ceil(len(todo) / (n * CHUNKS_PER_WORKER)))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        try:
            yield from pool.map(_render, todo, chunksize=chunk)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # fail fast: drop the queued chunks
            raise


def render_reports(con: duckdb.DuckDBPyConnection, settings: Settings,
                   periods: Sequence[str]) -> list[Path]:
    """Every kab/kota with a scorecard in each period, in kab/kota order.

    The data is read here, one query per table for all kab/kota of a month; a report whose
    inputs (`inputs_key`) are those it was written from is left as it is; the others are
    rendered by `workers()` spawned processes, in chunks (from MIN_PARALLEL reports on). Not
    threads: vl-convert renders every chart of a process on one JavaScript worker, so threads
    wait on each other; not forked: DuckDB's threads and the renderer must not be forked. As
    with any spawned process, a script that calls this needs the `if __name__ == "__main__":`
    guard (the CLI, Dagster and pytest have it); `KOLAB_WORKERS=1` renders in this process."""
    generated_at = datetime.now(UTC)
    items: list[tuple[Job, ReportData]] = []
    for p in periods:
        kabs = [r[0] for r in con.execute(
            "SELECT DISTINCT kode_kabkota FROM evaluation.scorecard WHERE period = $p "
            "AND kode_kabkota IS NOT NULL ORDER BY 1", {"p": p}).fetchall()]
        data = extract(con, p, kabs) if kabs else {}
        items += [(_job(settings, k, p, generated_at), data[k]) for k in kabs]
    # a report whose inputs did not change since it was written is left as it is
    keys = {job.path: inputs_key(job, data) for job, data in items}
    todo = [(job, data) for job, data in items if not fingerprint.unchanged(job.path,
                                                                             keys[job.path])]
    n = min(workers(), len(todo)) if len(todo) >= MIN_PARALLEL else 1
    if multiprocessing.current_process().daemon:
        n = 1  # a daemonic process may not start children
    written = map(_render, todo) if n <= 1 else _render_parallel(todo, n)
    for path in written:  # recorded as written: a failed report leaves the others recorded
        fingerprint.record(path, keys[path])
    return [job.path for job, _ in items]
