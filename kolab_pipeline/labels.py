"""Indonesian wording for everything people read (the evaluation report, the Excel workbooks).

Codes become words through one vocabulary, `catalog/labels_id.csv` (kind, code → label, order,
group); indicator and data-element names come from their own catalogues (`name_id`). Numbers are
written the Indonesian way (1.234,5 and 97,2 %), months by name, times in the kab/kota's zone
(WIB / WITA / WIT). A code without a label is shown as itself, so nothing silently disappears.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from kolab_pipeline import catalog

MINUS = "−"  # U+2212: a leading "-" would read as a formula in a spreadsheet cell


@cache
def _vocabulary() -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    for row in catalog.rows(catalog.LABELS_ID):
        out.setdefault(row["kind"], {})[row["code"]] = row
    return out


def label(kind: str, code: object) -> str:
    """The Indonesian label of `code` in `kind` (e.g. `status`, `on_time` → "Tepat waktu");
    the code itself when it has none, "" for None."""
    if code is None:
        return ""
    row = _vocabulary().get(kind, {}).get(str(code))
    return row["label"] if row else str(code)


def has_label(kind: str, code: str) -> bool:
    return code in _vocabulary().get(kind, {})


def order(kind: str, code: object) -> int:
    """Display rank of `code` in `kind` (unknown codes last)."""
    row = _vocabulary().get(kind, {}).get(str(code))
    return int(row["order"]) if row and row["order"] else 10_000


def group(kind: str, code: object) -> str:
    """The group column of `code` (e.g. the severity of a DQ method)."""
    row = _vocabulary().get(kind, {}).get(str(code))
    return row["group"] if row else ""


def codes(kind: str) -> list[str]:
    """Codes of `kind` in display order."""
    return sorted(_vocabulary().get(kind, {}), key=lambda c: order(kind, c))


# --- catalogue names -----------------------------------------------------------------------------

@cache
def _indicators() -> dict[str, dict[str, str]]:
    return {r["code"]: r for r in catalog.rows(catalog.INDICATORS)}


def indicator_name(code: str) -> str:
    """`name_id` of an indicator (`>=` written as `≥`)."""
    row = _indicators().get(code)
    return row["name_id"].replace(">=", "≥") if row else code


def indicator_direction(code: str) -> str:
    """`increasing` or `decreasing` (catalogue `direction`; increasing when unknown)."""
    row = _indicators().get(code)
    return (row["direction"] if row else "") or "increasing"


def indicator_unit(code: str) -> str:
    """Unit of an indicator value from its factor: "%", "per 1.000", "per 100.000" or ""."""
    row = _indicators().get(code)
    factor = float(row["factor"]) if row and row["factor"] else 100.0
    if factor == 100:
        return "%"
    return "" if factor == 1 else f"per {number(factor)}"


def element_name(code: str) -> str:
    return catalog.element_names().get(code, indicator_name(code))


def element_names_of(columns: str | None) -> str:
    """The data elements among comma-separated template columns, by name ("" for none)."""
    names = catalog.element_names()
    return ", ".join(names[c] for c in (p.strip() for p in (columns or "").split(","))
                     if c in names)


def subject_name(subject: str | None) -> str:
    """A DQ subject in words: an element or indicator, or a relation `a/b` → "A / B"."""
    if not subject:
        return ""
    return " / ".join(element_name(part) for part in subject.split("/"))


@cache
def _relation_kinds() -> dict[tuple[str, str], str]:
    return {(r["element_a"], r["element_b"]): r["type"] for r in catalog.rows(catalog.DQ_RELATIONS)
            if r["type"] != "do"}


# --- numbers, months, times ----------------------------------------------------------------------

def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(value: object, decimals: int = 0) -> str:
    """1234.5 → "1.234,5" (`decimals` places); "–" when there is no value."""
    if not _finite(value):
        return "–"
    text = f"{abs(value):,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return (MINUS if value < 0 and float(text.replace(".", "").replace(",", ".")) else "") + text


def auto_number(value: object) -> str:
    """A count without decimals, any other value with one."""
    if _finite(value) and float(value).is_integer():
        return number(value)
    return number(value, 1)


def percent(value: object, decimals: int = 1) -> str:
    """97.24 → "97,2 %"."""
    return "–" if not _finite(value) else f"{number(value, decimals)} %"


def signed(value: object, decimals: int = 1, unit: str = " poin") -> str:
    """A change: +2.14 → "+2,1 poin", −1 → "−1,0 poin"; "–" without a value."""
    if not _finite(value):
        return "–"
    text = number(value, decimals)
    return (text if text.startswith(MINUS) or float(value) == 0 else "+" + text) + unit


def month_name(period: str) -> str:
    return label("bulan", period[5:7])


def period_label(period: str) -> str:
    """"2026-10" → "Oktober 2026"."""
    return f"{month_name(period)} {period[:4]}"


def zone_abbrev(zone: str) -> str:
    """Asia/Jakarta → WIB, Asia/Makassar → WITA, Asia/Jayapura → WIT (else the zone name)."""
    return label("zona_waktu", zone)


def local_time(moment: datetime, zone: str) -> str:
    """A moment in the zone `zone`: "6 Desember 2026 pukul 07.05 WIB"."""
    t = moment.astimezone(ZoneInfo(zone))
    return (f"{t.day} {label('bulan', f'{t.month:02d}')} {t.year} pukul "
            f"{t.hour:02d}.{t.minute:02d} {zone_abbrev(zone)}")


# --- data-quality findings -----------------------------------------------------------------------

def dq_explanation(method: str, subject: str | None, value: float | None, score: float | None,
                   threshold: float | None, reference: float | None) -> str:
    """One DQ finding in words from its stored numbers (template `dq_explanation` of the
    vocabulary; the stored `message` has codes and English decimals)."""
    template = label("dq_explanation", method)
    if template == method:
        return label("dq_method", method)
    parts = (subject or "").split("/")
    a, b = element_name(parts[0]), element_name(parts[-1])
    kind = _relation_kinds().get((parts[0], parts[-1]), "eq")
    c = threshold if _finite(threshold) else 0.0
    bound = (f"antara {number(1 - c, 2)} dan {number(1 + c, 2)}" if kind == "eq"
             else f"paling sedikit {number(1 - c, 2)}")
    s = score if _finite(score) else None
    return template.format(
        nilai=auto_number(value), acuan=auto_number(reference), skor=number(s, 2),
        skor_abs=number(abs(s), 2) if s is not None else "–",
        arah="di bawah" if s is not None and s < 0 else "di atas",
        ambang=auto_number(threshold), ambang_persen=percent(c * 100, 0),
        skor_persen=percent(s, 1), a=a, b=b, batas=bound)


@cache
def _rules() -> dict[str, str]:
    return {r["rule_id"]: r["message_id"] for r in catalog.rows(catalog.VALIDATION_RULES)}


def rule_name(rule_id: str) -> str:
    """The Indonesian message of a validation rule (`catalog/validation_rules.csv`)."""
    return _rules().get(rule_id, rule_id)
