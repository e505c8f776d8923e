"""The per-frame ledger: optimistic commits over Parquet cells, snapshots and time travel.

A commit uploads its cells first and then creates the next ledger version with
``put_if_absent``. Losing that race costs one short listing and a retry of the small JSON entry,
never a re-upload. What the rebased entry removes is decided by :mod:`apiary.ledger.rebase`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import overload

from pydantic import ValidationError

from apiary.catalog.models import FrameDef
from apiary.commitlog import CHECKPOINT_INTERVAL, CommitLog
from apiary.errors import (
    ConflictError,
    EntityNotFoundError,
    NotFoundError,
    SerializationError,
)
from apiary.ledger.models import CellMeta, Checkpoint, LedgerEntry, Operation, Snapshot
from apiary.ledger.rebase import Change, removals
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
        """The newest committed snapshot (one GET that misses when already up to date).

        A damaged newest entry is an error here (what is newest is unknown) while older
        versions stay readable through :meth:`at`, which never reads past its version.
        """
        snap = self._latest
        if snap is None:
            snap = self._base(self.log.latest_checkpoint())
        snap = self._catch_up(snap)
        self._latest = snap
        return snap

    def at(self, version: int) -> Snapshot:
        """The snapshot as of ``version`` (time travel): nearest checkpoint, then entries."""
        known = self._latest
        if known is not None and version == known.version:
            return known
        beyond = known is None or version > known.version
        if version < 0 or (beyond and not self.log.exists(version)):
            last = self.log.last_version()
            raise EntityNotFoundError(
                f"frame {self.name} has no version {version}; its versions are 0..{last}"
            )
        snap = self._base(version)
        for v in range(snap.version + 1, version + 1):
            snap = snap.apply(self._read_entry(v))
        return snap

    def history(self) -> list[tuple[LedgerEntry, datetime]]:
        """Every entry, oldest first, with its commit time on the storage's clock."""
        return [
            (self._read_entry(CommitLog.version_of(info)), info.last_modified)
            for info in self.log.versions_after(None)
        ]

    def check_newest(self) -> int:
        """Read the checkpoint the hint names and the newest entry; return the newest version.

        Raises SerializationError naming a damaged object. Bounded cost (``apiary doctor``):
        two GETs for the hint and its checkpoint, one listing from there, one GET of the entry.
        """
        checkpoint = self.log.latest_checkpoint()
        if checkpoint:
            try:
                self._load_checkpoint(checkpoint)
            except NotFoundError:
                checkpoint = None  # the hint is ahead of a checkpoint that never landed
        found = self.log.versions_after(checkpoint - 1 if checkpoint else None)
        if not found:
            return -1
        newest = CommitLog.version_of(found[-1])
        self._read_entry(newest)
        return newest

    def _empty(self) -> Snapshot:
        return Snapshot(version=-1, frame_id=self.frame.frame_id)

    def _catch_up(self, snap: Snapshot) -> Snapshot:
        """Apply the entries after ``snap``: versions have no gaps, so read until one misses."""
        while (entry := self._read_entry(snap.version + 1, missing_ok=True)) is not None:
            snap = snap.apply(entry)
        return snap

    def _base(self, version: int | None) -> Snapshot:
        """The newest intact checkpoint at or before ``version``, else the empty frame."""
        if not version:
            return self._empty()
        for checkpoint in range(version - version % CHECKPOINT_INTERVAL, 0, -CHECKPOINT_INTERVAL):
            try:
                return self._load_checkpoint(checkpoint)
            except NotFoundError:
                continue  # its writer died before writing it; an earlier one will do
            except SerializationError as exc:  # entries remain the truth: only time is lost
                log.warning("%s: skipping a damaged checkpoint: %s", self.name, exc)
        return self._empty()

    def _load_checkpoint(self, version: int) -> Snapshot:
        path = self.log.checkpoint_path(version)
        try:
            checkpoint = Checkpoint.model_validate(self.log.read_json(path))
        except ValidationError as exc:
            raise SerializationError(
                f"ledger checkpoint {path} of frame {self.name} is damaged "
                f"({exc.error_count()} problems); delete it: the entries before it rebuild the "
                "same state, only opening the frame is slower"
            ) from exc
        if checkpoint.version != version or checkpoint.frame_id != self.frame.frame_id:
            raise SerializationError(
                f"ledger checkpoint {path} belongs to another frame or version; delete it"
            )
        return Snapshot(
            version=checkpoint.version,
            frame_id=checkpoint.frame_id,
            cells={cell.path: cell for cell in checkpoint.cells},
        )

    @overload
    def _read_entry(self, version: int) -> LedgerEntry: ...
    @overload
    def _read_entry(self, version: int, *, missing_ok: bool) -> LedgerEntry | None: ...

    def _read_entry(self, version: int, *, missing_ok: bool = False) -> LedgerEntry | None:
        path = self.log.path(version)
        try:
            document = self.log.read_if_present(version)
        except SerializationError as exc:
            raise self._damaged(version, "is not valid JSON") from exc
        if document is None:
            if missing_ok:
                return None
            raise self._damaged(version, "is missing")
        try:
            entry = LedgerEntry.model_validate(document)
        except ValidationError as exc:
            raise self._damaged(version, f"is damaged ({exc.error_count()} problems)") from exc
        if entry.version != version or entry.frame_id != self.frame.frame_id:
            raise SerializationError(
                f"ledger entry {path} belongs to another frame or version "
                f"(frame_id {entry.frame_id}, version {entry.version}); a dropped frame's "
                "files may have been left behind: drop and recreate the frame"
            )
        return entry

    def _damaged(self, version: int, problem: str) -> SerializationError:
        """Name the object, what still reads, and how to recover."""
        path = self.log.path(version)
        readable = (
            f"versions 0..{version - 1} are intact and readable with version=<n>"
            if version > 0
            else "no version of it can be read"
        )
        recover = "Restore the object from a backup or the bucket's object versioning"
        if not self.log.exists(version + 1):
            recover += (
                "; or, since it is the frame's newest entry, delete it: the frame then reads as "
                f"version {version - 1} and takes writes again, and the commit it held is lost "
                "(vacuum removes its cells)"
            )
        else:
            recover += "; later versions cannot be read until it is back"
        return SerializationError(
            f"ledger entry {path} of frame {self.name} {problem}; {readable}. {recover}."
        )

    # -- committing --------------------------------------------------------------------------

    def create(self) -> None:
        """Write version 0 (``create_frame``) unless it exists. Any writer may do it."""
        entry = self._entry(0, uuid.uuid4().hex, "create_frame", [], [])
        entry.columns = self.frame.columns
        entry.partition_by = self.frame.partition_by
        self.log.try_create(0, entry.to_json())

    def commit(
        self,
        operation: Operation,
        add: list[CellMeta],
        remove: list[str] | None = None,
        *,
        replace_all: bool = False,
    ) -> LedgerEntry:
        """Commit ``add``/``remove`` as the next version; rebase on lost races.

        ``replace_all`` makes a full overwrite: it removes every cell live at the version it
        lands on (see :mod:`apiary.ledger.rebase`). The first attempt starts from the snapshot
        this ledger already holds: when it is stale the conditional create says so, and
        catching up costs the same GETs a refresh would have.
        """
        change = Change(operation, tuple(add), tuple(remove or ()), replace_all)
        commit_id = uuid.uuid4().hex
        snap = self._latest if self._latest is not None else self.latest()
        if snap.version < 0:
            self.create()
            snap = self.latest()
        for attempt in range(self.commit_retries + 1):
            removed = removals(change, snap, self.name)
            entry = self._entry(snap.version + 1, commit_id, operation, add, removed)
            if self.log.try_create(entry.version, entry.to_json()):
                self._latest = snap.apply(entry)
                self._maybe_checkpoint(self._latest)
                return entry
            log.debug(
                "%s: lost version %d (attempt %d), rebasing", self.name, entry.version, attempt + 1
            )
            snap = self._latest = self._catch_up(snap)
        raise ConflictError(
            f"commit to {self.name} lost {self.commit_retries + 1} races in a row and was not "
            "applied; its cells are unreferenced and vacuum will remove them. Retry the write, "
            "or raise commit_retries when many writers share one frame."
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
