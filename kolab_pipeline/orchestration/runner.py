"""`kolab run`: materialise every asset in-process, on the persistent Dagster instance in
`KOLAB_HOME/.dagster` (the one `make ui` shows).

Two runs with the in-process executor: `ingest_job`, then `monthly_job` over the months present
(or `--month`: one month, or every month from the earliest to the latest given, plus the later
months of the same year, whose YTD rows include them) as one run over a partition range. Before
them the quick `kolab check` findings are printed as warnings; after them a summary a person
reads (`onboarding.feedback`: receipt sources, late / missing reports, quarantined rows with
"did you mean …", what was ignored). Progress lines come from the run's event log; a failure
raises `PipelineFailed` with one line. `release_dead_runs` frees what a killed `kolab run` left
behind.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.partitions import DOCUMENTS_TAG, key_to_period, range_tags
from kolab_pipeline.warehouse import WarehouseBusyError, connect, tables

DAGSTER_DIR = ".dagster"
POOL = "duckdb_writer"

# Instance config for `kolab run` and `make ui` (SQLite storage under KOLAB_HOME/.dagster).
# pools.default_limit: 1 → every pool, `duckdb_writer` included, runs one step at a time across
# all runs of this instance; granularity op → the limit is enforced per step, also in-process.
LOCAL_INSTANCE_YAML = """\
# Written by `kolab run` (kolab_pipeline/orchestration/runner.py); used by `make ui` too.
# Production uses deploy/dagster.yaml (PostgreSQL) instead.
concurrency:
  pools:
    default_limit: 1        # duckdb_writer: one writing step at a time (DuckDB = 1 writer)
    granularity: op
telemetry:
  enabled: false
"""

# Main tables listed in the summary (only those in the contract are counted).
SUMMARY_TABLES = (
    "reference.facility", "clean.submission", "clean.submission_value", "clean.quarantine",
    "compliance.report_status", "compliance.reporting_rate", "indicators.indicator_value",
    "indicators.network_contribution", "indicators.dq_flag", "evaluation.followup",
    "evaluation.scorecard",
)

# The progress lines replace Dagster's console log (the event log keeps everything for the UI).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

EventType = dg.DagsterEventType
_WATCHED = {
    EventType.STEP_START, EventType.ASSET_MATERIALIZATION, EventType.ASSET_CHECK_EVALUATION,
    EventType.STEP_FAILURE, EventType.STEP_UP_FOR_RETRY, EventType.ENGINE_EVENT,
}


class PipelineFailed(RuntimeError):
    """A run failed; the message is one line naming the job, the months and the failing step."""


def instance_dir(settings: Settings) -> Path:
    return settings.paths.home / DAGSTER_DIR


def ensure_instance_dir(settings: Settings) -> Path:
    """Create `KOLAB_HOME/.dagster` with the local `dagster.yaml` (kept if it already exists)."""
    path = instance_dir(settings)
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML, encoding="utf-8")
    return path


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance in `KOLAB_HOME/.dagster`."""
    return dg.DagsterInstance.from_config(str(ensure_instance_dir(settings)))


# --- month selection -------------------------------------------------------------------------

def months_present(settings: Settings) -> list[str]:
    """Distinct `clean.submission.period` values (empty when the table does not exist yet)."""
    if not settings.paths.warehouse.exists():
        return []
    con = connect(settings.paths.warehouse, read_only=True)
    try:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'clean' AND table_name = 'submission'").fetchone()[0]
        if not exists:
            return []
        rows = con.execute("SELECT DISTINCT period FROM clean.submission "
                           "WHERE period IS NOT NULL ORDER BY period").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def ytd_followups(requested: Sequence[str], present: Sequence[str]) -> list[str]:
    """Months present after a requested month in the same year: their YTD rows include it."""
    return sorted({p for p in present for m in requested if p[:4] == m[:4] and p > m}
                  - set(requested))


@dataclass
class MonthPlan:
    """Which months the monthly run covers and why."""

    months: list[str]                         # requested or present, within the partitions
    followups: list[str] = field(default_factory=list)   # later, added for YTD correctness
    outside: list[str] = field(default_factory=list)     # requested/present but no partition
    inside: list[str] = field(default_factory=list)      # present between requested months

    @property
    def range(self) -> tuple[str, str] | None:
        every = sorted({*self.months, *self.followups, *self.inside})
        return (every[0], every[-1]) if every else None

    @property
    def every_month(self) -> list[str]:
        """Every month of the range (the run materialises the whole partition range)."""
        if self.range is None:
            return []
        out, month = [], self.range[0]
        while month <= self.range[1]:
            out.append(month)
            month = add_months(month, 1)
        return out

    def notes(self) -> list[str]:
        """Why months the user did not name are run too."""
        out = []
        if self.inside:
            out.append(f"also running {', '.join(self.inside)}: inside the range "
                       f"{self.months[0]}..{self.months[-1]} of the months asked for")
        if self.followups:
            earlier = sorted({m for m in self.months for f in self.followups
                              if m[:4] == f[:4] and m < f})
            out.append(f"also re-running {', '.join(self.followups)}: their year-to-date rows "
                       f"include {', '.join(earlier)}")
        return out


