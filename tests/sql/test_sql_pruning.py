"""Pruning is real: EXPLAIN reports it, and pruned cells are never opened."""

from __future__ import annotations

import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.sql.sources import LINKED

QUERY = (
    "SELECT sum(sensor) AS s, count(*) AS n FROM farm.sensors.temps "
    "WHERE region = 'north' AND sensor >= 120"
)


def cell_batch(region: str, k: int) -> pa.Table:
    """Cell k of a region holds sensors 100k .. 100k+9: separable by min/max."""
    return pa.table(
        {"region": [region] * 10, "sensor": pa.array(range(100 * k, 100 * k + 10), pa.int64())}
    )


def build(uri: str) -> Apiary:
    ap = Apiary("test", uri).start()
    ap.create_hive("farm")
    ap.create_box("farm", "sensors")
    ap.create_frame(
        "farm", "sensors", "temps", {"region": "string", "sensor": "int64"}, partition_by=["region"]
    )
    for region in ("north", "south", "east", "west"):
        for k in range(3):
            ap.write_to_frame("farm", "sensors", "temps", cell_batch(region, k))
    return ap


def pruning_line(ap: Apiary) -> str:
    plan = ap.sql("EXPLAIN " + QUERY)
    return plan["plan"][0].as_py()


def test_explain_reports_considered_and_pruned_counts(tmp_path) -> None:
    ap = build(str(tmp_path / "root"))
    line = pruning_line(ap)
    assert line == (
        "farm.sensors.temps: 12 cells considered, 9 pruned by partition, "
        "2 pruned by statistics, 1 scanned"
    )
    plan = ap.sql("EXPLAIN " + QUERY)
    assert "physical_plan" in plan["plan_type"].to_pylist()
    result = ap.sql(QUERY).to_pylist()
    assert result == [{"s": sum(range(200, 210)), "n": 10}]
    assert [f.scanned for f in ap.last_query.frames] == [1]


def test_pruned_cells_are_never_opened_on_local_disk(tmp_path) -> None:
    """Delete every pruned cell from disk: the query still gives the same answer."""
    ap = build(str(tmp_path / "root"))
    expected = ap.sql(QUERY)
    frame = ap.frame("farm", "sensors", "temps")
    north = {c.path for c in frame.snapshot().cells.values() if c.partition["region"] == "north"}
    kept_paths = {
        c.path
        for c in frame.snapshot().cells.values()
        if c.partition["region"] == "north" and c.stats["sensor"].max >= 120
    }
    assert len(kept_paths) == 1 and len(north) == 3
    for cell in frame.snapshot().cells.values():
        if cell.path not in kept_paths:
            (tmp_path / "root" / frame.prefix / cell.path).unlink()
    assert ap.sql(QUERY).equals(expected)
    with pytest.raises(Exception, match="missing"):
        ap.sql("SELECT count(*) FROM farm.sensors.temps")  # an unpruned scan notices


def test_pruned_cells_are_never_read_through_the_backend(tmp_path) -> None:
    ap = build(f"memory://pruning-{tmp_path.name}")
    read: list[str] = []
    get = ap.storage.get

    def recording_get(path: str) -> bytes:
        read.append(path)
        return get(path)

    ap.storage.get = recording_get  # type: ignore[method-assign]
    ap.sql(QUERY)
    cells = [path for path in read if path.endswith(".parquet")]
    assert len(cells) == 1  # exactly the one surviving cell
    read.clear()
    ap.sql("SELECT count(*) FROM farm.sensors.temps WHERE region IN ('east', 'west')")
    assert len([path for path in read if path.endswith(".parquet")]) == 6


@pytest.mark.parametrize(
    ("where", "scanned", "rows"),
    [
        ("sensor BETWEEN 100 AND 109", 4, 40),
        ("sensor < 10", 4, 40),
        ("sensor IN (5, 205)", 8, 8),
        ("region = 'south' OR sensor > 205", 6, 42),
        ("NOT (region = 'south')", 9, 90),
        ("sensor IS NULL", 0, 0),
        ("sensor + 1 > 300", 12, 0),  # not column-vs-literal: nothing pruned, still right
    ],
)
def test_predicate_shapes(tmp_path, where: str, scanned: int, rows: int) -> None:
    ap = build(str(tmp_path / "root"))
    result = ap.sql(f"SELECT count(*) AS n FROM farm.sensors.temps WHERE {where}")
    assert result["n"].to_pylist() == [rows]
    assert [f.scanned for f in ap.last_query.frames] == [scanned]


def test_subquery_on_the_same_frame_is_not_pruned_by_the_outer_filter(tmp_path) -> None:
    """Had the subquery seen only the outer query's cells (sensor < 100), max would be 9."""
    ap = build(str(tmp_path / "root"))
    result = ap.sql(
        "SELECT count(*) AS n FROM farm.sensors.temps WHERE sensor < 100 "
        "AND sensor + 200 < (SELECT max(sensor) FROM farm.sensors.temps)"
    )
    assert result["n"].to_pylist() == [4 * 9]  # sensors 0..8 of every region


def test_explain_analyze_reports_timings_and_bytes_read(tmp_path) -> None:
    ap = build(str(tmp_path / "root"))
    plan = ap.sql("EXPLAIN ANALYZE " + QUERY)
    kinds = plan["plan_type"].to_pylist()
    text = "\n".join(plan["plan"].to_pylist())
    assert kinds[0] == "apiary pruning (farm.sensors.temps)"
    assert "Plan with Metrics" in kinds
    assert "elapsed_compute=" in text and "bytes_scanned=" in text


def test_per_query_scratch_links_are_cleaned_up(tmp_path) -> None:
    """Stats pruning inside a partition makes a hard-link folder; nothing is left after (the
    folders kept across queries go when they are cleared, at the latest when the process ends)."""
    ap = build(str(tmp_path / "root"))
    ap.sql(QUERY)
    ap.sql("SELECT count(*) FROM farm.sensors.temps WHERE sensor < 150")
    LINKED.clear()
    scratch = tmp_path / "root" / "_scratch"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    cells = list((tmp_path / "root" / "farm/sensors/temps").rglob("*.parquet"))
    assert all(c.stat().st_nlink == 1 for c in cells)  # the links are gone again
