"""Documents (workbooks, reports) are rewritten only when what they show changed.

A document's inputs key is the sha256 of everything it is made from — its rows (the plain
Python values the writer receives), the settings it shows, and the source of the code and
vocabulary that turn them into the file. It is kept in a hidden file beside the document
(`.<name>.inputs`); a document whose file exists with the same key is left alone, so a run with
nothing new rewrites no document and a new month writes only that month's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent


@cache
def code_digest(relative: tuple[str, ...]) -> str:
    """sha256 of the package files (or every file of the folders) named relative to
    `kolab_pipeline/`, in name order: a change of code, template or vocabulary changes it."""
    h = hashlib.sha256()
    for rel in relative:
        path = PACKAGE / rel
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       ) if path.is_dir() else [path]
        for f in files:
            h.update(f.relative_to(PACKAGE).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def inputs_key(parts: Iterable[object], code: tuple[str, ...]) -> str:
    """The key of a document made from `parts` (their `repr`) by the code files `code`."""
    h = hashlib.sha256(code_digest(code).encode())
    for part in parts:
        h.update(b"\0")
        h.update(repr(part).encode())
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.inputs")


def unchanged(path: Path, key: str) -> bool:
    """The document exists and was made from inputs with this key."""
    try:
        return path.exists() and _sidecar(path).read_text("utf-8") == key
    except OSError:
        return False


def record(path: Path, key: str) -> None:
    """Remember the key of the document just written at `path`."""
    tmp = path.with_name(f".{path.name}.inputs.tmp")
    tmp.write_text(key, encoding="utf-8")
    os.replace(tmp, _sidecar(path))