def plan_months(requested: Sequence[str] | None, present: Sequence[str],
                partition_keys: Sequence[str]) -> MonthPlan:
    """Months to run: `requested` (two or more = the range from the earliest to the latest; the
    months with data in between are run too, plus the YTD follow-ups after it) or every month
    present, limited to the monthly partitions (months outside them are reported, not silently
    dropped)."""
    valid = {key_to_period(k) for k in partition_keys}
    wanted = sorted(set(requested)) if requested else sorted(set(present))
    inside = (sorted({p for p in present if wanted[0] < p < wanted[-1]} - set(wanted))
              if requested else [])
    followups = sorted(set(ytd_followups(wanted, present)) - set(inside)) if requested else []
    return MonthPlan(months=[m for m in wanted if m in valid],
                     followups=[m for m in followups if m in valid],
                     outside=[m for m in wanted if m not in valid],
                     inside=[m for m in inside if m in valid])


# --- progress --------------------------------------------------------------------------------

def _row_count(materialization: dg.AssetMaterialization) -> str:
    value = materialization.metadata.get("dagster/row_count")
    return f", {value.value:,} rows" if value is not None else ""


def describe_event(event: dg.DagsterEvent, seen: set[str] | None = None) -> str | None:
    """One progress line for a run event, or None for events not worth a line.

    A range run materialises each monthly asset once per month with the same metadata (the row
    count of the whole range), so with `seen` only the first month's event prints a line; a
    monthly check reports each month, so with `seen` only its first failing month prints one
    (every month's result is in the UI).
    """
    t = event.event_type
    if t == EventType.STEP_START:
        return f"  ▶ {event.step_key} started"
    if t == EventType.ASSET_MATERIALIZATION:
        m = event.step_materialization_data.materialization
        key = m.asset_key.to_user_string()
        if m.partition and seen is not None:
            if key in seen:
                return None
            seen.add(key)
            return f"  ✓ {key} [months of this run]{_row_count(m)}"
        part = f" [{key_to_period(m.partition)}]" if m.partition else ""
        return f"  ✓ {key}{part}{_row_count(m)}"
    if t == EventType.ASSET_CHECK_EVALUATION:
        ev = event.asset_check_evaluation_data
        if ev.passed:
            return None
        part = f" [{key_to_period(ev.partition)}]" if ev.partition else ""
        if ev.partition and seen is not None:
            key = f"check {ev.asset_key.to_user_string()}:{ev.check_name}"
            if key in seen:
                return None
            seen.add(key)
            part = f" [{key_to_period(ev.partition)}, first failing month; every month in the UI]"
        return (f"  ✗ check {ev.asset_key.to_user_string()}:{ev.check_name}{part} failed "
                f"({ev.severity.value}){': ' + ev.description if ev.description else ''}")
    if t == EventType.STEP_FAILURE:
        cause = _root_cause(event.step_failure_data.error, event.message)
        return f"  ✗ {event.step_key} failed: {cause}"
    if t == EventType.STEP_UP_FOR_RETRY:
        return f"  ↻ {event.step_key} will be retried (transient error)"
    if t == EventType.ENGINE_EVENT and (event.message or "").startswith(
            "Step blocked by limit for pool"):
        return (f"  … {event.step_key} waiting for the {POOL} pool "
                "(another run is writing the warehouse)")
    return None


