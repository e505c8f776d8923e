"""The SDK on every backend: namespace, writes, reads, overwrite, time travel, housekeeping."""

from __future__ import annotations

import pyarrow as pa
import pytest

from apiary import AlreadyExistsError, Apiary, EntityNotFoundError, WriteConflictError

SCHEMA = {"region": "string", "sensor": "int32", "temp": "float64"}


def readings(n: int, region: str = "north", start: int = 0) -> pa.Table:
    return pa.table(
        {
            "region": pa.array([region] * n),
            "sensor": pa.array(range(start, start + n), pa.int32()),
            "temp": pa.array([float(i) / 2 for i in range(start, start + n)]),
        }
    )


@pytest.fixture
def ap(storage_uri: str):
    with Apiary("test", storage_uri) as client:
        client.create_hive("farm")
        client.create_box("farm", "sensors")
        client.create_frame("farm", "sensors", "temps", SCHEMA, partition_by=["region"])
        yield client


def test_namespace_in_both_vocabularies(ap: Apiary) -> None:
    ap.create_database("lab")
    ap.create_schema("lab", "raw")
    ap.create_table("lab", "raw", "events", {"id": "int64"})
    assert ap.list_hives() == ap.list_databases() == ["farm", "lab"]
    assert ap.list_schemas("lab") == ["raw"]
    assert ap.list_tables("lab", "raw") == ["events"]
    info = ap.get_table("lab", "raw", "events")
    assert info["schema"] == pa.schema([pa.field("id", pa.int64())])
    assert (info["version"], info["rows"], info["cells"]) == (0, 0, 0)


def test_create_is_idempotent_but_not_for_a_different_definition(ap: Apiary) -> None:
    ap.create_hive("farm")
    ap.create_box("farm", "sensors")
    ap.create_frame("farm", "sensors", "temps", SCHEMA, partition_by=["region"])
    with pytest.raises(AlreadyExistsError, match="farm.sensors.temps"):
        ap.create_frame("farm", "sensors", "temps", {**SCHEMA, "extra": "int64"})
    with pytest.raises(AlreadyExistsError):
        ap.create_frame("farm", "sensors", "temps", SCHEMA, partition_by=[])


def test_write_read_roundtrip_and_result_shape(ap: Apiary) -> None:
    result = ap.write_to_frame("farm", "sensors", "temps", readings(100))
    assert set(result) == {
        "version",
        "cells_written",
        "rows_written",
        "bytes_written",
        "duration_ms",
        "waited_ms",
        "temperature",
    }
    assert (result["version"], result["rows_written"], result["cells_written"]) == (1, 100, 1)
    assert result["bytes_written"] > 0 and 0.0 <= result["temperature"] <= 1.0
    ap.write_to_frame("farm", "sensors", "temps", readings(50, "south", start=100))
    table = ap.read_from_frame("farm", "sensors", "temps")
    assert table.num_rows == 150
    assert sorted(table["sensor"].to_pylist()) == list(range(150))
    north = ap.read_from_frame("farm", "sensors", "temps", partition_filter={"region": "north"})
    assert set(north["region"].to_pylist()) == {"north"} and north.num_rows == 100
    both = ap.read_from_frame(
        "farm",
        "sensors",
        "temps",
        partition_filter={"region": ["north", "south"]},
        columns=["sensor"],
    )
    assert both.column_names == ["sensor"] and both.num_rows == 150


def test_overwrite_and_time_travel(ap: Apiary) -> None:
    ap.write_to_frame("farm", "sensors", "temps", readings(10))
    ap.write_to_frame("farm", "sensors", "temps", readings(10, start=10))
    result = ap.overwrite_frame("farm", "sensors", "temps", readings(3, "east", start=1000))
    assert result["version"] == 3
    assert ap.read_from_frame("farm", "sensors", "temps")["sensor"].to_pylist() == [
        1000,
        1001,
        1002,
    ]
    old = ap.read_from_frame("farm", "sensors", "temps", version=2)
    assert sorted(old["sensor"].to_pylist()) == list(range(20))
    assert ap.read_from_frame("farm", "sensors", "temps", version=1).num_rows == 10
    assert ap.read_from_frame("farm", "sensors", "temps", version=0).num_rows == 0
    with pytest.raises(EntityNotFoundError, match="versions are 0..3"):
        ap.read_from_frame("farm", "sensors", "temps", version=9)
    history = ap.frame_history("farm", "sensors", "temps")
    assert [h["operation"] for h in history] == [
        "create_frame",
        "add_cells",
        "add_cells",
        "rewrite_cells",
    ]


