"""Bad input gets a specific ApiaryError, and nothing committed (or outside the root) is harmed."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from apiary import (
    Apiary,
    ApiaryError,
    InvalidNameError,
    SchemaError,
    SerializationError,
    StorageError,
)

SCHEMA = pa.schema(
    [
        pa.field("region", pa.string(), nullable=False),
        pa.field("sensor", pa.int32(), nullable=False),
        pa.field("temp", pa.float64()),
        pa.field("note", pa.string()),
    ]
)


def good(n: int = 3) -> pa.Table:
    return pa.table(
        {
            "region": ["north"] * n,
            "sensor": pa.array(range(n), pa.int32()),
            "temp": [1.5] * n,
            "note": ["ok"] * n,
        }
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "inner" / "root"


@pytest.fixture
def ap(root: Path):
    with Apiary("test", str(root)) as client:
        client.create_hive("farm")
        client.create_box("farm", "sensors")
        client.create_frame("farm", "sensors", "temps", SCHEMA, partition_by=["region"])
        client.create_frame("farm", "sensors", "other", {"id": "int64"})
        client.write_to_frame("farm", "sensors", "temps", good())
        client.write_to_frame("farm", "sensors", "other", pa.table({"id": [1, 2, 3]}))
        yield client


def snapshot_tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


BAD_NAMES = ["..", "../escape", "a/b", "with space", "", "x" * 300, ".hidden", "a.b", "/abs"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_touch_nothing_outside_the_root(ap: Apiary, root: Path, name: str) -> None:
    outside = root.parent.parent
    before = snapshot_tree(outside)
    for call in (
        lambda: ap.create_hive(name),
        lambda: ap.create_box("farm", name),
        lambda: ap.create_frame("farm", "sensors", name, {"id": "int64"}),
        lambda: ap.create_frame("farm", "sensors", "ok_name", {name: "int64"}),
    ):
        with pytest.raises(InvalidNameError):
            call()
    assert snapshot_tree(outside) == before
    assert ap.list_hives() == ["farm"]


def test_lookups_of_bad_names_are_not_found_errors(ap: Apiary) -> None:
    with pytest.raises(ApiaryError, match="does not exist"):
        ap.read_from_frame("farm", "sensors", "../../etc")
    with pytest.raises(ApiaryError, match="did you mean farm.sensors.temps"):
        ap.read_from_frame("farm", "sensors", "tempz")


@pytest.mark.parametrize(
    ("table", "column", "fragment"),
    [
        (good().append_column("colour", pa.array(["r"] * 3)), "colour", "unknown|not in"),
        (good().drop(["sensor"]), "sensor", "missing|required|non-nullable"),
        (good().set_column(1, "sensor", pa.array([1.5, 2.0, 3.0])), "sensor", "float|lossy|cast"),
        (good().set_column(1, "sensor", pa.array([2**40, 1, 2], pa.int64())), "sensor", ""),
        (good().set_column(0, "region", pa.array(["n", None, "s"])), "region", "null"),
        (good().set_column(2, "temp", pa.array(["hot", "cold", "warm"])), "temp", ""),
    ],
    ids=["unknown", "missing", "lossy-float", "overflow", "null-partition", "string-to-float"],
)
def test_schema_violations_name_the_column_and_write_nothing(ap, table, column, fragment) -> None:
    before = ap.get_frame("farm", "sensors", "temps")
    files_before = {o.path for o in ap.storage.list("farm")}
    with pytest.raises(SchemaError, match=column) as info:
        ap.write_to_frame("farm", "sensors", "temps", table)
    if fragment:
        assert any(word in str(info.value).lower() for word in fragment.split("|"))
    assert ap.get_frame("farm", "sensors", "temps")["version"] == before["version"]
    assert {o.path for o in ap.storage.list("farm")} == files_before  # no cell uploaded


def test_missing_nullable_column_becomes_nulls(ap: Apiary) -> None:
    ap.write_to_frame("farm", "sensors", "temps", good().drop(["note"]))
    table = ap.read_from_frame("farm", "sensors", "temps", version=2)
    assert table["note"].to_pylist()[-3:] == [None, None, None]


def test_corrupted_ledger_entry_is_a_serialization_error_other_frames_fine(ap, root) -> None:
    entry = root / "farm/sensors/temps/_delta_log/00000000000000000001.json"
    entry.write_text('{"version": 1, "operation": "add_ce')
    with Apiary("test", str(root)) as fresh:
        with pytest.raises(SerializationError, match="000001.json"):
            fresh.read_from_frame("farm", "sensors", "temps")
        assert fresh.read_from_frame("farm", "sensors", "other")["id"].to_pylist() == [1, 2, 3]
        assert fresh.list_frames("farm", "sensors") == ["other", "temps"]


def test_ledger_entry_with_wrong_shape_is_a_serialization_error(ap, root) -> None:
    entry = root / "farm/sensors/temps/_delta_log/00000000000000000001.json"
    entry.write_text('{"version": "one"}')
    with Apiary("test", str(root)) as fresh, pytest.raises(SerializationError, match="damaged"):
        fresh.get_frame("farm", "sensors", "temps")


def test_truncated_cell_is_a_serialization_error_other_frames_fine(ap, root) -> None:
    cell = next((root / "farm/sensors/temps").rglob("*.parquet"))
    data = cell.read_bytes()
    cell.write_bytes(data[: len(data) // 2])
    with pytest.raises(SerializationError, match=cell.name):
        ap.read_from_frame("farm", "sensors", "temps")
    assert ap.read_from_frame("farm", "sensors", "other").num_rows == 3


def test_missing_cell_is_a_storage_error_naming_it(ap, root) -> None:
    cell = next((root / "farm/sensors/temps").rglob("*.parquet"))
    os.remove(cell)
    with pytest.raises(StorageError, match=f"{cell.name}.*missing"):
        ap.read_from_frame("farm", "sensors", "temps")


def test_unsupported_input_type(ap: Apiary) -> None:
    with pytest.raises(SchemaError, match="accept"):
        ap.write_to_frame("farm", "sensors", "temps", {"region": ["x"]})
    with pytest.raises(SchemaError, match="IPC"):
        ap.write_to_frame("farm", "sensors", "temps", b"definitely not arrow")


def test_too_many_partitions_is_refused_before_upload(root: Path) -> None:
    with Apiary("test", str(root)) as ap:
        ap.settings.max_partitions = 5
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"k": "int64"}, partition_by=["k"])
        with pytest.raises(SchemaError, match="10.*5|max_partitions"):
            ap.write_to_frame("h", "b", "f", pa.table({"k": list(range(10))}))
        assert ap.storage.list("h/b/f") != [] and not any(
            o.path.endswith(".parquet") for o in ap.storage.list("h/b/f")
        )


def test_partition_filter_on_a_non_partition_column(ap: Apiary) -> None:
    with pytest.raises(SchemaError, match="not a partition column"):
        ap.read_from_frame("farm", "sensors", "temps", partition_filter={"temp": 1.5})
    with pytest.raises(SchemaError, match="no column"):
        ap.read_from_frame("farm", "sensors", "temps", columns=["nope"])
