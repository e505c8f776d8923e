"""Delta log actions as typed models, and one version's newline-delimited JSON.

Only the actions and fields Apiary reads or writes are modelled; unknown fields are kept out
of the way (``extra="allow"`` on commitInfo, ignored elsewhere). What this reader does not
implement — reader features such as deletion vectors or column mapping — is refused by name
(:func:`check_readable`), never silently misread.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apiary.errors import SchemaError, SerializationError

# Protocol versions and features this reader understands. timestampNtz only changes a type;
# appendOnly/invariants/checkConstraints/... only constrain writers (see WRITER_FEATURES).
READER_VERSION = 1
WRITER_VERSION = 2
READER_FEATURES = frozenset({"timestampNtz"})
WRITER_FEATURES = frozenset({"timestampNtz", "appendOnly", "invariants"})
# Writer features whose meaning is a rule Apiary does not enforce: refuse to write such tables.
_UNSAFE_FOR_WRITERS = ("checkConstraints", "generatedColumns", "identityColumns")


class _Action(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class Protocol(_Action):
    min_reader_version: int = Field(alias="minReaderVersion")
    min_writer_version: int = Field(alias="minWriterVersion")
    reader_features: list[str] | None = Field(default=None, alias="readerFeatures")
    writer_features: list[str] | None = Field(default=None, alias="writerFeatures")


class Format(_Action):
    provider: str = "parquet"
    options: dict[str, str] = {}


class MetaData(_Action):
    id: str
    name: str | None = None
    description: str | None = None
    format: Format = Format()
    schema_string: str = Field(alias="schemaString")
    partition_columns: list[str] = Field(default=[], alias="partitionColumns")
    configuration: dict[str, str | None] = {}
    created_time: int | None = Field(default=None, alias="createdTime")


class Add(_Action):
    path: str
    partition_values: dict[str, str | None] = Field(default={}, alias="partitionValues")
    size: int
    modification_time: int = Field(alias="modificationTime")
    data_change: bool = Field(default=True, alias="dataChange")
    stats: str | None = None
    tags: dict[str, str | None] | None = None
    deletion_vector: dict[str, Any] | None = Field(default=None, alias="deletionVector")


class Remove(_Action):
    path: str
    deletion_timestamp: int | None = Field(default=None, alias="deletionTimestamp")
    data_change: bool = Field(default=True, alias="dataChange")
    extended_file_metadata: bool | None = Field(default=None, alias="extendedFileMetadata")
    partition_values: dict[str, str | None] | None = Field(default=None, alias="partitionValues")
    size: int | None = None
    deletion_vector: dict[str, Any] | None = Field(default=None, alias="deletionVector")


class Txn(_Action):
    app_id: str = Field(alias="appId")
    version: int
    last_updated: int | None = Field(default=None, alias="lastUpdated")


class CommitInfo(BaseModel):
    """Provenance. Apiary's own fields live under ``apiary``; other writers' are kept as is."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    timestamp: int | None = None
    operation: str | None = None
    operation_parameters: dict[str, Any] | None = Field(default=None, alias="operationParameters")
    engine_info: str | None = Field(default=None, alias="engineInfo")
    is_blind_append: bool | None = Field(default=None, alias="isBlindAppend")
    apiary: ApiaryInfo | None = None


class ApiaryInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    commit_id: str = Field(alias="commitId")
    writer: str
    operation: str


CommitInfo.model_rebuild()


class Version(BaseModel):
    """The actions of one log version (or of a checkpoint)."""

    protocol: Protocol | None = None
    metadata: MetaData | None = None
    adds: list[Add] = []
    removes: list[Remove] = []
    txns: list[Txn] = []
    commit_info: CommitInfo | None = None


_KINDS = {
    "protocol": Protocol,
    "metaData": MetaData,
    "add": Add,
    "remove": Remove,
    "txn": Txn,
    "commitInfo": CommitInfo,
}

# Actions a reader of rows may skip; anything else is damage, not a newer protocol (a newer
# protocol announces itself through the protocol action and is refused there).
_IGNORED = frozenset({"cdc", "domainMetadata", "checkpointMetadata", "sidecar"})


