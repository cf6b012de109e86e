"""The validation-rule catalogue (`catalog/validation_rules.csv`) as typed Python objects.

Rules are data: a rule's id, layer, severity and the messages a puskesmas clerk reads live in the
CSV, so wording can be fixed (or a rule added) without touching code. Columns:

- `rule_id`, `layer` (`raw` | `clean`), `severity` (`error` → quarantine, `warning` → flag),
  `applies_to` (`file` | `row` | `submission`);
- `message_id` / `message_en`: the rule in one sentence (Indonesian / English);
- `detail_id` / `detail_en` (optional): an actionable message template with placeholders
  `{value}` (offending value verbatim), `{column}`, `{kode}` (facility), `{period}`, `{jenis}`
  (facility type), `{received}` (received local date), filled per row by the clean layer;
- `relation` (optional, warnings): `;`-separated consistency relations `lhs<=rhs[+rhs…]` between
  data-element codes, checked on year-to-date sums (V07, V08, V09, V11).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from kolab_pipeline import catalog

RULES_FILE = catalog.VALIDATION_RULES
REQUIRED_COLUMNS = ("rule_id", "layer", "severity", "applies_to", "message_id", "message_en")
SEVERITIES = ("error", "warning")
PLACEHOLDERS = ("value", "column", "kode", "period", "jenis", "received")
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*$")


class RuleCatalogueError(catalog.CatalogueError):
    """The rule catalogue is malformed; the message names the file, line and column."""


@dataclass(frozen=True)
class Relation:
    """`lhs <= sum(rhs)` between data-element codes (year-to-date sums)."""

    lhs: str
    rhs: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.lhs}<={'+'.join(self.rhs)}"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    layer: str
    severity: str
    applies_to: str
    message_id: str
    message_en: str
    detail_id: str = ""
    detail_en: str = ""
    relations: tuple[Relation, ...] = ()

    @property
    def template_id(self) -> str:
        """Actionable Indonesian template (falls back to the one-sentence message)."""
        return self.detail_id or self.message_id

    @property
    def template_en(self) -> str:
        return self.detail_en or self.message_en

    def render(self, lang: str = "id", **values: object) -> str:
        """Fill the template in Python (the clean layer does the same in SQL)."""
        text = self.template_id if lang == "id" else self.template_en
        for name in PLACEHOLDERS:
            value = values.get(name)
            text = text.replace("{" + name + "}", "" if value is None else str(value))
        return text


def parse_relations(text: str, where: str = "") -> tuple[Relation, ...]:
    """`a<=b;c<=d+e` → relations. Codes must be plain identifiers (they become SQL columns)."""
    out: list[Relation] = []
    for part in (p.strip() for p in (text or "").split(";")):
        if not part:
            continue
        if part.count("<=") != 1:
            raise RuleCatalogueError(
                f"{where}: relation {part!r} must have the form lhs<=rhs[+rhs]")
        lhs, rhs = (s.strip() for s in part.split("<="))
        terms = tuple(t.strip() for t in rhs.split("+"))
        for code in (lhs, *terms):
            if not _CODE.match(code):
                raise RuleCatalogueError(
                    f"{where}: {code!r} in relation {part!r} is not a data-element code")
        out.append(Relation(lhs, terms))
    return tuple(out)


def load_rules(path: Path = RULES_FILE) -> dict[str, Rule]:
    """Read and validate a rule catalogue (ids unique, severity known, messages present)."""
    try:
        reader = catalog.read_rows(path, REQUIRED_COLUMNS)
    except catalog.CatalogueError as exc:
        raise RuleCatalogueError(str(exc)) from None
    rules: dict[str, Rule] = {}
    for line, row in enumerate(reader, start=2):
        where = f"{path.name}: line {line}"
        rid = (row.get("rule_id") or "").strip()
        if not _RULE_ID.match(rid):
            raise RuleCatalogueError(
                f"{where}, column rule_id: {rid!r} is not a rule id (e.g. V06)")
        if rid in rules:
            raise RuleCatalogueError(f"{where}, column rule_id: duplicate rule id {rid}")
        severity = (row.get("severity") or "").strip()
        if severity not in SEVERITIES:
            raise RuleCatalogueError(
                f"{where}, column severity: {severity!r} (expected error or warning)")
        for col in ("message_id", "message_en"):
            if not (row.get(col) or "").strip():
                raise RuleCatalogueError(f"{where}, column {col}: empty message for {rid}")
        for col in ("detail_id", "detail_en"):
            for name in re.findall(r"\{([^}]*)\}", row.get(col) or ""):
                if name not in PLACEHOLDERS:
                    raise RuleCatalogueError(
                        f"{where}, column {col}: unknown placeholder {{{name}}} "
                        f"(allowed: {', '.join(PLACEHOLDERS)})")
        rules[rid] = Rule(
            rule_id=rid, layer=row["layer"].strip(), severity=severity,
            applies_to=row["applies_to"].strip(), message_id=row["message_id"].strip(),
            message_en=row["message_en"].strip(), detail_id=(row.get("detail_id") or "").strip(),
            detail_en=(row.get("detail_en") or "").strip(),
            relations=parse_relations(row.get("relation") or "", f"{where}, column relation"),
        )
    return rules


@cache
def rules() -> dict[str, Rule]:
    """The shipped catalogue (cached)."""
    return load_rules()


def rule(rule_id: str) -> Rule:
    try:
        return rules()[rule_id]
    except KeyError:
        raise KeyError(f"rule {rule_id!r} is not in {RULES_FILE.name}") from None


def rule_ids(severity: str | None = None) -> list[str]:
    return [r.rule_id for r in rules().values() if severity is None or r.severity == severity]


def rules_rows() -> list[tuple[str, str, str, str, str, str, str]]:
    """(rule_id, severity, message_id, message_en, template_id, template_en, applies_to) per rule,
    for registering the catalogue as a DuckDB table the SQL joins against."""
    return [(r.rule_id, r.severity, r.message_id, r.message_en, r.template_id, r.template_en,
             r.applies_to)
            for r in rules().values()]
