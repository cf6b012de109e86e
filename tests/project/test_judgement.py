"""The one judgement rule (kolab_pipeline/judgement.py), in Python and in SQL."""

import duckdb
import pytest

from kolab_pipeline.judgement import meets, meets_sql

CASES = [
    # value, threshold, direction, expected
    (90.0, 90.0, "increasing", True),     # on the threshold meets it
    (89.99, 90.0, "increasing", False),
    (100.0, 90.0, "increasing", True),
    (5.0, 5.0, "decreasing", True),       # drop-out exactly at the maximum meets it
    (5.01, 5.0, "decreasing", False),
    (0.0, 5.0, "decreasing", True),
    (None, 90.0, "increasing", None),     # nothing to judge
    (80.0, None, "increasing", None),
]


@pytest.mark.parametrize(("value", "threshold", "direction", "expected"), CASES)
def test_meets(value, threshold, direction, expected):
    assert meets(value, threshold, direction) is expected


@pytest.mark.parametrize(("value", "threshold", "direction", "expected"), CASES)
def test_meets_sql_agrees(value, threshold, direction, expected):
    sql = meets_sql("$v", "$t", "$d")
    con = duckdb.connect()
    params = {"v": value, "t": threshold, "d": direction}
    got = con.execute(f"SELECT {sql}", params).fetchone()[0]
    assert got is expected


def test_unknown_direction_is_an_error():
    with pytest.raises(ValueError, match="direction 'up'"):
        meets(1, 1, "up")
