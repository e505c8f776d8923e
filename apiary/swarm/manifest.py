"""The distributed-query hand-off, as objects in the bucket.

_queries/<query_id>/manifest.json                    written by the coordinator only
_queries/<query_id>/<task_id>.<node_id>.arrow        a partial result (Arrow IPC stream)
_queries/<query_id>/<task_id>.<node_id>.error.json   a task that failed on that node

A manifest names the frames its fragment reads (each pinned at one version, with the cells that
survived pruning) and which of them drives the split: each task lists its own share of the
driving frame's cells, and reads every other frame whole.

Anyone who can write to the bucket can write a manifest, so a worker treats every field as
untrusted input: ids are safe tokens, frame names are valid names (so a frame's folder is a
``hive/box/frame`` inside the root), cell paths stay inside it, and sizes are bounded.
What a manifest's fragment may do is checked separately
(:func:`apiary.sql.readonly.check_read_only`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from apiary.cells.types import schema_from_json
from apiary.errors import SerializationError
from apiary.names import validate_name

QUERIES = "_queries"
MANIFEST = "manifest.json"  # the one file in a query folder that can give a node work

# Bounds well above what a coordinator writes (one task per bee, a frame's cells), so a
# hostile manifest cannot make a worker parse, download or plan without limit.
MAX_MANIFEST_BYTES = 64 * 2**20
MAX_TASKS = 10_000
MAX_CELLS_PER_TASK = 1_000_000
MAX_ATTEMPTS = 100
MAX_COLUMNS = 10_000
MAX_FRAGMENT_CHARS = 1_000_000
MAX_CELL_PATH = 1024
MAX_FRAMES = 64
MAX_BOUND_CHARS = 256

# A backslash or a control character (a character loop over every cell path of a manifest was
# a third of reading it: ~0.15 ms of each remote task's start).
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f\\]")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Query and task ids become parts of object names: letters, digits, '_' and '-' only.
Token = Annotated[str, StringConstraints(pattern=f"^{_TOKEN.pattern}$")]
# Node ids are only compared, never used in a path by a worker (it names objects by its own id).
NodeId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f\x7f]+$")
]


def is_token(text: object) -> bool:
    return isinstance(text, str) and _TOKEN.fullmatch(text) is not None


class Attempt(BaseModel):
    node: NodeId
    outcome: str = Field("", max_length=10_000)  # "", "error: ...", "timed out", "node died"


class CellRef(BaseModel):
    path: str  # relative to the frame folder
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _inside_the_frame(cls, path: str) -> str:
        parts = path.split("/")
        if (
            len(path) > MAX_CELL_PATH
            or not path.endswith(".parquet")
            or any(part in ("", ".", "..") for part in parts)
            or _UNSAFE_IN_PATH.search(path)
        ):
            raise ValueError(
                "a cell path must be a relative path inside the frame folder ending in .parquet "
                "(no '..', leading '/', '\\' or control characters)"
            )
        return path


# A bound as the ledger stores it (see apiary.cells.stats): JSON scalars only.
Bound = int | float | str | bool


class KeyRange(BaseModel):
    """The rows of a narrowed frame a task needs: ``column`` between ``low`` and ``high``,
    bounds in the ledger's encoding for that column's type (decoded against the frame's own
    schema, so a bound that is not a value of it fails the task instead of reading wrongly)."""

    column: str
    low: Bound
    high: Bound

    @field_validator("column")
    @classmethod
    def _name(cls, name: str) -> str:
        validate_name(name, "column")
        return name

    @field_validator("low", "high")
    @classmethod
    def _short(cls, bound: Bound) -> Bound:
        if isinstance(bound, str) and len(bound) > MAX_BOUND_CHARS:
            raise ValueError(f"a key bound is at most {MAX_BOUND_CHARS} characters")
        return bound


class Task(BaseModel):
    task_id: Token
    cells: list[CellRef] = Field(max_length=MAX_CELLS_PER_TASK)  # of the driving frame
    # Other frames narrowed to this task's key range, by index into the manifest's frames:
    # the cells that may hold keys in it, and the range itself, so the scan skips row groups.
    frame_cells: dict[int, list[CellRef]] = Field({}, max_length=MAX_FRAMES)
    frame_ranges: dict[int, KeyRange] = Field({}, max_length=MAX_FRAMES)
    node: NodeId  # current assignee
    attempts: list[Attempt] = Field([], max_length=MAX_ATTEMPTS)


class FrameRef(BaseModel):
    """A frame the fragment reads, by the name the fragment's SQL uses for it."""

    hive: str
    box: str
    frame: str
    version: int | None = Field(None, ge=0)  # pinned by name ("frame@v3"), or None
    columns: list[dict[str, Any]] = Field(max_length=MAX_COLUMNS)  # schema_to_json's form
    cells: list[CellRef] = Field([], max_length=MAX_CELLS_PER_TASK)  # the driving frame: none

    @field_validator("hive", "box", "frame")
    @classmethod
    def _name(cls, name: str, info: Any) -> str:
        validate_name(name, info.field_name)  # an InvalidNameError is a ValueError
        return name

    @field_validator("columns")
    @classmethod
    def _schema(cls, columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        schema_from_json(columns)  # a SchemaError (a ValueError) names what is wrong
        return columns

    @property
    def prefix(self) -> str:
        return f"{self.hive}/{self.box}/{self.frame}"

    @property
    def table(self) -> str:
        return self.frame if self.version is None else f"{self.frame}@v{self.version}"

    @property
    def full_name(self) -> str:
        return f"{self.hive}.{self.box}.{self.table}"


class Manifest(BaseModel):
    query_id: Token
    coordinator: NodeId
    default_hive: str | None = None  # where the fragment's unqualified names resolve (USE)
    default_box: str | None = None
    frames: list[FrameRef] = Field(min_length=1, max_length=MAX_FRAMES)
    driving: int = Field(0, ge=0)  # index into frames
    fragment_sql: str = Field(max_length=MAX_FRAGMENT_CHARS)
    tasks: list[Task] = Field(max_length=MAX_TASKS)

    @field_validator("default_hive", "default_box")
    @classmethod
    def _default(cls, name: str | None, info: Any) -> str | None:
        if name is not None:
            validate_name(name, info.field_name.removeprefix("default_"))
        return name

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.driving >= len(self.frames):
            raise ValueError("driving must name one of the frames")
        for task in self.tasks:
            for named in (task.frame_cells, task.frame_ranges):
                if any(i < 0 or i >= len(self.frames) or i == self.driving for i in named):
                    raise ValueError(
                        "frame_cells and frame_ranges must name frames other than the driving one"
                    )
        tables = [(f.hive, f.box, f.table) for f in self.frames]
        if len(set(tables)) != len(tables):
            raise ValueError("frames must not repeat")
        return self

    @property
    def driving_frame(self) -> FrameRef:
        return self.frames[self.driving]

    @property
    def defaults(self) -> tuple[str, str]:
        return (self.default_hive or "datafusion", self.default_box or "public")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_stored(cls, data: bytes, query_id: str) -> Manifest:
        """The manifest stored in ``query_id``'s folder, validated; else SerializationError."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise SerializationError(
                f"manifest is {len(data)} bytes; the limit is {MAX_MANIFEST_BYTES}"
            )
        try:
            manifest = cls.model_validate_json(data)
        except ValidationError as exc:
            raise SerializationError(_describe(exc)) from None
        if manifest.query_id != query_id:
            raise SerializationError("query_id does not match the manifest's folder")
        return manifest


def assigned(data: bytes, node_id: str) -> list[tuple[str, int]]:
    """(task id, attempts) of each task a refused manifest gives ``node_id``, where that id is
    safe to name an error object with: the coordinator then learns why nothing came back."""
    try:
        tasks = json.loads(data)["tasks"][:MAX_TASKS]
        return [
            (t["task_id"], len(t.get("attempts") or []))
            for t in tasks
            if isinstance(t, dict) and t.get("node") == node_id and is_token(t.get("task_id"))
        ]
    except (ValueError, TypeError, KeyError):
        return []


def _describe(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False)[:3]
    ]
    more = exc.error_count() - len(problems)
    return "; ".join(p[:300] for p in problems) + (f" (and {more} more)" if more > 0 else "")


def query_id_in(path: str) -> str | None:
    """The query id of ``_queries/<id>/manifest.json``, or None unless it is a safe token."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == QUERIES and parts[2] == MANIFEST:
        return parts[1] if is_token(parts[1]) else None
    return None


def manifest_path(query_id: str) -> str:
    return f"{QUERIES}/{query_id}/{MANIFEST}"


def result_path(query_id: str, task_id: str, node_id: str) -> str:
    return f"{QUERIES}/{query_id}/{task_id}.{node_id}.arrow"


def error_path(query_id: str, task_id: str, node_id: str) -> str:
    return f"{QUERIES}/{query_id}/{task_id}.{node_id}.error.json"


def query_folder(query_id: str) -> str:
    return f"{QUERIES}/{query_id}"
