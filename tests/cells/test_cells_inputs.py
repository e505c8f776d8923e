"""Everything a write accepts becomes one pa.Table; everything else is a clear SchemaError."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from apiary.cells.inputs import to_table
from apiary.errors import SchemaError

EXPECTED = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", None]})


def _ipc_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    return sink.getvalue().to_pybytes()


def _ipc_file(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    return sink.getvalue().to_pybytes()


def test_table_is_returned_as_is() -> None:
    assert to_table(EXPECTED) is EXPECTED


def test_record_batch() -> None:
    batch = EXPECTED.to_batches()[0]
    assert to_table(batch).equals(EXPECTED)


def test_record_batch_reader() -> None:
    reader = pa.RecordBatchReader.from_batches(
        EXPECTED.schema, EXPECTED.to_batches(max_chunksize=1)
    )
    table = to_table(reader)
    assert table.equals(EXPECTED)
    assert table.num_rows == 3


@pytest.mark.parametrize("container", [list, tuple])
def test_sequence_of_batches(container: type) -> None:
    batches = container(EXPECTED.to_batches(max_chunksize=1))
    assert len(batches) == 3
    assert to_table(batches).equals(EXPECTED)


def test_batches_with_different_schemas_are_a_schema_error() -> None:
    a = pa.record_batch({"x": [1]})
    b = pa.record_batch({"y": ["z"]})
    with pytest.raises(SchemaError):
        to_table([a, b])


def test_empty_list_has_no_schema() -> None:
    with pytest.raises(SchemaError, match="empty list"):
        to_table([])


def test_pandas_index_is_never_a_column() -> None:
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]}, index=[10, 20, 30])
    df.index.name = "key"
    table = to_table(df)
    assert table.column_names == ["id", "name"]
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("name").to_pylist() == ["a", "b", None]
    assert table.schema.metadata is None  # no pandas metadata that would resurrect the index


def test_pandas_range_index_and_types() -> None:
    df = pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "f": [1.5, 2.5, None],
            "t": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
        }
    )
    table = to_table(df)
    assert table.column_names == ["i", "f", "t"]
    assert table.column("i").type == pa.int64()
    assert table.column("i").to_pylist() == [1, None, 3]
    assert pa.types.is_timestamp(table.column("t").type)


def test_polars_dataframe() -> None:
    df = pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None]})
    table = to_table(df)
    assert table.column_names == ["id", "name"]
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("name").to_pylist() == ["a", "b", None]


def test_polars_lazy_frame_says_collect() -> None:
    with pytest.raises(SchemaError, match="collect"):
        to_table(pl.DataFrame({"a": [1]}).lazy())


class _StreamOnly:
    """A foreign object that only speaks the Arrow PyCapsule stream protocol."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self._table.__arrow_c_stream__(requested_schema)


class _ArrayOnly:
    def __init__(self, batch: pa.RecordBatch) -> None:
        self._batch = batch

    def __arrow_c_array__(self, requested_schema: object = None) -> object:
        return self._batch.__arrow_c_array__(requested_schema)


def test_object_with_arrow_c_stream() -> None:
    assert to_table(_StreamOnly(EXPECTED)).equals(EXPECTED)


def test_object_with_arrow_c_array() -> None:
    assert to_table(_ArrayOnly(EXPECTED.to_batches()[0])).equals(EXPECTED)


def test_c_array_that_is_not_a_struct_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        to_table(_ArrayOnly(pa.array([1, 2, 3])))  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_ipc_stream_bytes(wrap: type) -> None:
    data = wrap(_ipc_stream(EXPECTED))
    assert to_table(data).equals(EXPECTED)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_ipc_file_bytes(wrap: type) -> None:
    data = wrap(_ipc_file(EXPECTED))
    assert to_table(data).equals(EXPECTED)


@pytest.mark.parametrize(
    "data",
    [b"", b"not arrow at all", b"\xff\xff\xff\xff\x10\x00\x00\x00garbage!garbage!"],
)
def test_corrupt_ipc_stream(data: bytes) -> None:
    with pytest.raises(SchemaError, match="not a valid Arrow IPC stream"):
        to_table(data)


def test_truncated_ipc_stream_and_file() -> None:
    stream = _ipc_stream(EXPECTED)
    with pytest.raises(SchemaError, match="not a valid Arrow IPC stream"):
        to_table(stream[: len(stream) // 2])
    file = _ipc_file(EXPECTED)
    with pytest.raises(SchemaError, match="not a valid Arrow IPC file"):
        to_table(file[: len(file) // 2])


@pytest.mark.parametrize(
    "data",
    [None, 42, "id,name\n1,a", {"id": [1, 2]}, [1, 2, 3], pa.array([1, 2]), object()],
    ids=lambda d: type(d).__name__,
)
def test_other_inputs_say_what_is_accepted(data: object) -> None:
    with pytest.raises(SchemaError, match="accepted") as info:
        to_table(data)
    message = str(info.value)
    assert type(data).__name__ in message
    assert "RecordBatchReader" in message and "IPC" in message
