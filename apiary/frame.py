"""A frame's data operations: write, overwrite and read, over its ledger and cells."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from apiary.catalog.models import FrameDef
from apiary.cells.conform import conform
from apiary.cells.inputs import to_table
from apiary.cells.partition import partition_value_to_str
from apiary.cells.reader import read_cells
from apiary.cells.sizing import CellSizing
from apiary.cells.types import schema_from_json
from apiary.cells.writer import write_cells
from apiary.errors import SchemaError
from apiary.ledger import CellMeta, Ledger, LedgerEntry, Snapshot
from apiary.storage import Storage


@dataclass
class WriteOutcome:
    version: int
    cells: list[CellMeta]
    rows: int

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

    @cached_property
    def schema(self) -> pa.Schema:
        return schema_from_json(self.definition.columns)

    @property
    def partition_by(self) -> list[str]:
        return self.definition.partition_by

    def snapshot(self, version: int | None = None) -> Snapshot:
        return self.ledger.latest() if version is None else self.ledger.at(version)

    # -- writing -----------------------------------------------------------------------------

    def write(
        self, data: object, *, sizing: CellSizing, max_partitions: int, overwrite: bool = False
    ) -> WriteOutcome:
        """Validate, cut, upload and commit ``data``; ``overwrite`` replaces every cell.

        Validation happens before any upload, so bad input leaves storage untouched.
        """
        table = conform(to_table(data), self.schema, self.partition_by)
        if not overwrite and table.num_rows == 0:
            return WriteOutcome(self.ledger.latest().version, [], 0)
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
        entry: LedgerEntry = self.ledger.commit(
            "rewrite_cells" if overwrite else "add_cells", cells, replace_all=overwrite
        )
        return WriteOutcome(entry.version, cells, table.num_rows)

    # -- reading -----------------------------------------------------------------------------

    def read(
        self,
        partition_filter: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
        fetch: Callable[[str], bytes | Path] | None = None,
    ) -> pa.Table:
        snap = self.snapshot(version)
        cells = self.select_cells(snap, partition_filter or {})
        if columns is not None:
            unknown = [c for c in columns if c not in self.schema.names]
            if unknown:
                raise SchemaError(
                    f"frame {self.full_name} has no column {unknown[0]!r}; "
                    f"its columns are {', '.join(self.schema.names)}"
                )
        return read_cells(
            self.storage, self.prefix, cells, self.schema, columns, self.full_name, fetch
        )

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
