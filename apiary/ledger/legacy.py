"""The ledger format of Apiary 0.1 (``<frame>/_ledger/NNNNNN.json``): read it, upgrade it.

A root written by that release stays readable by this one, frame by frame, until ``apiary
upgrade`` has rewritten the frame's history as a Delta log (:func:`upgrade_frame`). Writes to a
frame still in the old format are refused with the command to run.

The upgrade is safe to kill at any point and to run again:

1. every old version N becomes ``_delta_log/N.json`` with ``put_if_absent`` (same version
   numbers, commit ids, writers and cells, so time travel sees the same history), then the
   Delta checkpoints every 100 versions;
2. ``_ledger/000000.json`` is deleted — from then on the frame reads from its Delta log;
3. the rest of ``_ledger/`` is deleted.

Until step 2 the frame reads from the old log, complete; after it, from the new one, complete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ValidationError

from apiary.catalog.models import FrameDef
from apiary.cells.types import schema_from_json
from apiary.commitlog import CommitLog, is_checkpoint_version
from apiary.delta.actions import Version, encode_version
from apiary.delta.checkpoint import encode_checkpoint, encode_last_checkpoint
from apiary.delta.schema import check_frame_schema
from apiary.errors import NotFoundError, SerializationError
from apiary.ledger.codec import TableMeta, cell_to_add, entry_to_version, new_table
from apiary.ledger.models import CellMeta, LedgerEntry, Snapshot
from apiary.storage import Storage

log = logging.getLogger("apiary.ledger.legacy")

FOLDER = "_ledger"


class LegacyCheckpoint(BaseModel):
    version: int
    frame_id: str
    cells: list[CellMeta]


class LegacyLog:
    """Read-only access to one frame's ``_ledger/``."""

    def __init__(self, storage: Storage, prefix: str, frame: FrameDef, name: str) -> None:
        self.storage = storage
        self.log = CommitLog(storage, f"{prefix}/{FOLDER}")
        self.frame = frame
        self.name = name

    def present(self) -> bool:
        """True while the frame still reads from its old log (one HEAD)."""
        return self.log.exists(0)

    def entry(self, version: int) -> LedgerEntry | None:
        try:
            document = self.log.read_if_present(version)
        except SerializationError as exc:
            raise SerializationError(f"frame {self.name} (old format): {exc}") from exc
        if document is None:
            return None
        try:
            entry = LedgerEntry.model_validate(document)
        except ValidationError as exc:
            raise SerializationError(
                f"old ledger entry {self.log.path(version)} of frame {self.name} is damaged "
                f"({exc.error_count()} problems); restore it from a backup"
            ) from exc
        if entry.version != version or entry.frame_id != self.frame.frame_id:
            raise SerializationError(
                f"old ledger entry {self.log.path(version)} belongs to another frame or version"
            )
        return entry

    def entries(self, start: int = 0) -> Iterator[LedgerEntry]:
        version = start
        while (entry := self.entry(version)) is not None:
            yield entry
            version += 1

    def snapshot(self, version: int | None = None) -> Snapshot:
        """The frame at ``version`` (None: newest), from the nearest old checkpoint."""
        snap = Snapshot(version=-1, frame_id=self.frame.frame_id)
        hint = self.log.latest_checkpoint()
        start = hint if hint and (version is None or hint <= version) else None
        if start is None and version:
            start = version - version % 100 or None
        if start:
            try:
                checkpoint = LegacyCheckpoint.model_validate(
                    self.log.read_json(self.log.checkpoint_path(start))
                )
                if checkpoint.frame_id == self.frame.frame_id and checkpoint.version == start:
                    snap = Snapshot(
                        version=start,
                        frame_id=self.frame.frame_id,
                        cells={c.path: c for c in checkpoint.cells},
                    )
            except (NotFoundError, SerializationError, ValidationError):
                pass  # entries remain the truth
        for entry in self.entries(snap.version + 1):
            if version is not None and entry.version > version:
                break
            snap = snap.apply(entry)
        return snap

    def history(self) -> list[tuple[LedgerEntry, datetime]]:
        return [
            (self._entry_or_damaged(CommitLog.version_of(info)), info.last_modified)
            for info in self.log.versions_after(None)
        ]

    def _entry_or_damaged(self, version: int) -> LedgerEntry:
        entry = self.entry(version)
        if entry is None:
            raise SerializationError(f"old ledger entry {self.log.path(version)} vanished")
        return entry


def _timestamp_ms(entry: LedgerEntry) -> int | None:
    try:
        return int(datetime.fromisoformat(entry.timestamp).timestamp() * 1000)
    except ValueError:
        return None


def upgrade_frame(
    storage: Storage, prefix: str, frame: FrameDef, name: str, delta_log: CommitLog
) -> dict[str, Any]:
    """Rewrite one frame's old log as its Delta log; idempotent and safe to kill.

    Returns ``{"frame", "versions", "written", "state"}``; ``state`` is ``"upgraded"``,
    ``"already"`` (nothing old left) or ``"cleaned"`` (only leftovers of an earlier run).
    """
    old = LegacyLog(storage, prefix, frame, name)
    leftovers = storage.list(f"{prefix}/{FOLDER}")
    if not old.present():
        for obj in leftovers:  # step 3 of an earlier run that was cut short
            storage.delete(obj.path)
        state = "cleaned" if leftovers else "already"
        return {"frame": name, "versions": None, "written": 0, "state": state}
    log.info("upgrading %s", name)  # tests wait for this line before killing at random
    schema = schema_from_json(frame.columns)
    check_frame_schema(schema)  # a type Delta lacks: the frame stays readable in the old format
    table: TableMeta = new_table(frame.frame_id, schema, frame.partition_by, name)
    snap = Snapshot(version=-1, frame_id=frame.frame_id, table=table)
    written = 0
    for entry in old.entries():
        removed = [snap.cells[p] for p in entry.remove if p in snap.cells]
        full = bool(entry.remove) and set(entry.remove) == set(snap.cells)
        actions = entry_to_version(
            entry,
            schema,
            removed,
            overwrite=full,
            table=table if entry.version == 0 else None,
            timestamp_ms=_timestamp_ms(entry),
            data_change=True,  # whether an old rewrite moved or changed rows is not recorded
        )
        if delta_log.try_create(entry.version, encode_version(actions)):
            written += 1
        snap = snap.apply(entry)
        if is_checkpoint_version(entry.version):
            _checkpoint(delta_log, snap, table, schema)
    if snap.version < 0:
        raise SerializationError(f"frame {name}: its old log has no version 0")
    storage.delete(old.log.path(0))  # the switch: from here on the frame reads its Delta log
    for obj in storage.list(f"{prefix}/{FOLDER}"):
        storage.delete(obj.path)
    log.info("upgraded %s: %d versions (%d written now)", name, snap.version + 1, written)
    return {"frame": name, "versions": snap.version + 1, "written": written, "state": "upgraded"}


def _checkpoint(delta_log: CommitLog, snap: Snapshot, table: TableMeta, schema: pa.Schema) -> None:
    state = Version(
        protocol=table.protocol,
        metadata=table.metadata,
        adds=[cell_to_add(c, schema, data_change=False) for c in snap.cells.values()],
    )
    data, size = encode_checkpoint(state)
    delta_log.write_checkpoint(snap.version, data, encode_last_checkpoint(snap.version, size))
