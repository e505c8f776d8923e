"""Coordinating a distributed query: assign tasks, watch for answers, reassign, merge.

The coordinator is whichever client received the SQL. It writes the manifest, then only reads:
partial results appear as objects, and a task whose node died or did not answer within the
task timeout is handed to another alive node (up to ``max_attempts`` nodes in all) before the
query fails with :class:`TaskAbandonedError`. The query folder is deleted when done: behind the
answer (see :class:`Sweeper`), or at once when the query failed or was cancelled, since its
folder going is what stops its tasks on other nodes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import pyarrow as pa

from apiary.errors import QueryCancelledError, TaskAbandonedError
from apiary.ledger import CellMeta
from apiary.storage import Storage
from apiary.storage.watch import BACKSTOP, Timer, Watch, watch_folder
from apiary.swarm.manifest import (
    Attempt,
    CellRef,
    Manifest,
    Task,
    error_path,
    manifest_path,
    query_folder,
    result_path,
)
from apiary.swarm.world import NodeView

log = logging.getLogger("apiary.coordinator")


@dataclass
class Plan:
    """Which cells go to which node (pure logic: see :func:`assign`)."""

    tasks: list[Task] = field(default_factory=list)
    cached_tasks: int = 0  # tasks sent to a node that already caches all their cells

    def per_node(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task.node] = counts.get(task.node, 0) + 1
        return counts


def bees_of(node: NodeView) -> int:
    """The tasks a node is given at once: its idle bees (at least one)."""
    return max(1, node.heartbeat.bees_idle or node.heartbeat.cores or 1)


def assign(
    cells: Sequence[CellMeta], nodes: Sequence[NodeView], prefix: str = "", tasks_per_bee: int = 1
) -> Plan:
    """Split ``cells`` into tasks and give each to a node.

    One task per idle bee in the swarm (at least one per node), of about equal size, made of
    cells that the same node caches where possible. A task goes to the node that caches most
    of its cells, ties broken by the fewest tasks per bee so far, and no node takes more than
    its share of the swarm's bees. Tasks are cut from runs of consecutive ``cells``, so the
    caller's order decides which cells share a task (key order keeps each task's key range
    narrow).
    """
    if not nodes:
        raise ValueError("no alive node to run tasks on")
    bees = {n.node_id: bees_of(n) for n in nodes}
    count = max(1, min(len(cells), sum(bees.values()) * tasks_per_bee))
    cached = {n.node_id: set(n.heartbeat.cached_cells) for n in nodes}

    def owner(cell: CellMeta) -> str:
        key = f"{prefix}/{cell.path}" if prefix else cell.path
        return next((n for n in sorted(cached) if key in cached[n]), "~")  # "~": nobody

    # Cells are grouped by the node that caches them, each group cut into runs of about equal
    # size (tasks in proportion to its bytes), so a task's cells live on one node if anywhere.
    buckets: dict[str, list[CellMeta]] = {}
    for cell in cells:
        buckets.setdefault(owner(cell), []).append(cell)
    total_bytes = sum(c.bytes for c in cells) or 1
    # No node takes more than its share of bees (rounded up): the cache decides *which* tasks
    # a node gets, not that a node with a warm cache gets them all.
    total = sum(bees.values())
    share = {n: -(-count * bees[n] // total) for n in bees}
    # When every node caches some of the cells, a node's cells make at most its share of tasks
    # (bigger ones), so that no task goes to a node without its cells merely because rounding
    # gave the bucket one task too many. A node caching none of them gets its work from the
    # tasks the others cannot take, so then buckets are not capped.
    everyone_warm = all(owned in buckets for owned in bees)
    groups: list[list[CellMeta]] = []
    for owned, bucket in buckets.items():
        size = sum(c.bytes for c in bucket)
        runs = max(1, round(count * size / total_bytes))
        if everyone_warm and owned in share:
            runs = min(runs, share[owned])
        groups += cut(bucket, runs)

    load = dict.fromkeys(bees, 0)
    plan = Plan()
    for i, group in enumerate(g for g in groups if g):
        paths = {f"{prefix}/{c.path}" if prefix else c.path for c in group}
        open_nodes = [n for n in bees if load[n] < share[n]] or list(bees)
        node = max(open_nodes, key=lambda n: (len(paths & cached[n]), -load[n] / bees[n], n))
        load[node] += 1
        plan.cached_tasks += paths <= cached[node]
        refs = [CellRef(path=c.path, rows=c.rows, bytes=c.bytes) for c in group]
        task = Task(task_id=f"t{i:04d}", cells=refs, node=node, attempts=[Attempt(node=node)])
        plan.tasks.append(task)
    return plan


def cut(cells: Sequence[CellMeta], count: int) -> list[list[CellMeta]]:
    """``cells`` cut, in order, into at most ``count`` runs of about equal bytes.

    A cell goes to the run its middle byte falls in, so cells of nearly equal size split
    evenly: a boundary test on the bytes before a cell tips over by a few bytes and can give
    one run three of four cells (a 3:1 split made a two-node query wait for the big task).
    """
    total = sum(max(c.bytes, 1) for c in cells)
    runs: list[list[CellMeta]] = [[] for _ in range(count)]
    filled = 0
    for cell in cells:
        size = max(cell.bytes, 1)
        runs[min(count - 1, (2 * filled + size) * count // (2 * total))].append(cell)
        filled += size
    return [run for run in runs if run]


class Sweeper:
    """Deletes the folders of answered queries behind their answers, on a thread of its own.

    An answer goes back as soon as it is merged: deleting its folder is a listing and a delete
    per object (round trips on S3; ~1 ms on a local root, most of it removing folders that other
    nodes watch). A folder a sweep never reached (its process ended first) is swept by the
    workers like any abandoned one (``Worker._sweep``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                # Each thread has its own queue: a job given after close() never lands behind
                # the stop of a thread that is ending.
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run, args=(self._jobs,), name="apiary-sweep", daemon=True
                )
                self._thread.start()
            self._jobs.put(job)

    def close(self, timeout: float = 30.0) -> None:
        """Finish the sweeps given so far."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._jobs.put(None)
        if thread is not None:
            thread.join(timeout)

    @staticmethod
    def _run(jobs: queue.SimpleQueue[Callable[[], None] | None]) -> None:
        while (job := jobs.get()) is not None:
            try:
                job()
            except Exception as exc:  # workers sweep what is left, once it is stale
                log.warning("deleting an answered query's folder failed: %s", exc)


def _delete_folder(storage: Storage, query_id: str, owned: contextlib.ExitStack) -> None:
    """Delete a query's folder; only then may this node's worker read its manifests again."""
    try:
        for obj in storage.list(query_folder(query_id)):
            storage.delete(obj.path)
    finally:
        owned.close()


@dataclass
class Outcome:
    results: list[pa.Table]
    tasks_per_node: dict[str, int]
    reassigned: int
    cached_tasks: int


class Coordinator:
    def __init__(
        self,
        storage: Storage,
        node_id: str,
        world: Callable[[], list[NodeView]],
        *,
        task_timeout: float = 30.0,
        max_attempts: int = 3,
        poll_interval: float = 0.2,
        wait_interval: float | None = None,
        local: Callable[[Manifest, Task], object] | None = None,
        own: Callable[[str], contextlib.AbstractContextManager[object]] | None = None,
        sweep: Callable[[Callable[[], None]], None] = lambda job: job(),
    ) -> None:
        self.storage = storage
        self.node_id = node_id
        self.world = world  # alive nodes, fresh on each call
        self.task_timeout = task_timeout
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.wait_interval = poll_interval if wait_interval is None else wait_interval
        # This node's own worker: its tasks start at once, without a trip through the bucket.
        self.local = local
        # Marks a query as this node's own while it runs, so its worker leaves the manifest
        # to this coordinator (``Worker.own``).
        self.own = own
        # Deletes an answered query's folder (by default at once; a Sweeper does it behind).
        self.sweep = sweep
        self._local_runs: list[object] = []  # what ``local`` returned: futures, while they run
        # Wakes the wait for answers when one of this node's own tasks ends (its answer is looked
        # for at once instead of at the next poll: 10 ms on a local root, most of what sharing a
        # short query cost) and, on a local root, when any answer lands (the kernel says so).
        self._wake: Watch = Timer()

    def run(
        self,
        fragment: Manifest,
        cells: Sequence[CellMeta],
        cancel: threading.Event | None = None,
        tailor: Callable[[Task], None] = lambda task: None,
    ) -> Outcome:
        """Run ``fragment`` (a manifest without tasks) over ``cells`` of its driving frame;
        ``tailor`` adjusts each task before the manifest is written."""
        query_id = uuid.uuid4().hex
        plan = assign(cells, self.world(), fragment.driving_frame.prefix)
        for task in plan.tasks:
            tailor(task)
        manifest = fragment.model_copy(
            update={"query_id": query_id, "coordinator": self.node_id, "tasks": plan.tasks}
        )
        first_assignment = plan.per_node()
        owned = contextlib.ExitStack()  # held until the folder is gone
        if self.own is not None:
            owned.enter_context(self.own(query_id))
        finish = functools.partial(_delete_folder, self.storage, query_id, owned)
        try:
            self.storage.put(manifest_path(query_id), manifest.to_bytes())
            self._wake = watch_folder(self.storage.location, query_folder(query_id))
            try:
                self._start_local(manifest, manifest.tasks)
                results, reassigned = self._collect(manifest, cancel)
            finally:
                self._wake.close()
        except BaseException:
            finish()  # at once: the folder going stops the query's tasks on other nodes
            raise
        self.sweep(finish)
        return Outcome(results, first_assignment, reassigned, plan.cached_tasks)

    def _start_local(self, manifest: Manifest, tasks: Sequence[Task]) -> None:
        if self.local is None:
            return
        for task in tasks:
            if task.node == self.node_id:
                run = self.local(manifest, task)
                if isinstance(run, Future):
                    run.add_done_callback(lambda _: self._wake.poke())
                self._local_runs.append(run)

    def _interval(self) -> float:
        """While this node's own bees work, look now and then (the answers that matter come
        later); once they are done this node only waits, so look at ``wait_interval``. Where
        the kernel wakes the wait (an answer landing, an own task ending), the timer is only a
        backstop: a look every few ms on the core the own task ran on slowed it."""
        running = [r for r in self._local_runs if isinstance(r, Future) and not r.done()]
        self._local_runs = running
        interval = self.poll_interval if running else self.wait_interval
        return max(interval, BACKSTOP) if self._wake.notifies else interval

    def _collect(
        self, manifest: Manifest, cancel: threading.Event | None
    ) -> tuple[list[pa.Table], int]:
        pending = {task.task_id: task for task in manifest.tasks}
        deadline = {tid: time.monotonic() + self.task_timeout for tid in pending}
        results: dict[str, pa.Table] = {}
        reassigned = 0
        while pending:
            if cancel is not None and cancel.is_set():
                raise QueryCancelledError(
                    f"query {manifest.query_id} was cancelled; its tasks stop on every node"
                )
            present = {o.path for o in self.storage.list(query_folder(manifest.query_id))}
            alive = {n.node_id for n in self.world()}
            moved = []
            for tid, task in list(pending.items()):
                answer = result_path(manifest.query_id, tid, task.node)
                failed = error_path(manifest.query_id, tid, task.node)
                if answer in present:
                    results[tid] = _read_ipc(self.storage, answer)
                    del pending[tid]
                    continue
                if failed in present:
                    outcome = "error: " + self.storage.get(failed).decode(errors="replace")
                elif task.node not in alive and task.node != self.node_id:
                    outcome = "node died"
                elif time.monotonic() > deadline[tid]:
                    outcome = f"timed out after {self.task_timeout:g} s"
                else:
                    continue
                task.attempts[-1].outcome = outcome
                self._reassign(manifest, task, alive)
                deadline[tid] = time.monotonic() + self.task_timeout
                reassigned += 1
                moved.append(task)
            if moved:
                self.storage.put(manifest_path(manifest.query_id), manifest.to_bytes())
                self._start_local(manifest, moved)
            if pending:
                self._wake.wait(self._interval())
        return [results[t.task_id] for t in manifest.tasks], reassigned

    def _reassign(self, manifest: Manifest, task: Task, alive: set[str]) -> None:
        tried = {a.node for a in task.attempts}
        candidates = sorted(alive - tried) or sorted(alive)
        if len(task.attempts) >= self.max_attempts or not candidates:
            history = "; ".join(f"{a.node}: {a.outcome}" for a in task.attempts)
            raise TaskAbandonedError(
                f"task {task.task_id} of query {manifest.query_id} ({len(task.cells)} cells of "
                f"{manifest.driving_frame.full_name}) failed on every attempt: {history}. "
                "Nothing partial was returned; check `apiary swarm` and retry."
            )
        node = candidates[0]
        log.warning("reassigning task %s to %s (%s)", task.task_id, node, task.attempts[-1].outcome)
        task.node = node
        task.attempts.append(Attempt(node=node))


def _read_ipc(storage: Storage, path: str) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(storage.get_buffer(path))).read_all()
