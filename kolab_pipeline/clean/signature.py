"""The build signature: everything the clean tables depend on besides the raw rows. A signature
different from the one in `clean.build_state` forces a full rebuild.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import duckdb

from kolab_pipeline.config import Settings
from kolab_pipeline.rules import Relation, rules_rows

# The version of the cleaning logic. Bump it by hand in the same commit as any change to what the
# clean layer computes from the same inputs (parsers, rules in SQL, versioning, warnings): the
# next build is then a full rebuild. Changes that compute the same rows (comments, refactoring)
# leave it alone, so they never force one.
CLEAN_LOGIC_VERSION = 2  # 2: reason_id of rejected files Indonesian only (issue 18)

# Reference rows the build reads (aliases, facility types and time zones, element catalogue),
# as `count:sum of row hashes` per table. `_clean_catalogue` is staged by `stage_catalogue`.
REFERENCE_DIGEST = """
SELECT (SELECT concat(count(*), ':', coalesce(sum(hash(alias_norm, kode_faskes)), 0))
          FROM reference.facility_alias),
       (SELECT concat(count(*), ':', coalesce(sum(hash(kode_faskes, jenis_faskes, timezone)), 0))
          FROM reference.facility),
       (SELECT concat(count(*), ':', coalesce(sum(hash(code, form, expected_from)), 0))
          FROM _clean_catalogue)
"""


def reference_digest(con: duckdb.DuckDBPyConnection) -> list[str]:
    """One digest per reference table the build reads."""
    return [str(part) for part in con.execute(REFERENCE_DIGEST).fetchone()]


def signature_of(*, version: int, rules: Sequence[object], relations: Sequence[object],
                 default_timezone: str, reference: Sequence[str]) -> str:
    """sha256 of the logic version, the rule catalogue, the YTD relations, the default time
    zone and the reference digests — and of nothing else."""
    parts = [f"clean logic v{version}", repr(list(rules)), repr(list(relations)),
             default_timezone, *reference]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_signature(con: duckdb.DuckDBPyConnection, settings: Settings,
                    relations: Sequence[tuple[str, Relation]]) -> str:
    """The signature of a build on `con` now (needs `_clean_catalogue` staged)."""
    return signature_of(version=CLEAN_LOGIC_VERSION, rules=rules_rows(), relations=relations,
                        default_timezone=settings.config.timezones.default,
                        reference=reference_digest(con))
