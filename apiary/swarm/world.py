"""Heartbeats and the world view: who is in the swarm, judged on the storage's clock.

Each node writes ``_heartbeats/<node_id>.json`` every few seconds. A heartbeat's age is the
storage's own modification time of that object compared with a reference time from the same
storage (the reader's own heartbeat, written just before listing), never a node's clock: a
Raspberry Pi has no battery-backed clock and may boot hours in the past.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, field_validator, model_validator

from apiary.errors import NotFoundError
from apiary.storage import ObjectInfo, Storage, redact

log = logging.getLogger("apiary.swarm")

HEARTBEATS = "_heartbeats"
State = Literal["alive", "suspect", "dead"]


class Heartbeat(BaseModel):
    """What a node tells the swarm about itself. Timestamps in it are informational only."""

    node_id: str
    state: str = "running"  # running | draining | stopping
    version: str = ""
    cores: int = 0
    memory_budget: int = 0
    bees_idle: int = 0
    bees_busy: int = 0
    temperature: float = 0.0
    band: str = "cold"
    memory_pressure: float = 0.0  # its process's memory over its budget (colony reading)
    cached_cells: list[str] = []
    cache_bytes: int = 0
    storage: str = ""
    started_at: str = ""
    sent_at: str = ""  # the node's own clock, which may be wrong
    beats: int = 0  # heartbeats this node has written since it started
    sees: dict[str, str] = {}  # its world view at the previous beat: node id -> state
    # What an observer (the TUI) shows of a node it is not attached to; older nodes omit them.
    bees: list[dict[str, Any]] = []  # id, state, task, elapsed_s, memory_used, memory_budget
    abandoned: list[dict[str, Any]] = []  # the latest abandoned tasks with their attempts
    action: str = "normal"  # what regulation does in this band ("throttling writes", ...)

    @model_validator(mode="before")
    @classmethod
    def _older_action(cls, data: Any) -> Any:
        # Older nodes called the action "regulation", a name that now means the band.
        if isinstance(data, dict) and "action" not in data and "regulation" in data:
            data = {**data, "action": data["regulation"]}
        return data

    @field_validator("storage")
    @classmethod
    def _no_secrets(cls, storage: str) -> str:
        # Written by other nodes (maybe older ones that printed URLs whole): shown redacted.
        return redact(storage)


@dataclass(frozen=True)
class Timings:
    interval: float = 5.0
    suspect_after: float = 15.0
    dead_after: float = 30.0
    forget_after: float = 60.0

    def state(self, age: float) -> State:
        if age < self.suspect_after:
            return "alive"
        if age <= self.dead_after:
            return "suspect"
        return "dead"


@dataclass(frozen=True)
class NodeView:
    heartbeat: Heartbeat
    age: float  # seconds, on the storage's clock
    state: State

    @property
    def node_id(self) -> str:
        return self.heartbeat.node_id


def heartbeat_path(node_id: str) -> str:
    return f"{HEARTBEATS}/{node_id}.json"


def node_of(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".json")


def judge(
    objects: list[ObjectInfo], reference: datetime, timings: Timings
) -> list[tuple[str, float, State]]:
    """(node id, age, state) for each heartbeat object, oldest state last (pure logic)."""
    judged = []
    for info in objects:
        age = max(0.0, (reference - info.last_modified).total_seconds())
        judged.append((node_of(info.path), age, timings.state(age)))
    return sorted(judged, key=lambda item: item[0])


def read_world(
    storage: Storage,
    timings: Timings,
    reference: datetime | None = None,
    *,
    sweep: bool = False,
) -> list[NodeView]:
    """Every node that has a heartbeat, with its state.

    ``reference`` is "now" on the storage's clock; without it one is measured (an observer that
    writes no heartbeat of its own). With ``sweep``, heartbeats dead for longer than
    ``forget_after`` are deleted, so a crashed node does not haunt the swarm forever.
    """
    objects = [o for o in storage.list(HEARTBEATS) if o.path.endswith(".json")]
    now = reference or storage.now()
    views = []
    for node_id, age, state in judge(objects, now, timings):
        path = heartbeat_path(node_id)
        if sweep and age > timings.forget_after:
            log.info("forgetting node %s: no heartbeat for %.0fs", node_id, age)
            storage.delete(path)
            continue
        try:
            beat = Heartbeat.model_validate_json(storage.get(path))
        except (ValidationError, ValueError) as exc:
            log.warning("ignoring unreadable heartbeat %s: %s", path, exc)
            continue
        except NotFoundError:  # deleted between listing and reading: the node just left
            continue
        views.append(NodeView(beat, age, state))
    return views
