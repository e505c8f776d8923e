"""The decision to share a query with the swarm, and the run that shares it.

A query is shared when distribution is on (``distribute_min_cells``), more than one node is
alive and running, its plan splits exactly (:mod:`apiary.swarm.split`), and its driving frame
kept at least ``distribute_min_cells`` cells after pruning. Otherwise it runs on this node and
``last_query.distribution`` (and EXPLAIN) says why.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.types as pat
from datafusion import LogicalPlan

from apiary.cells.stats import column_stats
from apiary.cells.types import schema_to_json
from apiary.ledger import CellMeta
from apiary.sql.context import Decision, PinnedFrame, PlannedQuery
from apiary.storage import Storage
from apiary.swarm.coordinator import Coordinator, Sweeper, bees_of, cut
from apiary.swarm.cost import Estimate, estimate
from apiary.swarm.keys import in_key_order, key_range, within
from apiary.swarm.manifest import CellRef, FrameRef, KeyRange, Manifest, Task
from apiary.swarm.merge import merge
from apiary.swarm.split import NotDistributable, Split, split
from apiary.swarm.world import NodeView


def describe(distribution: dict[str, Any]) -> str:
    """One line on how the last query ran, for the CLI and the TUI ("" for a plain local run)."""
    if not distribution:
        return ""
    if "ran_locally" in distribution:
        return f"ran on this node: {distribution['ran_locally']}"
    per_node = ", ".join(f"{n} {c}" for n, c in sorted(distribution["tasks_per_node"].items()))
    line = (
        f"shared: {distribution['tasks']} tasks over {distribution['driving_frame']} ({per_node})"
    )
    if distribution.get("reassigned"):
        line += f", {distribution['reassigned']} reassigned"
    narrowed = distribution.get("narrowed_by_key") or {}
    if narrowed:
        line += "; by key: " + ", ".join(
            f"{name} {n['cells_per_task']} of {n['cells']} cells a task"
            for name, n in narrowed.items()
        )
    return line


KEPT_SPLITS = 64  # splits a coordinator keeps for queries that come again


@dataclass
class SwarmSettings:
    min_cells: int  # 0: never share
    task_timeout: float
    task_attempts: int
    poll_interval: float  # how often the coordinator looks for answers
    min_gain: float = 0.0  # share only when the bytes allow this speedup; 0: whenever it splits
    wait_interval: float | None = None  # how often, once its own tasks are done (None: as above)
    trip_bytes: int = 0  # the trip through the bucket, counted as bytes a task reads


class Distributor:
    """Shares queries of one node (the coordinator) with the alive nodes of its swarm."""

    def __init__(
        self,
        storage: Callable[[], Storage],
        node_id: str,
        world: Callable[[], list[NodeView]],
        settings: Callable[[], SwarmSettings],
        local: Callable[[Manifest, Task], object] | None = None,
        own: Callable[[str], contextlib.AbstractContextManager[object]] | None = None,
    ) -> None:
        self.storage = storage
        self.node_id = node_id
        self.world = world
        self.settings = settings
        self.local = local  # this node's worker, which takes its own tasks directly
        self.own = own  # ...and leaves the manifests of this node's queries unread
        # Splits of plans seen lately (a dashboard repeats its queries; splitting costs 3-15 ms).
        self._splits: OrderedDict[tuple[Any, ...], Split | NotDistributable] = OrderedDict()
        self._texts: OrderedDict[int, tuple[LogicalPlan, str]] = OrderedDict()
        self._lock = threading.Lock()  # a served node decides for several clients at once
        self._sweeper = Sweeper()  # answered queries' folders, deleted behind their answers

    def close(self) -> None:
        """Finish deleting the folders of queries answered so far."""
        self._sweeper.close()

    def alive(self) -> list[NodeView]:
        return [v for v in self.world() if v.state == "alive" and v.heartbeat.state == "running"]

    def decide(self, query: PlannedQuery) -> Decision:
        settings = self.settings()
        if not settings.min_cells or not query.frames:
            return Decision(explain="runs on this node: distribution is off")
        alive = self.alive()
        if len(alive) < 2:
            return Decision(explain="runs on this node: no other node is alive")
        if max(len(p.pruned.kept) for p in query.frames) < settings.min_cells:
            return Decision(
                explain=f"runs on this node: fewer than {settings.min_cells} cells to share "
                "(distribute_min_cells)"
            )
        attached = [p for p in query.frames if p.frame.definition.location is not None]
        if attached:
            # Its files live outside hive/box/frame and may leave out their partition columns;
            # a manifest names frames by that folder only.
            reason = f"{attached[0].frame.full_name} is an attached Delta table, read on one node"
            return Decision(info={"ran_locally": reason}, explain=f"runs on this node: {reason}")
        sizes = {}
        for scan in set(_scans(query)):
            pinned = query.pinned(*scan)
            if pinned is not None:
                sizes[scan] = sum(c.bytes for c in pinned.pruned.kept)
        plan = self._split(query, sizes)
        if isinstance(plan, NotDistributable):
            return Decision(info={"ran_locally": str(plan)}, explain=f"runs on this node: {plan}")
        driving = query.pinned(*plan.driving)
        if driving is None or len(driving.pruned.kept) < settings.min_cells:
            count = len(driving.pruned.kept) if driving is not None else 0
            reason = (
                f"its driving frame kept {count} cells after pruning, fewer than "
                f"distribute_min_cells ({settings.min_cells})"
            )
            return Decision(info={"ran_locally": reason}, explain=f"runs on this node: {reason}")
        cost = _estimate(query, plan, driving, alive, settings.trip_bytes)
        if settings.min_gain and cost.gain < settings.min_gain:
            reason = (
                f"sharing would not pay: {cost.describe()}, below distribute_min_gain "
                f"({settings.min_gain:g})"
            )
            return Decision(info={"ran_locally": reason}, explain=f"runs on this node: {reason}")
        return Decision(
            plan=plan,
            explain=f"shared with {len(alive)} nodes: {plan.describe()}; each task runs "
            f"{plan.fragment_sql}",
        )

    def _split(
        self, query: PlannedQuery, sizes: dict[tuple[str | None, str | None, str], int]
    ) -> Split | NotDistributable:
        """``split()``, kept for the same plan (its text names every scan, filter and column
        type) over the same bytes, under the same USE HIVE / USE BOX."""
        key = (
            query.sql,
            query.default_hive,
            query.default_box,
            self._plan_text(query.plan),
            frozenset(sizes.items()),
        )
        with self._lock:
            found = self._splits.get(key)
            if found is not None:
                self._splits.move_to_end(key)
                return found
        try:
            found = split(query.planning, query.plan, sizes, query.sql, query.stand_ins)
        except NotDistributable as exc:
            found = NotDistributable(str(exc))  # kept without the traceback and its frames
        with self._lock:
            self._splits[key] = found
            while len(self._splits) > KEPT_SPLITS:
                self._splits.popitem(last=False)
        return found

    def _plan_text(self, plan: LogicalPlan) -> str:
        """``plan`` rendered with its schemas, kept per plan object: a session hands the same
        object again for a query it planned before, and rendering it cost ~0.25 ms."""
        with self._lock:
            found = self._texts.get(id(plan))
            if found is not None and found[0] is plan:  # the entry holds it: an id not reused
                return found[1]
        text = plan.display_indent_schema()
        with self._lock:
            self._texts[id(plan)] = (plan, text)
            while len(self._texts) > KEPT_SPLITS:
                self._texts.popitem(last=False)
        return text

    def run(
        self, query: PlannedQuery, decision: Decision, cancel: threading.Event | None
    ) -> pa.Table:
        plan: Split = decision.plan
        settings = self.settings()
        driving = query.pinned(*plan.driving)
        assert driving is not None
        scanned = _scanned(query, plan)
        frames = _frame_refs(scanned, driving)
        fragment = Manifest(
            query_id="pending",
            coordinator=self.node_id,
            default_hive=query.default_hive,
            default_box=query.default_box,
            frames=frames,
            driving=next(i for i, f in enumerate(frames) if _is(f, driving)),
            fragment_sql=plan.fragment_sql,
            tasks=[],
        )
        coordinator = Coordinator(
            self.storage(),
            self.node_id,
            self.alive,
            task_timeout=settings.task_timeout,
            max_attempts=settings.task_attempts,
            poll_interval=settings.poll_interval,
            wait_interval=settings.wait_interval,
            local=self.local,
            own=self.own,
            sweep=self._sweeper.submit,
        )
        narrowing = _narrowing(query, plan, driving, scanned)
        outcome = coordinator.run(
            fragment,
            _task_order(driving, narrowing),
            cancel,
            lambda task: _narrow(task, driving, narrowing),
        )
        result = merge(plan, outcome.results)
        decision.info.update(
            {
                "driving_frame": f"{driving.hive}.{driving.box}.{driving.table}",
                "shape": plan.shape,
                "tasks": sum(outcome.tasks_per_node.values()),
                "tasks_per_node": outcome.tasks_per_node,
                "reassigned": outcome.reassigned,
                "tasks_on_caching_nodes": outcome.cached_tasks,
                "narrowed_by_key": {
                    f"{n.frame.hive}.{n.frame.box}.{n.frame.table}": {
                        "key": f"{n.column} = {n.driving_column}",
                        "cells": len(n.frame.pruned.kept),
                        "cells_per_task": round(sum(n.kept) / len(n.kept), 1) if n.kept else None,
                        "tasks_with_key_range": n.ranged,
                    }
                    for n in narrowing
                },
            }
        )
        return result


@dataclass
class _Narrowing:
    index: int  # of the frame in the manifest
    frame: PinnedFrame
    column: str
    driving_column: str
    kept: list[int] = field(default_factory=list)  # cells each task was given
    ranged: int = 0  # tasks also given the key range (their scans skip rows outside it)


def _narrowing(
    query: PlannedQuery, plan: Split, driving: PinnedFrame, scanned: list[PinnedFrame]
) -> list[_Narrowing]:
    """The key links whose frame is read only under the linked spelling (one cell list per
    frame serves every scan of it)."""
    every = _scans(query)
    found = []
    for link in plan.links:
        pinned = query.pinned(*link.scan)
        if pinned is None or pinned is driving:
            continue
        if sum(query.pinned(*s) is pinned for s in every) != every.count(link.scan):
            continue
        index = next((i for i, f in enumerate(scanned) if _is(f, pinned)), None)
        if index is not None:
            found.append(_Narrowing(index, pinned, link.column, link.driving_column))
    return found


def _estimate(
    query: PlannedQuery,
    plan: Split,
    driving: PinnedFrame,
    alive: list[NodeView],
    trip_bytes: int = 0,
) -> Estimate:
    """What each task would read if the query were shared now (see :mod:`apiary.swarm.cost`)."""
    narrowing = _narrowing(query, plan, driving, _scanned(query, plan))
    cells = _task_order(driving, narrowing)
    runs = cut(cells, min(len(cells), sum(bees_of(n) for n in alive)))
    others: list[int | Callable[[Sequence[CellMeta]], int]] = []
    for scan in _scans(query):
        pinned = query.pinned(*scan)
        if pinned is None or pinned is driving:
            continue
        link = next((n for n in narrowing if n.frame is pinned), None)
        if link is None:
            others.append(sum(c.bytes for c in pinned.pruned.kept))
        else:
            others.append(functools.partial(_narrowed_bytes, driving, link))
    return estimate(runs, others, trip_bytes)


def _narrowed_bytes(driving: PinnedFrame, link: _Narrowing, run: Sequence[CellMeta]) -> int:
    bounds = _bounds(driving, link, run)
    kept = link.frame.pruned.kept if bounds is None else _narrowed(link, bounds)
    return sum(c.bytes for c in kept)


def _bounds(
    driving: PinnedFrame, link: _Narrowing, cells: Sequence[CellMeta]
) -> tuple[Any, Any] | None:
    """The range of ``link``'s driving key over ``cells`` (None: unknown)."""
    return key_range(cells, link.driving_column, _driving_type(driving, link))


