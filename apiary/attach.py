"""Attaching an existing Delta table (written by delta-rs, Spark, ...) as a frame.

The table must live inside the same storage root; its folder stays where it is and its log
stays the truth. The frame takes the table's id, schema and partition columns; Apiary reads it
up to the protocol features it implements (anything more is refused by name) and appends to it
with the same commit engine as its own frames.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from apiary.catalog.models import FrameDef
from apiary.cells.files import Chunk
from apiary.cells.reader import read_cells
from apiary.cells.types import schema_from_json, schema_to_json
from apiary.commitlog import DeltaLog
from apiary.delta.actions import MetaData, Protocol, check_readable, parse_version
from apiary.delta.checkpoint import decode_checkpoint
from apiary.delta.schema import from_delta_schema
from apiary.errors import ConfigError, EntityNotFoundError, NotFoundError, SerializationError
from apiary.ledger.ledger import LOG_FOLDER, Ledger
from apiary.storage import Storage, open_storage


def table_prefix(storage: Storage, uri: str) -> str:
    """The table's folder relative to the storage root; ConfigError when it is outside it."""
    location = storage.location
    text = uri.strip().rstrip("/")
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != location.scheme or (
            location.scheme == "s3" and parts.netloc != location.bucket
        ):
            raise _outside(uri, storage)
        path = parts.path.strip("/")
        root = location.path.strip("/") if location.scheme == "s3" else location.path
    elif os.path.isabs(os.path.expanduser(text)):
        if location.scheme != "file":
            raise _outside(uri, storage)
        path = str(Path(text).expanduser().resolve())
        root = location.path
    else:
        path, root = text, ""  # already relative to the root
    if root:
        if not (path == root or path.startswith(root.rstrip("/") + "/")):
            raise _outside(uri, storage)
        path = path[len(root) :].strip("/")
    segments = path.split("/")
    if not path or any(s in ("", ".", "..") or s.startswith("_") for s in segments):
        raise ConfigError(
            f"{uri!r} is not a table folder inside the storage root (no '..', no '_' folders)"
        )
    return path


def _outside(uri: str, storage: Storage) -> ConfigError:
    return ConfigError(
        f"{uri!r} is outside the storage root {storage.location}; attach_frame registers a "
        "Delta table in the same storage: copy the table into the root first"
    )


def read_table(storage: Storage, prefix: str) -> tuple[Protocol, MetaData, int]:
    """The protocol and metadata of the newest version of the table at ``prefix``, and it."""
    log = DeltaLog(storage, f"{prefix}/{LOG_FOLDER}")
    protocol: Protocol | None = None
    metadata: MetaData | None = None
    version = -1
    hint = log.latest_checkpoint()
    if hint is not None:
        path = log.checkpoint_path(hint)
        try:
            state = decode_checkpoint(storage.get(path), path)
            protocol, metadata, version = state.protocol, state.metadata, hint
        except NotFoundError:
            pass  # the hint is ahead of its checkpoint: replay the JSON entries
    if version < 0 and not log.exists(0):
        raise EntityNotFoundError(
            f"no Delta table at {prefix} in {storage.location} (no {LOG_FOLDER}/ entries)"
        )
    while (raw := log.read_raw_if_present(version + 1)) is not None:
        actions = parse_version(raw, log.path(version + 1))
        protocol = actions.protocol or protocol
        metadata = actions.metadata or metadata
        version += 1
    if protocol is None or metadata is None:
        raise SerializationError(f"the Delta table at {prefix} has no protocol or metadata")
    return protocol, metadata, version


def attached_definition(storage: Storage, uri: str, name: str) -> FrameDef:
    """The frame definition of the Delta table at ``uri`` (validated: readable by Apiary)."""
    prefix = table_prefix(storage, uri)
    protocol, metadata, _ = read_table(storage, prefix)
    check_readable(protocol, name)
    if metadata.format.provider != "parquet":
        raise SerializationError(
            f"table {name} stores {metadata.format.provider!r} files; Apiary reads Parquet"
        )
    try:
        schema = from_delta_schema(json.loads(metadata.schema_string))
    except json.JSONDecodeError as exc:
        raise SerializationError(f"table {name} has a damaged schemaString ({exc})") from exc
    unknown = [c for c in metadata.partition_columns if c not in schema.names]
    if unknown:
        raise SerializationError(f"table {name} is partitioned by unknown column {unknown[0]!r}")
    return FrameDef(
        frame_id=metadata.id,
        columns=schema_to_json(schema),
        partition_by=list(metadata.partition_columns),
        created_at=datetime.now(UTC).isoformat(),
        location=prefix,
    )


class DeltaTableSource:
    """A local Delta table as an input of ``apiary load``: its newest version, cell by cell."""

    format = "delta"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._storage = open_storage(path.resolve().parent, create=False)
        self._prefix = path.resolve().name
        definition = attached_definition(self._storage, self._prefix, str(path))
        self.schema = schema_from_json(definition.columns)
        self._cells = list(
            Ledger(self._storage, self._prefix, definition, writer="load").latest().cells.values()
        )
        self.size = sum(cell.bytes for cell in self._cells) or 1

    def chunks(self, chunk_rows: int, schema: object = None) -> Iterator[Chunk]:
        done = 0
        if not self._cells:
            yield Chunk(self.schema.empty_table(), self.size)
        for cell in self._cells:
            table = read_cells(self._storage, self._prefix, [cell], self.schema)
            done += cell.bytes
            for start in range(0, max(table.num_rows, 1), chunk_rows):
                yield Chunk(table.slice(start, chunk_rows), done)
