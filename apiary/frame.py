"""A frame's data operations: write, overwrite and read, over its ledger and cells."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from apiary.catalog.models import FrameDef
from apiary.cells.conform import conform
from apiary.cells.inputs import to_table
from apiary.cells.partition import partition_value_to_str
from apiary.cells.reader import read_cells
from apiary.cells.sizing import CellSizing
from apiary.cells.types import plain_type
from apiary.cells.writer import write_cells
from apiary.delta.schema import delta_type
from apiary.errors import ApiaryError, SchemaError, WriteConflictError
from apiary.ledger import CellMeta, Ledger, LedgerEntry, Snapshot
from apiary.ledger.codec import TableMeta, evolve_table
from apiary.ledger.ledger import already_committed
from apiary.ledger.models import AlreadyCommitted
from apiary.names import validate_name
from apiary.storage import Storage

# Widening a column (Delta's typeWidening feature is not read by delta-rs or Polars, so Apiary
# rewrites the cells under the wider type instead): source type -> the types it may become.
_WIDENINGS: dict[pa.DataType, tuple[pa.DataType, ...]] = {
    pa.int8(): (pa.int16(), pa.int32(), pa.int64(), pa.float64()),
    pa.int16(): (pa.int32(), pa.int64(), pa.float64()),
    pa.int32(): (pa.int64(), pa.float64()),
    pa.uint8(): (pa.int16(), pa.int32(), pa.int64(), pa.float64()),
    pa.uint16(): (pa.int32(), pa.int64(), pa.float64()),
    pa.float32(): (pa.float64(),),
}


SCHEMA_RETRIES = 3  # add_columns re-prepared after another schema change landed first


@dataclass
class WriteOutcome:
    version: int
    cells: list[CellMeta]
    rows: int
    # Set when the write's txn was already committed: nothing was written or committed.
    already: AlreadyCommitted | None = None

    @property
    def bytes(self) -> int:
        return sum(cell.bytes for cell in self.cells)


@dataclass
class Frame:
    storage: Storage
    hive: str
    box: str
    name: str
    definition: FrameDef
    ledger: Ledger

    @classmethod
    def open(
        cls,
        storage: Storage,
        hive: str,
        box: str,
        name: str,
        definition: FrameDef,
        *,
        writer: str,
        commit_retries: int = 100,
    ) -> Frame:
        """The frame with its ledger, in the frame's folder ``<hive>/<box>/<name>``."""
        ledger = Ledger(
            storage,
            definition.location or f"{hive}/{box}/{name}",
            definition,
            writer=writer,
            name=f"{hive}.{box}.{name}",
            commit_retries=commit_retries,
        )
        return cls(storage, hive, box, name, definition, ledger)

    @property
    def full_name(self) -> str:
        return f"{self.hive}.{self.box}.{self.name}"

    @property
    def prefix(self) -> str:
        """The frame's folder: its Delta table root (elsewhere for an attached table)."""
        return self.definition.location or f"{self.hive}/{self.box}/{self.name}"

    @property
    def files_hold_partition_columns(self) -> bool:
        """False when cells may lack their partition columns (Delta writers keep them out of
        the files; Apiary's own cells carry them), so a reader must add them from the log."""
        return self.definition.location is None or not self.partition_by

    @property
    def uri(self) -> str:
        """Where other Delta readers find this frame's table (no credentials, no endpoint)."""
        location = self.storage.location
        if location.scheme == "s3":
            root = "/".join(p for p in (location.path.strip("/"), self.prefix) if p)
            return f"s3://{location.bucket}/{root}"
        if location.scheme == "file":
            return str(Path(location.path) / self.prefix)
        return f"memory://{location.path}/{self.prefix}"

    @property
    def schema(self) -> pa.Schema:
        """The schema of the newest version this handle has read (its Delta metadata)."""
        return self.ledger.known_schema()

    def schema_at(self, snap: Snapshot) -> pa.Schema:
        """The schema as of ``snap``: time travel reads a version with its own schema."""
        return self.ledger.schema_of(snap)

    @property
    def partition_by(self) -> list[str]:
        return self.definition.partition_by

    def snapshot(self, version: int | None = None) -> Snapshot:
        return self.ledger.latest() if version is None else self.ledger.at(version)

    # -- writing -----------------------------------------------------------------------------

    def write(
        self,
        data: object,
        *,
        sizing: CellSizing,
        max_partitions: int,
        overwrite: bool = False,
        txn: tuple[str, int] | None = None,
        merge_schema: bool = False,
    ) -> WriteOutcome:
        """Validate, cut, upload and commit ``data``; ``overwrite`` replaces every cell.

        Validation happens before any upload, so bad input leaves storage untouched. A ``txn``
        already committed returns its version before anything is uploaded (and, if another
        process commits it while this one uploads, at commit time: the cells stay orphaned
        for vacuum). ``merge_schema`` adds the data's unknown columns as nullable columns, in
        the same commit.
        """
        snap = self.ledger.latest()
        if txn is not None and (found := already_committed(snap, *txn)) is not None:
            return WriteOutcome(self._txn_version(found), [], 0, found)
        schema = self.schema_at(snap)
        incoming = to_table(data)
        evolved = None
        if merge_schema:
            added = [
                pa.field(f.name, _storable(f.type), True)
                for f in incoming.schema
                if f.name not in schema.names
            ]
            if added:
                schema = pa.schema([*schema, *added])
                evolved = self._evolve(snap, schema, [f.name for f in added])
        table = conform(incoming, schema, self.partition_by)
        if not overwrite and table.num_rows == 0 and evolved is None and txn is None:
            return WriteOutcome(snap.version, [], 0)
        cells = write_cells(
            self.storage,
            self.prefix,
            table,
            self.partition_by,
            sizing,
            max_partitions,
            sort_by=self.definition.sort_by,
        )
        # An overwrite names no cells: the ledger removes whatever is live where it lands.
        try:
            entry: LedgerEntry = self.ledger.commit(
                "rewrite_cells" if overwrite else "add_cells",
                cells,
                replace_all=overwrite,
                txn=txn,
                table=evolved,
                prepared_on=snap,
            )
        except AlreadyCommitted as found:  # another process won with the same txn
            return WriteOutcome(self._txn_version(found), [], 0, found)
        return WriteOutcome(entry.version, cells, table.num_rows)

    def _txn_version(self, found: AlreadyCommitted) -> int:
        """The version that committed ``found``'s sequence, when it can be told cheaply.

        A mark read from a checkpoint has no version, only its commit time: the version
        committed at that time (a binary search, see Ledger.version_at) is checked.
        """
        mark = found.mark
        if found.exact or mark.sequence != found.sequence or mark.updated_ms is None:
            return found.version
        try:
            when = datetime.fromtimestamp(mark.updated_ms / 1000, UTC)
            candidate = self.ledger.version_at(when)
            if self.ledger.txns_of(candidate).get(found.app_id) == found.sequence:
                found.version, found.exact = candidate, True
        except ApiaryError:
            pass  # "at or before" the version found stays true
        return found.version

    # -- schema changes ------------------------------------------------------------------------

    def _evolve(self, snap: Snapshot, schema: pa.Schema, changed: list[str]) -> TableMeta:
        if snap.table is None:
            raise SchemaError(
                f"frame {self.full_name} has no Delta metadata yet (an Apiary 0.1 ledger?); "
                "run `apiary upgrade` before changing its schema"
            )
        for name in changed:
            validate_name(name, "column")
            delta_type(schema.field(name).type, name)
        return evolve_table(snap.table, schema, changed)

    def add_columns(self, columns: Mapping[str, pa.DataType], *, if_not_exists: bool) -> int:
        """Add nullable columns in one commit (a Delta metaData action); the new version.

        Cells written before read the new columns as nulls. An existing column of the same
        type is skipped when ``if_not_exists``; any other existing name is a SchemaError.
        A schema change landing first is read and the columns checked again (it carries no
        data, so re-preparing it is cheap).
        """
        for _ in range(SCHEMA_RETRIES):
            try:
                return self._add_columns(columns, if_not_exists)
            except WriteConflictError:
                continue
        return self._add_columns(columns, if_not_exists)

    def _add_columns(self, columns: Mapping[str, pa.DataType], if_not_exists: bool) -> int:
        snap = self.ledger.latest()
        schema = self.schema_at(snap)
        added = []
        for name, kind in columns.items():
            if name in schema.names:
                if if_not_exists and schema.field(name).type == kind:
                    continue
                raise SchemaError(
                    f"frame {self.full_name} already has a column {name!r} "
                    f"({schema.field(name).type}); pick another name"
                    + ("" if if_not_exists else " (or pass if_not_exists=True)")
                )
            added.append(pa.field(name, kind, True))
        if not added:
            return snap.version
        new = pa.schema([*schema, *added])
        table = self._evolve(snap, new, [f.name for f in added])
        return self.ledger.commit("change_schema", [], table=table, prepared_on=snap).version

    def widen_column(
        self, column: str, kind: pa.DataType, *, sizing: CellSizing, max_partitions: int
    ) -> tuple[int, int]:
        """Widen ``column`` to ``kind``: (version, cells rewritten).

        Delta's typeWidening table feature would keep old files as they are, but delta-rs and
        Polars refuse to read such tables; so every cell is rewritten under the new type, one
        cell at a time (a bee's memory), in one commit with the new metadata — a table any
        Delta reader reads. An append racing it is a WriteConflictError (the rewrite must see
        every cell).
        """
        snap = self.ledger.latest()
        schema = self.schema_at(snap)
        if column not in schema.names:
            raise SchemaError(
                f"frame {self.full_name} has no column {column!r}; its columns are "
                f"{', '.join(schema.names)}"
            )
        old = schema.field(column).type
        if old == kind:
            return snap.version, 0
        if kind not in _WIDENINGS.get(old, ()):
            raise SchemaError(
                f"column {column!r} is {old} and cannot be widened to {kind}: Apiary widens "
                "int8/int16/int32 (and uint8/uint16) to a wider int or float64, and float32 to "
                "float64. For any other change, write a new frame (create_frame, then "
                "write_to_frame with the converted data)"
            )
        if column in self.partition_by:
            raise SchemaError(
                f"column {column!r} partitions frame {self.full_name}; a partition column's "
                "type cannot change"
            )
        new = pa.schema([f.with_type(kind) if f.name == column else f for f in schema])
        table = self._evolve(snap, new, [column])
        cells: list[CellMeta] = []
        for cell in snap.cells.values():  # one at a time: a cell fits a bee's memory
            data = read_cells(self.storage, self.prefix, [cell], schema, None, self.full_name)
            cells += write_cells(
                self.storage,
                self.prefix,
                data.cast(new),
                self.partition_by,
                sizing,
                max_partitions,
            )
        entry = self.ledger.commit(
            "rewrite_cells",
            cells,
            list(snap.cells),
            table=table,
            prepared_on=snap,
            exclusive=True,
        )
        return entry.version, len(snap.cells)

    # -- reading -----------------------------------------------------------------------------

    def read(
        self,
        partition_filter: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
        fetch: Callable[[str], bytes | Path] | None = None,
    ) -> pa.Table:
        snap = self.snapshot(version)
        schema = self.schema_at(snap)
        cells = self.select_cells(snap, partition_filter or {})
        if columns is not None:
            unknown = [c for c in columns if c not in schema.names]
            if unknown:
                raise SchemaError(
                    f"frame {self.full_name} has no column {unknown[0]!r}"
                    + (f" at version {snap.version}" if version is not None else "")
                    + f"; its columns are {', '.join(schema.names)}"
                )
        return read_cells(self.storage, self.prefix, cells, schema, columns, self.full_name, fetch)

    def select_cells(self, snap: Snapshot, partition_filter: Mapping[str, Any]) -> list[CellMeta]:
        """Cells whose partition values match ``{column: value or [values]}``."""
        wanted: dict[str, set[str]] = {}
        for column, value in partition_filter.items():
            if column not in self.partition_by:
                raise SchemaError(
                    f"{column!r} is not a partition column of {self.full_name} (partitioned by "
                    f"{self.partition_by or 'nothing'}); filter other columns with sql() WHERE"
                )
            values = value if isinstance(value, list | tuple | set | frozenset) else [value]
            kind = self.schema.field(column).type
            wanted[column] = {partition_value_to_str(v, kind) for v in values}
        return [
            cell
            for cell in snap.cells.values()
            if all(cell.partition.get(col) in accepted for col, accepted in wanted.items())
        ]


def _storable(t: pa.DataType) -> pa.DataType:
    """The column type a merged-in column gets: layout variants (dictionary, view, large) are
    stored as the plain type, as create_frame stores them; nanosecond times as microseconds."""
    plain = plain_type(t)
    assert isinstance(plain, pa.DataType)
    if pa.types.is_timestamp(plain) and plain.unit == "ns":
        # pandas' nanoseconds: Delta holds microseconds (conform refuses a value that would change)
        return pa.timestamp("us", plain.tz)
    return plain
