"""Schema evolution: added columns (old cells read as nulls), widened columns (cells rewritten),
``schema_mode="merge"``, and what stays refused. Every version reads with its own schema, in
Apiary, SQL, delta-rs and Polars."""

from __future__ import annotations

import json
from pathlib import Path

import deltalake
import polars as pl
import pyarrow as pa
import pytest
from support.processes import finish, release, spawn_writer, wait_for_line
from support.writer_process import FRAME, SCHEMA

from apiary import Apiary
from apiary.commitlog import CommitLog
from apiary.errors import SchemaError, SqlError, WriteConflictError

F = ("farm", "sensors", "temps")


def first_rows() -> pa.Table:
    return pa.table(
        {
            "region": ["eu", "us"],
            "id": pa.array([1, 2], pa.int32()),
            "temp": pa.array([1.5, 2.5], pa.float32()),
        }
    )


@pytest.fixture
def ap(tmp_path):
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as client:
        client.create_hive("farm")
        client.create_box("farm", "sensors")
        client.create_frame(
            *F, {"region": "string", "id": "int32", "temp": "float32"}, partition_by=["region"]
        )
        client.write_to_frame(*F, first_rows())  # version 1
        yield client


def parquet_files(ap: Apiary, frame=F) -> set[str]:
    return {o.path for o in ap.storage.list("/".join(frame)) if o.path.endswith(".parquet")}


def test_add_and_widen_keep_every_version_readable(ap: Apiary) -> None:
    assert ap.add_columns(*F, {"humidity": "float64", "level": "uint8"})["version"] == 2
    widened = ap.widen_column(*F, "id", "int64")
    assert widened == {"version": 3, "cells_rewritten": 2}
    assert ap.widen_column(*F, "temp", "float64")["version"] == 4
    new = pa.table(
        {
            "region": ["eu"],
            "id": pa.array([2**40], pa.int64()),  # only fits the widened column
            "temp": [3.25],
            "humidity": [0.5],
            "level": pa.array([7], pa.uint8()),
        }
    )
    assert ap.write_to_frame(*F, new)["version"] == 5

    expected_types = {
        1: {"region": pa.string(), "id": pa.int32(), "temp": pa.float32()},
        2: {
            "region": pa.string(),
            "id": pa.int32(),
            "temp": pa.float32(),
            "humidity": pa.float64(),
            "level": pa.uint8(),  # the frame type, kept in the Delta field's metadata
        },
        4: {
            "region": pa.string(),
            "id": pa.int64(),
            "temp": pa.float64(),
            "humidity": pa.float64(),
            "level": pa.uint8(),
        },
    }
    for version, types in expected_types.items():
        table = ap.read_from_frame(*F, version=version)
        assert dict(zip(table.schema.names, table.schema.types, strict=True)) == types
        assert sorted(table.column("id").to_pylist()) == [1, 2]
        if "humidity" in types:
            assert table.column("humidity").to_pylist() == [None, None]
    latest = ap.read_from_frame(*F).sort_by("id")
    assert latest.column("id").to_pylist() == [1, 2, 2**40]
    assert latest.column("temp").to_pylist() == [1.5, 2.5, 3.25]
    assert latest.column("humidity").to_pylist() == [None, None, 0.5]
    assert ap.get_frame(*F)["arrow_schema"] == latest.schema

    # SQL: old rows read as nulls, time travel reads the old schema.
    got = ap.sql("SELECT id, humidity, level FROM farm.sensors.temps ORDER BY id").to_pylist()
    assert got[0] == {"id": 1, "humidity": None, "level": None}
    assert got[2]["humidity"] == 0.5
    nulls = ap.sql("SELECT count(*) AS n FROM farm.sensors.temps WHERE humidity IS NULL")
    assert nulls.column("n").to_pylist() == [2]
    old = ap.sql('SELECT * FROM farm.sensors."temps@v1"')
    assert old.schema.names == ["region", "id", "temp"]
    with pytest.raises(Exception, match="humidity"):
        ap.sql('SELECT humidity FROM farm.sensors."temps@v1"')
    described = dict(
        (r["property"], r["value"]) for r in ap.sql("DESCRIBE farm.sensors.temps").to_pylist()
    )
    assert described["column humidity"].startswith("float64")
    assert described["column id"].startswith("int64")

    # Other Delta readers read every version.
    uri = ap.get_frame(*F)["uri"]
    for version in range(6):
        rows = 0 if version == 0 else (3 if version == 5 else 2)
        table = deltalake.DeltaTable(uri, version=version).to_pyarrow_table()
        assert table.num_rows == rows
        frame = pl.read_delta(uri, version=version)
        assert frame.height == rows
        if version >= 2:
            assert "humidity" in frame.columns
    final = pl.read_delta(uri).sort("id")
    assert final["id"].dtype == pl.Int64 and final["id"].to_list() == [1, 2, 2**40]
    assert final["humidity"].to_list() == [None, None, 0.5]
    assert pl.read_delta(uri, version=1)["id"].dtype == pl.Int32

    history = ap.frame_history(*F)
    assert history[2]["operation"] == "change_schema"
    assert history[2]["schema"]["humidity"] == "float64"
    assert history[3]["schema"]["id"] == "int64" and history[1]["schema"] is None


