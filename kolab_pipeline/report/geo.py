"""Area boundaries for the report's map: `KOLAB_HOME/registry/batas_wilayah.geojson`.

A FeatureCollection of kecamatan or desa polygons supplied by the Dinkes, each keyed by its
Kemendagri code in one of the properties `CODE_PROPERTIES` (`36.72.01`, or without dots
`367201`; desa `36.72.01.1001`), named by `nama` (or a BIG-style `WADMKC` / `WADMKD`) when
present. The file is read once per process; each report takes the features of its kab/kota.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

FILE_NAME = "batas_wilayah.geojson"
CODE_PROPERTIES = ("kode", "kode_wilayah", "kode_kemendagri", "kdepum", "kdcpum", "kode_desa",
                   "kode_kec")
NAME_PROPERTIES = ("nama", "nama_wilayah", "wadmkd", "wadmkc", "name")
# Digits of a Kemendagri code per level: province 2, kab/kota 2, kecamatan 2, desa 4.
_SEGMENTS = (2, 2, 2, 4)


class BoundaryError(ValueError):
    """The boundary file is unusable; the message names the file and what is wrong."""


def normalise_code(raw: object) -> str | None:
    """A Kemendagri code in dotted form (`367201` → `36.72.01`), or None."""
    digits = re.sub(r"\D", "", str(raw or ""))
    if len(digits) not in (6, 10):
        return None
    parts, i = [], 0
    for n in _SEGMENTS:
        if i >= len(digits):
            break
        parts.append(digits[i:i + n])
        i += n
    return ".".join(parts)


def _round(coords: Any) -> Any:
    """Coordinates to 5 decimals (about 1 m): smaller specs, the same picture."""
    if isinstance(coords, list):
        return [_round(c) for c in coords]
    return round(coords, 5) if isinstance(coords, float) else coords


@cache
def _load(path: Path, mtime: float) -> tuple[dict[str, Any], ...]:
    del mtime  # part of the cache key: an edited file is read again
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BoundaryError(f"{path}: not readable GeoJSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise BoundaryError(f"{path}: expected a GeoJSON FeatureCollection")
    out = []
    for i, feat in enumerate(doc.get("features") or []):
        props = {str(k).lower(): v for k, v in (feat.get("properties") or {}).items()}
        code = next((c for p in CODE_PROPERTIES if (c := normalise_code(props.get(p)))), None)
        geometry = feat.get("geometry")
        if code is None or not geometry:
            raise BoundaryError(f"{path}: feature {i + 1} has no Kemendagri code (one of the "
                                f"properties {', '.join(CODE_PROPERTIES)}) or no geometry")
        name = next((str(props[p]) for p in NAME_PROPERTIES if props.get(p)), code)
        out.append({"type": "Feature",
                    "geometry": {"type": geometry["type"],
                                 "coordinates": _round(geometry["coordinates"])},
                    "properties": {"kode": code, "nama": name}})
    return tuple(out)


def features_for(registry: Path, kode_kabkota: str) -> list[dict[str, Any]] | None:
    """The features of the kab/kota `kode_kabkota`; None when there is no boundary file."""
    path = registry / FILE_NAME
    if not path.exists():
        return None
    prefix = kode_kabkota + "."
    return [f for f in _load(path, path.stat().st_mtime)
            if f["properties"]["kode"].startswith(prefix)]
