"""The ledger's file formats: entries (``_ledger/NNNNNN.json``) and checkpoints."""

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


class Checkpoint(BaseModel):
    """The full active cell set at ``version``, so opening a frame replays at most 99 entries."""

    version: int
    frame_id: str
    cells: list[CellMeta]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass
class Snapshot:
    """A frame as of one version. Readers pin one snapshot; commits never change it."""

    version: int
    frame_id: str
    cells: dict[str, CellMeta] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(cell.rows for cell in self.cells.values())

    @property
    def bytes(self) -> int:
        return sum(cell.bytes for cell in self.cells.values())

    def apply(self, entry: LedgerEntry) -> Snapshot:
        """The snapshot after ``entry``; a new object, so pinned readers keep theirs."""
        cells = dict(self.cells)  # a C-level copy: an append to a long frame stays cheap
        for path in entry.remove:
            cells.pop(path, None)
        cells.update((cell.path, cell) for cell in entry.add)
        return Snapshot(version=entry.version, frame_id=self.frame_id, cells=cells)
