"""Reading cells of one snapshot back into Arrow, with projection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
        try:
            source = pa.BufferReader(data) if isinstance(data, bytes) else str(data)
            table = pq.read_table(source, columns=list(target.names))
        except (pa.ArrowInvalid, OSError) as exc:
            raise SerializationError(
                f"cell {cell.path} of frame {name} is damaged or truncated ({exc}); restore it "
                "from a backup, or overwrite the frame"
            ) from exc
        if table.num_rows != cell.rows:
            raise SerializationError(
                f"cell {cell.path} of frame {name} holds {table.num_rows} rows but the ledger "
                f"recorded {cell.rows}; it was changed outside Apiary"
            )
        return table.cast(target)

    if not cells:
        return target.empty_table()
    if len(cells) == 1:
        return read(cells[0])
    with ThreadPoolExecutor(min(READ_THREADS, len(cells))) as pool:
        return pa.concat_tables(pool.map(read, cells))
