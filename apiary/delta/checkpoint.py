"""Classic Delta checkpoints (``NNN.checkpoint.parquet``) and the ``_last_checkpoint`` hint.

A checkpoint holds a table's whole state at one version as Parquet rows, one action per row:
the protocol, the metadata, every live file and every app transaction (the "V1 spec", single
file, which every Delta reader understands). Built with pyarrow from the typed actions.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from apiary.delta.actions import Add, MetaData, Protocol, Txn, Version
from apiary.errors import SerializationError

_STR_MAP = pa.map_(pa.string(), pa.string())
_SCHEMA = pa.schema(
    [
        pa.field(
            "txn",
            pa.struct(
                [
                    pa.field("appId", pa.string()),
                    pa.field("version", pa.int64()),
                    pa.field("lastUpdated", pa.int64()),
                ]
            ),
        ),
        pa.field(
            "add",
            pa.struct(
                [
                    pa.field("path", pa.string()),
                    pa.field("partitionValues", _STR_MAP),
                    pa.field("size", pa.int64()),
                    pa.field("modificationTime", pa.int64()),
                    pa.field("dataChange", pa.bool_()),
                    pa.field("stats", pa.string()),
                    pa.field("tags", _STR_MAP),
                ]
            ),
        ),
        pa.field(
            "remove",
            pa.struct(
                [
                    pa.field("path", pa.string()),
                    pa.field("deletionTimestamp", pa.int64()),
                    pa.field("dataChange", pa.bool_()),
                ]
            ),
        ),
        pa.field(
            "metaData",
            pa.struct(
                [
                    pa.field("id", pa.string()),
                    pa.field("name", pa.string()),
                    pa.field("description", pa.string()),
                    pa.field(
                        "format",
                        pa.struct(
                            [pa.field("provider", pa.string()), pa.field("options", _STR_MAP)]
                        ),
                    ),
                    pa.field("schemaString", pa.string()),
                    pa.field("partitionColumns", pa.list_(pa.string())),
                    pa.field("configuration", _STR_MAP),
                    pa.field("createdTime", pa.int64()),
                ]
            ),
        ),
        pa.field(
            "protocol",
            pa.struct(
                [
                    pa.field("minReaderVersion", pa.int32()),
                    pa.field("minWriterVersion", pa.int32()),
                    pa.field("readerFeatures", pa.list_(pa.string())),
                    pa.field("writerFeatures", pa.list_(pa.string())),
                ]
            ),
        ),
    ]
)


def encode_checkpoint(state: Version) -> tuple[bytes, int]:
    """Parquet bytes of a checkpoint and its row count (``size`` in ``_last_checkpoint``)."""
    if state.protocol is None or state.metadata is None:
        raise ValueError("a checkpoint needs the table's protocol and metadata")
    rows: list[dict[str, Any]] = [
        {"protocol": _protocol_row(state.protocol)},
        {"metaData": _metadata_row(state.metadata)},
    ]
    rows += [{"txn": _txn_row(t)} for t in state.txns]
    rows += [{"add": _add_row(a)} for a in state.adds]
    table = pa.Table.from_pylist(rows, schema=_SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes(), len(rows)


def _map(items: dict[str, Any] | None) -> list[tuple[str, Any]] | None:
    return None if items is None else list(items.items())


def _protocol_row(p: Protocol) -> dict[str, Any]:
    return {
        "minReaderVersion": p.min_reader_version,
        "minWriterVersion": p.min_writer_version,
        "readerFeatures": p.reader_features,
        "writerFeatures": p.writer_features,
    }


def _metadata_row(m: MetaData) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "description": m.description,
        "format": {"provider": m.format.provider, "options": _map(m.format.options)},
        "schemaString": m.schema_string,
        "partitionColumns": m.partition_columns,
        "configuration": _map(m.configuration),
        "createdTime": m.created_time,
    }


def _txn_row(t: Txn) -> dict[str, Any]:
    return {"appId": t.app_id, "version": t.version, "lastUpdated": t.last_updated}


def _add_row(a: Add) -> dict[str, Any]:
    return {
        "path": a.path,
        "partitionValues": _map(a.partition_values),
        "size": a.size,
        "modificationTime": a.modification_time,
        "dataChange": a.data_change,
        "stats": a.stats,
        "tags": _map(a.tags),
    }


def decode_checkpoint(raw: bytes, where: str) -> Version:
    """The state in a checkpoint file (ours or another writer's; extra columns are ignored)."""
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise SerializationError(f"{where} is not a readable Parquet checkpoint ({exc})") from exc
    out = Version()
    try:
        for name in ("protocol", "metaData", "txn", "add"):
            if name not in table.column_names:
                continue
            column = table.column(name)
            for row in column.filter(column.is_valid()).to_pylist():
                _collect_row(out, name, row)
    except (ValueError, TypeError, KeyError) as exc:
        raise SerializationError(f"{where} holds a damaged action ({exc})") from exc
    if out.protocol is None or out.metadata is None:
        raise SerializationError(f"{where} lacks the table's protocol or metadata")
    return out


def _dict(value: Any) -> dict[str, Any] | None:
    # Parquet maps come back from Arrow as lists of (key, value) pairs.
    return None if value is None else dict(value)


def _collect_row(out: Version, name: str, row: dict[str, Any]) -> None:
    if name == "protocol":
        out.protocol = Protocol.model_validate(row)
    elif name == "metaData":
        fmt = row.get("format") or {}
        out.metadata = MetaData.model_validate(
            {
                **row,
                "format": {
                    "provider": fmt.get("provider") or "parquet",
                    "options": _dict(fmt.get("options")) or {},
                },
                "configuration": _dict(row.get("configuration")) or {},
                "partitionColumns": row.get("partitionColumns") or [],
            }
        )
    elif name == "txn":
        out.txns.append(Txn.model_validate(row))
    else:
        out.adds.append(
            Add.model_validate(
                {
                    **row,
                    "partitionValues": _dict(row.get("partitionValues")) or {},
                    "tags": _dict(row.get("tags")),
                }
            )
        )


def encode_last_checkpoint(version: int, size: int) -> bytes:
    return json.dumps({"version": version, "size": size}, separators=(",", ":")).encode()


def decode_last_checkpoint(raw: bytes) -> int | None:
    """The version ``_last_checkpoint`` names; None when damaged or multi-part (only time lost)."""
    try:
        document = json.loads(raw)
        version = document["version"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return None
    if document.get("parts") not in (None, 1):
        return None  # multi-part checkpoints are not read: replaying JSON entries is slower only
    return version