def test_merge_adds_new_columns_strict_refuses_them(ap: Apiary) -> None:
    extra = pa.table(
        {
            "region": ["eu"],
            "id": pa.array([3], pa.int32()),
            "temp": pa.array([3.5], pa.float32()),
            "battery": pa.array(["low"]).dictionary_encode(),
        }
    )
    files = parquet_files(ap)
    with pytest.raises(SchemaError, match="battery"):
        ap.write_to_frame(*F, extra)
    assert parquet_files(ap) == files  # nothing uploaded
    with pytest.raises(Exception, match="schema_mode"):
        ap.write_to_frame(*F, extra, schema_mode="loose")
    result = ap.write_to_frame(*F, extra, schema_mode="merge")
    assert result["version"] == 2 and result["rows_written"] == 1
    table = ap.read_from_frame(*F).sort_by("id")
    assert table.schema.field("battery").type == pa.string()
    assert table.column("battery").to_pylist() == [None, None, "low"]
    # One commit: the metaData and the add together.
    log = Path(ap.get_frame(*F)["uri"]) / "_delta_log" / f"{2:020d}.json"
    kinds = [next(iter(json.loads(line))) for line in log.read_text().splitlines()]
    assert "metaData" in kinds and "add" in kinds
    # Polars' string_view and large strings are stored as plain strings.
    ap.write_to_frame(
        *F,
        pl.DataFrame({"region": ["us"], "id": [4], "temp": [4.5], "tag": ["p"]}),
        schema_mode="merge",
    )
    assert ap.read_from_frame(*F).schema.field("tag").type == pa.string()
    # Merge with nothing new is an ordinary append.
    assert ap.write_to_frame(*F, extra, schema_mode="merge")["version"] == 4
    assert ap.read_from_frame(*F, version=1).schema.names == ["region", "id", "temp"]


def test_what_stays_refused(ap: Apiary) -> None:
    with pytest.raises(SchemaError, match="column mapping"):
        ap.rename_column(*F, "temp", "t")
    with pytest.raises(SchemaError, match="column mapping"):
        ap.drop_column(*F, "temp")
    for column, kind in [("temp", "int64"), ("id", "int16"), ("region", "int64")]:
        with pytest.raises(SchemaError, match="cannot be widened"):
            ap.widen_column(*F, column, kind)
    with pytest.raises(SchemaError, match="no column"):
        ap.widen_column(*F, "nope", "int64")
    with pytest.raises(SchemaError, match="already has a column"):
        ap.add_columns(*F, {"temp": "float64"})
    before = ap.add_columns(*F, {"x": "int64"})["version"]
    assert ap.add_columns(*F, {"x": "int64"}, if_not_exists=True)["version"] == before
    with pytest.raises(SchemaError, match="Delta"):
        ap.add_columns(*F, {"t": "timestamp[ns]"})
    assert ap.get_frame(*F)["version"] == before


def test_sql_alter_table_add_column(ap: Apiary) -> None:
    ap.sql("USE farm.sensors")
    done = ap.sql("ALTER TABLE temps ADD COLUMN note VARCHAR").to_pylist()
    assert done == [{"frame": "farm.sensors.temps", "version": 2}]
    ap.sql("ALTER TABLE farm.sensors.temps ADD COLUMN IF NOT EXISTS note varchar")
    with pytest.raises(SchemaError, match="already has"):
        ap.sql("ALTER TABLE temps ADD COLUMN note bigint")
    with pytest.raises(SqlError, match="without @"):
        ap.sql('ALTER TABLE "temps@v1" ADD COLUMN y bigint')
    ap.sql("ALTER TABLE temps ADD seen timestamptz")
    schema = ap.read_from_frame(*F).schema
    assert schema.field("note").type == pa.string()
    assert schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert ap.sql("SELECT count(note) AS n FROM temps").column("n").to_pylist() == [0]


