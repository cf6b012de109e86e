"""The receipt journal `landing/_jurnal_penerimaan.csv` (issue 16 item 7): a file's receipt time
is its mtime when first seen, kept with the landing folder, so a copy, restore or rebuild keeps
it."""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from kolab_pipeline import raw
from kolab_pipeline.config import Settings
from kolab_pipeline.raw.journal import JOURNAL, ReceiptJournal
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support.landing import PLAIN, file_of, put

RECEIVED = 1_743_648_000        # 2025-04-03 02:40:00 UTC (09:40 WIB): when the file arrived
COPIED = 1_746_000_000          # 2025-04-30: when the folder was copied (a new mtime)


def _received(con, rel: str) -> tuple[datetime, str]:
    f = file_of(con, rel)
    return f["received_at"].to_pydatetime().astimezone(UTC), f["received_source"]


def _journal_lines(settings: Settings) -> list[str]:
    return (settings.paths.landing / JOURNAL).read_text(encoding="utf-8").splitlines()


def test_first_sight_is_journaled_and_read_back(settings, con):
    path = put(settings, "k1/tb/a.csv", PLAIN)
    os.utime(path, (RECEIVED, RECEIVED))
    raw.ingest_landing(con, settings, run_id="r1")
    assert _received(con, "k1/tb/a.csv") == (datetime.fromtimestamp(RECEIVED, UTC), "journal")
    sha = hashlib.sha256(PLAIN.encode()).hexdigest()
    lines = _journal_lines(settings)
    assert lines[0] == "sha256,file,received_at,first_seen_at"
    assert len(lines) == 2 and lines[1].startswith(f"{sha},k1/tb/a.csv,2025-04-03T02:40:00+00:00,")
    # a second run with nothing new adds nothing
    raw.ingest_landing(con, settings, run_id="r2")
    assert len(_journal_lines(settings)) == 2
    # the journal is the pipeline's own record: not counted among the ignored landing files
    assert raw.ingest_landing(con, settings, run_id="r3").files_ignored == 0


def test_copied_folder_and_empty_warehouse_keep_the_receipt_times(settings, con, tmp_path):
    """Copy the landing folder (every mtime becomes the copy time), delete the warehouse,
    re-run: the receipt times — and so the statuses — are those of the first sight. Without the
    journal the copy's mtime would be taken (the contrast that shows the journal does it)."""
    put(settings, "_diterima.csv", "file,received_at\nk1/tb/logged.csv,2025-04-05T08:00:00+07:00\n")
    a = put(settings, "k1/tb/a.csv", PLAIN)
    b = put(settings, "k1/tb/logged.csv", PLAIN.replace("KP001", "KP002"))
    for p in (a, b):
        os.utime(p, (RECEIVED, RECEIVED))
    raw.ingest_landing(con, settings, run_id="r1")
    before = {rel: _received(con, rel) for rel in ("k1/tb/a.csv", "k1/tb/logged.csv")}
    assert before["k1/tb/a.csv"] == (datetime.fromtimestamp(RECEIVED, UTC), "journal")
    assert before["k1/tb/logged.csv"] == (datetime(2025, 4, 5, 1, 0, tzinfo=UTC), "manifest")

    def rebuild(with_journal: bool) -> dict:
        home = tmp_path / f"copy_{with_journal}"
        shutil.copytree(settings.paths.landing, home / "landing", copy_function=shutil.copy)
        if not with_journal:
            (home / "landing" / JOURNAL).unlink()
        for p in (home / "landing").rglob("*"):
            if p.is_file() and p.name != JOURNAL:
                os.utime(p, (COPIED, COPIED))
        copy = Settings.load(home)
        c = connect(copy.paths.warehouse)   # a new, empty warehouse
        ensure_schema(c)
        raw.ingest_landing(c, copy, run_id="r9")
        got = {rel: _received(c, rel) for rel in before}
        c.close()
        return got

    assert rebuild(with_journal=True) == before
    moved = rebuild(with_journal=False)
    assert moved["k1/tb/a.csv"] == (datetime.fromtimestamp(COPIED, UTC), "journal")
    assert moved["k1/tb/logged.csv"] == before["k1/tb/logged.csv"]   # the log line decides


