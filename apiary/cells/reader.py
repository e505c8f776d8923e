"""Reading cells of one snapshot back into Arrow, with projection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from apiary.cells.partition import partition_value_from_str
from apiary.errors import NotFoundError, SerializationError, StorageError
from apiary.ledger.models import CellMeta
from apiary.storage import Storage

READ_THREADS = 4


def read_cells(
    storage: Storage,
    frame_prefix: str,
    cells: Sequence[CellMeta],
    schema: pa.Schema,
    columns: Sequence[str] | None = None,
    frame_name: str = "",
    fetch: Callable[[str], bytes | Path] | None = None,
) -> pa.Table:
    """Concatenate ``cells`` in ledger order; only ``columns`` are decoded when given.

    ``fetch`` gets a cell's bytes or a local copy of it (a node's cell cache); by default the
    cell is read from storage.
    """
    target = pa.schema([schema.field(c) for c in columns]) if columns is not None else schema
    name = frame_name or frame_prefix.replace("/", ".")

    def read(cell: CellMeta) -> pa.Table:
        path = f"{frame_prefix}/{cell.path}"
        try:
            data = (fetch or storage.get)(path)
        except NotFoundError as exc:
            raise StorageError(
                f"cell {cell.path} of frame {name} is missing from storage (deleted outside "
                "Apiary, or vacuumed after it was replaced); this version cannot be read"
            ) from exc
        size = len(data) if isinstance(data, bytes) else Path(data).stat().st_size
        check_identity(cell, name, size=size)
        try:
            source = pa.BufferReader(data) if isinstance(data, bytes) else str(data)
            parquet = pq.ParquetFile(source)
            held = set(parquet.schema_arrow.names)
            table = parquet.read(columns=[c for c in target.names if c in held])
        except (pa.ArrowInvalid, OSError) as exc:
            raise SerializationError(
                f"cell {cell.path} of frame {name} is damaged or truncated ({exc}); restore it "
                "from a backup, or overwrite the frame"
            ) from exc
        check_identity(cell, name, rows=table.num_rows)
        if table.num_columns < len(target):
            table = _with_partition_columns(table, cell, target, name)
        return table.cast(target)

    if not cells:
        return target.empty_table()
    if len(cells) == 1:
        return read(cells[0])
    with ThreadPoolExecutor(min(READ_THREADS, len(cells))) as pool:
        return pa.concat_tables(pool.map(read, cells))


def _with_partition_columns(
    table: pa.Table, cell: CellMeta, target: pa.Schema, frame_name: str
) -> pa.Table:
    """Add the columns a Delta writer kept out of the file (its partition values), and nulls
    for columns the frame gained after the cell was written."""
    columns = []
    for f in target:
        if f.name in table.column_names:
            columns.append(table.column(f.name))
        elif f.name in cell.partition:
            value = partition_value_from_str(cell.partition[f.name], f.type)
            columns.append(pa.array([value] * table.num_rows, f.type))
        elif f.nullable:  # a column added after this cell was written (schema evolution)
            columns.append(pa.nulls(table.num_rows, f.type))
        else:
            raise SerializationError(
                f"cell {cell.path} of frame {frame_name} has no column {f.name!r}; it was not "
                "written for this frame's schema"
            )
    return pa.Table.from_arrays(columns, schema=target)


def check_identity(
    cell: CellMeta, frame_name: str, *, size: int | None = None, rows: int | None = None
) -> None:
    """Refuse an object that is not the cell the ledger recorded (replaced outside Apiary).

    Cells are immutable, so the size (known from a read, a listing or a stat) and the row count
    (from the footer, where one is read anyway) must match the ledger exactly.
    """
    if size is not None and size != cell.bytes:
        found = f"is {size:,} bytes but the ledger recorded {cell.bytes:,}"
    elif rows is not None and rows != cell.rows:
        found = f"holds {rows:,} rows but the ledger recorded {cell.rows:,}"
    else:
        return
    raise SerializationError(
        f"cell {cell.path} of frame {frame_name} {found}: it was replaced or changed outside "
        "Apiary, so results would be wrong. Restore the original object from a backup, or "
        "overwrite the frame"
    )
