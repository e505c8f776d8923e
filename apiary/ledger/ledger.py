"""The per-frame ledger: optimistic commits over Parquet cells, snapshots and time travel.

The ledger is the frame's Delta Lake log, ``<frame>/_delta_log/``: version 0 holds the
protocol and metadata, each commit ``add``/``remove`` actions and a ``commitInfo`` with
Apiary's commit id, writer and operation (see :mod:`apiary.ledger.codec`). A commit uploads its
cells first and then creates the next version with ``put_if_absent`` through the shared loop
in :mod:`apiary.commitlog`. Losing that race costs reading the new entries and a retry of the
small JSON entry, never a re-upload. What the rebased entry removes is decided by
:mod:`apiary.ledger.rebase`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import overload

import pyarrow as pa

from apiary.catalog.models import FrameDef
from apiary.cells.types import schema_from_json
from apiary.commitlog import CHECKPOINT_INTERVAL, Attempt, DeltaLog, commit
from apiary.delta.actions import (
    Txn,
    Version,
    check_readable,
    check_writable,
    encode_version,
    parse_version,
)
from apiary.delta.checkpoint import decode_checkpoint, encode_checkpoint, encode_last_checkpoint
from apiary.errors import (
    EntityNotFoundError,
    NotFoundError,
    SerializationError,
    UpgradeNeededError,
    WriteConflictError,
)
from apiary.ledger.codec import (
    TableMeta,
    cell_to_add,
    entry_to_version,
    new_table,
    schema_of,
    version_to_entry,
)
from apiary.ledger.legacy import LegacyLog
from apiary.ledger.models import (
    AlreadyCommitted,
    CellMeta,
    LedgerEntry,
    Operation,
    Snapshot,
    TxnMark,
)
from apiary.ledger.rebase import Change, removals
from apiary.storage import Storage

log = logging.getLogger("apiary.ledger")

LOG_FOLDER = "_delta_log"


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
        self.prefix = prefix  # the frame's folder: <hive>/<box>/<frame>, a Delta table root
        self.log = DeltaLog(storage, f"{prefix}/{LOG_FOLDER}")
        self.frame = frame
        self.schema = schema_from_json(frame.columns)  # as create_frame declared it
        self.writer = writer
        self.name = name or prefix.replace("/", ".")
        self.commit_retries = commit_retries
        self._latest: Snapshot | None = None
        self._hint: int | None = None  # the version _last_checkpoint named when last read
        self._old = LegacyLog(storage, prefix, frame, self.name)
        self._old_checked = False  # once the frame reads from its Delta log, it always will

    def _in_old_format(self) -> bool:
        """True while the frame still holds Apiary 0.1's ``_ledger/`` (until ``apiary upgrade``).

        One HEAD when a frame is first opened; repeated only while the old log is there, so a
        node notices an upgrade made by another process.
        """
        if self._old_checked:
            return False
        if self._old.present():
            return True
        self._old_checked = True
        return False

    def _refuse_old_format(self) -> None:
        if self._in_old_format():
            raise UpgradeNeededError(
                f"frame {self.name} is still in Apiary 0.1's ledger format (_ledger/); it reads "
                "as before, but takes writes only once it is a Delta table: run `apiary upgrade` "
                "on this storage root (with no writer of the old release running)"
            )

    # -- reading -----------------------------------------------------------------------------

    def latest(self) -> Snapshot:
        """The newest committed snapshot (one GET that misses when already up to date).

        A damaged newest entry is an error here (what is newest is unknown) while older
        versions stay readable through :meth:`at`, which never reads past its version.
        """
        if self._in_old_format():
            return self._old.snapshot()
        snap = self._latest
        if snap is None:
            snap = self._base(None)
        snap = self._catch_up(snap)
        self._latest = snap
        return snap

    def at(self, version: int) -> Snapshot:
        """The snapshot as of ``version`` (time travel): nearest checkpoint, then entries."""
        if self._in_old_format():
            snap = self._old.snapshot(version)
            if version < 0 or snap.version != version:
                raise EntityNotFoundError(
                    f"frame {self.name} has no version {version}; its versions are "
                    f"0..{self._old.log.last_version()}"
                )
            return snap
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
            entry, table = self._read_version(v, base=snap)
            snap = snap.apply(entry, table)
        return snap

    def history(self) -> list[tuple[LedgerEntry, datetime]]:
        """Every entry, oldest first, with its commit time on the storage's clock."""
        if self._in_old_format():
            return self._old.history()
        out = []
        snap = self._empty()
        for info in self.log.versions_after(None):
            entry, table = self._read_version(DeltaLog.version_of(info), base=snap)
            snap = Snapshot(entry.version, snap.frame_id, table=table or snap.table)
            out.append((entry, info.last_modified))
        return out

    def commit_time(self, version: int) -> datetime:
        """When ``version`` was committed: its ``commitInfo.timestamp`` (the writer's clock),
        else the log object's modification time (the storage's clock)."""
        raw = self.log.read_raw_if_present(version)
        if raw is None:
            raise self._damaged(version, "is missing")
        info = parse_version(raw, self.log.path(version)).commit_info
        if info is not None and isinstance(info.timestamp, int) and info.timestamp > 0:
            return datetime.fromtimestamp(info.timestamp / 1000, UTC)
        path = self.log.path(version)
        listed = [i for i in self.storage.list(path) if i.path == path]
        if not listed:
            raise self._damaged(version, "is missing")
        return listed[0].last_modified

    def txns_of(self, version: int) -> dict[str, int]:
        """The application sequences version ``version`` carries."""
        raw = self.log.read_raw_if_present(version)
        if raw is None:
            return {}
        return {t.app_id: t.version for t in parse_version(raw, self.log.path(version)).txns}

    def version_at(self, when: datetime) -> int:
        """The newest version committed at or before ``when`` (time travel by time).

        A binary search over the commit times: about log2(versions) GETs of small entries,
        not one per version. Commit times come from writers' clocks and are taken as
        increasing with the version (as Delta readers do); a clock that went backwards moves
        the answer by at most the versions it disordered.
        """
        if self._in_old_format():
            raise EntityNotFoundError(
                f"frame {self.name} is in Apiary 0.1's format, whose versions have no commit "
                "times to travel by; read it with version=<n>, or run `apiary upgrade`"
            )
        newest = self.latest().version
        if newest < 0:
            raise EntityNotFoundError(f"frame {self.name} has no committed version yet")
        times: dict[int, datetime] = {}

        def at(version: int) -> datetime:
            if version not in times:
                times[version] = self.commit_time(version)
            return times[version]

        if at(0) > when:
            raise EntityNotFoundError(
                f"frame {self.name} did not exist yet at {when.isoformat()}: its first version "
                f"was committed at {at(0).isoformat()}"
            )
        low, high = 0, newest  # at(low) <= when always holds
        while low < high:
            middle = (low + high + 1) // 2
            if at(middle) <= when:
                low = middle
            else:
                high = middle - 1
        return low

    def check_newest(self) -> int:
        """Read the checkpoint the hint names and the newest entry; return the newest version.

        Raises SerializationError naming a damaged object. Bounded cost (``apiary doctor``):
        two GETs for the hint and its checkpoint, one listing from there, one GET of the entry.
        """
        if self._in_old_format():
            return self._old.snapshot().version
        checkpoint = self.log.latest_checkpoint()
        if checkpoint:
            try:
                self._load_checkpoint(checkpoint)
            except NotFoundError:
                checkpoint = None  # the hint is ahead of a checkpoint that never landed
        found = self.log.versions_after(checkpoint - 1 if checkpoint else None)
        if not found:
            return -1
        newest = DeltaLog.version_of(found[-1])
        self._read_version(newest)
        return newest

    def _empty(self) -> Snapshot:
        return Snapshot(version=-1, frame_id=self.frame.frame_id)

    def _catch_up(self, snap: Snapshot) -> Snapshot:
        """Apply the entries after ``snap``: versions have no gaps, so read until one misses."""
        while (
            found := self._read_version(snap.version + 1, missing_ok=True, base=snap)
        ) is not None:
            snap = snap.apply(*found)
        return snap

    def schema_of(self, snap: Snapshot) -> pa.Schema:
        """The frame's schema at ``snap`` (its Delta metadata; see codec.schema_of)."""
        return schema_of(snap.table, self.schema)

    def known_schema(self) -> pa.Schema:
        """The schema of the newest snapshot this ledger has read (reading it if none)."""
        return self.schema_of(self._latest if self._latest is not None else self.latest())

    def _base(self, version: int | None) -> Snapshot:
        """The newest intact checkpoint at or before ``version`` (None: newest), else empty.

        The hint names the newest checkpoint (another writer may checkpoint at any version);
        Apiary's own are at multiples of ``CHECKPOINT_INTERVAL``.
        """
        if version == 0:
            return self._empty()
        candidates: list[int] = []
        if version is None:
            self._hint = self.log.latest_checkpoint()
        hint = self._hint  # time travel reuses what opening the frame read
        if hint and (version is None or hint <= version):
            candidates.append(hint)
        top = hint if version is None else version
        if top:
            candidates += range(top - top % CHECKPOINT_INTERVAL, 0, -CHECKPOINT_INTERVAL)
        for checkpoint in dict.fromkeys(candidates):
            try:
                return self._load_checkpoint(checkpoint)
            except NotFoundError:
                continue  # its writer died before writing it; an earlier one will do
            except SerializationError as exc:  # entries remain the truth: only time is lost
                log.warning("%s: skipping a damaged checkpoint: %s", self.name, exc)
        return self._empty()

    def _load_checkpoint(self, version: int) -> Snapshot:
        path = self.log.checkpoint_path(version)
        state = decode_checkpoint(self.storage.get(path), path)
        assert state.protocol is not None and state.metadata is not None
        if state.metadata.id != self.frame.frame_id:
            raise SerializationError(
                f"checkpoint {path} belongs to another table (id {state.metadata.id}); delete it"
            )
        check_readable(state.protocol, self.name)
        table = TableMeta(state.protocol, state.metadata)
        entry = version_to_entry(
            state,
            version,
            self.frame.frame_id,
            schema_of(table, self.schema),
            self.frame.partition_by,
            self.name,
        )
        return Snapshot(
            version=version,
            frame_id=self.frame.frame_id,
            cells={cell.path: cell for cell in entry.add},
            table=table,
            # A checkpoint keeps each application's sequence and time, not its version.
            txns={t.app_id: TxnMark(t.version, None, t.last_updated) for t in state.txns},
        )

    @overload
    def _read_version(
        self, version: int, *, base: Snapshot | None = ...
    ) -> tuple[LedgerEntry, TableMeta | None]: ...
    @overload
    def _read_version(
        self, version: int, *, missing_ok: bool, base: Snapshot | None = ...
    ) -> tuple[LedgerEntry, TableMeta | None] | None: ...

    def _read_version(
        self, version: int, *, missing_ok: bool = False, base: Snapshot | None = None
    ) -> tuple[LedgerEntry, TableMeta | None] | None:
        """Version ``version`` as a ledger entry, and the table metadata it sets (if any).

        ``base`` is the snapshot before it: its schema decodes the entry's statistics unless
        the entry sets a new one.
        """
        path = self.log.path(version)
        raw = self.log.read_raw_if_present(version)
        if raw is None:
            if missing_ok:
                return None
            raise self._damaged(version, "is missing")
        try:
            actions = parse_version(raw, path)
        except SerializationError as exc:
            raise self._damaged(version, f"is damaged: {exc}") from exc
        if version == 0 and (actions.protocol is None or actions.metadata is None):
            raise self._damaged(version, "lacks the table's protocol or metadata")
        table = self._table_of(actions, path, base)
        known = table if table is not None else (base.table if base is not None else None)
        try:
            entry = version_to_entry(
                actions,
                version,
                self.frame.frame_id,
                schema_of(known, self.schema),
                self.frame.partition_by,
                self.name,
            )
        except SerializationError as exc:
            raise self._damaged(version, f"is damaged: {exc}") from exc
        return entry, table

    def _table_of(
        self, actions: Version, path: str, base: Snapshot | None = None
    ) -> TableMeta | None:
        if actions.protocol is not None:
            check_readable(actions.protocol, self.name)
        if actions.metadata is None:
            return None
        if actions.metadata.id != self.frame.frame_id:
            raise SerializationError(
                f"ledger entry {path} belongs to another table (id {actions.metadata.id}, this "
                f"frame is {self.frame.frame_id}); a dropped frame's files may have been left "
                "behind: drop and recreate the frame"
            )
        if actions.protocol is None:
            known = base.table if base is not None else None
            if known is None and self._latest is not None:
                known = self._latest.table
            if known is None:
                return None
            return TableMeta(known.protocol, actions.metadata)
        return TableMeta(actions.protocol, actions.metadata)

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
        if self._in_old_format():
            return  # it exists, in the old format
        table = new_table(
            self.frame.frame_id,
            self.schema,
            self.frame.partition_by,
            self.name,
            self.frame.sort_by,
        )
        entry = self._entry(0, uuid.uuid4().hex, "create_frame", [], [])
        version = entry_to_version(entry, self.schema, [], table=table)
        self.log.try_create(0, encode_version(version))

    def commit(
        self,
        operation: Operation,
        add: list[CellMeta],
        remove: list[str] | None = None,
        *,
        replace_all: bool = False,
        txn: tuple[str, int] | None = None,
        table: TableMeta | None = None,
        prepared_on: Snapshot | None = None,
        exclusive: bool = False,
    ) -> LedgerEntry:
        """Commit ``add``/``remove`` as the next version; rebase on lost races.

        ``replace_all`` makes a full overwrite: it removes every cell live at the version it
        lands on (see :mod:`apiary.ledger.rebase`). The first attempt starts from the snapshot
        this ledger already holds: when it is stale the conditional create says so, and
        catching up costs the same GETs a refresh would have.

        ``txn`` is ``(app_id, sequence)``: a Delta ``txn`` action; when the version it would
        land on already carries that sequence (or a later one) for ``app_id``, nothing is
        committed and :class:`AlreadyCommitted` names the version. ``table`` is a new protocol
        and metadata (a schema change) prepared on ``prepared_on``, the snapshot whose schema
        ``add`` was written with; if the schema changed before the commit lands it is re-checked
        (see :func:`check_schema`). ``exclusive``: a rewrite that must see no other new cell
        (widening a column rewrites every cell under the new type).
        """
        self._refuse_old_format()
        stamp = int(datetime.now(UTC).timestamp() * 1000)
        add = [c if c.modified_ms else c.model_copy(update={"modified_ms": stamp}) for c in add]
        change = Change(operation, tuple(add), tuple(remove or ()), replace_all, exclusive)
        commit_id = uuid.uuid4().hex
        snap = self._latest if self._latest is not None else self.latest()
        if snap.version < 0:
            self.create()
            snap = self.latest()
        if snap.table is not None:
            check_writable(snap.table.protocol, self.name)
        origin = prepared_on if prepared_on is not None else snap
        written = self.schema_of(origin)  # what the cells hold
        wanted = schema_of(table, self.schema) if table is not None else None

        prepared: list[LedgerEntry] = []  # the entry of each attempt; the last one landed
        duplicate: list[AlreadyCommitted] = []

        def prepare(base: Snapshot) -> Attempt[Snapshot] | None:
            if txn is not None:
                found = already_committed(base, *txn)
                if found is not None:
                    duplicate.append(found)
                    return None
            base_schema = self.schema_of(base)
            if table is not None and base.table != origin.table:
                raise WriteConflictError(
                    f"the schema of {self.name} changed (version {base.version}) while this "
                    "schema change was prepared; nothing was committed. Read the frame's "
                    "schema again and repeat the change if it is still needed."
                )
            if table is None and base_schema != written:
                check_schema(written, base_schema, self.name, base.version)
            removed = removals(change, base, self.name)
            entry = self._entry(
                base.version + 1, commit_id, operation, add, removed, dict([txn]) if txn else {}
            )
            actions = entry_to_version(
                entry,
                wanted if wanted is not None else base_schema,
                [base.cells[path] for path in removed],
                # A rewrite under a new schema (widening) is a WRITE, not an OPTIMIZE: the
                # files' types change, so Delta's dataChange must be true.
                overwrite=replace_all or table is not None,
                table=table,
            )
            prepared.append(entry)
            return Attempt(entry.version, encode_version(actions), base.apply(entry, table))

        def refresh(base: Snapshot) -> Snapshot:
            self._latest = self._catch_up(base)
            return self._latest

        after, attempt = commit(
            self.log,
            snap,
            prepare=prepare,
            refresh=refresh,
            checkpoint=self._checkpoint,
            retries=self.commit_retries,
            what=f"frame {self.name}",
        )
        self._latest = after
        if attempt is None:
            raise duplicate[-1]
        return prepared[-1]

    def _entry(
        self,
        version: int,
        commit_id: str,
        operation: Operation,
        add: list[CellMeta],
        remove: list[str],
        txns: dict[str, int] | None = None,
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
            txns=txns or {},
        )

    def _checkpoint(self, snap: Snapshot, version: int) -> None:
        """A classic Parquet checkpoint of ``snap`` and the ``_last_checkpoint`` hint."""
        table = snap.table
        if table is None:  # opened past a checkpoint-less history: rebuild from version 0
            table = self.at(0).table
        assert table is not None
        schema = schema_of(table, self.schema)
        state = Version(
            protocol=table.protocol,
            metadata=table.metadata,
            adds=[cell_to_add(c, schema, data_change=False) for c in snap.cells.values()],
            txns=[
                Txn(appId=app_id, version=mark.sequence, lastUpdated=mark.updated_ms)
                for app_id, mark in sorted(snap.txns.items())
            ],
        )
        data, size = encode_checkpoint(state)
        self.log.write_checkpoint(version, data, encode_last_checkpoint(version, size))


def already_committed(snap: Snapshot, app_id: str, sequence: int) -> AlreadyCommitted | None:
    """Whether ``snap`` already holds ``sequence`` (or a later one) of ``app_id``."""
    mark = snap.txns.get(app_id)
    if mark is None or mark.sequence < sequence:
        return None
    exact = mark.version is not None and mark.sequence == sequence
    return AlreadyCommitted(app_id, sequence, mark, mark.version if exact else snap.version)


def check_schema(written: pa.Schema, current: pa.Schema, frame: str, version: int) -> None:
    """Cells written with ``written`` may land where the schema is now ``current`` only when
    every column they hold is still there with the same type (columns added since read as
    nulls); anything else is a WriteConflictError, since the cells would not fit."""
    for f in written:
        if f.name not in current.names or current.field(f.name).type != f.type:
            now = current.field(f.name).type if f.name in current.names else "no such column"
            raise WriteConflictError(
                f"the schema of {frame} changed while this write ran (version {version}: column "
                f"{f.name!r} is now {now}, the data was written as {f.type}); nothing was "
                "committed. Send the data again: it is checked against the new schema."
            )