def test_renamed_copy_keeps_the_first_receipt(settings, con):
    a = put(settings, "k1/tb/a.csv", PLAIN)
    os.utime(a, (RECEIVED, RECEIVED))
    raw.ingest_landing(con, settings, run_id="r1")
    # the same content saved again under another name a month later, then the original deleted
    b = put(settings, "k1/tb/a_lagi.csv", PLAIN)
    os.utime(b, (COPIED, COPIED))
    a.unlink()
    raw.ingest_landing(con, settings, run_id="r2")
    journal = ReceiptJournal.open(settings.paths.landing)
    sha = hashlib.sha256(PLAIN.encode()).hexdigest()
    assert journal.lookup(sha) == datetime.fromtimestamp(RECEIVED, UTC)
    assert {rel for s, rel in journal.known if s == sha} == {"k1/tb/a.csv", "k1/tb/a_lagi.csv"}


def test_a_truncated_last_line_is_ignored_and_the_next_append_starts_clean(settings, con):
    """A crash mid-append leaves a line without its end: it is skipped (with a warning), the
    content it named is journaled again, and the new line starts on a line of its own."""
    a = put(settings, "k1/tb/a.csv", PLAIN)
    os.utime(a, (RECEIVED, RECEIVED))
    sha = hashlib.sha256(PLAIN.encode()).hexdigest()
    journal = settings.paths.landing / JOURNAL
    journal.write_text("sha256,file,received_at,first_seen_at\n"
                       f"{sha},k1/tb/a.csv,2025-01-01T00:00:00+00:00,2025-01-0", encoding="utf-8")
    s = raw.ingest_landing(con, settings, run_id="r1")
    cut = f"{JOURNAL} line 2: incomplete (no line end: an interrupted write); ignored"
    assert cut in s.warnings
    assert _received(con, "k1/tb/a.csv") == (datetime.fromtimestamp(RECEIVED, UTC), "journal")
    lines = _journal_lines(settings)
    assert lines[1].endswith(",2025-01-0") and lines[2].startswith(f"{sha},k1/tb/a.csv,2025-04-03")
    # read again: the cut line is now a whole line of the wrong shape (ignored), the new one counts
    again = ReceiptJournal.open(settings.paths.landing)
    assert again.lookup(sha) == datetime.fromtimestamp(RECEIVED, UTC)
    assert again.warnings == [f"{JOURNAL} line 2: not a whole journal line; ignored"]


def test_contents_ingested_before_the_journal_existed_are_backfilled(settings, con):
    a = put(settings, "k1/tb/a.csv", PLAIN)
    os.utime(a, (RECEIVED, RECEIVED))
    raw.ingest_landing(con, settings, run_id="r1")
    (settings.paths.landing / JOURNAL).unlink()   # e.g. a warehouse older than the journal
    s = raw.ingest_landing(con, settings, run_id="r2")
    assert s.files_skipped == 1   # known by path, size and mtime: not even read
    sha = hashlib.sha256(PLAIN.encode()).hexdigest()
    # from raw.landing_file: the mtime as the file arrived
    assert ReceiptJournal.open(settings.paths.landing).lookup(sha) == datetime.fromtimestamp(
        RECEIVED, UTC)


def test_an_unwritable_journal_falls_back_to_the_mtime_and_says_so(settings, con):
    (settings.paths.landing / JOURNAL).mkdir(parents=True)   # cannot be read nor appended to
    a = put(settings, "k1/tb/a.csv", PLAIN)
    os.utime(a, (RECEIVED, RECEIVED))
    s = raw.ingest_landing(con, settings, run_id="r1")
    assert _received(con, "k1/tb/a.csv") == (datetime.fromtimestamp(RECEIVED, UTC), "mtime")
    assert any(w.startswith(f"{JOURNAL}: unreadable") for w in s.warnings)


def test_journal_lines_are_whole_csv_lines(tmp_path: Path):
    """A path with a comma is quoted; times carry their offset."""
    j = ReceiptJournal.open(tmp_path)
    sha = "a" * 64
    t = datetime(2025, 4, 3, 9, 40, tzinfo=UTC)
    assert j.record(sha, "k1/tb/rekap, revisi.csv", t, t) == t
    j.flush()
    assert (tmp_path / JOURNAL).read_text(encoding="utf-8").splitlines()[1] == (
        f'{sha},"k1/tb/rekap, revisi.csv",2025-04-03T09:40:00+00:00,2025-04-03T09:40:00+00:00')
    assert ReceiptJournal.open(tmp_path).lookup(sha) == t
