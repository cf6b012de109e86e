"""The landing folder `KOLAB_HOME/landing/**`: which files it holds, when each was received, its
content hash and its format.

A file's received time comes from the receipt manifest `landing/_diterima.csv`
(`file,received_at`), else its modification time. Manifests, the DHIS2 mapping, hidden and Excel
lock files are not submissions.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kolab_pipeline.raw.dhis2 import DHIS2_DIR, DHIS2_MAPPING, is_dhis2_csv_header
from kolab_pipeline.raw.model import FileRejected
from kolab_pipeline.raw.readers import decode_text, parse_timestamp, sniff_delimiter

FORMAT_BY_SUFFIX = {".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".json": "dhis2_json"}
RECEIPT_MANIFEST = "_diterima.csv"


@dataclass
class LandingEntry:
    """One file (or symlink) of the landing folder, `rel` relative to it with `/`."""

    rel: str
    path: Path
    size: int
    mtime: datetime
    symlink_target: str | None = None


def is_ignored(rel: str) -> bool:
    """Not submissions: manifests (`_…`), the DHIS2 mapping, hidden and Excel lock files."""
    name = rel.rsplit("/", 1)[-1]
    return (name.startswith(("_", ".", "~$")) or rel == f"{DHIS2_DIR}/{DHIS2_MAPPING}"
            or any(part.startswith(".") for part in rel.split("/")[:-1]))


def list_landing(landing: Path) -> Iterator[LandingEntry]:
    """Every file under the landing folder, sorted, without following symlinks.

    A symlink (file or folder) is listed with its target so that it can be refused (F10).
    """
    if not landing.exists():
        return
    root = landing.resolve()
    for dirpath, dirnames, filenames in os.walk(landing, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        linked_dirs = [d for d in dirnames if (base / d).is_symlink()]
        for d in linked_dirs:
            dirnames.remove(d)
        for name in sorted([*filenames, *linked_dirs]):
            path = base / name
            rel = path.relative_to(landing).as_posix()
            st = path.lstat()
            target = None
            if path.is_symlink():
                resolved = path.resolve()
                inside = resolved == root or root in resolved.parents
                target = (f"{'inside' if inside else 'outside'} the landing folder "
                          f"({os.readlink(path)})")
            yield LandingEntry(rel, path, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC),
                               target)


def manifest_key(name: str | None) -> str:
    """A `_diterima.csv` `file` cell → the path it names, relative to the landing folder
    (`landing/` or `./` in front and Windows `\\` are accepted)."""
    name = (name or "").strip().replace("\\", "/")
    for prefix in ("./", "landing/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def read_manifest(landing: Path, tz: str) -> tuple[dict[str, datetime], list[str]]:
    """`landing/_diterima.csv` (`file,received_at`) → {relative path: UTC}, warnings."""
    path = landing / RECEIPT_MANIFEST
    out: dict[str, datetime] = {}
    warnings: list[str] = []
    if not path.exists():
        return out, warnings
    try:
        text, _ = decode_text(path.read_bytes())
    except FileRejected as exc:
        return out, [f"{RECEIPT_MANIFEST}: unreadable ({exc.detail}); file mtimes are used"]
    records = csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(text))
    for i, rec in enumerate(records, start=2):
        name = manifest_key(rec.get("file"))
        try:
            ts = parse_timestamp(rec.get("received_at"), tz)
        except ValueError:
            ts = None
        if not name or ts is None:
            warnings.append(f"{RECEIPT_MANIFEST} row {i}: file or received_at "
                            "missing/unreadable; ignored")
            continue
        out[name] = ts
    return out, warnings


def sha256_file(path: Path, max_bytes: int | None = None) -> tuple[str, bytes | None, int]:
    """sha256 of the file, its bytes when at most `max_bytes` (else None: a huge file is hashed
    in 1 MB chunks, never held in memory), and its size."""
    h = hashlib.sha256()
    chunks: list[bytes] | None = []
    total = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            total += len(chunk)
            if chunks is not None:
                chunks.append(chunk)
                if max_bytes is not None and total > max_bytes:
                    chunks = None
    return h.hexdigest(), (None if chunks is None else b"".join(chunks)), total


def detect_format(rel: str, data: bytes) -> str:
    """csv | xlsx | dhis2_json | dhis2_csv from the name and, for CSV, the header line."""
    suffix = Path(rel).suffix.lower()
    fmt = FORMAT_BY_SUFFIX.get(suffix)
    if fmt is None:
        hint = " (save old .xls workbooks as .xlsx)" if suffix == ".xls" else ""
        raise FileRejected("F06", f"extension '{suffix or '(none)'}' is not .csv, .xlsx or "
                                  f".json{hint}")
    if fmt == "csv":
        try:
            first = decode_text(data[:4096])[0].lstrip("\ufeff").splitlines()[:1]
        except FileRejected:
            first = []
        if (first and is_dhis2_csv_header(first[0])) or rel.split("/", 1)[0] == DHIS2_DIR:
            return "dhis2_csv"
    return fmt
