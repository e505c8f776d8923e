"""The per-frame ledger: optimistic commits over Parquet cells, snapshots and time travel.

A commit uploads its cells first and then creates the next ledger version with
``put_if_absent``. Losing that race costs one short listing and a retry of the small JSON entry,
never a re-upload: appends always rebase; a rewrite whose removed cells someone else already
removed is a :class:`WriteConflictError`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from apiary.catalog.models import FrameDef
from apiary.commitlog import CHECKPOINT_INTERVAL, CommitLog
from apiary.errors import (
    ConflictError,
    EntityNotFoundError,
    NotFoundError,
    SerializationError,
    WriteConflictError,
)
from apiary.ledger.models import CellMeta, Checkpoint, LedgerEntry, Operation, Snapshot
from apiary.storage import Storage

log = logging.getLogger("apiary.ledger")


class Ledger:
    def __init__(
        self,
        storage: Storage,
        prefix: str,
        frame: FrameDef,
        *,
        writer: str,
        name: str = "",
        commit_retries: int = 100,
    ) -> None:
        self.storage = storage
        self.prefix = prefix  # the frame's folder: <hive>/<box>/<frame>
        self.log = CommitLog(storage, f"{prefix}/_ledger")
        self.frame = frame
        self.writer = writer
        self.name = name or prefix.replace("/", ".")
        self.commit_retries = commit_retries
        self._latest: Snapshot | None = None

    # -- reading -----------------------------------------------------------------------------

    def latest(self) -> Snapshot:
        """The newest committed snapshot (one short listing when already open)."""
        snap = self._latest
        if snap is None:
            snap = self._load_checkpoint(self.log.latest_checkpoint())
        for info in self.log.versions_after(snap.version if snap.version >= 0 else None):
            snap = snap.apply(self._read_entry(CommitLog.version_of(info)))
        self._latest = snap
        return snap

    def at(self, version: int) -> Snapshot:
        """The snapshot as of ``version`` (time travel): nearest checkpoint, then entries."""
        latest = self.latest()
        if version == latest.version:
            return latest
        if not 0 <= version < latest.version:
            raise EntityNotFoundError(
                f"frame {self.name} has no version {version}; its versions are 0..{latest.version}"
            )
        snap = self._empty()
        for checkpoint in range(version - version % CHECKPOINT_INTERVAL, 0, -CHECKPOINT_INTERVAL):
            try:
                snap = self._load_checkpoint(checkpoint)
                break
            except NotFoundError:
                continue  # its writer died before writing it; an earlier one will do
        for v in range(snap.version + 1, version + 1):
            snap = snap.apply(self._read_entry(v))
        return snap

    def history(self) -> list[tuple[LedgerEntry, datetime]]:
        """Every entry, oldest first, with its commit time on the storage's clock."""
        return [
            (self._read_entry(CommitLog.version_of(info)), info.last_modified)
            for info in self.log.versions_after(None)
        ]

    def _empty(self) -> Snapshot:
        return Snapshot(version=-1, frame_id=self.frame.frame_id)

    def _load_checkpoint(self, version: int | None) -> Snapshot:
        if not version:
            return self._empty()
        path = self.log.checkpoint_path(version)
        try:
            checkpoint = Checkpoint.model_validate(self.log.read_json(path))
        except ValidationError as exc:
            raise SerializationError(f"ledger checkpoint {path} is damaged: {exc}") from exc
        return Snapshot(
            version=checkpoint.version,
            frame_id=checkpoint.frame_id,
            cells={cell.path: cell for cell in checkpoint.cells},
        )

    def _read_entry(self, version: int) -> LedgerEntry:
        path = self.log.path(version)
        try:
            entry = LedgerEntry.model_validate(self.log.read_json(path))
        except ValidationError as exc:
            raise SerializationError(
                f"ledger entry {path} of frame {self.name} is damaged ({exc.error_count()} "
                "problems). The frame cannot be read past this version until the entry is "
                "restored; other frames are unaffected."
            ) from exc
        if entry.version != version or entry.frame_id != self.frame.frame_id:
            raise SerializationError(
                f"ledger entry {path} belongs to another frame or version "
                f"(frame_id {entry.frame_id}, version {entry.version}); a dropped frame's "
                "files may have been left behind: drop and recreate the frame"
            )
        return entry

    # -- committing --------------------------------------------------------------------------

    def create(self) -> None:
        """Write version 0 (``create_frame``) unless it exists. Any writer may do it."""
        entry = self._entry(0, uuid.uuid4().hex, "create_frame", [], [])
        entry.columns = self.frame.columns
        entry.partition_by = self.frame.partition_by
        self.log.try_create(0, entry.to_json())

    def commit(
        self, operation: Operation, add: list[CellMeta], remove: list[str] | None = None
    ) -> LedgerEntry:
        """Commit ``add``/``remove`` as the next version; rebase on lost races."""
        remove = remove or []
        commit_id = uuid.uuid4().hex
        snap = self.latest()
        if snap.version < 0:
            self.create()
            snap = self.latest()
        for attempt in range(self.commit_retries + 1):
            self._check_removable(snap, remove)
            entry = self._entry(snap.version + 1, commit_id, operation, add, remove)
            if self.log.try_create(entry.version, entry.to_json()):
                self._latest = snap.apply(entry)
                self._maybe_checkpoint(self._latest)
                return entry
            log.debug(
                "%s: lost version %d (attempt %d), rebasing", self.name, entry.version, attempt + 1
            )
            snap = self.latest()
        raise ConflictError(
            f"commit to {self.name} lost {self.commit_retries + 1} races in a row and was not "
            "applied; its cells are unreferenced and vacuum will remove them. Retry the write, "
            "or raise commit_retries when many writers share one frame."
        )

    def _check_removable(self, snap: Snapshot, remove: list[str]) -> None:
        gone = [path for path in remove if path not in snap.cells]
        if gone:
            raise WriteConflictError(
                f"a concurrent commit to {self.name} (now at version {snap.version}) already "
                f"removed {len(gone)} of the cells this rewrite replaces (e.g. {gone[0]}); "
                "nothing was committed. Re-read the frame and run the operation again."
            )

    def _entry(
        self,
        version: int,
        commit_id: str,
        operation: Operation,
        add: list[CellMeta],
        remove: list[str],
    ) -> LedgerEntry:
        return LedgerEntry(
            version=version,
            timestamp=datetime.now(UTC).isoformat(),
            writer=self.writer,
            commit_id=commit_id,
            operation=operation,
            frame_id=self.frame.frame_id,
            add=add,
            remove=remove,
        )

    def _maybe_checkpoint(self, snap: Snapshot) -> None:
        if snap.version % CHECKPOINT_INTERVAL or snap.version == 0:
            return
        checkpoint = Checkpoint(
            version=snap.version, frame_id=snap.frame_id, cells=list(snap.cells.values())
        )
        try:
            self.log.write_checkpoint(snap.version, checkpoint.to_json())
        except Exception as exc:  # the commit stands; a missing checkpoint only costs time
            log.warning("%s: could not write checkpoint %d: %s", self.name, snap.version, exc)