@contextlib.contextmanager
def _progress(instance: dg.DagsterInstance, run_id: str, emit: Callable[[str], None],
              interval: float = 0.3) -> Iterator[None]:
    """Print progress lines from the run's event log while the run executes in this thread."""
    stop = threading.Event()
    cursor: list[str | None] = [None]
    seen: set[str] = set()

    def drain() -> None:
        while True:
            conn = instance.get_records_for_run(run_id, cursor=cursor[0], of_type=_WATCHED)
            for record in conn.records:
                event = record.event_log_entry.dagster_event
                line = describe_event(event, seen) if event else None
                if line:
                    emit(line)
            cursor[0] = conn.cursor
            if not conn.has_more:
                return

    def loop() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a read racing the writer: try next tick
                drain()

    thread = threading.Thread(target=loop, name="kolab-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        drain()


# --- crash recovery --------------------------------------------------------------------------

PID_TAG, HOST_TAG, START_TAG = "kolab/pid", "kolab/host", "kolab/proc_start"


def _proc_start(pid: int) -> str:
    """Start time of a process (clock ticks since boot, Linux `/proc`), '' where unavailable.

    Why: a pid alone can be reused by an unrelated process after a crash; pid + start time
    cannot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 (starttime), after the comm "(…)"


def process_tags() -> dict[str, str]:
    """Tags naming the process that executes a run (read by `release_dead_runs`)."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), START_TAG: _proc_start(pid)}


def _process_gone(tags: dict[str, str]) -> bool:
    """True only when the run's process is provably dead: same host, and the pid is not alive or
    now belongs to a process started at another time. Runs without our tags (launched by the UI)
    or from another host are never touched."""
    try:
        pid = int(tags.get(PID_TAG, ""))
    except ValueError:
        return False
    if tags.get(HOST_TAG) != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    started = tags.get(START_TAG, "")
    return bool(started) and _proc_start(pid) not in ("", started)


def release_dead_runs(instance: dg.DagsterInstance,
                      emit: Callable[[str], None] = print) -> list[str]:
    """Mark the in-progress runs of dead `kolab run` processes failed and free their pool slots.

    Also frees slots still claimed by runs that already ended (nothing can release them later).
    Returns the run ids released.
    """
    released: list[str] = []
    in_progress = instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING,
        dg.DagsterRunStatus.NOT_STARTED]))
    storage = instance.event_log_storage
    for run in in_progress:
        if not _process_gone(run.tags):
            continue
        instance.report_run_failed(
            run, message=f"kolab run: process {run.tags[PID_TAG]} of this run is gone (killed or "
                         "crashed); marked failed by the next `kolab run`")
        storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
        emit(f"released run {run.run_id[:8]} ({run.job_name}): its process {run.tags[PID_TAG]} was "
             f"killed or crashed; marked failed and freed its {POOL} slot")
    with contextlib.suppress(Exception):   # storages without pool support: nothing to free
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run_id not in released and (run is None or run.is_finished):
                storage.free_concurrency_slots_for_run(run_id)
                released.append(run_id)
                emit(f"released the {POOL} slot of run {run_id[:8]}, which had already ended")
    return released


# --- running ---------------------------------------------------------------------------------

def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "(no message)"


def _root_cause(error: object | None, fallback: str | None) -> str:
    """First line of the innermost cause (the user's error, not Dagster's retry wrapper)."""
    message = fallback
    while error is not None:
        message = error.message
        error = error.cause
    return _first_line(message)


def failure_reason(result: dg.ExecuteInProcessResult, label: str) -> str:
    """One line: the job, its months and the first failing step (or blocking check) with its
    message."""
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    for event in result.get_step_failure_events():
        msg = _root_cause(event.step_failure_data.error if event.step_failure_data else None,
                          event.message)
        blocking = [e for e in failed_checks if e.blocking]
        if blocking:
            c = blocking[0]
            detail = f" ({c.description})" if c.description else ""
            return (f"{label}: blocking check {c.asset_key.to_user_string()}:{c.check_name} "
                    f"failed{detail}; step {event.step_key}: {msg}")
        return f"{label}: step {event.step_key} failed: {msg}"
    return f"{label}: run failed"


