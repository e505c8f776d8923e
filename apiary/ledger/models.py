"""The ledger's in-memory models: entries, cells and snapshots (stored as Delta actions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Operation = Literal["create_frame", "add_cells", "rewrite_cells", "change_schema"]


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
    # Delta ``txn`` actions: application id -> the sequence number this commit carried.
    txns: dict[str, int] = {}
    partition_by: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class TxnMark:
    """The newest sequence an application committed, and where (idempotent writes).

    ``version`` is None when the mark came from a checkpoint (Delta's ``txn`` keeps only the
    sequence and the commit time, ``updated_ms``).
    """

    sequence: int
    version: int | None
    updated_ms: int | None = None


class AlreadyCommitted(Exception):
    """A write whose ``(app_id, sequence)`` a committed version already carries: not an error,
    the caller returns ``version`` (exact when ``exact``, else "at or before")."""

    def __init__(self, app_id: str, sequence: int, mark: TxnMark, version: int) -> None:
        super().__init__(f"{app_id} sequence {sequence} already committed")
        self.app_id, self.sequence, self.mark = app_id, sequence, mark
        self.version = version
        self.exact = mark.version is not None and mark.sequence == sequence


@dataclass
class Snapshot:
    """A frame as of one version. Readers pin one snapshot; commits never change it."""

    version: int
    frame_id: str
    cells: dict[str, CellMeta] = field(default_factory=dict)
    table: Any = None  # apiary.ledger.codec.TableMeta: the Delta protocol and metadata
    txns: dict[str, TxnMark] = field(default_factory=dict)  # newest sequence per application

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
        txns = self.txns
        if entry.txns:
            txns = dict(txns)
            stamp = _ms(entry.timestamp)
            for app_id, sequence in entry.txns.items():
                txns[app_id] = TxnMark(sequence, entry.version, stamp)
        return Snapshot(
            version=entry.version,
            frame_id=self.frame_id,
            cells=cells,
            table=table if table is not None else self.table,
            txns=txns,
        )


def _ms(stamp: str) -> int | None:
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return None
