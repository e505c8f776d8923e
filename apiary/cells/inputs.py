"""Turn whatever a caller hands to a write into one ``pa.Table``."""

from __future__ import annotations

import sys

import pyarrow as pa

from apiary.errors import SchemaError

ACCEPTED = (
    "a pyarrow Table, RecordBatch or RecordBatchReader, a list of RecordBatches, a pandas or "
    "polars DataFrame (or anything with __arrow_c_stream__ / __arrow_c_array__), or bytes "
    "holding an Arrow IPC stream or file"
)
_IPC_FILE_MAGIC = b"ARROW1"


def to_table(data: object) -> pa.Table:
    """``data`` as a ``pa.Table``; a pandas index is never kept as a column."""
    try:
        return _to_table(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(
            f"could not read the {type(data).__name__} as a table ({exc}); accepted: {ACCEPTED}"
        ) from exc


def _to_table(data: object) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if (
        isinstance(data, (list, tuple))
        and data
        and all(isinstance(b, pa.RecordBatch) for b in data)
    ):
        return pa.Table.from_batches(list(data))
    pandas = sys.modules.get("pandas")  # never import pandas just to rule it out
    if pandas is not None and isinstance(data, pandas.DataFrame):
        # pandas' own __arrow_c_stream__ keeps a non-default index as __index_level_0__.
        table = pa.Table.from_pandas(data, preserve_index=False)
        return table.replace_schema_metadata(None)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _from_ipc(data)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data).read_all()
    if hasattr(data, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(data)])
    hint = ""
    if isinstance(data, (list, tuple)):
        hint = " (an empty list has no schema)" if not data else ""
    elif hasattr(data, "collect"):
        hint = " (a lazy frame must be collected first)"
    raise SchemaError(f"cannot write a {type(data).__name__}{hint}; accepted: {ACCEPTED}")


def _from_ipc(data: bytes | bytearray | memoryview) -> pa.Table:
    buf = pa.py_buffer(data)
    is_file = buf[: len(_IPC_FILE_MAGIC)].to_pybytes() == _IPC_FILE_MAGIC
    try:
        if is_file:
            return pa.ipc.open_file(buf).read_all()
        return pa.ipc.open_stream(buf).read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        kind = "file" if is_file else "stream"
        raise SchemaError(
            f"the {buf.size} bytes given are not a valid Arrow IPC {kind} ({exc}); "
            "write them with pyarrow.ipc.new_stream (or new_file)"
        ) from exc