def _execute(job: dg.JobDefinition, instance: dg.DagsterInstance, label: str,
             emit: Callable[[str], None], tags: dict[str, str] | None = None,
             partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    run_id = str(uuid.uuid4())  # what Dagster's own run ids are
    emit(f"{label}: run {run_id[:8]}")
    start = time.monotonic()
    with _progress(instance, run_id, emit):
        result = job.execute_in_process(instance=instance, run_id=run_id,
                                        tags={**(tags or {}), **process_tags()},
                                        run_config=QUIET,
                                        partition_key=partition_key, raise_on_error=False)
    if not result.success:
        raise PipelineFailed(failure_reason(result, label))
    emit(f"{label}: done in {time.monotonic() - start:.1f} s")
    return result


def _load_definitions(settings: Settings) -> dg.Definitions:
    # The partitions and resources read KOLAB_HOME when the code location is imported.
    os.environ["KOLAB_HOME"] = str(settings.paths.home)
    # Beta/preview notices about Dagster APIs are for developers, not for `kolab run` users.
    for category in (dg.BetaWarning, dg.PreviewWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    from kolab_pipeline.orchestration.definitions import build_definitions

    return build_definitions(settings)


def table_counts(settings: Settings, keys: Sequence[str] = SUMMARY_TABLES) -> dict[str, int]:
    """Row count of each main table that exists in the warehouse."""
    if not settings.paths.warehouse.exists():
        return {}
    con = connect(settings.paths.warehouse, read_only=True)
    try:
        present = {f"{s}.{n}" for s, n in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        return {k: con.execute(f"SELECT count(*) FROM {tables()[k].qualified}").fetchone()[0]
                for k in keys if k in tables() and k in present}
    finally:
        con.close()


def run_pipeline(settings: Settings, months: list[str] | None = None, *,
                 emit: Callable[[str], None] = print,
                 instance: dg.DagsterInstance | None = None) -> str:
    """Materialise the ingest groups, then the monthly groups over the months; return a summary.

    Raises `PipelineFailed` (one line) when a run fails, a blocking check included.
    """
    defs = _load_definitions(settings)
    instance = instance or open_instance(settings)
    emit(f"kolab run: KOLAB_HOME={settings.paths.home}, Dagster instance {instance.root_directory}")
    preflight(settings, emit)
    release_dead_runs(instance, emit)
    try:
        _execute(defs.resolve_job_def("ingest_job"), instance,
                 "ingest_job (reference, raw, clean)", emit)

        monthly = defs.resolve_job_def("monthly_job")
        keys = monthly.partitions_def.get_partition_keys() if monthly.partitions_def else []
        plan = plan_months(months, months_present(settings), keys)
        if plan.outside:
            emit(f"skipped (outside the monthly partitions, see kolab.yaml partitions.start): "
                 f"{', '.join(plan.outside)}")
        for note in plan.notes():
            emit(note)
        if not keys:
            emit("monthly_job: no month-partitioned assets are defined; skipped")
        elif plan.range is None:
            emit("monthly_job: no months to process (no submissions in clean.submission)")
        else:
            first, last = plan.range
            label = f"monthly_job ({first}..{last})" if first != last else f"monthly_job ({first})"
            tags = range_tags(first, last)
            if months:  # documents for the months asked for, not for the YTD follow-ups
                tags[DOCUMENTS_TAG] = ",".join(plan.months)
            _execute(monthly, instance, label, emit, tags=tags)
    except WarehouseBusyError as exc:
        raise PipelineFailed(str(exc)) from None
    return summary(settings, plan if keys else MonthPlan([]))


def preflight(settings: Settings, emit: Callable[[str], None]) -> None:
    """The quick `kolab check` findings, printed as warnings: the run goes on (what the files'
    content says comes in the summary at the end)."""
    from kolab_pipeline.onboarding.check import run_checks

    try:
        report = run_checks(settings.paths.home, deep=False)
    except Exception as exc:  # a check must never stop the run it only advises
        emit(f"pre-flight check skipped: {type(exc).__name__}: {_first_line(str(exc))}")
        return
    if not report.findings:
        emit("pre-flight check (kolab check --quick): nothing to report")
        return
    emit(f"pre-flight check (kolab check --quick): {len(report.errors)} error(s), "
         f"{len(report.warnings)} warning(s), shown as warnings; the run goes on")
    for line in report.lines():
        emit(f"  ⚠ {line}")


def feedback_lines(settings: Settings, periods: Sequence[str]) -> list[str]:
    """The end-of-run feedback (`onboarding.feedback`) of `periods`, from the warehouse."""
    from kolab_pipeline.onboarding import check, feedback

    if not periods or not settings.paths.warehouse.exists():
        return []
    con = connect(settings.paths.warehouse, read_only=True)
    try:
        lines = feedback.summary_lines(feedback.collect(con, settings, periods))
        gaps = check.group_gaps(check.sasaran_gaps(
            con, settings, sorted({int(p[:4]) for p in periods}), resolve=False))
        if gaps:
            lines.append(f"sasaran missing ({len(gaps)} group(s); registry/sasaran.csv):")
            lines += [f"  {check.gap_message(g)}" for g in gaps[:5]]
        return lines
    except Exception as exc:  # the run succeeded: a summary query must not turn it into a failure
        return [f"(feedback skipped: {type(exc).__name__}: {_first_line(str(exc))})"]
    finally:
        con.close()


def summary(settings: Settings, plan: MonthPlan) -> str:
    paths = settings.paths
    rng = plan.range
    months = (f"{rng[0]}..{rng[1]}" if rng and rng[0] != rng[1] else rng[0]) if rng else "none"
    lines = [f"months processed: {months}"]
    lines += feedback_lines(settings, plan.every_month)
    counts = table_counts(settings)
    if counts:
        width = max(len(k) for k in counts)
        lines.append("rows:")
        lines += [f"  {k:<{width}}  {n:>10,}" for k, n in counts.items()]
    lines += [f"warehouse: {paths.warehouse}",
              f"exports:   {paths.exports}",
              f"reports:   {paths.reports}",
              f"runs:      DAGSTER_HOME={instance_dir(settings)} (make ui)"]
    return "\n".join(lines)
