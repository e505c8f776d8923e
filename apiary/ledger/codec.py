"""Ledger entries ↔ Delta log versions.

The rest of Apiary sees :class:`LedgerEntry` and :class:`CellMeta` (paths, partition values in
Apiary's canonical text, rows, bytes, min/max/null counts); the bucket holds Delta actions.
This module is the one place that translates, both for Apiary's own entries and for versions
other Delta writers (delta-rs, Spark, ...) committed to the same table.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import pyarrow as pa

from apiary.cells.types import parse_type, type_name
from apiary.delta.actions import (
    READER_VERSION,
    WRITER_VERSION,
    Add,
    ApiaryInfo,
    CommitInfo,
    MetaData,
    Protocol,
    Remove,
    Txn,
    Version,
)
from apiary.delta.schema import (
    TIMESTAMP_NTZ,
    delta_type,
    from_delta_schema,
    needs_timestamp_ntz,
    to_delta_schema,
)
from apiary.delta.values import (
    partition_from_delta,
    partition_to_delta,
    stats_from_delta,
    stats_to_delta,
)
from apiary.errors import SchemaError, SerializationError
from apiary.ledger.models import CellMeta, ColumnStats, LedgerEntry, Operation
from apiary.version import __version__

MEMORY_TAG = "apiary.memoryBytes"
# A column added after create_frame records its frame type in its Delta field metadata, so a
# "uint8" column reads back as uint8 rather than as the Delta "short" that holds it.
ARROW_TYPE_KEY = "apiary.type"
# Delta operation names (as Spark writes them) of Apiary's operations that are not plain writes.
_SCHEMA_OPERATION = "ADD COLUMNS"
ENGINE = f"apiary/{__version__}"


@dataclass(frozen=True)
class TableMeta:
    """What a table is at a version: its protocol and metadata (Delta's, as read or written)."""

    protocol: Protocol
    metadata: MetaData

    @property
    def partition_by(self) -> list[str]:
        return list(self.metadata.partition_columns)


# The frame's declared sort (clustering) key, in its Delta metaData's configuration so that
# other tools see it too: "device,ts". Table properties outside "delta." are free for writers.
SORT_BY_KEY = "apiary.sortBy"


def new_table(
    frame_id: str,
    schema: pa.Schema,
    partition_by: list[str],
    name: str,
    sort_by: Sequence[str] = (),
) -> TableMeta:
    """Version 0 of a frame: the lowest protocol that expresses its schema."""
    if needs_timestamp_ntz(schema):
        protocol = Protocol(
            minReaderVersion=3,
            minWriterVersion=7,
            readerFeatures=[TIMESTAMP_NTZ],
            writerFeatures=[TIMESTAMP_NTZ],
        )
    else:
        protocol = Protocol(minReaderVersion=READER_VERSION, minWriterVersion=WRITER_VERSION)
    metadata = MetaData(
        id=frame_id,
        name=name,
        schemaString=json.dumps(to_delta_schema(schema), separators=(",", ":")),
        partitionColumns=list(partition_by),
        configuration={SORT_BY_KEY: ",".join(sort_by)} if sort_by else {},
        createdTime=_now_ms(),
    )
    return TableMeta(protocol, metadata)


def schema_of(table: TableMeta | None, declared: pa.Schema) -> pa.Schema:
    """The frame's Arrow schema at a version: the Delta ``metaData`` is the truth for which
    columns exist and their Delta types; the create_frame declaration (``declared``) and each
    added column's recorded frame type refine a Delta type back to the exact Arrow type."""
    if table is None:
        return declared  # an Apiary 0.1 ledger: the declaration is all there is
    return _schema_of(table.metadata.schema_string, declared)


@functools.lru_cache(maxsize=256)
def _schema_of(schema_string: str, declared: pa.Schema) -> pa.Schema:
    try:
        document = json.loads(schema_string)
    except ValueError as exc:
        raise SerializationError(f"a table's schemaString is not JSON ({exc})") from exc
    plain = from_delta_schema(document)  # validates every field
    fields = []
    for item, field in zip(document["fields"], plain, strict=True):
        kind = item.get("type")
        recorded = (item.get("metadata") or {}).get(ARROW_TYPE_KEY)
        if isinstance(recorded, str):
            try:
                t = parse_type(recorded)
                if delta_type(t, field.name) == kind:
                    fields.append(pa.field(field.name, t, field.nullable))
                    continue
            except SchemaError:
                pass  # another writer's metadata, or damaged: the Delta type stands
        if field.name in declared.names:
            own = declared.field(field.name)
            try:
                if delta_type(own.type, own.name) == kind:
                    fields.append(own)
                    continue
            except SchemaError:
                pass
        fields.append(field)
    return pa.schema(fields)


def evolve_table(table: TableMeta, schema: pa.Schema, changed: Iterable[str]) -> TableMeta:
    """``table`` with ``schema`` (new or widened columns named in ``changed``): a new
    ``metaData`` keeping every other field exactly as written, and the protocol the schema
    needs (timestampNtz for a naive timestamp column)."""
    changed = set(changed)
    old = {f["name"]: f for f in json.loads(table.metadata.schema_string)["fields"]}
    fields = []
    for f in schema:
        if f.name in old and f.name not in changed:
            fields.append(old[f.name])
            continue
        metadata = dict((old.get(f.name) or {}).get("metadata") or {})
        metadata[ARROW_TYPE_KEY] = type_name(f.type)
        fields.append(
            {
                "name": f.name,
                "type": delta_type(f.type, f.name),
                "nullable": f.nullable,
                "metadata": metadata,
            }
        )
    metadata = table.metadata.model_copy(
        update={
            "schema_string": json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))
        }
    )
    protocol = table.protocol
    if needs_timestamp_ntz(schema) and TIMESTAMP_NTZ not in (protocol.reader_features or ()):
        writer = list(protocol.writer_features or ())
        if protocol.min_writer_version < 7:  # the features writer version 2 implied, by name
            writer = ["appendOnly", "invariants"]
        protocol = Protocol(
            minReaderVersion=3,
            minWriterVersion=7,
            readerFeatures=[*(protocol.reader_features or ()), TIMESTAMP_NTZ],
            writerFeatures=[*writer, TIMESTAMP_NTZ],
        )
    return TableMeta(protocol, metadata)


