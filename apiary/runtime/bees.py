"""Mason chambers (SPEC §8): a fixed set of bees, each a sealed memory budget, spill folder and
deadline, plus retries and abandonment of failing tasks.

A task runs on a worker thread of its own so that the caller can give up on it at its deadline
even when the task never checks the time. DataFusion work started through :meth:`Bee.collect` is
driven through the stream's async interface and the pending batch is cancelled at the deadline;
dropping the stream aborts DataFusion's spawned tasks, but only where they next yield: an operator
that works through its whole input in one poll (a nested-loop join over a few large batches) runs
on until that poll ends, and nothing in-process can stop it sooner (DataFusion 55). So a bee is
only idle once DataFusion has really let go: after its task it stays "draining" until every
runtime it made is dropped, which the runtime's folder in the spill folder shows exactly
(DataFusion removes it when the last plan, stream or spawned task holding the runtime ends).

The pool also holds the whole process to a memory ceiling (``memory_limit``): DataFusion's pool
bounds its operators only, not the buffers, results and allocator slack around them, so while
tasks run the process's private memory is sampled and the tasks are stopped with
MemoryExceededError above it. Private memory is the RSS less its shared file-backed pages: the
~100 MB of pyarrow/DataFusion library code mapped from disk are shared with other processes and
the kernel can drop and re-read them under pressure; what it cannot take back is what kills a
process. Under a ceiling the bees' pools are sized from what is really free: the private memory
measured once DataFusion is loaded and warm, less what a running query holds outside its pool
(UNACCOUNTED), shared by the bees, so that a query that can spill does instead of hitting the
ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import threading
import time
import traceback
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

import psutil
import pyarrow as pa
from datafusion import DataFrame, LogicalPlan, RuntimeEnvBuilder, SessionConfig, SessionContext

from apiary.errors import (
    ApiaryError,
    ConfigError,
    EntityNotFoundError,
    InvalidNameError,
    MemoryExceededError,
    QueryCancelledError,
    SchemaError,
    SqlError,
    TaskAbandonedError,
    TaskTimeoutError,
)
from apiary.runtime.sealed import Sealed, job_for, plan_bytes, unstoppable
from apiary.sql.context import Reach
from apiary.sql.options import check_datafusion_settings
from apiary.sql.sources import register_object_store
from apiary.sql.tuning import PUSHDOWN

log = logging.getLogger("apiary.bees")
T = TypeVar("T")
V = TypeVar("V")
State = Literal["idle", "busy", "draining"]

MiB = 1 << 20


class BatchSink(Protocol):
    """Where :meth:`Bee.stream` hands batches; ``put`` may block, calling ``check`` meanwhile."""

    def put(self, batch: pa.RecordBatch, check: Callable[[], None]) -> None: ...


# Errors that would fail the same way again: user mistakes, a budget that is simply too small
# and a deadline that was already spent. Everything else counts as transient and is retried.
NOT_RETRIED: tuple[type[BaseException], ...] = (
    SqlError,
    SchemaError,
    EntityNotFoundError,
    ConfigError,
    InvalidNameError,
    MemoryExceededError,
    TaskTimeoutError,
    QueryCancelledError,
)
ABANDONED_KEPT = 50
POLL = 0.05  # seconds between deadline checks while DataFusion or a task is working
GRACE = 0.25  # extra seconds a task gets to notice its own deadline before the caller gives up
RELEASE_GRACE = 2.5  # seconds a task that ran to its end may take to let go of its runtime
# How long a stopped task that ran a plan DataFusion cannot stop in-process may keep its bee
# draining (such plans normally run sealed; see sealed.py, and the ones that cannot be).
SLOW_DRAIN = 300.0
QUICK_RELEASE = 0.05  # seconds its caller waits for that (it usually takes milliseconds)
# DataFusion's disk manager makes one of these in the spill folder per runtime and removes it
# only when the last holder of that runtime (context, plan, stream, spawned task) is dropped.
RUNTIME_DIR = "datafusion-"
# What a running query holds outside its DataFusion pool (Parquet reads and decoding, batches in
# flight, spill reads, allocator slack), per bee. Measured: a bare scan of 4 M rows +40-60 MiB RSS,
# a spilling GROUP BY or DISTINCT in a 16 MiB pool +80-100 MiB.
UNACCOUNTED = 64 * MiB
# The smallest pool worth giving a bee: below it a sort cannot even merge its spilled runs.
POOL_FLOOR = 16 * MiB
# A partition of a query gets its own share of the bee's pool and its own buffers.
PARTITION_MIN = 64 * MiB
# DataFusion partitions per core a query may use: while one partition waits for a read, the
# other computes. TPC-H SF1 on 2 cores, raw DataFusion over the same cells, interleaved: 4
# partitions 0.92-0.94 of the time of 2 (geomean of 22, two runs); 8 no better than 4.
PARTITIONS_PER_CORE = 2


# DataFusion settings every bee uses unless the node's settings say otherwise (``datafusion`` in
# apiary.toml). Measured on TPC-H SF1 over Apiary's cells with integer-stored decimals, 2 cores
# (README "Performance"): evaluating filters inside the Parquet scan (pushdown_filters) wins big
# where a very selective join filter reaches a large scan (Q17 2.5x, Q20 1.5x, Q18 1.2x) and
# loses 10-60 % on most other queries (Q5, Q6, Q8, Q9, Q12, Q15, Q21): off, the geomean is 5 %
# better; sql.tuning turns it on per query for the shape where it wins. Filters are reordered
# (cheapest first) whenever it is on.
#
# Planning a scan over a folder of cells gathers each cell's statistics, 32 files at a time by
# default. DataFusion reads local files on tokio's blocking threads, one thread per concurrent
# read, and each thread keeps its own allocator heap: memory one thread allocated and another
# freed stays with it, so the more threads, the more of every query's reads stays resident.
# At 2: the sensors frame (540 cells), full-table aggregate, 10 runs in one process, 21-24
# threads, 0.5 GB flat, median 0.155-0.166 s; at 32, 69-153 threads, growing from 0.9 to
# 1.6-2.8 GB, median 0.24-0.68 s. TPC-H SF1 (4 cells a frame) ran 0.80-0.96 of the time. On S3
# each cell is its own scan, so this does not slow the statistics there.
META_FETCH = "datafusion.execution.meta_fetch_concurrency"
TUNED: dict[str, str] = {
    PUSHDOWN: "false",
    "datafusion.execution.parquet.reorder_filters": "true",
    META_FETCH: "2",
}
# The default catalog and schema a kept session resolves bare names in (SET per task).
DEFAULT_CATALOG = "datafusion.catalog.default_catalog"
DEFAULT_SCHEMA = "datafusion.catalog.default_schema"
# DataFusion's cache of Parquet footers and page indexes, per kept session: its own default
# (50 MB), or a 16th of a smaller bee's budget.
METADATA_CACHE = "datafusion.runtime.metadata_cache_limit"
METADATA_CACHE_MB = 50
KEPT_VALUES = 64  # what Bee.keep holds per session, the most recently used
# Below this many cores a join's inputs are not hash-repartitioned first: with so few cores
# the shuffle costs more than the parallel join gains (Q9 -35 %, Q5 -20 %).
JOIN_REPARTITION_FROM = 3


def _sort_reservation(budget: int) -> int:
    # DataFusion reserves this much per sort for merging spilled runs; its 10 MiB default leaves
    # nothing for the sort itself in a small pool (NOTES), so scale it with the budget.
    return max(64 * 1024, min(10 * MiB, budget // 16))


def _private_memory(process: psutil.Process) -> int:
    """The process's resident memory that is not shared file-backed pages (module docstring)."""
    info = process.memory_info()
    return info.rss - getattr(info, "shared", 0)  # Linux; elsewhere the whole RSS


