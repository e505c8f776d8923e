"""The distributed-query hand-off, as objects in the bucket.

_queries/<query_id>/manifest.json                    written by the coordinator only
_queries/<query_id>/<task_id>.<node_id>.arrow        a partial result (Arrow IPC stream)
_queries/<query_id>/<task_id>.<node_id>.error.json   a task that failed on that node
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

QUERIES = "_queries"


class Attempt(BaseModel):
    node: str
    outcome: str = ""  # "", "error: ...", "timed out", "node died"


class CellRef(BaseModel):
    path: str  # relative to the frame folder
    rows: int
    bytes: int


class Task(BaseModel):
    task_id: str
    cells: list[CellRef]
    node: str  # current assignee
    attempts: list[Attempt] = []


class Manifest(BaseModel):
    query_id: str
    coordinator: str
    frame_prefix: str
    frame_name: str
    columns: list[dict[str, Any]]  # the frame schema (apiary.cells.types.schema_to_json)
    fragment_sql: str
    tasks: list[Task]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def manifest_path(query_id: str) -> str:
    return f"{QUERIES}/{query_id}/manifest.json"


def result_path(query_id: str, task_id: str, node_id: str) -> str:
    return f"{QUERIES}/{query_id}/{task_id}.{node_id}.arrow"


def error_path(query_id: str, task_id: str, node_id: str) -> str:
    return f"{QUERIES}/{query_id}/{task_id}.{node_id}.error.json"


def query_folder(query_id: str) -> str:
    return f"{QUERIES}/{query_id}"
