"""``Apiary.sql()``: Apiary's commands, then DataFusion over pinned, pruned frames.

A query is planned twice. The first plan runs against empty stand-ins for every frame, so
DataFusion itself resolves the names and pushes the WHERE clause down to each scan; those
filters prune cells using only the ledger. The second plan runs the same SQL against tables over
just the surviving cells, each frame pinned at one version.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from datafusion import LogicalPlan, SessionConfig, SessionContext
from datafusion.catalog import Catalog, Schema, Table

from apiary.catalog.models import RegistryState
from apiary.cells.types import column_notes
from apiary.errors import ApiaryError, SqlError
from apiary.frame import Frame
from apiary.runtime.bees import Bee
from apiary.runtime.world import NodeView
from apiary.sql import statements
from apiary.sql.messages import execution_error, planning_error
from apiary.sql.plan import scans
from apiary.sql.planning import PlanningHive
from apiary.sql.pruning import And, Or, Predicate, Pruned, prune
from apiary.sql.readonly import READ_ONLY
from apiary.sql.sources import (
    frame_table,
    in_memory,
    plain_types,
    register_object_store,
    scratch_folder,
)
from apiary.sql.statements import Describe, Query, Show, Use, split_version
from apiary.swarm.coordinator import Coordinator
from apiary.swarm.decompose import NotDistributable, decompose

if TYPE_CHECKING:
    from apiary.sdk import Apiary


@dataclass
class FramePruning:
    frame: str  # "h.b.f@v3"
    version: int
    considered: int
    by_partition: int
    by_stats: int
    scanned: int

    def describe(self) -> str:
        return (
            f"{self.frame}: {self.considered} cells considered, {self.by_partition} pruned by "
            f"partition, {self.by_stats} pruned by statistics, {self.scanned} scanned"
        )


@dataclass
class QueryStats:
    """What the last query did: shown by the CLI and the TUI."""

    rows: int = 0
    seconds: float = 0.0
    frames: list[FramePruning] = field(default_factory=list)
    distribution: dict[str, object] = field(default_factory=dict)


class SqlSession:
    """SQL for one Apiary client; it holds that client's USE context."""

    def __init__(self, apiary: Apiary) -> None:
        self.apiary = apiary
        self.hive: str | None = None
        self.box: str | None = None
        self.last = QueryStats()

    def execute(self, sql: str, cancel: threading.Event | None = None) -> pa.Table:
        """Run one statement; setting ``cancel`` stops it (QueryCancelledError)."""
        started = time.perf_counter()
        statement = statements.classify(sql)
        self.last = QueryStats()
        if isinstance(statement, Use):
            result = self._use(statement)
        elif isinstance(statement, Show):
            result = self._show(statement)
        elif isinstance(statement, Describe):
            result = self._describe(statement)
        else:
            result = self._query(statement, cancel)
        self.last.rows = result.num_rows
        self.last.seconds = time.perf_counter() - started
        return result

    # -- Apiary's own commands ---------------------------------------------------------------

    def _use(self, use: Use) -> pa.Table:
        registry = self.apiary.registry
        hive = use.hive or self.hive
        if use.hive:
            registry.hive(use.hive)  # raises EntityNotFoundError with suggestions
        if use.box:
            if hive is None:
                raise SqlError(f"USE HIVE first (or USE hive.{use.box}): {use.box} is a box")
            registry.box(hive, use.box)
        if use.hive and use.hive != self.hive:
            self.box = None
        self.hive = hive
        self.box = use.box or self.box
        where = ".".join(p for p in (self.hive, self.box) if p)
        return pa.table({"using": [where]})

    def _show(self, show: Show) -> pa.Table:
        ap = self.apiary
        if show.what == "hives":
            return pa.table({"hive": pa.array(ap.list_hives(), pa.string())})
        if show.what == "boxes":
            if show.within is None and self.hive is None:
                # no USE: every box, as hive.box
                return pa.table({"box": pa.array(self._everything(2), pa.string())})
            hive = show.within or self.hive
            return pa.table({"box": pa.array(ap.list_boxes(hive), pa.string())})
        if show.within and "." in show.within:
            hive, box = show.within.split(".")
        elif show.within:
            hive, box = self._need_hive("SHOW FRAMES IN hive.box"), show.within
        elif self.hive is None or self.box is None:
            # No USE (or only USE HIVE): every frame in reach, named so it can be pasted as is.
            return pa.table({"frame": pa.array(self._everything(3, self.hive), pa.string())})
        else:
            hive, box = self.hive, self.box
        return pa.table({"frame": pa.array(ap.list_frames(hive, box), pa.string())})

    def _everything(self, depth: int, hive: str | None = None) -> list[str]:
        """Qualified names of every box (depth 2) or frame (depth 3), from one catalog read."""
        state = self.apiary.registry.state()
        if hive is not None:
            self.apiary.registry.hive(hive)  # a USE'd hive dropped since: say so
        names = []
        for hive_name, h in sorted(state.hives.items()):
            if hive is not None and hive_name != hive:
                continue
            for box_name, b in sorted(h.boxes.items()):
                if depth == 2:
                    names.append(f"{hive_name}.{box_name}")
                else:
                    names.extend(f"{hive_name}.{box_name}.{f}" for f in sorted(b.frames))
        return names

    def _describe(self, describe: Describe) -> pa.Table:
        parts, version = statements.split_name(describe.name)
        hive, box, name = self._resolve(parts)
        frame = self.apiary.frame(hive, box, name)
        snap = frame.snapshot(version)
        rows = [
            ("frame", frame.full_name),
            ("version", str(snap.version)),
            ("cells", str(len(snap.cells))),
            ("rows", str(snap.rows)),
            ("bytes", str(snap.bytes)),
            ("partition_by", ", ".join(frame.partition_by) or "(none)"),
        ]
        for f in frame.schema:
            rows.append((f"column {f.name}", column_notes(f, frame.partition_by)))
        return pa.table({"property": [r[0] for r in rows], "value": [r[1] for r in rows]})

    def _need_hive(self, example: str) -> str:
        return self.hive or _fail(f"USE HIVE first, or write {example}")

    def _resolve(self, parts: list[str]) -> tuple[str, str, str]:
        if len(parts) == 3:
            return parts[0], parts[1], parts[2]
        if len(parts) == 2:
            return self._need_hive(f"hive.{parts[0]}.{parts[1]}"), parts[0], parts[1]
        box = self.box or _fail(f"USE BOX first, or write hive.box.{parts[0]}")
        return self._need_hive("hive.box.frame"), box, parts[0]

    # -- queries -------------------------------------------------------------------------------

    def _config(self) -> SessionConfig:
        config = SessionConfig()
        if self.hive:
            config = config.with_default_catalog_and_schema(self.hive, self.box or "public")
        return config

    def _query(self, query: Query, cancel: threading.Event | None) -> pa.Table:
        self.apiary.colony.admit_query()  # a critical node refuses new queries, clearly
        state = self.apiary.registry.state()
        planning = SessionContext(self._config())
        missing: list[tuple[str, str, str]] = []
        for hive in state.hives:
            planning.register_catalog_provider(hive, PlanningHive(state, hive, missing))
        try:
            plan = planning.sql_with_options(query.sql, READ_ONLY).optimized_logical_plan()
        except Exception as exc:
            raise planning_error(exc, state, missing) from None

        needs: dict[tuple[str, str, str, int | None], list[list[Predicate]]] = {}
        for scan in scans(plan):
            if scan.table.endswith(")") and not scan.catalog:
                continue  # a table function such as generate_series(): no frame to pin
            hive = scan.catalog or self.hive
            box = scan.schema or self.box
            name, version = split_version(scan.table)
            if hive is None or box is None:
                raise SqlError(f"cannot tell which hive and box {scan.table!r} is in; USE them")
            needs.setdefault((hive, box, name, version), []).append(scan.predicates)

        with scratch_folder(self.apiary.storage.location) as scratch:
            return self._execute(query, plan, needs, state, scratch, cancel)

    def _execute(
        self,
        query: Query,
        plan: LogicalPlan,
        needs: dict[tuple[str, str, str, int | None], list[list[Predicate]]],
        state: RegistryState,
        scratch: Path | None,
        cancel: threading.Event | None,
    ) -> pa.Table:
        pinned = []
        for (hive, box, name, version), per_scan in needs.items():
            frame = self.apiary.frame(hive, box, name, state.hives[hive].boxes[box].frames[name])
            snap = frame.snapshot(version)
            pruned = prune(
                snap.cells.values(), _combine(per_scan), frame.schema, frame.partition_by
            )
            self.last.frames.append(_report(frame, snap.version, version, pruned))
            pinned.append((name if version is None else f"{name}@v{version}", frame, pruned))
        if not query.explain and len(pinned) == 1:
            shared = self._distributed(plan, pinned[0][1], pinned[0][2])
            if shared is not None:
                return shared
        sql = query.sql
        if query.explain:
            sql = f"EXPLAIN {'ANALYZE ' if query.analyze else ''}{sql}"
        pool = self.apiary.pool

        def run(bee: Bee) -> pa.Table:
            # Inside a bee: its memory budget and spill folder, and the task deadline.
            execution = bee.context(self._config(), partitions=pool.size)
            register_object_store(execution, self.apiary.storage.location, self.apiary.credentials)
            for table_name, frame, pruned in pinned:
                table = frame_table(execution, frame, pruned.kept, scratch)
                _register(execution, frame.hive, frame.box, table_name, table)
            try:
                return bee.collect(execution.sql_with_options(sql, READ_ONLY))
            except ApiaryError:
                raise
            except Exception as exc:
                raise execution_error(exc) from None

        name = f"sql: {' '.join(query.sql.split())[:60]}"
        result = pool.run(run, name=name, retry=False, cancel=cancel)
        if query.explain:
            return self._explain(result)
        return plain_types(result)

    def _distributed(self, plan: LogicalPlan, frame: Frame, pruned: Pruned) -> pa.Table | None:
        """Share the query with the swarm when it is big enough and splits exactly; else None."""
        settings = self.apiary.settings
        if not settings.distribute_min_cells or len(pruned.kept) < settings.distribute_min_cells:
            return None
        alive = self._alive()
        if len(alive) < 2:
            return None
        try:
            split = decompose(plan)
        except NotDistributable as exc:
            self.last.distribution = {"ran_locally": str(exc)}
            return None
        coordinator = Coordinator(
            self.apiary.storage,
            self.apiary.node_id,
            self._alive,
            task_timeout=settings.task_timeout,
            max_attempts=settings.task_attempts,
        )
        outcome = coordinator.run(
            frame.prefix,
            frame.full_name,
            frame.definition.columns,
            split.fragment_sql(),
            pruned.kept,
        )
        merge = SessionContext()
        merge.register_table("partials", in_memory(pa.concat_tables(outcome.results)))
        merged = merge.sql(split.merge_sql()).to_arrow_table()
        final = SessionContext(self._config())
        parts = split.relation.split(".")
        hive = parts[-3] if len(parts) >= 3 else (self.hive or "datafusion")
        box = parts[-2] if len(parts) >= 2 else (self.box or "public")
        _register(final, hive, box, parts[-1], in_memory(merged))
        result = split.finish(final.table(split.relation)).to_arrow_table()
        self.last.distribution = {
            "tasks": sum(outcome.tasks_per_node.values()),
            "tasks_per_node": outcome.tasks_per_node,
            "reassigned": outcome.reassigned,
            "tasks_on_caching_nodes": outcome.cached_tasks,
        }
        return plain_types(result)

    def _alive(self) -> list[NodeView]:
        return [
            view
            for view in self.apiary.world()
            if view.state == "alive" and view.heartbeat.state == "running"
        ]

    def _explain(self, plan: pa.Table) -> pa.Table:
        kinds = [f"apiary pruning ({f.frame})" for f in self.last.frames]
        lines = [f.describe() for f in self.last.frames]
        return pa.table(
            {
                "plan_type": kinds + plan.column("plan_type").to_pylist(),
                "plan": lines + plan.column("plan").to_pylist(),
            }
        )


def _register(ctx: SessionContext, hive: str, box: str, name: str, table: Table) -> None:
    """Put ``table`` at hive.box.name in ``ctx``, creating the catalog and schema as needed."""
    if hive not in ctx.catalog_names():
        ctx.register_catalog_provider(hive, Catalog.memory_catalog())
    catalog = ctx.catalog(hive)
    if box not in catalog.names():
        catalog.register_schema(box, Schema.memory_schema())
    catalog.schema(box).register_table(name, table)


def _combine(per_scan: list[list[Predicate]]) -> list[Predicate]:
    """One frame scanned several times keeps every cell any of the scans needs."""
    if len(per_scan) == 1:
        return per_scan[0]
    if any(not preds for preds in per_scan):
        return []
    return [Or(tuple(And(tuple(preds)) for preds in per_scan))]


def _report(frame: Frame, version: int, pinned: int | None, pruned: Pruned) -> FramePruning:
    label = frame.full_name + (f"@v{pinned}" if pinned is not None else "")
    return FramePruning(
        label, version, pruned.considered, pruned.by_partition, pruned.by_stats, len(pruned.kept)
    )


def _fail(message: str) -> str:
    raise SqlError(message)
