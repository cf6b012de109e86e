"""Evaluation layer: the follow-up list (`followup.py`) and the scorecards (`scorecard.py`),
built from the compliance and indicator tables. Grain of every table: `catalog/tables.yaml`.
"""

from kolab_pipeline.evaluation.followup import build_followup
from kolab_pipeline.evaluation.scorecard import (
    JENIS_PREFIX,
    KABKOTA,
    KECAMATAN,
    NETWORK,
    PROGRAM_BY_PREFIX,
    SHARE_COLUMNS,
    Level,
    build_all,
    build_key_indicator,
    build_scorecard,
    build_wilayah_scorecard,
    program_of,
    wide_indicator_columns,
)

__all__ = [
    "JENIS_PREFIX",
    "KABKOTA",
    "KECAMATAN",
    "NETWORK",
    "PROGRAM_BY_PREFIX",
    "SHARE_COLUMNS",
    "Level",
    "build_all",
    "build_followup",
    "build_key_indicator",
    "build_scorecard",
    "build_wilayah_scorecard",
    "program_of",
    "wide_indicator_columns",
]
