"""sort_by: sorted cells on write, sorted disjoint cells after compact, pruning that shows it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from apiary.cells.sizing import CellSizing
from apiary.cells.sorting import check_sort_by
from apiary.errors import SchemaError
from apiary.maintenance import compact
from apiary.sdk import Apiary

SCHEMA = pa.schema(
    [("device", pa.int32()), ("ts", pa.int64()), ("day", pa.string()), ("temp", pa.float64())]
)
DEVICES = 40
# A day of readings (~66 kB in memory) is one group to merge, cut into ~3 cells.
SMALL = CellSizing(target_bytes=30_000, max_bytes=90_000)


def readings(hour: int) -> pa.Table:
    """One commit: every device, one hour, rows in no useful order (newest device first)."""
    devices = list(range(DEVICES - 1, -1, -1)) * 10
    return pa.table(
        {
            "device": pa.array(devices, pa.int32()),
            "ts": [hour * 3600 + 10 * i for i in range(len(devices))],
            "day": ["d1" if hour < 6 else "d2"] * len(devices),
            "temp": [float((d * 7 + hour) % 31) for d in devices],
        },
        schema=SCHEMA,
    )


@pytest.fixture
def ap(tmp_path: Path):
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        yield ap


def fill(ap: Apiary, name: str, sort_by: list[str] | None) -> None:
    ap.create_frame("h", "b", name, SCHEMA, partition_by=["day"], sort_by=sort_by)
    for hour in range(12):
        ap.write_to_frame("h", "b", name, readings(hour))


def cells_of(ap: Apiary, name: str) -> list[tuple[str, pa.Table]]:
    frame = ap.frame("h", "b", name)
    root = Path(frame.storage.location.path) / frame.prefix
    return [
        (cell.partition["day"], pq.read_table(root / cell.path))
        for cell in frame.snapshot().cells.values()
    ]


def is_sorted(table: pa.Table, keys: list[str]) -> bool:
    return table.select(keys).equals(table.sort_by([(k, "ascending") for k in keys]).select(keys))


def test_sort_by_is_validated_stored_and_shown(ap: Apiary) -> None:
    info = ap.create_frame("h", "b", "s", SCHEMA, partition_by=["day"], sort_by=["device", "ts"])
    assert info["sort_by"] == ["device", "ts"]
    assert ap.get_frame("h", "b", "s")["sort_by"] == ["device", "ts"]
    described = dict(ap.sql("DESCRIBE h.b.s").to_pylist()[i].values() for i in range(9))
    assert described["sort_by"] == "device, ts"
    assert ap.create_frame("h", "b", "plain", SCHEMA)["sort_by"] == []
    bad = [
        (["nope"], "not a column"),
        (["day"], "partition column"),
        ("device", "a list of column names"),
        (["device", "device"], "twice"),
    ]
    for sort_by, message in bad:
        with pytest.raises(SchemaError, match=message):
            ap.create_frame("h", "b", "x", SCHEMA, partition_by=["day"], sort_by=sort_by)
    with pytest.raises(SchemaError, match="no order"):  # frames refuse nested types anyway
        check_sort_by(pa.schema([("tags", pa.list_(pa.string()))]), ["tags"])
    assert "x" not in ap.list_frames("h", "b")  # nothing was created by a refused definition


def test_every_written_cell_is_sorted(ap: Apiary) -> None:
    fill(ap, "s", ["device", "ts"])
    cells = cells_of(ap, "s")
    assert len(cells) == 12  # one per commit: each commit falls in one day
    assert all(is_sorted(table, ["device", "ts"]) for _, table in cells)
    assert not is_sorted(readings(0), ["device", "ts"])  # the input was not


def test_compact_makes_sorted_cells_with_disjoint_ranges_and_pruning_skips_more(
    ap: Apiary,
) -> None:
    fill(ap, "sorted", ["device", "ts"])
    fill(ap, "plain", None)
    for name in ("sorted", "plain"):
        report = compact(ap.frame("h", "b", name), SMALL, max_partitions=10)
        assert report.cells_removed == 12
    for day in ("d1", "d2"):
        tables = [t for d, t in cells_of(ap, "sorted") if d == day]
        assert len(tables) > 2, "the test needs several cells per day"
        assert all(is_sorted(t, ["device", "ts"]) for t in tables)
        ranges = sorted((pc.min(t["device"]).as_py(), pc.max(t["device"]).as_py()) for t in tables)
        # Disjoint on the first key: each cell starts at or after where the previous one ends.
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges)), ranges
        assert sum(t.num_rows for t in tables) == 6 * 10 * DEVICES

    query = "SELECT ts, temp FROM h.b.{} WHERE device = 7 AND day = 'd2' ORDER BY ts, temp"
    sorted_rows = ap.sql(query.format("sorted"))
    sorted_scan = ap.last_query.frames[0]
    plain_rows = ap.sql(query.format("plain"))
    plain_scan = ap.last_query.frames[0]
    assert sorted_rows.equals(plain_rows)  # the same answer, from fewer cells
    assert sorted_rows.num_rows == 6 * 10
    assert sorted_scan.considered == plain_scan.considered
    assert sorted_scan.scanned == 1 < plain_scan.scanned
    whole = "SELECT device, count(*) AS n, sum(temp) AS t FROM h.b.{} GROUP BY device ORDER BY 1"
    assert ap.sql(whole.format("sorted")).equals(ap.sql(whole.format("plain")))


def test_the_sort_key_is_in_the_delta_metadata_for_other_tools(ap: Apiary) -> None:
    from deltalake import DeltaTable

    fill(ap, "s", ["device", "ts"])
    ap.create_frame("h", "b", "plain", SCHEMA)
    ap.add_columns("h", "b", "s", {"note": "string"})  # a new metaData keeps the key
    sorted_table = DeltaTable(ap.get_frame("h", "b", "s")["uri"])
    assert sorted_table.metadata().configuration == {"apiary.sortBy": "device,ts"}
    assert "note" in sorted_table.schema().to_arrow().names
    assert sorted_table.to_pyarrow_table().num_rows == 12 * DEVICES * 10
    assert (
        "apiary.sortBy"
        not in DeltaTable(ap.get_frame("h", "b", "plain")["uri"]).metadata().configuration
    )
