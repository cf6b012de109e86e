"""Reuse a GX suite's last result when it would validate exactly the same thing again.

A suite run costs seconds (GX import, metric graph, Data Docs) whatever changed; a run with
nothing new validated the very same rows. The key of a run is the sha256 of the suite name, the
frame validated (every value, column names and types, via `pandas.util.hash_pandas_object`), the
table's row count, the reference the suite builders read (registry codes, data elements, rule
ids) and the source of the suite and runner modules, so any change of data, reference or suite
code runs GX again. The result is kept beside the suite's Data Docs
(`KOLAB_HOME/data_docs/<suite>/kolab_result.json`, removed whenever the folder is rebuilt) and is
only reused while the offline page it links to exists.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

RESULT_FILE = "kolab_result.json"
_CODE = [Path(__file__).with_name(n) for n in ("gx_suites.py", "gx_runner.py",
                                                "validation_page.py", "clean_checks.py")]
# what the suite builders read from the warehouse (value sets of the expectations)
_BUILDER_INPUTS = """
SELECT (SELECT concat(count(*), ':', coalesce(sum(hash(kode_faskes)), 0))
          FROM reference.facility),
       (SELECT concat(count(*), ':', coalesce(sum(hash(code)), 0)) FROM reference.data_element)
"""
_KINDS = {"IntMetadataValue": dg.MetadataValue.int, "FloatMetadataValue": dg.MetadataValue.float,
          "BoolMetadataValue": dg.MetadataValue.bool, "TextMetadataValue": dg.MetadataValue.text,
          "MarkdownMetadataValue": dg.MetadataValue.md, "PathMetadataValue": dg.MetadataValue.path}


def run_key(con: duckdb.DuckDBPyConnection, suite_name: str, frame: pd.DataFrame, n: int,
            extra: str = "") -> str:
    """The identity of a validation: same key = same data, reference and suite code."""
    h = hashlib.sha256()
    for part in (suite_name, str(n), extra, repr(list(frame.columns)),
                 repr([str(t) for t in frame.dtypes]),
                 repr(con.execute(_BUILDER_INPUTS).fetchall())):
        h.update(part.encode())
        h.update(b"\0")
    if len(frame):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    for path in _CODE:
        h.update(path.read_bytes())
    return h.hexdigest()


def load(docs_dir: Path, key: str) -> dg.AssetCheckResult | None:
    """The stored result of the run with `key`, or None (none, another key, page gone)."""
    try:
        stored = json.loads((docs_dir / RESULT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if stored.get("key") != key:
        return None
    metadata: dict[str, Any] = {}
    for name, (kind, value) in stored["metadata"].items():
        if kind == "PathMetadataValue" and not Path(value).exists():
            return None   # the page or the docs it links to are gone: validate again
        metadata[name] = _KINDS[kind](value)
    metadata["result_reused"] = dg.MetadataValue.bool(True)
    return dg.AssetCheckResult(passed=stored["passed"], description=stored["description"],
                               severity=dg.AssetCheckSeverity(stored["severity"]),
                               metadata=metadata)


def save(docs_dir: Path, key: str, result: dg.AssetCheckResult) -> None:
    """Keep `result` beside the suite's Data Docs (only metadata kinds it can rebuild)."""
    metadata = {name: [type(v).__name__, v.value] for name, v in (result.metadata or {}).items()
                if type(v).__name__ in _KINDS}
    docs_dir.mkdir(parents=True, exist_ok=True)
    tmp = docs_dir / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps({"key": key, "passed": bool(result.passed),
                               "description": result.description,
                               "severity": result.severity.value, "metadata": metadata},
                              default=str), encoding="utf-8")
    tmp.replace(docs_dir / RESULT_FILE)
