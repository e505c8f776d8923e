"""Large and varied round trips are exact; every accepted input kind works."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.sample_data import SCHEMA, sensor_readings


@pytest.fixture
def ap(tmp_path):
    with Apiary("test", str(tmp_path / "root")) as client:
        client.create_hive("h")
        client.create_box("h", "b")
        yield client


@pytest.mark.slow
def test_million_rows_round_trip_exactly_and_time_travel_after_overwrite(ap: Apiary) -> None:
    ap.create_frame("h", "b", "readings", SCHEMA, partition_by=["region"])
    data = sensor_readings(1_000_000)
    data = data.cast(ap.get_frame("h", "b", "readings")["schema"])  # region: not null
    first = ap.write_to_frame("h", "b", "readings", data)
    assert first["rows_written"] == 1_000_000
    back = ap.read_from_frame("h", "b", "readings")
    order = ["sensor_id", "ts"]
    assert back.sort_by([(c, "ascending") for c in order]).equals(
        data.sort_by([(c, "ascending") for c in order])
    )
    ap.overwrite_frame("h", "b", "readings", data.slice(0, 10))
    assert ap.read_from_frame("h", "b", "readings").num_rows == 10
    old = ap.read_from_frame("h", "b", "readings", version=first["version"])
    assert old.num_rows == 1_000_000
    assert old.sort_by([(c, "ascending") for c in order]).equals(
        data.sort_by([(c, "ascending") for c in order])
    )


def test_leafcutter_cuts_large_writes_into_bounded_cells(ap: Apiary) -> None:
    ap.settings.memory_per_bee = 64 * 1024 * 1024  # target 16 MiB, max 32 MiB
    ap.create_frame("h", "b", "wide", {"n": "int64", "s": "string"})
    n = 1_200_000
    table = pa.table({"n": pa.array(range(n)), "s": pa.array(["x" * 30] * n)})
    result = ap.write_to_frame("h", "b", "wide", table)
    cells = ap.frame("h", "b", "wide").ledger.latest().cells.values()
    assert result["cells_written"] == len(cells) > 1
    assert all(c.memory_bytes <= ap.sizing.max_bytes for c in cells)
    assert sum(c.rows for c in cells) == n


def test_stats_in_the_ledger_match_the_data(ap: Apiary) -> None:
    ap.create_frame("h", "b", "s", {"k": "string", "v": "float64", "d": "date32"})
    table = pa.table(
        {
            "k": ["b", "a", None],
            "v": [2.5, -1.0, 3.0],
            "d": [dt.date(2026, 1, 2), dt.date(2025, 12, 31), None],
        }
    )
    ap.write_to_frame("h", "b", "s", table)
    (cell,) = ap.frame("h", "b", "s").ledger.latest().cells.values()
    assert (cell.stats["k"].min, cell.stats["k"].max, cell.stats["k"].null_count) == ("a", "b", 1)
    assert (cell.stats["v"].min, cell.stats["v"].max) == (-1.0, 3.0)
    assert (cell.stats["d"].min, cell.stats["d"].max) == ("2025-12-31", "2026-01-02")


def test_every_input_kind(ap: Apiary) -> None:
    ap.create_frame("h", "b", "f", {"id": "int64", "name": "string"})
    table = pa.table({"id": [1, 2], "name": ["a", "b"]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    inputs = [
        table,
        table.to_batches()[0],
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
        pd.DataFrame({"id": [1, 2], "name": ["a", "b"]}),
        pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}),
        sink.getvalue().to_pybytes(),
    ]
    for data in inputs:
        assert ap.write_to_frame("h", "b", "f", data)["rows_written"] == 2
    back = ap.read_from_frame("h", "b", "f")
    assert back.num_rows == 12 and back.column_names == ["id", "name"]
    assert sorted(back["id"].to_pylist()) == [1] * 6 + [2] * 6


def test_many_types_round_trip(ap: Apiary) -> None:
    # Types a Delta table holds (uint64, date64, time and duration are refused: tests/delta).
    schema = {
        "i8": "int8",
        "u32": "uint32",
        "f32": "float32",
        "b": "bool",
        "bin": "binary",
        "d32": "date32",
        "ts": "timestamptz",
        "ts_ms": "timestamp[ms]",
        "dec": "decimal128(10, 2)",
        "ls": "large_string",
    }
    ap.create_frame("h", "b", "types", schema, partition_by=["b"])
    row = {
        "i8": -5,
        "u32": 2**32 - 1,
        "f32": 1.5,
        "b": True,
        "bin": b"\x00\x01",
        "d32": dt.date(2026, 3, 1),
        "ts": dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC),
        "ts_ms": dt.datetime(2026, 3, 1, 12, 0, 0, 250000),
        "dec": Decimal("12.34"),
        "ls": "long",
    }
    frame_schema = ap.get_frame("h", "b", "types")["schema"]
    table = pa.Table.from_pylist([row], schema=frame_schema)
    ap.write_to_frame("h", "b", "types", table)
    back = ap.read_from_frame("h", "b", "types")
    assert back.schema == frame_schema and back.equals(table)
