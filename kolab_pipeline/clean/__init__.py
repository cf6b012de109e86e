"""Clean layer: normalise raw rows, validate them against the rule catalogue, version
resubmissions, and write the `clean.*` tables (grain in `catalog/tables.yaml`):

- `clean.submission` — one facility × period × form × version (every valid raw row is one version);
- `clean.submission_value` — facility × period × form × data element of the *current* version
  (`value` = the facility's own services: a puskesmas's area recap counts its own share);
- `clean.submission_value_history` — the same for every version, with the previous version's value;
- `clean.quarantine` — one rejected raw row (or whole file) × rule that rejected it;
- `clean.validation_flag` — one kept current submission × warning rule × relation/element;
- `clean.build_state` — one raw file cleaned by the last build (the base of incremental builds).

Steps: `parsers` (SQL macros) → `scope` (what changed) → `stage` (rows, cells, errors) →
`versions` → `lingkup` (report scope of each kept row) → `write` (with `flags`, and
`lingkup.derive`: the own share of area recaps); `build.build_clean` runs them, `queries` is what
checks read.
Design notes: docs/design/clean.md.
"""

from kolab_pipeline.clean.build import RUN_KEYS, build_clean
from kolab_pipeline.clean.parsers import (
    MONTH_NAMES,
    NIL_MARKS,
    ZERO_WORDS,
    install_macros,
    parse_counts,
    parse_dates,
    parse_periods,
)
from kolab_pipeline.clean.queries import (
    accounting,
    duplicate_current_versions,
    summarise,
    unresolved_keys,
)
from kolab_pipeline.clean.scope import STATE
from kolab_pipeline.clean.signature import CLEAN_LOGIC_VERSION
from kolab_pipeline.clean.write import CLEAN_TABLES

__all__ = [
    "CLEAN_LOGIC_VERSION", "CLEAN_TABLES", "MONTH_NAMES", "NIL_MARKS", "RUN_KEYS", "STATE",
    "ZERO_WORDS", "accounting", "build_clean", "duplicate_current_versions", "install_macros",
    "parse_counts", "parse_dates", "parse_periods", "summarise", "unresolved_keys",
]