def _iso_ms(stamp: str) -> int | None:
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return None


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


# -- paths -----------------------------------------------------------------------------------


def to_delta_path(path: str) -> str:
    """Delta paths are URIs: a cell's own ``%`` escapes are escaped once more."""
    return quote(path, safe="/=")


def from_delta_path(path: str, table: str) -> str:
    """A relative path inside the table; anything else (absolute, ``..``) is refused."""
    relative = unquote(path)
    segments = relative.split("/")
    if (
        "://" in path
        or relative.startswith("/")
        or any(s in ("", ".", "..") for s in segments)
        or segments[0].startswith("_")
    ):
        raise SerializationError(
            f"table {table} names a data file outside its folder ({path!r}); Apiary reads only "
            "files under the table's own folder"
        )
    return relative


# -- writing ---------------------------------------------------------------------------------


def cell_to_add(cell: CellMeta, schema: pa.Schema, *, data_change: bool) -> Add:
    return Add(
        path=to_delta_path(cell.path),
        partitionValues={
            col: partition_to_delta(text, schema.field(col).type)
            for col, text in cell.partition.items()
        },
        size=cell.bytes,
        modificationTime=cell.modified_ms or _now_ms(),
        dataChange=data_change,
        stats=stats_to_delta(cell.rows, cell.stats, schema),
        tags={MEMORY_TAG: str(cell.memory_bytes)},
    )