def _mib(n: int) -> str:
    return f"{n / MiB:.0f} MiB" if n >= MiB else f"{n} bytes"


class Bee:
    """One sealed chamber: a memory budget, a spill folder and (while busy) a task and deadline.

    Contexts from :meth:`context` belong to one task: the spill folder is emptied when the task
    ends, which would pull the folder from under a context kept for later.
    """

    def __init__(
        self,
        id: int,
        memory_budget: int,
        spill_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.id = id
        self.memory_budget = memory_budget
        self.settings = dict(settings or {})  # DataFusion options over TUNED (checked by the pool)
        self.spill_dir = Path(spill_dir)
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        self.state: State = "idle"
        self.task: str | None = None
        self.started: float | None = None
        self.timeout: float | None = None
        self.result_bytes = 0  # Arrow bytes collect() holds for the current task
        self._clock = clock
        self._cancel: BaseException | None = None
        self._attempt = 0  # tells a late cancel apart from one meant for the current task
        self._runtimes: list[Path] = []  # DataFusion's folders for the contexts made so far
        self._kept: _KeptSession | None = None  # see session()
        self._partitions = 1
        self._reach: Reach | None = None
        self._shape: dict[str, str] = {}
        # Plans DataFusion cannot stop in-process run in a child the bee can kill (sealed.py).
        self.seal = True
        self.sealed: Sealed | None = None  # that child, while it runs
        self.slow_to_stop = False  # the task runs such a plan in-process (it could not seal it)

    # -- the task's view ---------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        if self.started is None or self.timeout is None:
            return None
        return self.started + self.timeout

    def remaining(self) -> float | None:
        """Seconds left before the deadline (negative once past), None without a deadline."""
        deadline = self.deadline
        return None if deadline is None else deadline - self._clock()

    def check_deadline(self) -> None:
        """Raise TaskTimeoutError once the task is past its deadline or was cancelled.

        Long-running tasks call this between steps; :meth:`collect` calls it for you.
        """
        if self._cancel is not None:
            raise self._cancel
        remaining = self.remaining()
        if remaining is not None and remaining < 0:
            raise self._timeout_error()

    def _timeout_error(self) -> TaskTimeoutError:
        return TaskTimeoutError(
            f"task {self.task!r} ran longer than its {self.timeout:g} s timeout on bee {self.id} "
            "and was stopped; make it cheaper (a more selective WHERE, fewer rows or frames) "
            "or raise the task timeout"
        )

    def context(
        self,
        config: SessionConfig | None = None,
        *,
        partitions: int = 1,
        reach: Reach | None = None,
        shape: Mapping[str, str] | None = None,
    ) -> SessionContext:
        """A DataFusion context held to this bee's memory budget, spilling into its folder.

        The bee's settings are applied to ``config`` (which DataFusion modifies in place): one
        partition by default, since a bee is one core and each partition would get its own
        slice of an already small pool, and a sort merge reservation scaled to the budget.
        A query asked for on this node (not a task of a distributed one) may use more
        ``partitions``, so a single query still uses every core, within this bee's memory —
        but no more than one per PARTITION_MIN of budget: each partition has its own buffers
        and slice of the pool, and a small bee split in two spills twice as much (a sort in
        two 8 MiB halves of a 16 MiB pool cannot merge its runs at all). DataFusion's options
        are those of :meth:`options`. ``reach`` gives
        the context the storage root's object store (on S3), also for a sealed child's run.
        """
        partitions = self._partitions_for(partitions)
        self._partitions, self._reach, self._shape = partitions, reach, dict(shape or {})
        config = (config or SessionConfig()).with_target_partitions(partitions)
        for key, value in self.options(partitions=partitions, shape=shape).items():
            config = config.set(key, value)
        # batch_size stays at DataFusion's default: a smaller one does not bound the work a
        # nested-loop or cross join does before it can be stopped (that is one piece of its
        # probe side against the whole build side, see README) and costs other queries 6-30 %.
        runtime = (
            RuntimeEnvBuilder()
            .with_fair_spill_pool(self.memory_budget)
            .with_disk_manager_specified(self.spill_dir)
        )
        before = set(self._runtime_dirs())
        context = SessionContext(config, runtime)
        self._runtimes += [d for d in self._runtime_dirs() if d not in before]
        if reach is not None:
            register_object_store(context, reach.location, reach.credentials)
        return context

    def session(
        self,
        *,
        catalog: str | None = None,
        schema: str | None = None,
        partitions: int = 1,
        reach: Reach | None = None,
        shape: Mapping[str, str] | None = None,
    ) -> SessionContext:
        """This bee's own DataFusion session, kept from task to task: like :meth:`context`
        (same budget, spill folder and options), with ``catalog``.``schema`` as the default.

        Kept, so DataFusion's caches stay warm (Parquet footers and page indexes: a fresh
        session read them again for every query, ~10 ms of TPC-H Q2) and no session is built
        and dropped per query (~1.5 ms). Tables registered during a task are dropped when it
        ends. A task that fails, times out or is cancelled takes the session with it: its
        DataFusion work may still be winding down, so the bee waits for that runtime to go
        as for any other (module docstring) and the next task gets a new session.
        """
        partitions = self._partitions_for(partitions)
        wanted = self.options(partitions=partitions, shape=shape)
        wanted[DEFAULT_CATALOG] = catalog or "datafusion"
        wanted[DEFAULT_SCHEMA] = schema or "public"
        kept = self._kept
        if kept is not None and not set(kept.options) <= set(wanted):
            self.drop_session()  # an option no longer set: a new session has its default
            kept = None
        if kept is None:
            before = set(self._runtime_dirs())
            context = self.context(partitions=partitions, shape=shape)
            self._runtimes = [d for d in self._runtimes if d in before]  # kept, not awaited
            folders = [d for d in self._runtime_dirs() if d not in before]
            # Footers and page indexes of recently read cells, within the bee's budget.
            cache = max(1, min(METADATA_CACHE_MB, self.memory_budget // 16 // MiB))
            context.sql(f"SET {METADATA_CACHE} = '{cache}M'")
            # context() set the options already; only the default catalog and schema are left.
            set_already = {
                k: v for k, v in wanted.items() if k not in (DEFAULT_CATALOG, DEFAULT_SCHEMA)
            }
            kept = self._kept = _KeptSession(context, folders, set_already)
        for key, value in wanted.items():
            if kept.options.get(key) != value:
                quoted = value.replace("'", "''")
                kept.context.sql(f"SET {key} = '{quoted}'")
                kept.options[key] = value
        if reach is not None:
            register_object_store(kept.context, reach.location, reach.credentials)
        # What a sealed child of this task is given (set last: context() above sets them too).
        self._partitions, self._reach, self._shape = partitions, reach, dict(shape or {})
        return kept.context

    def keep(self, key: Hashable, make: Callable[[], V]) -> V:
        """``make()``, kept with this bee's session under ``key`` for the tasks after this one
        (the last :data:`KEPT_VALUES` used); made afresh while no session is kept.

        For what is bound to the session, such as a DataFrame planned in it: the values go
        with the session (a task that fails takes both), so none holds a runtime the bee
        waits for. ``key`` must name everything the value depends on.
        """
        kept = self._kept
        if kept is None:
            return make()
        if key in kept.values:
            kept.values.move_to_end(key)
            return kept.values[key]  # type: ignore[return-value]
        value = make()
        kept.values[key] = value
        while len(kept.values) > KEPT_VALUES:
            kept.values.popitem(last=False)
        return value

    def end_session(self, failed: bool) -> None:
        """After a task: drop the tables it registered in the kept session, or the session
        itself when the task did not end cleanly (see :meth:`session`)."""
        kept = self._kept
        if kept is None:
            return
        if failed:
            self.drop_session()
            return
        context = kept.context
        try:
            for name in context.catalog_names():
                catalog = context.catalog(name)
                for box in catalog.names():
                    schema = catalog.schema(box)
                    for table in schema.names():
                        schema.deregister_table(table)
        except Exception as exc:  # a catalog that will not let go: start the next task afresh
            log.warning("bee %d: dropping its DataFusion session (%s)", self.id, exc)
            self.drop_session()

    def drop_session(self) -> None:
        """Let the kept session go; its runtime is waited for like a task's own."""
        kept, self._kept = self._kept, None
        if kept is not None:
            self._runtimes += kept.folders

    def _partitions_for(self, wanted: int) -> int:
        return max(1, min(wanted, self.memory_budget // PARTITION_MIN))

    def options(
        self, *, partitions: int = 1, shape: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The DataFusion options :meth:`context` sets for ``partitions`` and ``shape``: TUNED
        and the bee's own, then the node's ``settings`` (apiary.toml), then ``shape`` (what the
        SQL layer asks for this query: a session's SET).

        A Parquet table keeps the options of the context that made it (its scan reads them,
        not the running context's), so tables made outside the bee are made with these.
        """
        cores = self._partitions_for(partitions)
        target = self._partitions_for(cores * PARTITIONS_PER_CORE)
        options = {"datafusion.execution.target_partitions": str(target), **TUNED}
        if cores < JOIN_REPARTITION_FROM:
            options["datafusion.optimizer.repartition_joins"] = "false"
        options["datafusion.execution.sort_spill_reservation_bytes"] = str(
            _sort_reservation(self.memory_budget)
        )
        # Spills are written to an SD card on a Pi: lz4 cuts the bytes written at little cost.
        options["datafusion.execution.spill_compression"] = "lz4_frame"
        return {**options, **self.settings, **(shape or {})}

    def _runtime_dirs(self) -> list[Path]:
        with contextlib.suppress(OSError):
            return [
                Path(e.path) for e in os.scandir(self.spill_dir) if e.name.startswith(RUNTIME_DIR)
            ]
        return []

    def collect(
        self, df: DataFrame, *, limit_result: bool = True, optimized: LogicalPlan | None = None
    ) -> pa.Table:
        """Run ``df`` to a table, stopping at the task's deadline (TaskTimeoutError).

        DataFusion's "Resources exhausted" becomes MemoryExceededError; other DataFusion errors
        pass through unchanged for the caller to translate. With ``limit_result`` the collected
        result itself must also fit the budget, since it lives outside DataFusion's pool.
        """
        batches: list[pa.RecordBatch] = []

        def keep(batch: pa.RecordBatch) -> None:
            batches.append(batch)
            self.result_bytes += batch.nbytes
            if limit_result and self.result_bytes > self.memory_budget:
                raise MemoryExceededError(
                    f"the result of task {self.task!r} is larger than bee {self.id}'s "
                    f"memory budget of {_mib(self.memory_budget)}; add a LIMIT, a more "
                    "selective WHERE or an aggregate, or give each bee more memory "
                    "(memory_per_bee)"
                )

        try:
            self._run(df, keep, optimized)
        except BaseException:
            batches.clear()  # the partial result goes now, not whenever the error is freed
            raise
        if not batches:
            return df.schema().empty_table()
        return pa.Table.from_batches(batches)

    def stream(
        self, df: DataFrame, sink: BatchSink, *, optimized: LogicalPlan | None = None
    ) -> None:
        """Run ``df``, handing each batch to ``sink`` as DataFusion makes it.

        Nothing is kept here, so a result of any size streams within the bee's budget. The
        sink may block (a slow reader): DataFusion is not polled meanwhile, which holds the
        query back, and the sink calls :meth:`check_deadline` while it waits so that the
        deadline and a cancel still stop the task.
        """
        self._run(df, lambda batch: sink.put(batch, self.check_deadline), optimized)

    def _run(
        self,
        df: DataFrame,
        keep: Callable[[pa.RecordBatch], None],
        optimized: LogicalPlan | None = None,
    ) -> None:
        # ``optimized``: df's optimised logical plan, when the caller has planned the same query
        # already (the SQL layer, against stand-ins): joins are the same, and optimising a
        # TPC-H query again to look for them costs 0.3-2.7 ms.
        self.check_deadline()
        try:
            op = unstoppable(df, optimized)
            if op and self.seal and (plan := plan_bytes(df)) is not None:
                log.info("task %r: %s runs in a sealed child (killable)", self.task, op)
                self._run_sealed(plan, keep)
            else:
                # Once stopped, it may work on for a long while: the drain waits for it.
                self.slow_to_stop = op is not None
                asyncio.run(self._drain(df, keep))
        except Exception as exc:
            if "Resources exhausted" in str(exc):
                raise self._memory_error(str(exc)) from None
            raise

    def _run_sealed(self, plan: bytes, keep: Callable[[pa.RecordBatch], None]) -> None:
        """Run ``plan`` in a child process (see :mod:`apiary.runtime.sealed`), killed when the
        task stops for any reason, so no work outlives it."""
        job = job_for(plan, self.memory_budget, self._partitions, self.spill_dir, self._reach)
        job = job.model_copy(update={"shape": self._shape, "settings": self.settings})
        sealed = Sealed(job, plan)
        self.sealed = sealed
        try:
            for batch in sealed.batches(self.check_deadline, POLL):
                keep(batch)
                del batch
                self.check_deadline()
        finally:
            sealed.kill()
            self.sealed = None

    async def _drain(self, df: DataFrame, keep: Callable[[pa.RecordBatch], None]) -> None:
        # Through the async interface because a blocking next() cannot be interrupted: a sort
        # or GROUP BY does all its work before the first batch.
        stream = df.execute_stream()
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(stream.__anext__())
                while not (await asyncio.wait({pending}, timeout=POLL))[0]:
                    try:
                        self.check_deadline()
                    except BaseException:
                        pending.cancel()  # drops the Rust future: the query stops working
                        with contextlib.suppress(BaseException):
                            await pending
                        raise
                try:
                    batch = pending.result().to_pyarrow()
                except StopAsyncIteration:
                    return
                keep(batch)
                del batch
                self.check_deadline()
        finally:
            # An exception's traceback keeps this frame alive: drop the stream (its memory
            # and spill files) now, not whenever the error is freed. The last future too: its
            # StopAsyncIteration's traceback points back at this frame, a cycle that kept the
            # whole query's runtime alive until the next GC.
            del stream
            pending = None

    def _memory_error(self, detail: str) -> MemoryExceededError:
        # DataFusion's own advice names settings Apiary users cannot set; keep the cause only.
        lines = [line.replace("DataFusion error: ", "") for line in detail.splitlines()]
        detail = next((line for line in lines if "Resources exhausted" in line), lines[0])
        return MemoryExceededError(
            f"task {self.task!r} needed more than bee {self.id}'s memory budget of "
            f"{_mib(self.memory_budget)} and could not spill ({detail}); make the query "
            "lighter (a more selective WHERE, fewer GROUP BY keys, a smaller join side) or "
            "give each bee more memory (memory_per_bee)"
        )

    # -- the pool's view ---------------------------------------------------------------------

    def spilled_bytes(self) -> int:
        """Bytes now in the spill folder (DataFusion's hidden .tmp* files, in subfolders)."""
        total = 0
        for root, _, files in os.walk(self.spill_dir):
            for name in files:
                with contextlib.suppress(OSError):  # a spill file may vanish meanwhile
                    total += os.stat(os.path.join(root, name)).st_size
        return total

    def forget_runtimes(self) -> None:
        """Stop waiting for the runtimes made so far (see ``BeePool._wait_released``)."""
        self._runtimes = []

    def holds_runtime(self) -> bool:
        """True while a DataFusion runtime made by :meth:`context` is still alive anywhere."""
        self._runtimes = [d for d in self._runtimes if d.exists()]
        return bool(self._runtimes)

    def empty_spill_dir(self) -> None:
        """Remove what tasks left in the spill folder; the kept session's runtime folder stays
        (DataFusion deletes a finished query's spill files itself)."""
        keep = set(self._kept.folders) if self._kept is not None else set()
        for entry in list(self.spill_dir.iterdir()) if self.spill_dir.exists() else []:
            if Path(entry) in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()

    def _begin(self, task: str, timeout: float) -> int:
        self.state, self.task, self.timeout = "busy", task, timeout
        self.started = self._clock()
        self.result_bytes = 0
        self._cancel = None
        self.slow_to_stop = False
        self._attempt += 1
        return self._attempt

    def _end(self, draining: bool) -> None:
        self.state = "draining" if draining else "idle"
        self.task = self.started = self.timeout = None
        self.result_bytes = 0
        self._cancel = None


@dataclass
class _KeptSession:
    context: SessionContext
    folders: list[Path]  # its runtime's folder in the spill folder
    options: dict[str, str]  # the options as last set
    values: OrderedDict[Hashable, object] = field(default_factory=OrderedDict)  # see Bee.keep


@dataclass
class Abandonment:
    """A task that failed on every attempt, as shown in colony status."""

    task: str
    at: float  # wall-clock seconds since the epoch
    attempts: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "at": self.at, "attempts": list(self.attempts)}


@dataclass
class _Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class BeePool:
    """``bees`` chambers of ``memory_per_bee`` bytes each, spilling under ``scratch``."""

    def __init__(
        self,
        bees: int,
        memory_per_bee: int,
        scratch: Path,
        *,
        task_timeout: float = 30.0,
        max_attempts: int = 3,
        clock: Callable[[], float] = time.monotonic,
        retry_delay: float = 0.1,
        memory_limit: int | None = None,
        datafusion: Mapping[str, object] | None = None,
    ) -> None:
        if bees < 1 or memory_per_bee < 1 or task_timeout <= 0 or max_attempts < 1:
            raise ConfigError(
                f"a bee pool needs bees >= 1, memory_per_bee > 0, task_timeout > 0 and "
                f"max_attempts >= 1 (got {bees}, {memory_per_bee}, {task_timeout}, {max_attempts})"
            )
        # The process RSS ceiling (the node's memory budget); None leaves the process unbounded.
        self.memory_limit = memory_limit
        self._process = psutil.Process()
        if memory_limit is not None:
            memory_per_bee = self._fit(bees, memory_per_bee, memory_limit)
        self.memory_per_bee = memory_per_bee
        self.task_timeout = task_timeout
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self._clock = clock
        _remove_stale_pools(Path(scratch))
        # One folder per pool, so pools of several processes can share a scratch root.
        self.root = Path(scratch) / f"pool-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        settings = check_datafusion_settings(datafusion or {})
        self.bees = [
            Bee(i, memory_per_bee, self.root / f"bee-{i}", clock=clock, settings=settings)
            for i in range(bees)
        ]
        self._lock = threading.Condition()
        self._waiting = 0
        self._closed = False
        self._abandoned: deque[Abandonment] = deque(maxlen=ABANDONED_KEPT)
        self.abandoned_total = 0  # every abandonment since start (the deque keeps the latest)
        self._idle_memory = _private_memory(self._process)

    def _fit(self, bees: int, wanted: int, limit: int) -> int:
        """Each bee's pool: ``wanted``, or less if the process ceiling leaves less to share.

        The process is measured idle once DataFusion's runtime is up (its threads and function
        registry cost ~20-40 MiB on the first query); every bee may run a query at once and
        each holds UNACCOUNTED outside its pool. Never below POOL_FLOOR: a budget too small for
        that is reported (also by ``apiary doctor``) and queries that cannot spill in it stop
        with MemoryExceededError at the ceiling rather than never running.
        """
        SessionContext().sql("SELECT 1").collect()
        idle = _private_memory(self._process)
        fit = (limit - idle) // bees - UNACCOUNTED
        if fit < POOL_FLOOR:
            log.warning(
                "the node's memory budget of %s leaves %s per bee once Apiary itself (%s) and "
                "each query's buffers outside its pool (%s) are counted; the bees get %s each "
                "and large sorts and GROUP BYs may stop with MemoryExceededError. Raise "
                "memory_mb, or run fewer bees (cores)",
                _mib(limit),
                _mib(max(fit, 0)),
                _mib(idle),
                _mib(UNACCOUNTED),
                _mib(POOL_FLOOR),
            )
        return min(wanted, max(POOL_FLOOR, fit))

    # -- counts ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.bees)

    @property
    def idle(self) -> int:
        with self._lock:
            return sum(b.state == "idle" for b in self.bees)

    @property
    def busy(self) -> int:
        with self._lock:
            return sum(b.task is not None for b in self.bees)

    @property
    def queue_depth(self) -> int:
        """Callers waiting for a bee."""
        with self._lock:
            return self._waiting

    @property
    def abandoned(self) -> list[Abandonment]:
        """The most recent abandoned tasks, newest last."""
        with self._lock:
            return list(self._abandoned)

    # -- running tasks -----------------------------------------------------------------------

    def run(
        self,
        task: Callable[[Bee], T],
        *,
        name: str,
        timeout: float | None = None,
        retry: bool = True,
        cancel: threading.Event | None = None,
    ) -> T:
        """Run ``task`` on the next idle bee, retrying transient failures.

        Raises TaskTimeoutError when an attempt overruns, the task's own error when it is not
        worth retrying (NOT_RETRIED, or any error with ``retry=False``), and TaskAbandonedError
        (recorded in :attr:`abandoned`) when every attempt failed. Setting ``cancel`` stops the
        running attempt the way a deadline does and raises QueryCancelledError.
        """
        limit = self.task_timeout if timeout is None else timeout
        attempts = self.max_attempts if retry else 1
        failures: list[dict[str, Any]] = []
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            if cancel is not None and cancel.is_set():
                raise QueryCancelledError(f"task {name!r} was cancelled before it started")
            bee, token = self._acquire(name, limit)
            started = self._clock()
            try:
                return self._attempt(bee, token, task, started + limit, cancel)
            except NOT_RETRIED:
                raise
            except Exception as exc:
                if not retry:
                    raise
                failures.append(
                    {
                        "attempt": attempt,
                        "bee": bee.id,
                        "error": f"{type(exc).__name__}: {exc}",
                        "seconds": round(self._clock() - started, 3),
                    }
                )
                last = exc
            if attempt < attempts and self.retry_delay > 0:
                time.sleep(min(self.retry_delay * 2 ** (attempt - 1), 2.0))
        with self._lock:
            self._abandoned.append(Abandonment(name, time.time(), failures))
            self.abandoned_total += 1
        listed = "; ".join(
            f"attempt {f['attempt']} on bee {f['bee']}: {f['error']}" for f in failures
        )
        error = TaskAbandonedError(
            f"task {name!r} failed {len(failures)} times and was abandoned ({listed}); "
            "the attempts are listed in colony status"
        )
        error.attempts = failures  # type: ignore[attr-defined]
        raise error from last

    def _attempt(
        self,
        bee: Bee,
        token: int,
        task: Callable[[Bee], T],
        deadline: float,
        cancel: threading.Event | None = None,
    ) -> T:
        outcome: _Outcome[T] = _Outcome()
        name = bee.task
        worker = threading.Thread(
            target=self._work, args=(bee, task, outcome), name=f"bee-{bee.id}:{name}", daemon=True
        )
        worker.start()
        cancelled_at: float | None = None
        try:
            while not outcome.done.wait(POLL):
                if cancel is not None and cancel.is_set() and bee._cancel is None:
                    # The task sees this at its next deadline check (collect() checks while
                    # DataFusion works) and stops; answer the caller at once all the same.
                    error = QueryCancelledError(f"task {name!r} was cancelled by its caller")
                    self._cancel(bee, token, error)
                    raise error
                if bee._cancel is not None and cancelled_at is None:  # by shutdown()
                    cancelled_at = self._clock()
                if cancelled_at is not None and self._clock() > cancelled_at + GRACE:
                    raise bee._cancel  # type: ignore[misc]
                if self._clock() > deadline + GRACE:
                    # The task ignores its deadline: answer now and let the bee stay busy
                    # until the thread ends, so its memory is never handed to another task.
                    error = bee._timeout_error()
                    self._cancel(bee, token, error)
                    raise error
                if bee._cancel is None and (error := self._over_memory(name)) is not None:
                    self._cancel(bee, token, error)
                    raise error
        except BaseException:  # our own timeout, or e.g. KeyboardInterrupt while waiting
            self._cancel(bee, token, TaskTimeoutError(f"task {name!r} was cancelled by its caller"))
            raise
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]

    def _over_memory(self, name: str | None) -> MemoryExceededError | None:
        """The error that stops a task while the whole process is above its memory ceiling."""
        if self.memory_limit is None:
            return None
        used = self._used_memory()
        if used <= self.memory_limit:
            return None
        return MemoryExceededError(
            f"task {name!r} was stopped: this node's process grew to {_mib(used)}, above its "
            f"memory budget of {_mib(self.memory_limit)} (memory beyond what the bees' spill "
            "pools account for: results, Arrow buffers, aggregates such as array_agg); make "
            "the query lighter (a LIMIT, a more selective WHERE, fewer GROUP BY keys) or give "
            "the node more memory (memory_mb)"
        )

    def _used_memory(self) -> int:
        """The private memory of this process and of the bees' sealed children."""
        children = [b.sealed for b in self.bees]
        return _private_memory(self._process) + sum(
            c.private_memory() for c in children if c is not None
        )

    def _cancel(self, bee: Bee, token: int, error: BaseException) -> None:
        with self._lock:
            if bee._attempt == token and bee.task is not None and bee._cancel is None:
                bee._cancel = error

    def _work(self, bee: Bee, task: Callable[[Bee], T], outcome: _Outcome[T]) -> None:
        try:
            # DataFusion winds a cancelled query down on its own threads, and one of them may
            # still write a spill file after the previous task's folder was emptied.
            bee.empty_spill_dir()
            outcome.value = task(bee)
        except BaseException as exc:
            # The traceback's frames hold the task's context, DataFrame and stream: clear them
            # so DataFusion's work is dropped now, not whenever the error object is freed.
            _clear_frames(exc)
            outcome.error = exc
        finally:
            del task  # a closure may hold DataFusion objects too
            if isinstance(outcome.error, TaskTimeoutError | QueryCancelledError):
                with self._lock:  # stopped at its own deadline check: overdue all the same
                    if bee._cancel is None:
                        bee._cancel = outcome.error
            bee.end_session(failed=outcome.error is not None or bee._cancel is not None)
            # A finished query lets go within milliseconds, and its caller then finds the bee
            # idle. One that does not: the caller has its answer now, and the drain that
            # follows is the bee's own business.
            if not self._wait_released(bee, QUICK_RELEASE):
                outcome.done.set()
                limit = RELEASE_GRACE if outcome.error is None else self.task_timeout
                if bee.slow_to_stop:  # a nested loop over in-memory input: minutes, not seconds
                    limit = max(limit, SLOW_DRAIN)
                if not self._wait_released(bee, max(RELEASE_GRACE, limit)):
                    log.warning(
                        "bee %d: DataFusion still holds the runtime of task %r after it "
                        "ended; the bee takes new work again",
                        bee.id,
                        bee.task,
                    )
                    bee.forget_runtimes()
            bee.empty_spill_dir()  # outside the lock: many spill files take a while
            with self._lock:
                bee._end(draining=self._closed)
                if all(b.task is None for b in self.bees):
                    self._idle_memory = _private_memory(self._process)
                self._lock.notify_all()
            outcome.done.set()

    def _wait_released(self, bee: Bee, limit: float) -> bool:
        """Keep ``bee`` draining until DataFusion has dropped every runtime the task made, for
        at most ``limit`` seconds; True once it has.

        A cancelled query's spawned tasks go on until their current poll ends (module
        docstring); until then they still use a core and memory, so the bee is not idle. The
        wait is bounded, since the folder is only a sign of the runtime: now and then (about
        one spilling query in 30, measured) it outlives a runtime whose threads are all parked,
        and a bee must not stay out of service for that. A task that ran to its end has
        nothing left running once its stream is done, so it gets ``RELEASE_GRACE``; one that
        failed, timed out or was cancelled gets another task timeout.
        """
        started = collected = time.monotonic()
        pause = 0.002  # a finished query lets go within milliseconds: look again soon
        while bee.holds_runtime():
            now = time.monotonic()
            if now - started > limit:
                return False
            with self._lock:
                bee.state = "draining"
            if now - collected > 0.2:
                gc.collect()  # a reference cycle may be all that still holds the runtime
                collected = time.monotonic()
            time.sleep(pause)
            pause = min(POLL, pause * 2)
        return True

    def _acquire(self, name: str, limit: float) -> tuple[Bee, int]:
        with self._lock:
            self._waiting += 1
            try:
                while True:
                    if self._closed:
                        raise ApiaryError("the bee pool is shut down; no new tasks are accepted")
                    for bee in self.bees:
                        if bee.state == "idle":
                            return bee, bee._begin(name, limit)
                    self._lock.wait()
            finally:
                self._waiting -= 1

    # -- status and shutdown -----------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """One row per bee.

        ``memory_used`` is an estimate: DataFusion 55's Python bindings do not expose a memory
        pool's usage, so it is the process's private memory (module docstring) above its level
        when every bee was last idle, shared equally by the busy bees (it includes memory
        DataFusion does not account to the pool). ``spilled_bytes`` is exact: the bytes now in
        the bee's spill folder.
        """
        used = self._used_memory()
        spilled = [b.spilled_bytes() for b in self.bees]
        with self._lock:
            now = self._clock()
            busy = [b for b in self.bees if b.task is not None]
            share = max(0, used - self._idle_memory) // len(busy) if busy else 0
            return [
                {
                    "id": b.id,
                    "state": b.state,
                    "task": b.task,
                    "elapsed_s": None if b.started is None else round(now - b.started, 3),
                    "overdue": b._cancel is not None,
                    "memory_budget": b.memory_budget,
                    "memory_used": share if b.task is not None else 0,
                    "spilled_bytes": spilled[b.id],
                    "spill_dir": str(b.spill_dir),
                }
                for b in self.bees
            ]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Accept no more tasks, wait up to ``timeout`` s for running ones, remove scratch."""
        with self._lock:
            self._closed = True
            for bee in self.bees:
                bee.state = "draining"
            self._lock.notify_all()  # waiting callers learn the pool is closed
            give_up = time.monotonic() + timeout
            while any(b.task is not None for b in self.bees):
                left = give_up - time.monotonic()
                if left <= 0:
                    for bee in self.bees:
                        if bee.task is not None and bee._cancel is None:
                            bee._cancel = TaskTimeoutError(
                                f"task {bee.task!r} was cancelled: the bee pool shut down"
                            )
                    break
                self._lock.wait(left)
        for bee in self.bees:
            bee.drop_session()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> BeePool:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()


def _clear_frames(error: BaseException) -> None:
    """Drop the locals of every finished frame in ``error``'s traceback and its chained causes."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        pending += [exc.__cause__, exc.__context__]


def _remove_stale_pools(scratch: Path) -> None:
    """Spill folders of pools whose process died (an OOM kill leaves them behind)."""
    for folder in _pool_folders(scratch):
        pid = int(folder.name.split("-")[1])
        if pid != os.getpid() and not psutil.pid_exists(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _pool_folders(scratch: Path) -> Iterator[Path]:
    if not scratch.is_dir():
        return
    for entry in scratch.iterdir():
        parts = entry.name.split("-")
        if entry.is_dir() and len(parts) == 3 and parts[0] == "pool" and parts[1].isdigit():
            yield entry
