"""What the terminal UI shows, gathered without Textual: snapshots of a storage root and the
pure formatting used to draw them. Everything here is tested fast, with no app running.

A :class:`Source` wraps one :class:`apiary.Apiary` client. *Attached* (the default) it joins the
swarm, so its own bees run the SQL typed in the UI and show in the bees panel; as an *observer*
it writes no heartbeat and shows the bees a selected node reports in its heartbeat.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apiary.errors import ApiaryError
from apiary.swarm.distribute import describe
from apiary.units import human_bytes  # the one unit style of the CLI and the TUI

if TYPE_CHECKING:
    import pyarrow as pa

    from apiary.sdk import Apiary
    from apiary.swarm.world import NodeView

HISTORY_KEPT = 60  # temperature samples per node kept for an observer's sparkline
BANDS = ("cold", "ideal", "warm", "hot", "critical")
BAND_STYLE = {
    "cold": "cyan",
    "ideal": "green",
    "warm": "yellow",
    "hot": "dark_orange",
    "critical": "bold red",
}
STATE_STYLE = {"alive": "green", "suspect": "yellow", "dead": "red"}
BEE_STYLE = {"idle": "dim", "busy": "bold yellow", "draining": "magenta"}
Namespace = dict[str, dict[str, list[str]]]


# -- what a refresh gathers -----------------------------------------------------------------


@dataclass(frozen=True)
class BeeRow:
    id: int
    state: str
    task: str | None = None
    elapsed_s: float | None = None
    memory_used: int = 0
    memory_budget: int = 0

    @classmethod
    def from_dict(cls, bee: Mapping[str, Any]) -> BeeRow:
        return cls(
            id=int(bee.get("id", 0)),
            state=str(bee.get("state", "idle")),
            task=bee.get("task"),
            elapsed_s=bee.get("elapsed_s"),
            memory_used=int(bee.get("memory_used") or 0),
            memory_budget=int(bee.get("memory_budget") or 0),
        )


@dataclass(frozen=True)
class NodeRow:
    node_id: str
    state: str  # alive | suspect | dead, judged on the storage's clock
    age_s: float
    node_state: str = "running"  # what the node says: running | draining | stopping
    bees_busy: int = 0
    bees_idle: int = 0
    cores: int = 0
    memory_budget: int = 0
    temperature: float = 0.0
    band: str = "cold"
    regulation: str = "normal"
    cached_cells: int = 0
    cache_bytes: int = 0
    version: str = ""
    started_at: str = ""
    beats: int = 0
    sees: dict[str, str] = field(default_factory=dict)
    bees: tuple[BeeRow, ...] = ()
    abandoned: tuple[dict[str, Any], ...] = ()

    @property
    def memory_used(self) -> int:
        return sum(b.memory_used for b in self.bees)

    @classmethod
    def from_view(cls, view: NodeView) -> NodeRow:
        beat = view.heartbeat
        return cls(
            node_id=beat.node_id,
            state=view.state,
            age_s=view.age,
            node_state=beat.state,
            bees_busy=beat.bees_busy,
            bees_idle=beat.bees_idle,
            cores=beat.cores,
            memory_budget=beat.memory_budget,
            temperature=beat.temperature,
            band=beat.band,
            regulation=beat.action,  # what the node does in its band
            cached_cells=len(beat.cached_cells),
            cache_bytes=beat.cache_bytes,
            version=beat.version,
            started_at=beat.started_at,
            beats=beat.beats,
            sees=dict(beat.sees),
            bees=tuple(BeeRow.from_dict(b) for b in beat.bees),
            abandoned=tuple(beat.abandoned),
        )


@dataclass(frozen=True)
class ColonyView:
    temperature: float
    band: str
    regulation: str
    history: tuple[float, ...] = ()
    abandoned: tuple[dict[str, Any], ...] = ()
    source: str = ""  # whose colony: "this node" or a node id


@dataclass(frozen=True)
class Snapshot:
    """One refresh: everything the monitor panels and the namespace tree draw."""

    mode: str  # attached | observer
    storage: str
    taken_at: datetime
    node_id: str | None = None  # this client, when attached
    selected: str | None = None  # whose bees and colony are shown
    bees: tuple[BeeRow, ...] = ()
    nodes: tuple[NodeRow, ...] = ()
    colony: ColonyView | None = None
    namespace: Namespace = field(default_factory=dict)
    error: str | None = None  # the storage root could not be read: why

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class QueryResult:
    table: pa.Table
    seconds: float
    pruning: tuple[str, ...] = ()
    distribution: str = ""


# -- the source -----------------------------------------------------------------------------


class Source:
    """One client of a storage root, opened lazily and reopened after the root was unreachable.

    ``storage_now`` replaces the storage's own clock when judging heartbeat ages, ``clock``
    stamps snapshots and ``timer`` times queries (tests freeze all three); ``label`` names the
    root on screen instead of its location.
    """

    def __init__(
        self,
        name: str = "default",
        storage: str | None = None,
        *,
        observe: bool = False,
        node_id: str | None = None,
        clock: Callable[[], datetime] | None = None,
        storage_now: Callable[[], datetime] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        label: str | None = None,
    ) -> None:
        self.name = name
        self.storage_uri = storage
        self.observe = observe
        self.node_id = node_id
        self._clock = clock or _utcnow
        self._storage_now = storage_now
        self._timer = timer
        self._label = label
        self._ap: Apiary | None = None
        self._lock = threading.Lock()
        self._temps: dict[str, deque[tuple[int, float]]] = {}

    @property
    def mode(self) -> str:
        return "observer" if self.observe else "attached"

    @property
    def label(self) -> str:
        """The storage root as shown in the header (never with credentials: URIs hold none)."""
        if self._label is not None:
            return self._label
        if self._ap is not None and self._ap._storage is not None:
            return str(self._ap.storage.location)
        if not self.storage_uri:
            return f"~/.apiary/data/{self.name}"
        from apiary.storage.uri import redact  # here: the module stays light to import

        return redact(self.storage_uri)  # as typed, maybe refused for holding a password

    def apiary(self) -> Apiary:
        with self._lock:
            if self._ap is None:
                from apiary.sdk import Apiary

                ap = Apiary(
                    self.name,
                    self.storage_uri,
                    node_id=self.node_id,
                    join_swarm=not self.observe,
                    create_root=False,  # a mistyped path is an error on screen, not a new root
                )
                try:
                    ap.start()
                except BaseException:
                    ap.shutdown()  # a half-started client (no heartbeat thread) is thrown away
                    raise
                self._ap = ap
            return self._ap

    def close(self) -> None:
        with self._lock:
            if self._ap is not None:
                self._ap.shutdown()
                self._ap = None

    def snapshot(self, selected: str | None = None) -> Snapshot:
        """Bees, swarm, colony and namespace now; an unreachable root gives ``error`` instead."""
        try:
            return self._gather(selected)
        except (ApiaryError, OSError) as exc:
            if self.observe:
                self.close()  # an observer holds nothing worth keeping: start afresh next time
            return Snapshot(self.mode, self.label, self._clock(), error=reason(exc))

    def _gather(self, selected: str | None) -> Snapshot:
        from apiary.swarm.world import read_world

        ap = self.apiary()
        reference = self._storage_now() if self._storage_now else None
        nodes = tuple(NodeRow.from_view(v) for v in read_world(ap.storage, ap.timings, reference))
        self._remember_temperatures(nodes)
        namespace = read_namespace(ap)
        if self.observe:
            shown = pick_node(nodes, selected)
            bees = shown.bees if shown else ()
            colony = None
            if shown is not None:
                colony = ColonyView(
                    shown.temperature,
                    shown.band,
                    shown.regulation,
                    tuple(t for _, t in self._temps.get(shown.node_id, ())),
                    shown.abandoned,
                    shown.node_id,
                )
            return Snapshot(
                self.mode,
                self.label,
                self._clock(),
                selected=shown.node_id if shown else None,
                bees=bees,
                nodes=nodes,
                colony=colony,
                namespace=namespace,
            )
        status = ap.colony_status()
        nodes = own_reading(nodes, ap.node_id, status)
        colony = ColonyView(
            status["temperature"],
            status["band"],
            status["action"],  # the band is status["regulation"] too
            tuple(status["history"]),
            tuple(status["abandoned"]),
            ap.node_id,
        )
        return Snapshot(
            self.mode,
            self.label,
            self._clock(),
            node_id=ap.node_id,
            selected=ap.node_id,
            bees=tuple(BeeRow.from_dict(b) for b in status["bees"]["detail"]),
            nodes=nodes,
            colony=colony,
            namespace=namespace,
        )

    def _remember_temperatures(self, nodes: tuple[NodeRow, ...]) -> None:
        # One sample per heartbeat (not per refresh), so the sparkline keeps the node's pace.
        for node in nodes:
            history = self._temps.setdefault(node.node_id, deque(maxlen=HISTORY_KEPT))
            if not history or history[-1][0] != node.beats:
                history.append((node.beats, node.temperature))

    def describe(self, hive: str, box: str, frame: str) -> list[tuple[str, str]]:
        return describe_rows(self.apiary().get_frame(hive, box, frame))

    def run_sql(self, query: str, cancel: threading.Event | None = None) -> QueryResult:
        ap = self.apiary()
        started = self._timer()
        table = ap.sql(query, cancel=cancel)
        stats = ap.last_query
        return QueryResult(
            table,
            self._timer() - started,
            # with the options its shape chose, if any (sql.tuning), under the pruning lines
            tuple(f.describe() for f in stats.frames) + ((stats.tuning,) if stats.tuning else ()),
            describe(stats.distribution),
        )


def _utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def read_namespace(ap: Apiary) -> Namespace:
    state = ap.registry.state()
    return {
        hive: {box: sorted(b.frames) for box, b in sorted(h.boxes.items())}
        for hive, h in sorted(state.hives.items())
    }


def own_reading(
    nodes: tuple[NodeRow, ...], node_id: str, colony: Mapping[str, Any]
) -> tuple[NodeRow, ...]:
    """This node's swarm row with the colony reading the gauge shows: one source of truth.

    Its heartbeat on the root is up to one beat old; a query in between moves the temperature
    a lot, and the same node must not read cold in one panel and hot in the other.
    """
    return tuple(
        replace(
            n,
            temperature=colony["temperature"],
            band=colony["band"],
            regulation=colony["action"],
        )
        if n.node_id == node_id
        else n
        for n in nodes
    )


def pick_node(nodes: tuple[NodeRow, ...], selected: str | None) -> NodeRow | None:
    """The node whose bees an observer shows: the selected one, else the first alive one."""
    for node in nodes:
        if node.node_id == selected:
            return node
    alive = [n for n in nodes if n.state == "alive"]
    return (alive or list(nodes) or [None])[0]


def reason(exc: BaseException) -> str:
    """An error as one readable line: its kind and message (messages never hold secrets)."""
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text}"


def describe_rows(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """DESCRIBE of a frame from ``Apiary.get_frame``: the figures, then one row per column."""
    from apiary.cells.types import column_notes

    rows = [
        ("frame", f"{info['hive']}.{info['box']}.{info['frame']}"),
        ("version", str(info["version"])),
        ("cells", f"{info['cells']:,}"),
        ("rows", f"{info['rows']:,}"),
        ("bytes", human_bytes(info["bytes"])),
        ("partition_by", ", ".join(info["partition_by"]) or "(none)"),
    ]
    for f in info["arrow_schema"]:  # "schema" is in the form the frame was created with
        rows.append((f.name, column_notes(f, info["partition_by"])))
    return rows


# -- formatting ------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """Short elapsed time: 0.4s, 12s, 3m05s, 2h10m."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def bar(fraction: float, width: int) -> str:
    """A bar of ``width`` cells, eighths included, clamped to 0..1."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width, "·")[:width]


def share(used: int, total: int) -> float:
    return used / total if total > 0 else 0.0


SORT_KEYS: dict[str, Callable[[NodeRow], Any]] = {
    "node": lambda n: n.node_id,
    "state": lambda n: ("alive", "suspect", "dead").index(n.state),
    "busy": lambda n: -n.bees_busy,
    "memory": lambda n: -share(n.memory_used, n.memory_budget),
    "temp": lambda n: -n.temperature,
    "cells": lambda n: -n.cached_cells,
    "age": lambda n: n.age_s,
}


def sort_nodes(nodes: tuple[NodeRow, ...], key: str, reverse: bool = False) -> list[NodeRow]:
    """Nodes ordered by ``key`` (the busiest, hottest first), ties by node id."""
    by = SORT_KEYS[key]
    return sorted(sorted(nodes, key=lambda n: n.node_id), key=by, reverse=reverse)


def spark(values: tuple[float, ...] | list[float], width: int) -> str:
    """The last ``width`` values (0..1, a fixed scale so a cool node never looks hot)."""
    ticks = "▁▂▃▄▅▆▇█"
    return "".join(ticks[round(min(max(v, 0.0), 1.0) * 7)] for v in list(values)[-width:])


def cell_text(value: object, width: int = 60) -> str:
    """One result value as table text: NULL for null, long values cut with an ellipsis."""
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


def page_count(rows: int, size: int) -> int:
    return max(1, -(-rows // size))