def _driving_type(driving: PinnedFrame, link: _Narrowing) -> pa.DataType:
    return driving.frame.schema.field(link.driving_column).type


def _narrowed(link: _Narrowing, bounds: tuple[Any, Any]) -> list[CellMeta]:
    """The cells of ``link``'s frame that may hold a key within ``bounds``."""
    kind = link.frame.frame.schema.field(link.column).type
    return within(link.frame.pruned.kept, link.column, kind, bounds)


def _task_order(driving: PinnedFrame, narrowing: list[_Narrowing]) -> list[CellMeta]:
    """The driving cells in the order tasks are cut from: by the key that narrows the most
    bytes of other frames, so each task's key range (and the other frames' cells within it)
    stays small; else by path."""
    cells = sorted(driving.pruned.kept, key=lambda c: c.path)
    if not narrowing:
        return cells
    widest = max(narrowing, key=lambda n: sum(c.bytes for c in n.frame.pruned.kept))
    column = widest.driving_column
    return in_key_order(cells, column, driving.frame.schema.field(column).type)


def _narrow(task: Task, driving: PinnedFrame, narrowing: list[_Narrowing]) -> None:
    """Give ``task`` only the cells of each linked frame within its own key range, and the
    range itself: cells of two frames seldom end at the same key, so the cell that straddles
    a task's edge is read only where its row groups overlap the range."""
    mine = {c.path for c in task.cells}
    cells = [c for c in driving.pruned.kept if c.path in mine]
    for n in narrowing:
        bounds = _bounds(driving, n, cells)
        if bounds is None:
            continue
        kept = _narrowed(n, bounds)
        task.frame_cells[n.index] = [CellRef(path=c.path, rows=c.rows, bytes=c.bytes) for c in kept]
        n.kept.append(len(kept))
        found = _key_range(n, bounds, _driving_type(driving, n))
        if found is not None:
            task.frame_ranges[n.index] = found
            n.ranged += 1


