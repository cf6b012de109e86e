"""The receipt journal `landing/_jurnal_penerimaan.csv`: when each file content was first seen,
so a copied, restored or synced landing folder keeps its receipt times.

Format: CSV `sha256,file,received_at,first_seen_at`, one line per content × path first seen
(`received_at` = the file's mtime then, `first_seen_at` = the clock of the run; ISO 8601 UTC with
offset). A content's receipt time is the `received_at` of its first line. Append-only, one
`write` per batch on an `O_APPEND` descriptor, `fsync`ed; a cut last line is ignored on reading.
Design: docs/design/raw.md, "Receipt times".
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

JOURNAL = "_jurnal_penerimaan.csv"
HEADER = ("sha256", "file", "received_at", "first_seen_at")
FLUSH_LINES = 500            # pending lines written (and fsynced) in one append
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _utc(text: str) -> datetime | None:
    """An ISO timestamp that carries its offset, in UTC; None for anything else (a cut line)."""
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts.astimezone(UTC) if ts.tzinfo is not None else None


@dataclass
class ReceiptJournal:
    """The journal of one landing folder: what it holds, and the lines still to append."""

    path: Path
    received: dict[str, datetime] = field(default_factory=dict)   # sha256 → earliest receipt
    known: set[tuple[str, str]] = field(default_factory=set)     # (sha256, file) on record
    pending: list[tuple[str, str, datetime, datetime]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    writable: bool = True

    @classmethod
    def open(cls, landing: Path) -> ReceiptJournal:
        """Read `landing/_jurnal_penerimaan.csv` (absent = empty). Lines that are not whole
        (wrong field count, a bad hash, a time without offset, the last line without its line
        end) are skipped with a warning; an unreadable journal is left alone (not written)."""
        journal = cls(landing / JOURNAL)
        if not journal.path.exists():
            return journal
        try:
            text = journal.path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            journal.writable = False
            journal.warnings.append(f"{JOURNAL}: unreadable ({exc}); not written this run, file "
                                    "modification times are used")
            return journal
        lines = text.split("\n")
        cut = lines.pop() if lines else ""   # text after the last line end: a cut line, or ''
        if cut.strip():
            journal.warnings.append(f"{JOURNAL} line {len(lines) + 1}: incomplete (no line end: "
                                    "an interrupted write); ignored")
        for number, line in enumerate(lines, start=1):
            if number == 1 and line.startswith(HEADER[0]):
                continue
            if not line.strip():
                continue
            journal._read_line(number, line)
        return journal

    def _read_line(self, number: int, line: str) -> None:
        fields = next(csv.reader([line]), [])
        ok = len(fields) == len(HEADER) and _SHA256.match(fields[0]) is not None
        received = _utc(fields[2]) if ok else None
        if received is None or _utc(fields[3]) is None:
            self.warnings.append(f"{JOURNAL} line {number}: not a whole journal line; ignored")
            return
        sha, rel = fields[0], fields[1]
        self.known.add((sha, rel))
        self.received.setdefault(sha, received)   # the first line of a content counts

    def lookup(self, sha256: str) -> datetime | None:
        """The receipt time on record for a content, else None."""
        return self.received.get(sha256)

    def record(self, sha256: str, rel: str, mtime: datetime, seen_at: datetime) -> datetime:
        """A content seen at `rel`: put the pair on record (first time only) and return the
        content's receipt time — the journal's when it has one, else `mtime`, recorded now."""
        mtime = mtime.astimezone(UTC)
        if (sha256, rel) not in self.known:
            self.known.add((sha256, rel))
            self.pending.append((sha256, rel, mtime, seen_at.astimezone(UTC)))
            if len(self.pending) >= FLUSH_LINES:
                self.flush()
        return self.received.setdefault(sha256, mtime)   # the first line of a content counts

    def flush(self) -> None:
        """Append the pending lines in one write and fsync (header first for a new journal;
        a fresh line first when the journal ends in a cut line)."""
        if not self.pending or not self.writable:
            self.pending.clear()
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for sha, rel, received, seen in self.pending:
            writer.writerow([sha, rel, received.isoformat(), seen.isoformat()])
        body = out.getvalue()
        try:
            size = self.path.stat().st_size if self.path.exists() else 0
            prefix = ""
            if size == 0:
                prefix = ",".join(HEADER) + "\n"
            else:
                with self.path.open("rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":
                        prefix = "\n"   # leave the cut line on its own line
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (prefix + body).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self.writable = False
            self.warnings.append(f"{JOURNAL}: cannot be written ({exc.strerror or exc}); receipt "
                                 "times of new files rest on their modification time only")
        self.pending.clear()

    @property
    def source(self) -> str:
        """`received_source` of a time this journal gave: `journal`, or `mtime` when it cannot
        keep it."""
        return "journal" if self.writable else "mtime"
