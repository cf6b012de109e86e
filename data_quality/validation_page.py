"""The offline page of one Great Expectations suite run, and the index of all suites.

GX Data Docs load bootstrap, jQuery and Font Awesome from CDNs: offline they render unstyled and
their pass/fail icons are blank. This page is the project's own, written next to them after every
run (`KOLAB_HOME/data_docs/<suite>/validasi.html`): one self-contained HTML file (inline CSS, no
script, no font, no image; nothing is fetched), Indonesian words, pass/fail per expectation as a
coloured cell with a text symbol and a word (readable printed in black and white), the observed
counts and sample values, and a sample of failing rows. The index (`data_docs/index.html`) links
every suite's page first and its GX Data Docs second.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from kolab_pipeline import labels

PAGE_NAME = "validasi.html"
TEMPLATES = Path(__file__).parent / "templates"
ICONS = {"passed": "✓", "failed": "✗", "error": "!"}


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _status(row: dict[str, Any]) -> str:
    return "error" if row["error"] else ("passed" if row["success"] else "failed")


def _percent(value: Any) -> str:
    return labels.number(float(value), 2) if isinstance(value, int | float) else "–"


def page_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The expectation rows (`gx_runner.expectation_rows`) as the page shows them."""
    out = []
    for r in rows:
        status = _status(r)
        out.append({
            "status": status, "icon": ICONS[status],
            "status_label": labels.label("gx_status", status),
            "description": r["description"], "expectation": r["expectation"],
            "column": r["column"], "condition": r["condition"],
            "element_count": labels.number(r["element_count"]),
            "unexpected_count": labels.number(r["unexpected_count"]),
            "unexpected_percent": _percent(r["unexpected_percent"]),
            "sample": r["sample"], "error": r["error"],
        })
    return out


def write_page(path: Path, suite: str, rows: list[dict[str, Any]], failing: pd.DataFrame, *,
               table: str | None = None, table_rows: int | None = None,
               zone: str = "Asia/Jakarta", at: datetime | None = None) -> Path:
    """Write the offline page of one suite run to `path` and return it."""
    shown = page_rows(rows)
    n_failed = sum(r["status"] == "failed" for r in shown)
    n_error = sum(r["status"] == "error" for r in shown)
    rows_validated = max((r["element_count"] for r in rows), default=0)
    text = _env().get_template("validation.html.j2").render(
        css=(TEMPLATES / "validation.css").read_text(encoding="utf-8"),
        suite=suite, table=table,
        validated_at=labels.local_time(at or datetime.now(UTC), zone),
        success=not (n_failed or n_error), n_evaluated=len(shown),
        n_passed=len(shown) - n_failed - n_error, n_failed=n_failed, n_error=n_error,
        rows_validated=labels.number(rows_validated),
        table_rows=labels.number(table_rows) if table_rows is not None else "",
        sampled=table_rows is not None and rows_validated < table_rows,
        rows=shown, failing_columns=[str(c) for c in failing.columns],
        failing_rows=[["" if pd.isna(v) else str(v) for v in row]
                      for row in failing.itertuples(index=False)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_index(root: Path) -> Path:
    """`root/index.html`: per suite folder below `root`, its offline page and its GX Data Docs."""
    suites = sorted({p.parent.name for p in root.glob(f"*/{PAGE_NAME}")}
                    | {p.parent.name for p in root.glob("*/index.html")})
    items = []
    for name in suites:
        links = []
        if (root / name / PAGE_NAME).exists():
            links.append(f'<a href="{html.escape(name)}/{PAGE_NAME}">hasil validasi</a>')
        if (root / name / "index.html").exists():
            links.append(f'<a href="{html.escape(name)}/index.html">Data Docs GX</a> '
                         "(tampilan memerlukan internet)")
        items.append(f"<li><b>{html.escape(name)}</b>: {' · '.join(links)}</li>")
    page = ("<!doctype html><html lang=\"id\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>kolab_pipeline — hasil validasi Great Expectations</title>"
            "<style>body{font-family:\"DejaVu Sans\",Arial,sans-serif;margin:1em auto;"
            "max-width:60em;padding:0 1em}li{margin:.4em 0}</style></head><body>"
            "<h1>Hasil validasi data (Great Expectations)</h1>"
            "<p>Validasi terakhir per suite. Halaman <i>hasil validasi</i> dapat dibuka tanpa "
            "internet.</p>"
            f"<ul>\n{chr(10).join(items)}\n</ul></body></html>\n")
    out = root / "index.html"
    out.write_text(page, encoding="utf-8")
    return out