def _key_range(link: _Narrowing, bounds: tuple[Any, Any], mine: pa.DataType) -> KeyRange | None:
    """``bounds`` of the driving key (of type ``mine``), encoded for the linked column's type;
    None where the two columns' types differ beyond integer widths (values then compare in a
    coerced type whose order need not be the ledger's), for floats, or where a bound has no
    exact encoding."""
    theirs = link.frame.frame.schema.field(link.column).type
    if mine != theirs and not (pat.is_integer(mine) and pat.is_integer(theirs)):
        return None
    if pat.is_floating(mine):
        return None  # NaN and -0.0 make a float range a poor promise about equal keys
    try:
        pair = pa.array(list(bounds), mine).cast(theirs)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # outside the linked column's type: the cells alone narrow
    stats = column_stats(pa.table({"k": pair}))["k"]
    if stats["min"] is None or stats["max"] is None:
        return None
    return KeyRange(column=link.column, low=stats["min"], high=stats["max"])


def _scans(query: PlannedQuery) -> list[tuple[str | None, str | None, str]]:
    """Every scan of the plan by the name it is written with, once per scan."""
    return [(s.catalog, s.schema, s.table) for s in query.scans]


def _is(ref: FrameRef | PinnedFrame, pinned: PinnedFrame) -> bool:
    return (ref.hive, ref.box, ref.table) == (pinned.hive, pinned.box, pinned.table)


def _scanned(query: PlannedQuery, plan: Split) -> list[PinnedFrame]:
    """Every frame the fragment reads, once each, in the manifest's order."""
    found: list[PinnedFrame] = []
    for scan in sorted(plan.scanned, key=lambda s: tuple(p or "" for p in s)):
        pinned = query.pinned(*scan)
        if pinned is not None and not any(_is(f, pinned) for f in found):
            found.append(pinned)
    return found


def _frame_refs(scanned: list[PinnedFrame], driving: PinnedFrame) -> list[FrameRef]:
    """The manifest's frames; each task brings its own cells of the driving one."""
    refs: list[FrameRef] = []
    for pinned in scanned:
        cells = [] if pinned is driving else pinned.pruned.kept
        refs.append(
            FrameRef(
                hive=pinned.hive,
                box=pinned.box,
                frame=pinned.frame.name,
                version=pinned.version,
                columns=(  # the schema of the pinned version (its Delta metadata)
                    schema_to_json(pinned.schema)
                    if pinned.schema is not None
                    else pinned.frame.definition.columns
                ),
                cells=[CellRef(path=c.path, rows=c.rows, bytes=c.bytes) for c in cells],
            )
        )
    return refs