def test_naive_timestamp_column_upgrades_the_protocol(ap: Apiary) -> None:
    ap.add_columns(*F, {"seen": "timestamp[us]"})
    uri = ap.get_frame(*F)["uri"]
    log = Path(uri) / "_delta_log" / f"{2:020d}.json"
    protocol = next(json.loads(x) for x in log.read_text().splitlines() if '"protocol"' in x)
    assert "timestampNtz" in protocol["protocol"]["readerFeatures"]
    assert deltalake.DeltaTable(uri).to_pyarrow_table().num_rows == 2
    ap.write_to_frame(*F, first_rows())
    assert ap.read_from_frame(*F).num_rows == 4


def make_writer_frame(uri: str) -> None:
    with Apiary("test", uri, join_swarm=False) as client:
        client.create_hive(FRAME[0])
        client.create_box(*FRAME[:2])
        client.create_frame(*FRAME, SCHEMA)


@pytest.mark.multiprocess
def test_append_racing_an_added_column_lands_with_nulls(tmp_path) -> None:
    uri = str(tmp_path / "root")
    make_writer_frame(uri)
    writer = spawn_writer(uri, 1, crash_phase="cells_uploaded", hold=True)
    wait_for_line(writer, "PHASE cells_uploaded")  # its cells hold the old schema
    with Apiary("test", uri, join_swarm=False) as client:
        assert client.add_columns(*FRAME, {"note": "string"})["version"] == 1
    release(writer)
    assert finish(writer)[0]["version"] == 2
    with Apiary("test", uri, join_swarm=False) as client:
        table = client.read_from_frame(*FRAME)
        assert table.num_rows == 10 and table.column("note").null_count == 10
        assert client.sql("SELECT count(*) AS n FROM crash.test.events WHERE note IS NULL")[
            "n"
        ].to_pylist() == [10]


@pytest.mark.multiprocess
def test_append_racing_a_widened_column_is_a_clear_conflict(tmp_path) -> None:
    """Its cells hold int32 where the frame now stores int64: they would not fit, so the
    append is refused (nothing committed) and can be sent again."""
    uri = str(tmp_path / "root")
    make_writer_frame(uri)
    writer = spawn_writer(uri, 1, crash_phase="cells_uploaded", hold=True)
    wait_for_line(writer, "PHASE cells_uploaded")
    with Apiary("test", uri, join_swarm=False) as client:
        assert client.widen_column(*FRAME, "commit", "int64")["version"] == 1
    release(writer)
    _, err = writer.communicate(timeout=60)
    assert writer.returncode != 0
    assert "WriteConflictError" in err and "schema of crash.test.events changed" in err
    with Apiary("test", uri, join_swarm=False) as client:
        assert client.get_frame(*FRAME)["version"] == 1
        assert client.read_from_frame(*FRAME).num_rows == 0


def race_on_next_schema_commit(monkeypatch, change) -> list[int]:
    """Run ``change`` (another client's schema change) just before this client's next
    metaData commit is created, so that commit loses the race and is rebased."""
    original = CommitLog.try_create
    fired: list[int] = []

    def racing(self: CommitLog, version: int, data: bytes) -> bool:
        if not fired and b'"metaData"' in data:
            fired.append(version)
            change()
        return original(self, version, data)

    monkeypatch.setattr(CommitLog, "try_create", racing)
    return fired


def test_add_columns_racing_another_schema_change(ap: Apiary, tmp_path, monkeypatch) -> None:
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as other:
        fired = race_on_next_schema_commit(
            monkeypatch, lambda: other.add_columns(*F, {"b": "int64"})
        )
        assert ap.add_columns(*F, {"a": "string"})["version"] == 3  # re-prepared after b
        assert fired == [2]
        assert ap.read_from_frame(*F).schema.names == ["region", "id", "temp", "b", "a"]

        # The same column from both sides: with if_not_exists the loser finds it there.
        race_on_next_schema_commit(monkeypatch, lambda: other.add_columns(*F, {"c": "int64"}))
        assert ap.add_columns(*F, {"c": "int64"}, if_not_exists=True)["version"] == 4
        race_on_next_schema_commit(monkeypatch, lambda: other.add_columns(*F, {"d": "int64"}))
        with pytest.raises(SchemaError, match="already has a column 'd'"):
            ap.add_columns(*F, {"d": "int64"})
        # A merge write racing a schema change is refused whole, and can be sent again.
        race_on_next_schema_commit(monkeypatch, lambda: other.add_columns(*F, {"e": "int64"}))
        row = first_rows().slice(0, 1).append_column("f", pa.array([1.0]))
        with pytest.raises(WriteConflictError, match="schema of farm.sensors.temps changed"):
            ap.write_to_frame(*F, row, schema_mode="merge")
        assert ap.write_to_frame(*F, row, schema_mode="merge")["version"] == 7
        assert ap.read_from_frame(*F).num_rows == 3
