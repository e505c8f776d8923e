"""A query that comes again skips planning, and never runs on a plan that no longer fits."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.errors import EntityNotFoundError

QUERY = "SELECT * FROM t ORDER BY k"


@pytest.fixture
def ap(tmp_path: Path):
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        ap.create_hive("h")
        for box in ("a", "b"):
            ap.create_box("h", box)
            ap.create_frame("h", box, "t", {"k": "int64", "v": "string"})
            ap.write_to_frame("h", box, "t", pa.table({"k": [1, 2], "v": [box, box]}))
        ap.sql("USE HIVE h")
        ap.sql("USE BOX a")
        yield ap


def test_a_repeated_query_is_not_planned_again_and_sees_new_rows(ap: Apiary) -> None:
    assert ap.sql(QUERY).num_rows == 2
    assert "planning" in ap.last_query.phases
    ap.write_to_frame("h", "a", "t", pa.table({"k": [3], "v": ["new"]}))
    again = ap.sql(QUERY)
    assert "planning" not in ap.last_query.phases  # the kept plan
    assert again.column("k").to_pylist() == [1, 2, 3]  # pinned and pruned afresh


def test_a_new_column_use_box_and_a_dropped_frame_each_plan_again(ap: Apiary) -> None:
    ap.sql(QUERY)
    ap.add_columns("h", "a", "t", {"note": "string"})
    widened = ap.sql(QUERY)
    assert "planning" in ap.last_query.phases
    assert widened.column_names == ["k", "v", "note"]

    ap.sql("USE BOX b")  # the same text names another frame now
    assert set(ap.sql(QUERY).column("v").to_pylist()) == {"b"}

    ap.drop_frame("h", "b", "t")
    with pytest.raises(EntityNotFoundError):
        ap.sql(QUERY)
