"""The findings of `kolab check`: one per problem, with its check (`catalog/checks.csv` gives its
severity and meaning), file, row, column and message; `Report` collects and prints them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from kolab_pipeline import catalog

LIMIT = 20  # lines per check before "… and N more"


@cache
def severities() -> dict[str, str]:
    """check id → error | warning (`catalog/checks.csv`)."""
    return {r["check"]: r["severity"] for r in catalog.rows(catalog.CHECKS)}


@dataclass(frozen=True)
class Finding:
    """One finding: which check, where (file relative to KOLAB_HOME, row, column), what."""

    check: str
    file: str
    message: str
    row: int | None = None
    column: str | None = None

    @property
    def severity(self) -> str:
        return severities()[self.check]

    def where(self) -> str:
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.severity:<7} {self.where()}: [{self.check}] {self.message}"


@dataclass
class Report:
    """Every finding of one check run, and what was looked at."""

    findings: list[Finding] = field(default_factory=list)
    looked_at: list[str] = field(default_factory=list)

    def add(self, check: str, file: str, message: str, row: int | None = None,
            column: str | None = None) -> None:
        if check not in severities():
            raise KeyError(f"check {check!r} is not in {catalog.CHECKS.name}")
        self.findings.append(Finding(check, file, message, row, column))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def lines(self, limit: int | None = LIMIT) -> list[str]:
        """One line per finding (errors first), at most `limit` per check."""
        out: list[str] = []
        order = {"error": 0, "warning": 1}
        by_check: dict[str, list[Finding]] = {}
        for f in sorted(self.findings, key=lambda f: order[f.severity]):
            by_check.setdefault(f.check, []).append(f)
        for check, found in by_check.items():
            shown = found if limit is None else found[:limit]
            out += [str(f) for f in shown]
            if len(found) > len(shown):
                out.append(f"{found[0].severity:<7} … and {len(found) - len(shown)} more "
                           f"[{check}] (kolab check --all lists every one)")
        return out

    def summary(self) -> str:
        return (f"kolab check: {len(self.errors)} error(s), {len(self.warnings)} warning(s) "
                f"({'; '.join(self.looked_at)}). Errors make `kolab check` exit 1; "
                "`kolab run` prints the same findings as warnings and goes on.")