def test_two_clients_see_each_others_commits(ap: Apiary, storage_uri: str) -> None:
    with Apiary("test", storage_uri) as other:
        other.write_to_frame("farm", "sensors", "temps", readings(5))
        ap.write_to_frame("farm", "sensors", "temps", readings(5, start=5))  # rebases
        assert other.get_frame("farm", "sensors", "temps")["version"] == 2
    assert ap.read_from_frame("farm", "sensors", "temps").num_rows == 10


def test_rewrite_of_already_removed_cells_is_a_write_conflict(ap: Apiary, storage_uri: str) -> None:
    ap.write_to_frame("farm", "sensors", "temps", readings(5))
    stale = ap.frame("farm", "sensors", "temps")
    doomed = list(stale.ledger.latest().cells)
    with Apiary("test", storage_uri) as other:
        other.overwrite_frame("farm", "sensors", "temps", readings(1, "west"))
    with pytest.raises(WriteConflictError, match="already removed"):
        stale.ledger.commit("rewrite_cells", [], doomed)
    assert ap.read_from_frame("farm", "sensors", "temps")["region"].to_pylist() == ["west"]


def test_compact_merges_small_cells_in_one_commit(ap: Apiary) -> None:
    for i in range(6):
        ap.write_to_frame("farm", "sensors", "temps", readings(10, start=10 * i))
    before = ap.read_from_frame("farm", "sensors", "temps")
    report = ap.compact_frame("farm", "sensors", "temps")
    assert (report["cells_removed"], report["cells_added"], report["rows_rewritten"]) == (6, 1, 60)
    info = ap.get_frame("farm", "sensors", "temps")
    assert (info["cells"], info["rows"], info["version"]) == (1, 60, 7)
    after = ap.read_from_frame("farm", "sensors", "temps")
    assert sorted(after["sensor"].to_pylist()) == sorted(before["sensor"].to_pylist())
    assert ap.compact_frame("farm", "sensors", "temps")["cells_removed"] == 0


def test_vacuum_keeps_history_within_retention_and_frees_after(ap: Apiary) -> None:
    ap.write_to_frame("farm", "sensors", "temps", readings(10))
    ap.overwrite_frame("farm", "sensors", "temps", readings(4, "south"))
    kept = ap.vacuum_frame("farm", "sensors", "temps")  # default retention: a week
    assert (kept["cells_deleted"], kept["kept_within_retention"]) == (0, 1)
    assert ap.read_from_frame("farm", "sensors", "temps", version=1).num_rows == 10
    dry = ap.vacuum_frame("farm", "sensors", "temps", retention_hours=0, force=True, dry_run=True)
    assert dry["cells_deleted"] == 1
    assert ap.read_from_frame("farm", "sensors", "temps", version=1).num_rows == 10
    done = ap.vacuum_frame("farm", "sensors", "temps", retention_hours=0, force=True)
    assert done["cells_deleted"] == 1 and done["bytes_freed"] > 0
    assert ap.read_from_frame("farm", "sensors", "temps").num_rows == 4


def test_drop_removes_catalog_entry_and_files(ap: Apiary) -> None:
    ap.write_to_frame("farm", "sensors", "temps", readings(5))
    ap.drop_frame("farm", "sensors", "temps")
    assert ap.list_frames("farm", "sensors") == []
    assert ap.storage.list("farm/sensors/temps") == []
    with pytest.raises(EntityNotFoundError, match="farm.sensors.temps does not exist"):
        ap.read_from_frame("farm", "sensors", "temps")
    # Recreating with another schema starts clean.
    ap.create_frame("farm", "sensors", "temps", {"id": "int64"})
    assert ap.get_frame("farm", "sensors", "temps")["rows"] == 0
    ap.drop_hive("farm", cascade=True)
    assert ap.list_hives() == []