def entry_to_version(
    entry: LedgerEntry,
    schema: pa.Schema,
    removed: list[CellMeta],
    *,
    overwrite: bool = False,
    table: TableMeta | None = None,
    timestamp_ms: int | None = None,
    data_change: bool | None = None,
) -> Version:
    """The Delta actions of ``entry``; ``removed`` are the CellMeta of ``entry.remove``.

    ``timestamp_ms`` and ``data_change`` override the commit time and Delta's ``dataChange``
    (the upgrade of an old ledger keeps its times, and cannot tell a compaction from a change).
    """
    # The entry's own time, so a txn's lastUpdated equals its commit's timestamp (a re-send
    # after a checkpoint finds the version by that time).
    now = timestamp_ms or _iso_ms(entry.timestamp) or _now_ms()
    if entry.operation == "create_frame":
        delta_op, params = "CREATE TABLE", {"mode": "ErrorIfExists"}
    elif entry.operation == "change_schema":
        delta_op, params = _SCHEMA_OPERATION, {}
    elif entry.operation == "add_cells":
        delta_op, params = "WRITE", {"mode": "Append"}
    elif overwrite:
        delta_op, params = "WRITE", {"mode": "Overwrite"}
    else:
        delta_op, params = "OPTIMIZE", {}
    if data_change is None:
        data_change = delta_op != "OPTIMIZE"  # compaction moves rows, it does not change them
    info = CommitInfo(
        timestamp=now,
        operation=delta_op,
        operationParameters=params,
        engineInfo=ENGINE,
        isBlindAppend=entry.operation == "add_cells" and table is None,
        apiary=ApiaryInfo(commitId=entry.commit_id, writer=entry.writer, operation=entry.operation),
    )
    return Version(
        protocol=table.protocol if table else None,
        metadata=table.metadata if table else None,
        commit_info=info,
        removes=[
            Remove(
                path=to_delta_path(cell.path),
                deletionTimestamp=now,
                dataChange=data_change,
                extendedFileMetadata=True,
                partitionValues={
                    col: partition_to_delta(text, schema.field(col).type)
                    for col, text in cell.partition.items()
                },
                size=cell.bytes,
            )
            for cell in removed
        ],
        adds=[cell_to_add(cell, schema, data_change=data_change) for cell in entry.add],
        txns=[Txn(appId=a, version=seq, lastUpdated=now) for a, seq in entry.txns.items()],
    )


# -- reading ---------------------------------------------------------------------------------


def add_to_cell(add: Add, schema: pa.Schema, partition_by: list[str], table: str) -> CellMeta:
    if add.deletion_vector is not None:
        raise SchemaError(
            f"table {table} uses the Delta reader feature deletionVectors (file {add.path}), "
            "which Apiary does not read; rewrite the table without deletion vectors"
        )
    tags = add.tags or {}
    ours = MEMORY_TAG in tags
    try:
        rows, stats = stats_from_delta(add.stats, schema, exact_timestamps=ours)
        partition = {
            col: partition_from_delta(add.partition_values.get(col), schema.field(col).type, col)
            for col in partition_by
        }
    except SchemaError as exc:
        raise SerializationError(f"table {table}, file {add.path}: {exc}") from exc
    memory = tags.get(MEMORY_TAG)
    return CellMeta(
        path=from_delta_path(add.path, table),
        rows=rows if rows is not None else 0,
        bytes=add.size,
        memory_bytes=int(memory) if memory and memory.isdigit() else add.size,
        partition=partition,
        stats={col: ColumnStats(**s) for col, s in stats.items()},
        modified_ms=add.modification_time,
    )


def version_to_entry(
    actions: Version,
    version: int,
    frame_id: str,
    schema: pa.Schema,
    partition_by: list[str],
    table: str,
) -> LedgerEntry:
    """The ledger entry of one Delta version, whoever wrote it."""
    info = actions.commit_info or CommitInfo()
    ours = info.apiary
    if ours is not None and ours.operation in (
        "create_frame",
        "add_cells",
        "rewrite_cells",
        "change_schema",
    ):
        operation: Operation = ours.operation  # type: ignore[assignment]
    elif actions.metadata is not None and version == 0:
        operation = "create_frame"
    elif actions.removes:
        operation = "rewrite_cells"
    else:
        operation = "add_cells"
    stamp = info.timestamp
    return LedgerEntry(
        version=version,
        timestamp=(
            datetime.fromtimestamp(stamp / 1000, UTC).isoformat() if isinstance(stamp, int) else ""
        ),
        writer=ours.writer if ours else (info.engine_info or "another Delta writer"),
        commit_id=ours.commit_id if ours else "",
        operation=operation,
        frame_id=frame_id,
        add=[add_to_cell(a, schema, partition_by, table) for a in actions.adds],
        remove=[from_delta_path(r.path, table) for r in actions.removes],
        txns={t.app_id: t.version for t in actions.txns},
        schema=(
            [{"name": f.name, "type": _type_text(f.type)} for f in schema]
            if actions.metadata is not None
            else None
        ),
    )


def _type_text(t: pa.DataType) -> str:
    try:
        return type_name(t)  # "float32", as create_frame takes it
    except SchemaError:
        return str(t)


def txn_versions(actions: Version) -> dict[str, Txn]:
    return {t.app_id: t for t in actions.txns}
