"""The ledger's in-memory models: entries, cells and snapshots (stored as Delta actions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Operation = Literal["create_frame", "add_cells", "rewrite_cells"]


class ColumnStats(BaseModel):
    min: Any = None
    max: Any = None
    null_count: int = 0


class CellMeta(BaseModel):
    """One Parquet cell as the ledger knows it: enough to prune it without opening it."""

    path: str  # relative to the frame folder, e.g. "region=eu/cell_<uuid>.parquet"
    rows: int
    bytes: int  # size of the Parquet object
    memory_bytes: int = 0  # decoded Arrow size: what a bee must hold; drives compaction
    partition: dict[str, str] = {}
    stats: dict[str, ColumnStats] = {}
    modified_ms: int = 0  # when it was written (Delta's modificationTime); 0 if unknown


class LedgerEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    version: int
    timestamp: str
    writer: str
    commit_id: str
    operation: Operation
    frame_id: str
    add: list[CellMeta] = []
    remove: list[str] = []
    columns: list[dict[str, Any]] | None = Field(default=None, alias="schema")
    partition_by: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass
class Snapshot:
    """A frame as of one version. Readers pin one snapshot; commits never change it."""

    version: int
    frame_id: str
    cells: dict[str, CellMeta] = field(default_factory=dict)
    table: Any = None  # apiary.ledger.codec.TableMeta: the Delta protocol and metadata

    @property
    def rows(self) -> int:
        return sum(cell.rows for cell in self.cells.values())

    @property
    def bytes(self) -> int:
        return sum(cell.bytes for cell in self.cells.values())

    def apply(self, entry: LedgerEntry, table: Any = None) -> Snapshot:
        """The snapshot after ``entry``; a new object, so pinned readers keep theirs.

        ``table`` is the entry's new protocol and metadata, when it changes them.
        """
        cells = dict(self.cells)  # a C-level copy: an append to a long frame stays cheap
        for path in entry.remove:
            cells.pop(path, None)
        cells.update((cell.path, cell) for cell in entry.add)
        return Snapshot(
            version=entry.version,
            frame_id=self.frame_id,
            cells=cells,
            table=table if table is not None else self.table,
        )
