"""A node's worker loop: find tasks assigned to it in ``_queries/``, run them, write the results."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from datafusion import DataFrame, LogicalPlan, SessionConfig, SessionContext, col, lit
from datafusion.catalog import Table

from apiary.cells.stats import decode_stat
from apiary.cells.types import schema_from_json
from apiary.errors import ApiaryError, NotFoundError, SerializationError, SqlError
from apiary.ledger import CellMeta
from apiary.runtime.bees import BeePool
from apiary.runtime.cache import CellCache
from apiary.sql.context import Reach
from apiary.sql.readonly import READ_ONLY, plan_read_only
from apiary.sql.sources import (
    LINKED,
    frame_table,
    placeholder,
    plain_types,
    register_object_store,
    register_table,
    scan_schema,
    scratch_folder,
)
from apiary.sql.tuning import Suited, applied, suited
from apiary.storage import ObjectInfo, Storage
from apiary.storage.watch import BACKSTOP, Timer, Watch, watch
from apiary.swarm.manifest import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    QUERIES,
    KeyRange,
    Manifest,
    Task,
    assigned,
    error_path,
    query_id_in,
    result_path,
)

log = logging.getLogger("apiary.worker")

ACTIVE_FOR = 60.0  # seconds after a manifest was last seen that a worker keeps looking often
BUSY_POLL = 0.05  # seconds between looks while every bee has a task (looking for cancels only)
SWEEP_EVERY = 30.0  # seconds between looks for abandoned query folders, while any exist

_WHO_WRITES = (
    "Only Apiary coordinators should write to _queries/; check who can write to the bucket"
)


def ipc_bytes(table: pa.Table) -> memoryview:
    """``table`` as an Arrow IPC stream, in one buffer of Arrow's memory pool.

    The stream is measured first and then written once into a buffer of its size: a growing
    stream copied out to Python bytes faulted in fresh pages three times over (5 ms of a node's
    core for a 4 MB answer, against 0.4 ms this way)."""
    size = pa.MockOutputStream()
    with pa.ipc.new_stream(size, table.schema) as writer:
        writer.write_table(table)
    buffer = pa.allocate_buffer(size.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buffer), table.schema) as writer:
        writer.write_table(table)
    return memoryview(buffer).cast("B")  # bytes, as storage clients take them


class Worker:
    """Polls for manifests naming this node and answers each of its tasks once."""

    def __init__(
        self,
        storage: Storage,
        node_id: str,
        *,
        credentials: dict[str, str] | None = None,
        poll_interval: float = 0.5,
        idle_poll_interval: float | None = None,
        active_for: float = ACTIVE_FOR,
        before_task: Callable[[Task], None] = lambda task: None,
        cache: CellCache | None = None,
        pool: BeePool | None = None,
        stale_after: float = 150.0,
    ) -> None:
        self.storage = storage
        self.node_id = node_id
        self.credentials = credentials
        self.poll_interval = poll_interval
        # Looking costs a LIST request on S3: look often only while queries are about.
        self.idle_poll_interval = idle_poll_interval or poll_interval
        self.active_for = active_for
        self._last_seen = float("-inf")  # monotonic time a manifest was last seen
        self.before_task = before_task  # tests slow a node down here
        self.cache = cache
        self.pool = pool  # with a pool, each task runs in a bee's memory budget and deadline
        self.answered: set[tuple[str, str, int]] = set()
        # A query folder untouched this long (on the storage's clock) lost its coordinator.
        self.stale_after = stale_after
        self._next_sweep = 0.0
        self._read: dict[str, tuple[object, int]] = {}  # manifest -> (modified, size) read last
        # Tasks run side by side, one per bee; each can be cancelled by its query folder going.
        self._slots = pool.size if pool is not None else 1
        self._tasks = ThreadPoolExecutor(max_workers=self._slots, thread_name_prefix="apiary-task")
        self._running: dict[str, threading.Event] = {}  # query id -> cancel, while tasks run
        self._lock = threading.Lock()
        self.refused: set[tuple[str, object]] = set()  # manifests refused with no task to answer
        self._own: set[str] = set()  # queries this node coordinates (see :meth:`own`)
        self.tasks_run = 0
        self._busy = 0  # tasks taken and not yet ended
        self._stop = threading.Event()
        # Wakes the loop when a task ends (a bee is free) or the worker stops; once the loop
        # runs, also when a manifest appears (local roots: at once, not at the next look).
        # Made in start(): a worker only polled by hand holds no kernel watch.
        self._watch: Watch = Timer()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Only a manifest can give this node work; answers landing need not wake it, nor the
        # queries this node coordinates (their manifest appearing woke this loop just as the
        # coordinator's own task started, on the same core).
        self._watch = watch(
            self.storage.location, QUERIES, names=frozenset({MANIFEST}), ignore=self._is_own
        )
        self._thread = threading.Thread(target=self._run, name="apiary-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._watch.poke()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._watch.close()
        for cancel in list(self._running.values()):
            cancel.set()
        self._tasks.shutdown(wait=True)

    def interval(self, now: float | None = None) -> float:
        """Seconds until the next look: fast while a manifest was seen lately, slow when idle.

        While every bee has a task a new one could only wait, so the worker then looks only
        for cancelled queries, at ``BUSY_POLL``: a look every few milliseconds on the core a
        task runs on cost it more than the look saved (and a bee that frees up wakes the loop).
        """
        now = time.monotonic() if now is None else now
        if now - self._last_seen > self.active_for:
            return self.idle_poll_interval
        if self._busy >= self._slots:
            return max(self.poll_interval, BUSY_POLL)
        return max(self.poll_interval, BACKSTOP) if self._watch.notifies else self.poll_interval

    def _run(self) -> None:
        while True:
            self._watch.wait(self.interval())
            if self._stop.is_set():
                return
            try:
                self.poll(wait=False)
            except ApiaryError as exc:
                log.warning("worker poll failed: %s", exc)
            except Exception:
                log.exception("worker poll failed")

    def poll(self, wait: bool = True) -> int:
        """One look at ``_queries/``; returns how many tasks this node started.

        With ``wait`` the tasks have finished when it returns; the worker's own loop does not
        wait, so it keeps looking (and noticing cancelled queries) while its bees work.

        A manifest is untrusted input: one that fails validation is refused (with an error
        object for each task it gives this node, so the query fails clearly), never run.
        """
        ran = []
        listed = self.storage.list(QUERIES)
        if listed:
            self._last_seen = time.monotonic()
        present = {query_id_in(info.path) for info in listed}
        with self._lock:
            # A query whose folder is gone was finished or cancelled by its coordinator.
            for query_id, cancel in self._running.items():
                if query_id not in present:
                    cancel.set()
            self._running = {q: c for q, c in self._running.items() if q in present}
            # Answers of finished queries need not be remembered (a long-running node would grow).
            self.answered = {key for key in self.answered if key[0] in present}
        self._read = {p: seen for p, seen in self._read.items() if query_id_in(p) in present}
        self._sweep(listed)
        for info in listed:
            if not info.path.endswith(f"/{MANIFEST}"):
                continue
            if self._read.get(info.path) == (info.last_modified, info.size):
                continue  # read already, unchanged since: no new task for this node in it
            query_id = query_id_in(info.path)
            if query_id is None:
                self._refuse(info, None, b"", "its folder is not named by a query id")
                continue
            if query_id in self._own:
                continue  # its coordinator, in this process, hands this node its tasks
            if info.size > MAX_MANIFEST_BYTES:
                self._refuse(info, query_id, b"", f"it is larger than {MAX_MANIFEST_BYTES} bytes")
                continue
            try:
                data = self.storage.get(info.path)
            except NotFoundError:
                continue  # finished and deleted meanwhile
            try:
                manifest = Manifest.from_stored(data, query_id)
            except SerializationError as exc:
                self._refuse(info, query_id, data, str(exc))
                continue
            self._read[info.path] = (info.last_modified, info.size)
            for task in manifest.tasks:
                if task.node == self.node_id:
                    started = self.take(manifest, task)
                    if started is not None:
                        ran.append(started)
        if wait:
            for future in ran:
                future.result()
        return len(ran)

    def _sweep(self, listed: list[ObjectInfo]) -> None:
        """Delete query folders whose coordinator died: nothing in them changed for
        ``stale_after`` seconds, longer than a live coordinator waits for any task."""
        if not listed or time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        now = self.storage.now()
        folders: dict[str, list[ObjectInfo]] = {}
        for info in listed:
            folders.setdefault(info.path.split("/")[1], []).append(info)
        for query_id, objects in folders.items():
            idle = (now - max(o.last_modified for o in objects)).total_seconds()
            if idle > self.stale_after:
                log.info("sweeping query folder %s: untouched for %.0f s", query_id[:64], idle)
                for info in objects:
                    with contextlib.suppress(NotFoundError):  # another node swept it first
                        self.storage.delete(info.path)

    def _is_own(self, query_id: str) -> bool:
        return query_id in self._own

    @contextlib.contextmanager
    def own(self, query_id: str) -> Iterator[None]:
        """While this node coordinates ``query_id``, leave its manifest unread: the coordinator
        hands this node's tasks of it straight to :meth:`take`. Reading it as the manifest
        appeared took the GIL from the coordinator just as it started its own task."""
        with self._lock:
            self._own.add(query_id)
        try:
            yield
        finally:
            with self._lock:
                self._own.discard(query_id)

    def take(self, manifest: Manifest, task: Task) -> Future[None] | None:
        """Start ``task`` in a bee unless this attempt of it was taken already (the coordinator
        hands its own node's tasks straight here; the poll loop finds the rest)."""
        key = (manifest.query_id, task.task_id, len(task.attempts))
        with self._lock:
            if key in self.answered:
                return None
            self.answered.add(key)
            cancel = self._running.setdefault(manifest.query_id, threading.Event())
            self._busy += 1
        future = self._tasks.submit(self.run_task, manifest, task, cancel)
        future.add_done_callback(self._ended)
        return future

    def _ended(self, _: Future[None]) -> None:
        with self._lock:
            self._busy -= 1
        self._watch.poke()  # a bee is free: look for the next task now, at the fast pace

    def _refuse(self, info: ObjectInfo, query_id: str | None, data: bytes, reason: str) -> None:
        """Answer a bad manifest's tasks for this node with the reason; else just log it once."""
        message = f"manifest {info.path[:200]} refused: {reason}. {_WHO_WRITES}"
        targets = [
            (task_id, attempts)
            for task_id, attempts in (assigned(data, self.node_id) if query_id else [])
            if (query_id, task_id, attempts) not in self.answered
        ]
        if not targets:
            if (info.path, info.last_modified) not in self.refused:
                self.refused.add((info.path, info.last_modified))
                log.warning("%s", message)
            return
        assert query_id is not None
        for task_id, attempts in targets:
            self.answered.add((query_id, task_id, attempts))
            log.warning("task %s: %s", task_id, message)
            self.storage.put(error_path(query_id, task_id, self.node_id), message[:2000].encode())

    def run_task(
        self, manifest: Manifest, task: Task, cancel: threading.Event | None = None
    ) -> None:
        """Run one task and leave its answer (or its error) in the query folder."""
        self.before_task(task)
        if cancel is not None and cancel.is_set():
            return  # the query ended while this task waited for a bee
        try:
            checked = check_fragment(manifest)  # before any cell is fetched or a bee is taken
            config = SessionConfig().with_default_catalog_and_schema(*manifest.defaults)
            reach = Reach(self.storage.location, self.credentials)
            if self.pool is None:
                ctx = SessionContext(config)
                register_object_store(ctx, reach.location, reach.credentials)
                self._answer(manifest, task, self._execute(manifest, task, ctx), cancel)
            else:
                catalog, schema = manifest.defaults

                def run(bee: Any) -> None:
                    # the plan's shape, as on one node
                    shape = applied(checked.suited, bee.settings)
                    session = bee.session(catalog=catalog, schema=schema, reach=reach, shape=shape)
                    # The stand-ins' plan has the joins the bee looks for before it runs one
                    # (optimising the fragment again for them cost 0.3-2.7 ms of each task).
                    collect = functools.partial(bee.collect, optimized=checked.plan)
                    options = bee.options(shape=shape)
                    result = self._execute(manifest, task, session, collect, options, bee.keep)
                    # Answered from the bee itself: the coordinator waits for this answer, not
                    # for the bee's own ending (its session's tables dropped, the pool's thread
                    # handing back: ~0.4 ms of a shared query's last answer).
                    self._answer(manifest, task, result, cancel)

                self.pool.run(
                    run,
                    name=f"task {task.task_id} of query {manifest.query_id[:8]}",
                    retry=False,  # the coordinator retries elsewhere
                    cancel=cancel,
                )
        except Exception as exc:  # report it; the coordinator decides whether to retry elsewhere
            if cancel is not None and cancel.is_set():
                log.info("task %s of query %s cancelled", task.task_id, manifest.query_id)
                return  # its folder is gone: writing would only bring it back
            log.warning("task %s of query %s failed: %s", task.task_id, manifest.query_id, exc)
            message = f"{type(exc).__name__}: {exc}"[:2000].encode()
            self.storage.put(error_path(manifest.query_id, task.task_id, self.node_id), message)

    def _answer(
        self, manifest: Manifest, task: Task, result: pa.Table, cancel: threading.Event | None
    ) -> None:
        if cancel is not None and cancel.is_set():
            return  # finished after its query ended: writing would only bring its folder back
        self.storage.put(
            result_path(manifest.query_id, task.task_id, self.node_id), ipc_bytes(result)
        )
        self.tasks_run += 1

    def _execute(
        self,
        manifest: Manifest,
        task: Task,
        ctx: SessionContext,
        collect: Callable[[DataFrame], pa.Table] = lambda df: df.to_arrow_table(),
        options: Mapping[str, str] | None = None,
        keep: Keep | None = None,
    ) -> pa.Table:
        """Run ``task``'s fragment in ``ctx`` (made with DataFusion ``options``).

        With ``keep`` (a bee's :meth:`~apiary.runtime.bees.Bee.keep`), a fragment run again
        over the very same kept tables (a repeated query on a local root) is not planned again
        from its SQL: ~1-2 ms of each TPC-H task, on every node.
        """
        parent = self.cache.folder / "scratch" if self.cache is not None else None
        local = self.cache is None and self.storage.location.scheme == "file"
        with (
            scratch_folder(self.storage.location, parent) as scratch,
            LINKED.holding() as linked,
        ):
            # Only tables kept across tasks (linked ones) can be met again.
            kept: Keep = keep if keep is not None and local else _made
            tables: list[tuple[str, str, str, Table]] = []
            # Whole cells through the node's cache, if it has one, linked into one folder;
            # either way every cell's size is checked against what the coordinator recorded.
            fetch = None
            if self.cache is not None:
                fetch = functools.partial(self.cache.fetch, download=self.storage.get)
            for i, ref in enumerate(manifest.frames):
                refs = task.cells if i == manifest.driving else task.frame_cells.get(i, ref.cells)
                cells = [CellMeta(path=c.path, rows=c.rows, bytes=c.bytes) for c in refs]
                schema = schema_from_json(ref.columns)
                frame = _TaskFrame(self.storage, ref.prefix, ref.full_name, schema)
                # On a local root, the tables kept across queries (and tasks): their statistics
                # and DataFusion's cache of their footers stay warm.
                table = frame_table(
                    ctx,
                    frame,  # type: ignore[arg-type]
                    cells,
                    scratch,
                    fetch,
                    linked=linked if local else None,
                    options=options,
                )
                key = task.frame_ranges.get(i) if i != manifest.driving else None
                if key is not None:
                    within = functools.partial(_within, ctx, table, schema, key)
                    table = kept(("within", table, key.column, key.low, key.high), within)
                register_table(ctx, ref.hive, ref.box, ref.table, table)
                tables.append((ref.hive, ref.box, ref.table, table))
            # Checked by check_fragment against stand-ins of the same names; here the frames are
            # views over their cells, whose scans the plan shows by file, so the read-only
            # options alone hold the same SQL to read-only again.
            sql = manifest.fragment_sql
            # The tables are the key: kept ones are the same objects only while their cells are.
            settings = tuple(sorted((options or {}).items()))
            planned = functools.partial(ctx.sql_with_options, sql, READ_ONLY)
            df = kept(("fragment", sql, settings, tuple(tables)), planned)
            return plain_types(collect(df))


Keep = Callable[[Hashable, Callable[[], Any]], Any]


def _made(key: Hashable, make: Callable[[], Any]) -> Any:
    return make()


def _within(ctx: SessionContext, table: Table, schema: pa.Schema, key: KeyRange) -> Table:
    """``table``'s rows whose ``key.column`` lies in the task's key range. The scan gets the
    range as its predicate, so row groups outside it are skipped by their statistics."""
    if key.column not in schema.names:
        raise SerializationError(
            f"the manifest narrows by column {key.column!r}, which its frame does not have"
        )
    kind = schema.field(key.column).type
    low, high = (pa.scalar(decode_stat(bound, kind), kind) for bound in (key.low, key.high))
    rows = ctx.read_table(table).filter(col(key.column).between(lit(low), lit(high)))
    return Table(rows)


@dataclass(frozen=True)
class CheckedFragment:
    """A fragment found to be a read-only query: what its plan's shape suits, and its
    optimised plan over stand-ins (the same joins as over the cells)."""

    suited: Suited
    plan: LogicalPlan


def check_fragment(manifest: Manifest) -> CheckedFragment:
    """Refuse a fragment that is anything but a read-only query over the manifest's frames;
    the DataFusion options its plan's shape suits (sql.tuning), as the query would get on one
    node.

    Planned against empty stand-ins of the frames, so nothing is read, fetched or run. A
    fragment passed before, over frames of the same names and columns, passes again without
    being planned (a dashboard repeats its queries; planning costs milliseconds).
    """
    frames = tuple(
        (ref.hive, ref.box, ref.table, json.dumps(ref.columns)) for ref in manifest.frames
    )
    checked = _checked(manifest.fragment_sql, manifest.defaults, frames)
    if isinstance(checked, str):
        raise SqlError(
            f"the fragment of query {manifest.query_id} was refused: {checked}. {_WHO_WRITES}"
        )
    return checked


@functools.lru_cache(maxsize=256)
def _checked(
    sql: str, defaults: tuple[str, str], frames: tuple[tuple[str, str, str, str], ...]
) -> str | CheckedFragment:
    """Why ``sql`` is refused over stand-ins of ``frames``, or the checked read-only query."""
    ctx = SessionContext(SessionConfig().with_default_catalog_and_schema(*defaults))
    for hive, box, table, columns in frames:
        stand_in = placeholder(scan_schema(schema_from_json(json.loads(columns))))
        register_table(ctx, hive, box, table, stand_in)
    try:
        df = plan_read_only(ctx, sql, {f[:3] for f in frames}, defaults)
    except SqlError as exc:
        return str(exc)
    plan = df.optimized_logical_plan()
    return CheckedFragment(suited(plan), plan)


class _TaskFrame:
    """Just enough of a :class:`Frame` for :func:`frame_table`: no catalog or ledger needed.

    Attached Delta tables are not shared (see :mod:`apiary.swarm.distribute`), so a task's
    frames live in their own folders and their files hold their partition columns."""

    files_hold_partition_columns = True

    def __init__(self, storage: Storage, prefix: str, name: str, schema: pa.Schema) -> None:
        self.storage = storage
        self.prefix = prefix
        self.full_name = name
        self.schema = schema