def parse_version(raw: bytes, where: str) -> Version:
    """The actions in one ``_delta_log/NNN.json``; SerializationError naming ``where``."""
    out = Version()
    try:
        lines = raw.decode().splitlines()
    except UnicodeDecodeError as exc:
        raise SerializationError(f"{where} is not UTF-8 text ({exc})") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SerializationError(f"{where} line {number} is not valid JSON ({exc})") from exc
        if not isinstance(document, dict) or len(document) != 1:
            raise SerializationError(f"{where} line {number} is not one Delta action")
        ((kind, body),) = document.items()
        model = _KINDS.get(kind)
        if model is None:
            if kind in _IGNORED:
                continue  # nothing a read of the table's rows needs
            raise SerializationError(f"{where} line {number} holds no Delta action ({kind!r})")
        try:
            action = model.model_validate(body)
        except ValidationError as exc:
            raise SerializationError(
                f"{where} line {number}: a damaged {kind} action ({exc.error_count()} problems: "
                f"{exc.errors()[0]['loc']} {exc.errors()[0]['msg']})"
            ) from exc
        _collect(out, action)
    return out


def _collect(out: Version, action: BaseModel) -> None:
    if isinstance(action, Protocol):
        out.protocol = action
    elif isinstance(action, MetaData):
        out.metadata = action
    elif isinstance(action, Add):
        out.adds.append(action)
    elif isinstance(action, Remove):
        out.removes.append(action)
    elif isinstance(action, Txn):
        out.txns.append(action)
    elif isinstance(action, CommitInfo):
        out.commit_info = action


def encode_version(version: Version) -> bytes:
    """Newline-delimited actions: commitInfo first (readers of history look there), then the
    protocol, metadata, removes and adds."""
    lines: list[dict[str, Any]] = []
    if version.commit_info is not None:
        lines.append({"commitInfo": _dump(version.commit_info)})
    if version.protocol is not None:
        lines.append({"protocol": _dump(version.protocol)})
    if version.metadata is not None:
        lines.append({"metaData": _dump(version.metadata)})
    lines += [{"txn": _dump(t)} for t in version.txns]
    lines += [{"remove": _dump(r)} for r in version.removes]
    lines += [{"add": _dump(a)} for a in version.adds]
    return "\n".join(
        json.dumps(line, separators=(",", ":"), allow_nan=False) for line in lines
    ).encode()


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def check_readable(protocol: Protocol, table: str) -> None:
    """Refuse, by feature name, a table this reader would misread."""
    if protocol.min_reader_version > 3:
        raise SchemaError(
            f"table {table} needs Delta reader version {protocol.min_reader_version}; Apiary "
            "reads versions 1 to 3"
        )
    if protocol.min_reader_version == 2:
        raise SchemaError(
            f"table {table} uses the Delta reader feature columnMapping (reader version 2), "
            "which Apiary does not read; rewrite it without column mapping"
        )
    unknown = sorted(set(protocol.reader_features or ()) - READER_FEATURES)
    if protocol.min_reader_version == 3 and unknown:
        raise SchemaError(
            f"table {table} uses the Delta reader feature{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}, which Apiary does not read; rewrite the table without "
            "it (e.g. delta-rs optimize/rewrite) or read it with another engine"
        )


def check_writable(protocol: Protocol, table: str) -> None:
    """Refuse to append to a table whose writer rules Apiary does not follow."""
    check_readable(protocol, table)
    if protocol.min_writer_version > 7:
        raise SchemaError(f"table {table} needs Delta writer version {protocol.min_writer_version}")
    if 3 <= protocol.min_writer_version < 7:
        raise SchemaError(
            f"table {table} needs Delta writer version {protocol.min_writer_version} "
            f"({', '.join(_UNSAFE_FOR_WRITERS)} and the like), which Apiary does not enforce; "
            "Apiary can read it but not append to it"
        )
    unknown = sorted(set(protocol.writer_features or ()) - WRITER_FEATURES)
    if protocol.min_writer_version == 7 and unknown:
        raise SchemaError(
            f"table {table} uses the Delta writer feature{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}, which Apiary does not follow when writing; Apiary can read "
            "it but not append to it"
        )
