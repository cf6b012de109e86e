"""Workbooks parsed ahead in worker processes while the run goes through the landing folder in
order: openpyxl is pure Python, ~10 ms a template workbook, and a kab/kota landing folder holds
thousands of them. Only the parse moves (bytes → `Parsed`, no warehouse access); the run still
hashes, deduplicates, accepts or rejects every file itself, in landing order, so the raw tables
are the same with or without workers.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from kolab_pipeline.config import Settings
from kolab_pipeline.raw.landing import FORMAT_BY_SUFFIX, LandingEntry, sha256_file
from kolab_pipeline.raw.model import FileRejected, Parsed
from kolab_pipeline.raw.template import parse_template_xlsx

# Fewer workbooks than this are parsed in the run's own process (a worker starts in ~1 s).
MIN_WORKBOOKS = 16
# Workbooks parsed ahead of the run per worker (bounds the parsed frames held in memory).
AHEAD_PER_WORKER = 8

Result = tuple[str, Parsed | FileRejected] | None


def _parse(path: str, rel: str, settings: Settings, max_bytes: int) -> Result:
    """In a worker: (sha256, the parsed workbook or its FileRejected); None when the run must do
    it itself (unreadable, too large, or an error whose exact message the run reports)."""
    try:
        file_id, data, size = sha256_file(Path(path), max_bytes)
    except OSError:
        return None
    if data is None or size == 0:
        return None
    try:
        return file_id, parse_template_xlsx(data, file_id, rel, settings)
    except FileRejected as exc:
        return file_id, exc
    except Exception:  # noqa: BLE001 — the run parses it again and reports what happened
        return None


def is_workbook(entry: LandingEntry) -> bool:
    """A workbook by its name (`landing.FORMAT_BY_SUFFIX`, as `detect_format` decides)."""
    return (entry.symlink_target is None
            and FORMAT_BY_SUFFIX.get(Path(entry.rel).suffix.lower()) == "xlsx")


class XlsxPrefetch:
    """Parse the workbooks among `entries` (in their order) in `workers` spawned processes, a
    bounded window ahead; `take(entry)` hands back the result of that entry, if it was parsed
    ahead. Use as a context manager (the pool is shut down on exit, also on error)."""

    def __init__(self, entries: Sequence[LandingEntry], settings: Settings, max_bytes: int,
                 workers: int) -> None:
        self.settings, self.max_bytes = settings, max_bytes
        self.todo = deque(e for e in entries if is_workbook(e))
        self.pending: dict[str, Future[Result]] = {}
        self.pool: ProcessPoolExecutor | None = None
        # (a daemonic process may not start children)
        if (workers > 1 and len(self.todo) >= MIN_WORKBOOKS
                and not multiprocessing.current_process().daemon):
            self.pool = ProcessPoolExecutor(workers,
                                            mp_context=multiprocessing.get_context("spawn"))
            self.window = workers * AHEAD_PER_WORKER
            self._fill()

    def _fill(self) -> None:
        assert self.pool is not None
        while self.todo and len(self.pending) < self.window:
            entry = self.todo.popleft()
            try:
                self.pending[entry.rel] = self.pool.submit(_parse, str(entry.path), entry.rel,
                                                           self.settings, self.max_bytes)
            except Exception:  # noqa: BLE001 — a broken pool: the run parses the rest itself
                self.todo.clear()
                return

    def take(self, entry: LandingEntry) -> Result:
        """The result parsed ahead for `entry` (None: not a workbook, or parse it here)."""
        future = self.pending.pop(entry.rel, None)
        if future is None:
            return None
        try:
            result = future.result()
        except Exception:  # noqa: BLE001 — a worker that died: the run parses it itself
            result = None
        if self.pool is not None:
            self._fill()
        return result

    def __enter__(self) -> XlsxPrefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
