"""``Apiary.sql()``: Apiary's commands, then DataFusion over pinned, pruned frames.

A query is planned twice. The first plan runs against empty stand-ins for every frame, so
DataFusion itself resolves the names and pushes the WHERE clause down to each scan; those
filters prune cells using only the ledger. The second plan runs the same SQL against tables over
just the surviving cells, each frame pinned at one version.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from datafusion import LogicalPlan, SessionConfig, SessionContext

from apiary.catalog.models import RegistryState
from apiary.cells.types import column_notes
from apiary.errors import ApiaryError, MemoryExceededError, SqlError
from apiary.frame import Frame
from apiary.ledger import Snapshot
from apiary.sql import statements
from apiary.sql.context import (
    Chamber,
    Decision,
    PinnedFrame,
    PlannedQuery,
    Reach,
    ResultSink,
    RowAppender,
    SqlContext,
)
from apiary.sql.ctes import Once, computed_once
from apiary.sql.messages import execution_error, planning_error
from apiary.sql.options import check_session_option
from apiary.sql.plan import scans
from apiary.sql.planning import KeptPlan, KeptPlans, PlanningHive
from apiary.sql.pruning import And, Or, Predicate, Pruned, prune
from apiary.sql.readonly import READ_ONLY
from apiary.sql.sources import (
    LINKED,
    PlainBatches,
    frame_table,
    in_memory,
    plain_schema,
    plain_types,
    register_table,
    scratch_folder,
)
from apiary.sql.statements import (
    AddColumn,
    Delete,
    Describe,
    Insert,
    Query,
    SetOption,
    Show,
    Update,
    Use,
    split_version,
)
from apiary.sql.tuning import Suited, applied, suited

log = logging.getLogger(__name__)


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
    # Seconds per phase of a query, in order (``apiary sql --profile``): catalog, planning,
    # ledger and pruning, registration, execution, result.
    phases: dict[str, float] = field(default_factory=dict)
    # DataFusion options this query's plan shape chose, and why (sql.tuning); "" for none.
    tuning: str = ""
    # CTEs computed once before the query and read as tables (sql.ctes).
    computed_once: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - started


class SqlSession:
    """SQL for one Apiary client; it holds that client's USE context."""

    def __init__(self, context: SqlContext) -> None:
        self.context = context
        self.hive: str | None = None
        self.box: str | None = None
        self.last = QueryStats()
        # DataFusion options SET in this session, over the node's (queries this node runs).
        self.options: dict[str, str] = {}
        self._plans = KeptPlans()

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
        elif isinstance(statement, Delete | Update | Insert):
            result = self._change(statement, cancel)
        elif isinstance(statement, AddColumn):
            result = self._add_column(statement)
        elif isinstance(statement, SetOption):
            result = self._set(statement)
        else:
            result = self._query(statement, cancel)
            assert result is not None  # without a sink the result comes back whole
        self.last.rows = result.num_rows
        self.last.seconds = time.perf_counter() - started
        return result

    def stream(self, sql: str, sink: ResultSink, cancel: threading.Event | None = None) -> None:
        """Run one statement, sending its result to ``sink``: the schema, then batch by batch.

        A query this node runs itself streams from inside its bee as DataFusion makes the
        batches (nothing is collected, so a result of any size fits the bee's budget; a slow
        reader holds the query back). Anything else (commands, EXPLAIN, a query the swarm
        shares) is answered whole, then sent in batches.
        """
        started = time.perf_counter()
        statement = statements.classify(sql)
        counted = _Counting(sink)
        if isinstance(statement, Query) and not statement.explain:
            self.last = QueryStats()
            result = self._query(statement, cancel, counted)
        else:
            result = self.execute(sql, cancel)
        if result is not None:  # answered whole
            counted.start(result.schema)
            for batch in result.to_batches():
                counted.put(batch, lambda: None)
        self.last.rows = counted.rows
        self.last.seconds = time.perf_counter() - started

    # -- Apiary's own commands ---------------------------------------------------------------

    def _use(self, use: Use) -> pa.Table:
        registry = self.context.registry()
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
        registry = self.context.registry()
        if show.what == "hives":
            return pa.table({"hive": pa.array(sorted(registry.state().hives), pa.string())})
        if show.what == "boxes":
            if show.within is None and self.hive is None:
                # no USE: every box, as hive.box
                return pa.table({"box": pa.array(self._everything(2), pa.string())})
            hive = show.within or self.hive
            return pa.table({"box": pa.array(sorted(registry.hive(hive).boxes), pa.string())})
        if show.within and "." in show.within:
            hive, box = show.within.split(".")
        elif show.within:
            hive, box = self._need_hive("SHOW FRAMES IN hive.box"), show.within
        elif self.hive is None or self.box is None:
            # No USE (or only USE HIVE): every frame in reach, named so it can be pasted as is.
            return pa.table({"frame": pa.array(self._everything(3, self.hive), pa.string())})
        else:
            hive, box = self.hive, self.box
        return pa.table({"frame": pa.array(sorted(registry.box(hive, box).frames), pa.string())})

    def _everything(self, depth: int, hive: str | None = None) -> list[str]:
        """Qualified names of every box (depth 2) or frame (depth 3), from one catalog read."""
        registry = self.context.registry()
        state = registry.state()
        if hive is not None:
            registry.hive(hive)  # a USE'd hive dropped since: say so
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

    def _set(self, option: SetOption) -> pa.Table:
        if self.context.changes is None:  # a served node: each statement is a session of its own
            raise SqlError(
                f"SET {option.name}: options are not kept between the statements a served node "
                "runs; set them for the whole node in the datafusion table of its apiary.toml"
            )
        if option.value is None:
            self.options.pop(option.name, None)
            value = "(the node's)"
        else:
            value = self.options[option.name] = check_session_option(option.name, option.value)
        return pa.table({"option": [option.name], "value": [value]})

    def _add_column(self, alter: AddColumn) -> pa.Table:
        parts, version = statements.split_name(alter.name)
        if version is not None:
            raise SqlError("ALTER TABLE changes the newest version; name the frame without @")
        hive, box, name = self._resolve(parts)
        changes = self.context.schema_changes
        if changes is None:
            raise SqlError("this SQL session cannot change schemas; use the SDK's add_columns")
        done = changes.add_columns(
            hive,
            box,
            name,
            {alter.column: statements.sql_type(alter.type)},
            if_not_exists=alter.if_not_exists,
        )
        return pa.table({"frame": [f"{hive}.{box}.{name}"], "version": [done["version"]]})

    def _describe(self, describe: Describe) -> pa.Table:
        parts, version = statements.split_name(describe.name)
        hive, box, name = self._resolve(parts)
        frame = self._frame(hive, box, name)
        if isinstance(version, datetime):
            version = frame.ledger.version_at(version)
        snap = frame.snapshot(version)
        rows = [
            ("frame", frame.full_name),
            ("version", str(snap.version)),
            ("cells", str(len(snap.cells))),
            ("rows", str(snap.rows)),
            ("bytes", str(snap.bytes)),
            ("partition_by", ", ".join(frame.partition_by) or "(none)"),
            ("sort_by", ", ".join(frame.definition.sort_by) or "(none)"),
            ("uri", frame.uri),  # where Delta readers (delta-rs, Polars, Spark) find it
        ]
        for f in frame.schema_at(snap):
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

    # -- row changes ---------------------------------------------------------------------------

    def _change(
        self, statement: Delete | Update | Insert, cancel: threading.Event | None
    ) -> pa.Table:
        """DELETE / UPDATE / INSERT through the node's SDK calls: a one-row report."""
        changes = self.context.changes
        if changes is None:
            raise SqlError(
                "this SQL session only reads (a served node); change rows with the SDK's "
                "delete_rows / update_rows / upsert / write_to_frame, or `apiary sql` on the root"
            )
        parts, version = statements.split_name(statement.target)
        if version is not None:
            raise SqlError(
                f"{statement.target}: old versions cannot be changed; drop the @v suffix"
            )
        hive, box, name = self._resolve(parts)
        frame = self._frame(hive, box, name)  # EntityNotFoundError names what is missing
        if isinstance(statement, Delete):
            done = changes.delete(hive, box, name, statement.where or "TRUE")
            keys = ("rows_deleted", "cells_removed", "cells_added", "version")
        elif isinstance(statement, Update):
            assignments = dict(statement.assignments)
            if len(assignments) < len(statement.assignments):
                raise SqlError("UPDATE ... SET names a column more than once")
            done = changes.update(hive, box, name, assignments, statement.where)
            keys = ("rows_updated", "cells_removed", "cells_added", "version")
        else:
            names = list(statement.columns or frame.schema.names)
            appender = changes.appender(hive, box, name)
            sink = _Inserting(appender, names, frame.full_name)
            try:
                whole = self._query(Query(statement.query), cancel, sink)
                if whole is not None:  # answered whole (a query the swarm shared)
                    sink.start(whole.schema)
                    for batch in whole.to_batches():
                        sink.put(batch, lambda: None)
                done = appender.commit()
            except BaseException:
                appender.abort()
                raise
            keys = ("rows_inserted", "cells_added", "version")
        return pa.table({key: [done[key]] for key in keys})

    # -- queries -------------------------------------------------------------------------------

    def _config(self) -> SessionConfig:
        return SessionConfig().with_default_catalog_and_schema(*self._home())

    def _home(self) -> tuple[str, str]:
        """The default catalog and schema, where bare names resolve (DataFusion's own
        ``datafusion.public`` before USE HIVE): where a CTE computed first is kept, too."""
        if not self.hive:
            return "datafusion", "public"
        return self.hive, self.box or "public"

    def _frame(self, hive: str, box: str, name: str, state: RegistryState | None = None) -> Frame:
        if state is None:
            definition = self.context.registry().frame(hive, box, name)
        else:
            definition = state.hives[hive].boxes[box].frames[name]
        return self.context.frame(hive, box, name, definition)

    def _query(
        self, query: Query, cancel: threading.Event | None, sink: ResultSink | None = None
    ) -> pa.Table | None:
        self.context.admit()  # a critical node refuses new queries, clearly
        phase = self.last.phase
        with phase("catalog"):
            state = self.context.registry().state()
        missing: list[tuple[str, str, str]] = []
        # Each frame is pinned (its snapshot read) when planning first names it, so the stand-in
        # has the schema of the version the query reads, and the run reads that same snapshot.
        pins: dict[tuple[str, str, str], tuple[Frame, Snapshot]] = {}
        failed: list[Exception] = []

        def pin(hive: str, box: str, table: str) -> tuple[Frame, Snapshot]:
            if (hive, box, table) not in pins:
                name, wanted = split_version(table)
                frame = self._frame(hive, box, name, state)
                if isinstance(wanted, datetime):
                    wanted = frame.ledger.version_at(wanted)
                pins[hive, box, table] = (frame, frame.snapshot(wanted))
            return pins[hive, box, table]

        def schema_of(hive: str, box: str, table: str) -> pa.Schema | None:
            try:
                frame, snap = pin(hive, box, table)
                return frame.schema_at(snap)
            except Exception as exc:  # raised after planning, not lost inside DataFusion
                failed.append(exc)
                return None

        def stand_ins() -> SessionContext:
            ctx = SessionContext(self._config())
            for hive in state.hives:
                ctx.register_catalog_provider(hive, PlanningHive(state, hive, missing, schema_of))
            return ctx

        key = (query.sql, self.hive, self.box, state.version, state.commit_id)
        kept = self._plans.get(key, schema_of)
        failed.clear()  # a frame that went: planned again below, and the error comes from there
        if kept is not None:
            plan, planning, found = kept.plan, kept.planning, kept.scans
        else:
            with phase("planning"):
                planning = stand_ins()
                try:
                    plan = planning.sql_with_options(query.sql, READ_ONLY).optimized_logical_plan()
                except Exception as exc:
                    if failed:
                        raise failed[0] from None
                    raise planning_error(exc, state, missing) from None
            if failed:
                raise failed[0]
            found = scans(plan)

        needs: dict[tuple[str, str, str], list[list[Predicate]]] = {}
        for scan in found:
            if scan.table.endswith(")") and not scan.catalog:
                continue  # a table function such as generate_series(): no frame to pin
            hive = scan.catalog or self.hive
            box = scan.schema or self.box
            if hive is None or box is None:
                raise SqlError(f"cannot tell which hive and box {scan.table!r} is in; USE them")
            needs.setdefault((hive, box, scan.table), []).append(scan.predicates)

        pinned = []
        schemas: dict[tuple[str, str, str], pa.Schema] = {}
        by_time = False
        for (hive, box, table), per_scan in needs.items():
            with phase("ledger"):
                frame, snap = pin(hive, box, table)
            wanted = split_version(table)[1]
            by_time = by_time or isinstance(wanted, datetime)
            version = None if wanted is None else snap.version
            schema = schemas[hive, box, table] = frame.schema_at(snap)
            with phase("pruning"):
                pruned = prune(snap.cells, _combine(per_scan), schema, frame.partition_by)
            self.last.frames.append(_report(frame, snap.version, version, pruned))
            pinned.append(PinnedFrame(hive, box, table, version, frame, pruned, schema))
        if kept is None:
            self._plans.put(key, KeptPlan(plan, planning, schemas, found))
        planned = PlannedQuery(
            query.sql, plan, planning, stand_ins, pinned, self.hive, self.box, found
        )
        distributor = self.context.distributor
        # A frame named by time ("f@2026-...Z") runs here: a task names frames by version.
        if distributor is not None and not by_time:
            decision = distributor.decide(planned)
        else:
            decision = Decision()
        self.last.distribution = decision.info
        if decision.plan is not None and not query.explain:
            assert distributor is not None
            return plain_types(distributor.run(planned, decision, cancel))
        once = self._once(query, plan, pinned)
        with scratch_folder(self.context.location()) as scratch, LINKED.holding() as linked:
            # A shared query's workers choose for their own fragments (swarm.worker).
            chosen = suited(plan)
            result = self._execute(query, pinned, scratch, cancel, sink, linked, plan, chosen, once)
        if result is None:  # streamed into sink
            return None
        if query.explain:
            return self._explain(result, decision)
        return result

    def _execute(
        self,
        query: Query,
        pinned: list[PinnedFrame],
        scratch: Path | None,
        cancel: threading.Event | None,
        sink: ResultSink | None = None,
        linked: list[Any] | None = None,
        plan: LogicalPlan | None = None,
        chosen: Suited | None = None,
        once: Once | None = None,
    ) -> pa.Table | None:
        """Run ``query`` in a bee over the pinned frames; ``plan`` is its optimised plan against
        the stand-ins (the same joins: the bee need not plan again to look for them),
        ``chosen`` the options its shape suits, below the node's own and the session's, and
        ``once`` its CTEs to compute first (not under EXPLAIN, which shows the query's own)."""
        sql = query.sql
        if query.explain:
            sql = f"EXPLAIN {'ANALYZE ' if query.analyze else ''}{sql}"
        pool = self.context.pool()
        location, credentials = self.context.location(), self.context.credentials

        phase = self.last.phase
        home = self._home()

        def run(bee: Any) -> pa.Table | None:
            # Inside a bee: its memory budget and spill folder, and the task deadline.
            with phase("registration"):
                shape = self._shape(bee, chosen)
                execution = bee.session(
                    catalog=home[0],
                    schema=home[1],
                    partitions=pool.size,
                    reach=Reach(location, credentials),
                    shape=shape,
                )
                options = bee.options(partitions=pool.size, shape=shape)
                for p in pinned:
                    table = frame_table(
                        execution,
                        p.frame,
                        p.pruned.kept,
                        scratch,
                        schema=p.schema,
                        linked=linked,
                        options=options,
                    )
                    register_table(execution, p.hive, p.box, p.table, table)
            try:
                with phase("execution"):
                    text, optimized = sql, None if query.explain else plan
                    if (
                        once is not None
                        and not query.explain
                        and self._first(execution, bee, once, home)
                    ):
                        text, optimized = once.main, None
                    df = execution.sql_with_options(text, READ_ONLY)
                    if sink is None:
                        return bee.collect(df, optimized=optimized)
                    schema = plain_schema(df.schema())
                    sink.start(schema)
                    bee.stream(df, PlainBatches(sink, schema), optimized=optimized)
                    return None
            except ApiaryError:
                raise
            except Exception as exc:
                raise execution_error(exc) from None

        name = f"sql: {' '.join(query.sql.split())[:60]}"
        with phase("bee"):  # the pool's own work around run(): waiting, handing over, release
            result = pool.run(run, name=name, retry=False, cancel=cancel)
        if result is None or query.explain:
            return result
        with phase("result"):
            return plain_types(result)

    def _once(self, query: Query, plan: LogicalPlan, pinned: list[PinnedFrame]) -> Once | None:
        """The query's CTEs worth computing once (sql.ctes), unless one is named like a frame
        the query reads through the default hive and box (the table the CTE's rows would be
        kept as)."""
        once = computed_once(query.sql, plan)
        if once is None:
            return None
        home = self._home()
        if any((p.hive, p.box) == home and p.table.lower() in once.names for p in pinned):
            return None
        self.last.computed_once = once.names
        return once

    def _first(
        self, execution: SessionContext, bee: Any, once: Once, home: tuple[str, str]
    ) -> bool:
        """Compute ``once``'s CTEs in ``execution`` and keep each as a table of its name in the
        session's default catalog and schema (``home``); False (nothing kept) if one cannot be,
        and the query then runs as written: a CTE's rows larger than the bee's budget may still
        be fine as a stream."""
        catalog, schema = home
        before, kept = bee.result_bytes, []
        try:
            for name, text in once.first:
                rows = bee.collect(execution.sql_with_options(text, READ_ONLY))
                register_table(execution, catalog, schema, name, in_memory(rows))
                kept.append(name)
            return True
        except Exception as exc:
            # A timeout or cancel stops the query; anything else is told by the query as
            # written, if it fails too.
            if isinstance(exc, ApiaryError) and not isinstance(exc, MemoryExceededError):
                raise
            # Apiary's own messages only: DataFusion's may name object URLs.
            why = str(exc) if isinstance(exc, ApiaryError) else type(exc).__name__
            log.info("CTEs %s not computed first (%s): the query runs as written", once.names, why)
            for name in kept:
                execution.catalog(catalog).schema(schema).deregister_table(name)
            bee.result_bytes = before
            self.last.computed_once = []
            return False

    def _shape(self, bee: Chamber, chosen: Suited | None) -> dict[str, str]:
        """The options this query asks of ``bee``: what its plan's shape suits (unless the node
        or the session chose otherwise), then the session's SETs."""
        picked = applied(chosen, bee.settings, self.options) if chosen else {}
        if picked and chosen is not None:
            self.last.tuning = chosen.reason
        return {**picked, **self.options}

    def _explain(self, plan: pa.Table, decision: Decision) -> pa.Table:
        kinds = [f"apiary pruning ({f.frame})" for f in self.last.frames]
        lines = [f.describe() for f in self.last.frames]
        if self.last.tuning:
            kinds.append("apiary options")
            lines.append(self.last.tuning)
        if self.last.computed_once:
            kinds.append("apiary common table expressions")
            lines.append(
                f"computed once, then read as tables: {', '.join(self.last.computed_once)} "
                "(the plan below computes each wherever the query names it)"
            )
        if decision.explain:
            kinds.append("apiary distribution")
            lines.append(decision.explain)
        return pa.table(
            {
                "plan_type": kinds + plan.column("plan_type").to_pylist(),
                "plan": lines + plan.column("plan").to_pylist(),
            }
        )


@dataclass
class _Inserting:
    """INSERT's query result, streamed from the bee into the frame's appender by position."""

    appender: RowAppender
    names: list[str]
    frame: str

    def start(self, schema: pa.Schema) -> None:
        if len(schema) != len(self.names):
            raise SqlError(
                f"INSERT INTO {self.frame}: the query gives {len(schema)} column(s) for "
                f"{len(self.names)} ({', '.join(self.names)}); list the columns: "
                "INSERT INTO frame (a, b) SELECT ..."
            )

    def put(self, batch: pa.RecordBatch, check: Callable[[], None]) -> None:
        self.appender.put(pa.RecordBatch.from_arrays(batch.columns, names=self.names))
        check()


@dataclass
class _Counting:
    """Counts the rows that pass on to ``sink`` (the streamed query's ``last.rows``)."""

    sink: ResultSink
    rows: int = 0

    def start(self, schema: pa.Schema) -> None:
        self.sink.start(schema)

    def put(self, batch: pa.RecordBatch, check: Callable[[], None]) -> None:
        self.sink.put(batch, check)
        self.rows += batch.num_rows


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
