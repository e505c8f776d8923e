"""The Python SDK: ``Apiary(name, storage=None)``.

Both vocabularies work everywhere: hive/box/frame and database/schema/table.

    with Apiary("home") as ap:
        ap.create_hive("farm"); ap.create_box("farm", "sensors")
        ap.create_frame("farm", "sensors", "temps", {"region": "string", "temp": "float64"},
                        partition_by=["region"])
        ap.write_to_frame("farm", "sensors", "temps", table)
        ap.read_from_frame("farm", "sensors", "temps", partition_filter={"region": "north"})
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from apiary.catalog import FrameDef, Registry
from apiary.cells.sizing import CellSizing, leafcutter
from apiary.cells.sorting import check_sort_by
from apiary.cells.types import (
    original_schema_form,
    schema_as_created,
    schema_from_spec,
    schema_to_json,
)
from apiary.config import Settings, load_settings
from apiary.delta.schema import check_frame_schema
from apiary.errors import ConfigError, SchemaError
from apiary.frame import Frame
from apiary.maintenance import compact, vacuum
from apiary.names import validate_name
from apiary.runtime import temperature
from apiary.runtime.bees import BeePool
from apiary.runtime.cache import CellCache
from apiary.runtime.colony import Colony, system_sampler
from apiary.storage import Location, RetryPolicy, Storage, apiary_home, open_storage, redact
from apiary.swarm.heartbeat import HeartbeatLoop
from apiary.swarm.worker import Worker
from apiary.swarm.world import Heartbeat, NodeView, Timings, read_world
from apiary.version import __version__
from hardware.budgets import Budgets, budgets
from hardware.detect import HardwareProfile, detect
from hardware.thermal import thermal_pressure

if TYPE_CHECKING:
    from apiary.sql.context import SqlContext
    from apiary.sql.session import QueryStats, SqlSession
    from apiary.swarm.distribute import Distributor
    from apiary.swarm.manifest import Manifest, Task

log = logging.getLogger("apiary")

# Per-bee fields a heartbeat carries, and how many abandoned tasks: enough for an observer's
# screen, small enough for a heartbeat written every few seconds.
HEARTBEAT_BEE_KEYS = ("id", "state", "task", "elapsed_s", "memory_used", "memory_budget")
HEARTBEAT_ABANDONED = 5
# Seconds between looks in _queries/: (worker while queries are about, worker when idle,
# coordinator while its own bees work, coordinator while it only waits). On S3 each look is a
# LIST request; on a local root it is one directory read.
POLL = {"s3": (0.25, 5.0, 0.1, 0.1), "local": (0.01, 0.5, 0.01, 0.002)}
STORAGE_KINDS = {"file": "local", "s3": "s3", "memory": "memory"}  # the original SDK's names
MiB = 1 << 20
GiB = 1 << 30


class Apiary:
    """One client of a storage root: catalog, writes, reads and housekeeping."""

    def __init__(
        self,
        name: str = "default",
        storage: str | os.PathLike[str] | Location | None = None,
        *,
        node_id: str | None = None,
        credentials: dict[str, str] | None = None,
        settings: Settings | None = None,
        join_swarm: bool = True,
        clock: Callable[[], datetime] | None = None,
        create_root: bool = True,
    ) -> None:
        validate_name(name, "apiary")
        self.name = name
        configured = storage if isinstance(storage, str) else None
        self.settings = settings or load_settings(storage=configured, node_id=node_id)
        self._storage_uri = storage if storage is not None else self.settings.storage
        if credentials is None and self.settings.credentials is not None:
            credentials = self.settings.credentials.as_dict()
        self._credentials = credentials
        self._storage: Storage | None = None
        self._registry: Registry | None = None
        self._frames: dict[tuple[str, str, str], Frame] = {}
        self._sql: SqlSession | None = None
        self._distributor: Distributor | None = None  # made with the first SQL context
        # A started client is a node, a swarm of one on its own root (SPEC §10): it heartbeats
        # and runs the worker loop. Observers and short-lived commands opt out.
        self._join_swarm = join_swarm
        self._create_root = create_root  # False: a missing local root is an error, not made
        self._clock = clock or (lambda: datetime.now(UTC))  # only ever reported, never trusted
        self._heartbeat: HeartbeatLoop | None = None
        self._worker: Worker | None = None
        self._observed: tuple[float, list[NodeView]] = (0.0, [])  # an observer's last reading
        self._started_at = ""
        self.cache: CellCache | None = None  # cells of a remote root kept on local disk
        self._pool: BeePool | None = None
        self._colony: Colony | None = None
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Apiary:
        """Open the storage root; refuse one without conditional writes. Idempotent."""
        with self._lock:
            if self._storage is None:
                retry = RetryPolicy(attempts=self.settings.storage_retries)
                storage = open_storage(
                    self._storage_uri,
                    name=self.name,
                    credentials=self._credentials,
                    retry=retry,
                    create=self._create_root,
                )
                if storage.location.scheme == "s3":
                    storage.check_conditional_writes()
                self._registry = Registry(
                    storage, self.node_id, commit_retries=self.settings.commit_retries
                )
                self._storage = storage
                self._started_at = datetime.now(UTC).isoformat()
                if storage.location.scheme == "s3" and self.settings.cache_bytes:
                    cache_root = self.settings.cache_dir or apiary_home() / "cache"
                    folder = cache_root / f"{self.name}-{self.node_id}"
                    self.cache = CellCache(folder, self.settings.cache_bytes)
                if self._join_swarm:
                    self._join(retry)
                log.info("apiary %s started on %s", self.name, storage.location)
        return self

    def _join(self, retry: RetryPolicy) -> None:
        """Heartbeat and take tasks, as every node does.

        The loops get their own handle on the root, so ``storage.counters`` count only what
        this client itself asked for, not its background traffic.
        """
        background = open_storage(
            self.storage.location, credentials=self._credentials, retry=retry, create=False
        )
        self._heartbeat = HeartbeatLoop(
            background, self.node_id, self._describe, self.timings, clock=self._clock
        )
        self._heartbeat.start()
        self._worker = Worker(
            background,
            self.node_id,
            credentials=self._credentials,
            poll_interval=self._poll()[0],
            idle_poll_interval=self._poll()[1],
            cache=self.cache,
            pool=self.pool,
            # Longer than a coordinator waits for a task on every node, plus a dead node's grace.
            stale_after=self.settings.task_timeout * self.settings.task_attempts
            + self.settings.forget_after,
        )
        self._worker.start()
        # A script that never calls shutdown() still leaves cleanly: its heartbeat is deleted at
        # exit instead of lingering until the others judge it dead.
        atexit.register(self.shutdown)

    def _poll(self) -> tuple[float, float, float, float]:
        """(worker while queries are about, worker when idle, coordinator while its bees work,
        coordinator while it only waits) intervals, seconds.

        An idle worker on S3 looks every 5 s (720 LIST requests an hour); elsewhere a look is
        a directory read, so workers look often enough that sharing a query costs milliseconds.
        """
        kind = "s3" if self.storage.location.scheme == "s3" else "local"
        active, idle, busy, waiting = POLL[kind]
        active = self.settings.worker_poll_interval or active
        idle = max(self.settings.worker_idle_poll_interval or idle, active)
        return active, idle, busy, waiting

    def flush(self) -> None:
        """Finish this client's work behind its answers: the folders of shared queries it
        answered are deleted in the background (the answer does not wait for it); this waits
        until they are gone."""
        if self._distributor is not None:
            self._distributor.close()

    def shutdown(self) -> None:
        """Leave the swarm (deleting this node's heartbeat) and close the storage root.

        The heartbeat goes first, so coordinators stop giving this node tasks; the worker then
        finishes the task it is running, if any.
        """
        atexit.unregister(self.shutdown)
        with self._lock:
            self.flush()  # answered queries' folders, before the storage goes
            if self._heartbeat is not None:
                self._heartbeat.stop()
                self._heartbeat = None
            if self._worker is not None:
                self._worker.stop()
                self._worker = None
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
                self._colony = None
            self._storage = None
            self._registry = None
            self._frames.clear()

    def __enter__(self) -> Apiary:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        where = self._storage.location if self._storage else (self._storage_uri or "default")
        return f"Apiary({self.name!r}, storage={redact(str(where))!r})"  # as typed, if unstarted

    @property
    def node_id(self) -> str:
        return self.settings.node_id

    @property
    def timings(self) -> Timings:
        s = self.settings
        return Timings(s.heartbeat_interval, s.suspect_after, s.dead_after, s.forget_after)

    @property
    def worker(self) -> Worker | None:
        """This node's worker loop (tasks of distributed queries); None unless it joined."""
        return self._worker

    @property
    def storage(self) -> Storage:
        return self.start()._storage  # type: ignore[return-value]

    @property
    def registry(self) -> Registry:
        return self.start()._registry  # type: ignore[return-value]

    @property
    def credentials(self) -> dict[str, str] | None:
        """S3 credentials given to the constructor (None: the AWS_* variables are used)."""
        return self._credentials

    @functools.cached_property
    def hardware(self) -> HardwareProfile:
        """This machine as detected (cgroup limits included), with config overrides applied."""
        return detect(overrides=self.settings.hardware_overrides())

    @property
    def budgets(self) -> Budgets:
        """Bees, memory per bee and cell sizes derived from :attr:`hardware`."""
        return budgets(self.hardware, reserve_mb=self.settings.reserve_mb)

    @property
    def pool(self) -> BeePool:
        """This node's bees: one per core, each with its own memory budget and spill folder."""
        with self._lock:
            if self._pool is None:
                b = self.budgets
                self._pool = BeePool(
                    b.bees,
                    self.settings.memory_per_bee or b.memory_per_bee_bytes,
                    apiary_home() / "scratch" / f"{self.name}-{self.node_id}",
                    task_timeout=self.settings.task_timeout,
                    max_attempts=self.settings.task_attempts,
                    memory_limit=b.memory_budget_bytes,  # the whole process, not just the bees
                    datafusion=self.settings.datafusion,
                )
            return self._pool

    @property
    def colony(self) -> Colony:
        """Colony temperature and the backpressure it drives."""
        with self._lock:
            if self._colony is None:
                thermal = thermal_pressure if self.hardware.is_pi else (lambda: None)
                b = self.budgets
                sampler = system_sampler(b.node_memory_bytes, b.bees)
                self._colony = Colony(
                    self.pool,
                    thermal=thermal,
                    sampler=sampler,
                    write_wait_max=self.settings.write_wait_max,
                )
            return self._colony

    @property
    def sizing(self) -> CellSizing:
        return leafcutter(self.settings.memory_per_bee or self.budgets.memory_per_bee_bytes)

    # -- namespace ---------------------------------------------------------------------------

    def create_hive(self, hive: str) -> None:
        self.registry.create_hive(hive)

    def create_box(self, hive: str, box: str) -> None:
        self.registry.create_box(hive, box)

    def create_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        schema: Mapping[str, Any] | pa.Schema,
        partition_by: Sequence[str] | None = None,
        sort_by: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Create a frame; the same definition again is a no-op, a different one AlreadyExists.

        ``sort_by`` (e.g. ``["device", "ts"]``) sorts every cell by those columns, and
        ``compact_frame`` merges small cells into sorted ones, so filters on them skip most
        cells and row groups.
        """
        validate_name(frame, "frame")
        arrow_schema = schema_from_spec(schema, list(partition_by or ()))
        check_frame_schema(arrow_schema)  # every frame is a Delta table: refuse what Delta lacks
        keys = check_sort_by(arrow_schema, sort_by or (), list(partition_by or ()))
        wanted = FrameDef(
            frame_id=uuid.uuid4().hex,
            columns=schema_to_json(arrow_schema),
            partition_by=list(partition_by or ()),
            created_at=datetime.now(UTC).isoformat(),
            schema_spec=original_schema_form(schema),  # get_frame shows it back as given
            sort_by=keys,
        )
        stored = self.registry.create_frame(hive, box, frame, wanted)
        handle = self._frame(hive, box, frame, stored)
        if stored.frame_id == wanted.frame_id:
            self._clear_leftovers(handle)
        handle.ledger.create()
        return self.get_frame(hive, box, frame)

    def list_hives(self) -> list[str]:
        return sorted(self.registry.state().hives)

    def list_boxes(self, hive: str) -> list[str]:
        return sorted(self.registry.hive(hive).boxes)

    def list_frames(self, hive: str, box: str) -> list[str]:
        return sorted(self.registry.box(hive, box).frames)

    def attach_frame(self, hive: str, box: str, frame: str, uri: str) -> dict[str, Any]:
        """Register the existing Delta table at ``uri`` (inside this storage root) as a frame.

        ``uri`` is the table's folder: a path or ``s3://bucket/key`` under the root, or a path
        relative to it. The frame takes the table's schema and partitioning; it is queried,
        time-travelled and appended to like any frame, and the table stays where it is (dropping
        the frame leaves it alone). A table using Delta features Apiary does not read (deletion
        vectors, column mapping, ...) is refused with the feature's name.
        """
        from apiary.attach import attached_definition

        validate_name(frame, "frame")
        definition = attached_definition(self.storage, uri, f"{hive}.{box}.{frame}")
        self.registry.create_frame(hive, box, frame, definition)
        return self.get_frame(hive, box, frame)

    def get_frame(self, hive: str, box: str, frame: str) -> dict[str, Any]:
        """A frame's definition and its latest version, cells, rows and bytes.

        ``schema`` is in the form the frame was created with (the original SDK's JSON form, or a
        ``pyarrow.Schema``); ``arrow_schema`` is always the ``pyarrow.Schema``. Keys of the
        original SDK (``name``, ``cell_count``, ``row_count``, ``total_bytes``,
        ``max_partitions``) sit beside today's; ``max_partitions`` is what one write may create.
        """
        handle = self.frame(hive, box, frame)
        snap = handle.snapshot()
        schema = handle.schema_at(snap)
        cells, rows, size = len(snap.cells), snap.rows, snap.bytes
        return {
            "name": frame,
            "hive": hive,
            "box": box,
            "frame": frame,
            # As created (its original form) until add_columns/widen_column changes it.
            "schema": schema
            if schema != handle.ledger.schema
            else schema_as_created(handle.definition),
            "arrow_schema": schema,  # always a pyarrow.Schema, whatever form it was made in
            "partition_by": list(handle.partition_by),
            "sort_by": list(handle.definition.sort_by),
            "max_partitions": self.settings.max_partitions,
            "version": snap.version,
            "cells": cells,
            "rows": rows,
            "bytes": size,
            "cell_count": cells,
            "row_count": rows,
            "total_bytes": size,
            "created_at": handle.definition.created_at,
            "uri": handle.uri,  # the frame's Delta table, for delta-rs, Polars, DuckDB, Spark
        }

    def drop_hive(self, hive: str, *, cascade: bool = False) -> None:
        frames = [(hive, b, f) for b in self.list_boxes(hive) for f in self.list_frames(hive, b)]
        self.registry.drop_hive(hive, cascade=cascade)
        self._delete_data(frames)

    def drop_box(self, hive: str, box: str, *, cascade: bool = False) -> None:
        frames = [(hive, box, f) for f in self.list_frames(hive, box)]
        self.registry.drop_box(hive, box, cascade=cascade)
        self._delete_data(frames)

    def drop_frame(self, hive: str, box: str, frame: str) -> None:
        """Remove a frame from the catalog, then delete its ledger and cells."""
        self.registry.drop_frame(hive, box, frame)
        self._delete_data([(hive, box, frame)])

    # database vocabulary
    create_database = create_hive
    create_schema = create_box
    create_table = create_frame
    list_databases = list_hives
    list_schemas = list_boxes
    list_tables = list_frames
    get_table = get_frame
    drop_database = drop_hive
    drop_schema = drop_box
    drop_table = drop_frame

    # -- data --------------------------------------------------------------------------------

    def write_to_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        data: object,
        *,
        txn: tuple[str, int] | None = None,
        schema_mode: str = "strict",
    ) -> dict[str, Any]:
        """Append ``data`` (Arrow, pandas, polars, IPC bytes) as one atomic commit.

        ``txn=(app_id, sequence)`` makes a re-send safe: a sequence at or below the one
        committed for ``app_id`` writes nothing and returns the version that committed it
        (``already_committed`` true). ``schema_mode="merge"`` adds the data's unknown columns
        as nullable columns in the same commit; "strict" (default) refuses them.
        """
        if schema_mode not in ("strict", "merge"):
            raise ConfigError(f'schema_mode is "strict" or "merge", not {schema_mode!r}')
        return self._write(
            hive, box, frame, data, overwrite=False, txn=txn, merge=schema_mode == "merge"
        )

    def overwrite_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        data: object,
        *,
        txn: tuple[str, int] | None = None,
    ) -> dict[str, Any]:
        """Replace the frame's contents with ``data`` in one commit; old versions stay readable."""
        return self._write(hive, box, frame, data, overwrite=True, txn=txn)

    def add_columns(
        self,
        hive: str,
        box: str,
        frame: str,
        columns: Mapping[str, Any],
        *,
        if_not_exists: bool = False,
    ) -> dict[str, Any]:
        """Add nullable columns ``{name: type}`` (types as create_frame takes them) in one
        commit; rows written before read them as nulls. Returns the new ``version``."""
        kinds = {}
        for name, kind in columns.items():
            validate_name(name, "column")
            kinds[name] = schema_from_spec({name: kind}, []).field(name).type
        version = self.frame(hive, box, frame).add_columns(kinds, if_not_exists=if_not_exists)
        return {"version": version, "columns": list(kinds)}

    def widen_column(
        self, hive: str, box: str, frame: str, column: str, new_type: Any
    ) -> dict[str, Any]:
        """Widen ``column`` (int8/16/32 → int64 or float64, float32 → float64) in one commit
        that rewrites the frame's cells under the new type; old versions keep the old type."""
        kind = schema_from_spec({column: new_type}, []).field(column).type
        version, rewritten = self.frame(hive, box, frame).widen_column(
            column, kind, sizing=self.sizing, max_partitions=self.settings.max_partitions
        )
        return {"version": version, "cells_rewritten": rewritten}

    def rename_column(self, hive: str, box: str, frame: str, column: str, new: str) -> None:
        """Not supported: renaming needs Delta column mapping, which Apiary does not write."""
        raise SchemaError(
            f"columns cannot be renamed ({column!r} of {hive}.{box}.{frame}): that needs Delta "
            "column mapping, which Apiary does not implement. Add a new column (add_columns) "
            "and write the values into it, or copy the data into a new frame"
        )

    def drop_column(self, hive: str, box: str, frame: str, column: str) -> None:
        """Not supported: dropping needs Delta column mapping, which Apiary does not write."""
        raise SchemaError(
            f"columns cannot be dropped ({column!r} of {hive}.{box}.{frame}): that needs Delta "
            "column mapping, which Apiary does not implement. Leave it null in new writes, or "
            "copy the other columns into a new frame"
        )

    def read_from_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        partition_filter: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> pa.Table:
        """The frame as a ``pyarrow.Table``, at its latest version, at ``version``, or as it was
        at ``as_of`` (a timezone-aware datetime: the newest version committed by then)."""
        handle = self.frame(hive, box, frame)
        if as_of is not None:
            if version is not None:
                raise ConfigError("pass version or as_of, not both")
            version = handle.ledger.version_at(aware(as_of))
        return handle.read(partition_filter, columns, version, self.fetch)

    def version_as_of(self, hive: str, box: str, frame: str, as_of: datetime) -> int:
        """The version ``read_from_frame(..., as_of=...)`` reads."""
        return self.frame(hive, box, frame).ledger.version_at(aware(as_of))

    # -- row-level changes (copy-on-write; see README "Changing rows") ------------------------

    def delete_rows(self, hive: str, box: str, frame: str, where: str) -> dict[str, Any]:
        """Delete the rows for which the SQL condition ``where`` is true, in one commit."""
        from apiary.changes import delete_rows

        return delete_rows(self._rewriter(hive, box, frame), where).to_dict()

    def update_rows(
        self,
        hive: str,
        box: str,
        frame: str,
        set: Mapping[str, str],
        where: str | None = None,
    ) -> dict[str, Any]:
        """Set ``{column: SQL expression}`` on the rows matching ``where`` (every row: None)."""
        from apiary.changes import update_rows

        return update_rows(self._rewriter(hive, box, frame), set, where).to_dict()

    def upsert(
        self, hive: str, box: str, frame: str, data: object, on: Sequence[str]
    ) -> dict[str, Any]:
        """Replace the rows whose ``on`` keys appear in ``data``; append data's other rows."""
        from apiary.changes import upsert

        return upsert(self._rewriter(hive, box, frame), data, on).to_dict()

    def _rewriter(self, hive: str, box: str, frame: str) -> Any:
        from apiary.changes import Rewriter

        handle = self.frame(hive, box, frame)
        self.colony.admit_write()  # a hot node makes writers wait a little (bounded)
        return Rewriter(
            handle, self.pool, self.sizing, self.settings.max_partitions, fetch=self.fetch
        )

    @property
    def fetch(self) -> Callable[[str], bytes | Path] | None:
        """How cells are read: through the cell cache on remote roots, else straight."""
        cache, storage = self.cache, self.storage
        if cache is None:
            return None
        return lambda key: cache.fetch(key, storage.get)

    def sql(self, query: str, *, cancel: threading.Event | None = None) -> pa.Table:
        """Run one SQL statement; see README "SQL" for names, commands and time travel.

        ``USE HIVE`` / ``USE BOX`` apply to later statements of this client. Setting ``cancel``
        (from another thread) stops a running query with QueryCancelledError.
        """
        if self._sql is None:
            from apiary.sql.session import SqlSession

            self._sql = SqlSession(self._sql_context())
        return self._sql.execute(query, cancel)

    def sql_session(self, hive: str | None = None, box: str | None = None) -> SqlSession:
        """A SQL session of its own (its own USE, starting at ``hive``/``box``) on this node's
        bees: for a server answering many clients at once (``apiary node --serve``).

        Read-only: DELETE / UPDATE / INSERT are refused there (a served node's clients query;
        changing rows stays with the SDK and ``apiary sql`` of someone holding the root)."""
        from apiary.sql.session import SqlSession

        context = self._sql_context()
        context.changes = None
        session = SqlSession(context)
        session.hive, session.box = hive, box
        return session

    def _sql_context(self) -> SqlContext:
        from apiary.sql.context import SqlContext
        from apiary.swarm.distribute import Distributor, SwarmSettings

        def swarm_settings() -> SwarmSettings:
            s, poll = self.settings, self._poll()
            return SwarmSettings(
                s.distribute_min_cells,
                s.task_timeout,
                s.task_attempts,
                poll[2],
                s.distribute_min_gain,
                poll[3],
                round(s.distribute_trip_mb * 1e6),
            )

        def take(manifest: Manifest, task: Task) -> object:
            return self._worker.take(manifest, task) if self._worker is not None else None

        def own(query_id: str) -> contextlib.AbstractContextManager[object]:
            worker = self._worker
            return worker.own(query_id) if worker is not None else contextlib.nullcontext()

        if self._distributor is None:  # one per client: served sessions share its kept splits
            self._distributor = Distributor(
                lambda: self.storage,
                self.node_id,
                self._recent_world,
                swarm_settings,
                local=take,
                own=own,
            )
        return SqlContext(
            registry=lambda: self.registry,
            frame=self.frame,
            pool=lambda: self.pool,
            location=lambda: self.storage.location,
            credentials=self._credentials,
            admit=lambda: self.colony.admit_query(),
            distributor=self._distributor,
            changes=_SqlChanges(self),
            schema_changes=self,
        )

    @property
    def using(self) -> tuple[str | None, str | None]:
        """The (hive, box) chosen with ``USE`` in this client's SQL."""
        return (self._sql.hive, self._sql.box) if self._sql else (None, None)

    @property
    def last_query(self) -> QueryStats:
        """Rows, time and per-frame pruning figures of the last ``sql()`` call."""
        if self._sql is None:
            from apiary.sql.session import QueryStats

            return QueryStats()
        return self._sql.last

    def frame_history(self, hive: str, box: str, frame: str) -> list[dict[str, Any]]:
        """One row per committed version: what it did and how much data it moved."""
        return [
            {
                "version": entry.version,
                "operation": entry.operation,
                "committed_at": committed_at.isoformat(),
                "writer": entry.writer,
                "cells_added": len(entry.add),
                "cells_removed": len(entry.remove),
                "rows_added": sum(cell.rows for cell in entry.add),
                # The schema the version set ({column: type}), None when unchanged.
                "schema": (
                    {c["name"]: c["type"] for c in entry.columns}
                    if entry.columns is not None
                    else None
                ),
                "txn": dict(entry.txns),  # {app_id: sequence} of idempotent writes
            }
            for entry, committed_at in self.frame(hive, box, frame).ledger.history()
        ]

    def vacuum_frame(
        self,
        hive: str,
        box: str,
        frame: str,
        *,
        retention_hours: float | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> dict[str, object]:
        hours = self.settings.vacuum_retention_hours if retention_hours is None else retention_hours
        report = vacuum(
            self.frame(hive, box, frame), timedelta(hours=hours), dry_run=dry_run, force=force
        )
        return report.to_dict()

    def compact_frame(self, hive: str, box: str, frame: str) -> dict[str, int]:
        handle = self.frame(hive, box, frame)
        return compact(handle, self.sizing, self.settings.max_partitions).to_dict()

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """This client: name, node id, storage, version, resources, temperature, swarm role.

        ``storage`` is the kind of root ("local", "s3" or "memory", as in the original SDK);
        ``storage_uri`` the root itself, redacted.
        """
        temp = self.colony.temperature()
        location = self.storage.location
        memory = self.hardware.memory_budget_bytes
        return {
            "name": self.name,
            "node_id": self.node_id,
            "state": "running",
            "storage": STORAGE_KINDS.get(location.scheme, location.scheme),
            "storage_uri": str(location),
            "version": __version__,
            "joined_swarm": self._heartbeat is not None,
            "started_at": self._started_at,
            "cores": self.hardware.cores,
            "memory_budget": memory,
            "memory_gb": round(memory / GiB, 2),
            "bees": self.pool.size,
            "memory_per_bee_mb": round(self.pool.memory_per_bee / MiB, 1),
            "target_cell_size_mb": round(self.sizing.target_bytes / MiB, 1),
            "hardware": self.hardware.to_dict(),
            "temperature": temp,
            "band": temperature.band(temp),
        }

    def bee_status(self) -> list[dict[str, Any]]:
        """Each bee: state, current task and its age, memory used against its budget.

        ``state`` is "idle" or "busy"; a bee that takes no new task while DataFusion lets go of
        its last one (or while the node shuts down) is "busy" with ``draining`` true.
        """
        return [
            {
                **bee,
                "bee_id": f"bee-{bee['id']}",
                "state": "idle" if bee["state"] == "idle" else "busy",
                "draining": bee["state"] == "draining",
                "memory_used_mb": round(bee["memory_used"] / MiB, 1),
                "memory_budget_mb": round(bee["memory_budget"] / MiB, 1),
            }
            for bee in self.pool.status()
        ]

    def colony_status(self) -> dict[str, Any]:
        """Temperature, ``regulation`` (its band), ``setpoint``, ``action``, history, abandoned
        tasks."""
        return self.colony.status()

    def world(self) -> list[NodeView]:
        """The nodes of the swarm: this node's last view, or a fresh observer's reading."""
        if self._heartbeat is not None:
            return self._heartbeat.world
        world = read_world(self.storage, self.timings)
        self._observed = (time.monotonic(), world)
        return world

    def _recent_world(self) -> list[NodeView]:
        """The world for deciding where queries run: an observer reads the heartbeats at most
        once per heartbeat interval (a LIST, a GET per node and a clock probe each time), as
        a node's own view is that old at worst too."""
        if self._heartbeat is not None:
            return self._heartbeat.world
        read_at, world = self._observed
        if time.monotonic() - read_at >= self.timings.interval or read_at == 0.0:
            world = read_world(self.storage, self.timings)
            self._observed = (time.monotonic(), world)
        return world

    def swarm_status(self) -> dict[str, Any]:
        """Every node with a heartbeat in this storage root, judged on the storage's clock.

        A client that joined the swarm reports the view of its last heartbeat; others read the
        heartbeats as an observer.
        """
        nodes = [_node_status(view) for view in self.world()]
        alive = [n for n in nodes if n["state"] == "alive"]
        return {
            "nodes": nodes,
            "alive": len(alive),
            "total_bees": sum(n["bees"] for n in alive),
            "total_idle_bees": sum(n["idle_bees"] for n in alive),
            "suspect": sum(n["state"] == "suspect" for n in nodes),
            "dead": sum(n["state"] == "dead" for n in nodes),
            "cores": sum(n["cores"] for n in alive),
            "memory_budget": sum(n["memory_budget"] for n in alive),
            "bees_idle": sum(n["bees_idle"] for n in alive),
            "bees_busy": sum(n["bees_busy"] for n in alive),
        }

    def _describe(self) -> Heartbeat:
        reading = self.colony.reading()
        band = reading["band"]
        bees = [{key: bee[key] for key in HEARTBEAT_BEE_KEYS} for bee in self.pool.status()]
        return Heartbeat(
            node_id=self.node_id,
            version=__version__,
            cores=self.hardware.cores,
            memory_budget=self.hardware.memory_budget_bytes,
            bees_idle=self.pool.idle,
            bees_busy=self.pool.busy,
            cached_cells=self.cache.keys if self.cache else [],
            cache_bytes=self.cache.size if self.cache else 0,
            temperature=reading["temperature"],
            band=band,
            memory_pressure=reading["memory"],
            storage=str(self.storage.location),
            started_at=self._started_at,
            bees=bees,
            abandoned=[a.as_dict() for a in self.pool.abandoned[-HEARTBEAT_ABANDONED:]],
            action=self.colony.action(band),
        )

    # -- internals ---------------------------------------------------------------------------

    def frame(self, hive: str, box: str, frame: str, definition: FrameDef | None = None) -> Frame:
        """The frame handle (ledger, schema); EntityNotFoundError names what is missing.

        ``definition``, when the caller already read the catalog, saves reading it again.
        """
        if definition is None:
            definition = self.registry.frame(hive, box, frame)
        return self._frame(hive, box, frame, definition)

    def _frame(self, hive: str, box: str, frame: str, definition: FrameDef) -> Frame:
        key = (hive, box, frame)
        with self._lock:
            cached = self._frames.get(key)
            if cached is None or cached.definition.frame_id != definition.frame_id:
                cached = Frame.open(
                    self.storage,
                    hive,
                    box,
                    frame,
                    definition,
                    writer=self.node_id,
                    commit_retries=self.settings.commit_retries,
                )
                self._frames[key] = cached
            return cached

    def _write(
        self,
        hive: str,
        box: str,
        frame: str,
        data: object,
        *,
        overwrite: bool,
        txn: tuple[str, int] | None = None,
        merge: bool = False,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        if txn is not None:
            txn = check_txn(txn)
        handle = self.frame(hive, box, frame)
        waited = self.colony.admit_write()  # a hot node makes writers wait a little (bounded)
        outcome = handle.write(
            data,
            sizing=self.sizing,
            max_partitions=self.settings.max_partitions,
            overwrite=overwrite,
            txn=txn,
            merge_schema=merge,
        )
        already = outcome.already
        # With a txn: whether it was a re-send (nothing written; version is the one that
        # committed it when exact, else the newest version, "committed at or before" it).
        idempotent = (
            {
                "already_committed": already is not None,
                "already_committed_exact": already.exact if already is not None else None,
            }
            if txn is not None
            else {}
        )
        return {
            **idempotent,
            "version": outcome.version,
            "cells_written": len(outcome.cells),
            "rows_written": outcome.rows,
            "bytes_written": outcome.bytes,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "waited_ms": round(waited * 1000, 3),  # of duration_ms, held back by a hot node
            "temperature": self.colony.temperature(),
        }

    def _clear_leftovers(self, frame: Frame) -> None:
        """Delete whatever an earlier frame of the same name left behind (a drop cut short).

        Only the client whose catalog commit created the frame calls this, before version 0
        exists: by the catalog, nothing under the folder can belong to the new frame.
        """
        leftovers = self.storage.list(frame.prefix)
        if leftovers:
            log.warning("removing %d leftover files under %s", len(leftovers), frame.prefix)
        for obj in leftovers:
            self.storage.delete(obj.path)

    def _delete_data(self, frames: list[tuple[str, str, str]]) -> None:
        for hive, box, frame in frames:
            self._frames.pop((hive, box, frame), None)
            for obj in self.storage.list(f"{hive}/{box}/{frame}"):
                self.storage.delete(obj.path)


class _SqlChanges:
    """DELETE / UPDATE / INSERT of ``sql()``: the SDK's own calls (sql.context.FrameChanges)."""

    def __init__(self, ap: Apiary) -> None:
        self.ap = ap

    def delete(self, hive: str, box: str, frame: str, where: str) -> dict[str, Any]:
        return self.ap.delete_rows(hive, box, frame, where)

    def update(
        self, hive: str, box: str, frame: str, assignments: dict[str, str], where: str | None
    ) -> dict[str, Any]:
        return self.ap.update_rows(hive, box, frame, assignments, where)

    def appender(self, hive: str, box: str, frame: str) -> Any:
        from apiary.changes import Appender

        handle = self.ap.frame(hive, box, frame)
        self.ap.colony.admit_write()
        return Appender(handle, self.ap.sizing, self.ap.settings.max_partitions)


TXN_APP_ID_MAX = 200


def check_txn(txn: object) -> tuple[str, int]:
    """``(app_id, sequence)``: a bounded printable id and a sequence number >= 0."""
    if not isinstance(txn, tuple | list) or len(txn) != 2:
        raise ConfigError("txn is a pair (app_id, sequence), e.g. ('pi-7/readings', 42)")
    app_id, sequence = txn
    if (
        not isinstance(app_id, str)
        or not app_id
        or len(app_id) > TXN_APP_ID_MAX
        or not app_id.isprintable()
    ):
        raise ConfigError(
            f"txn app_id must be 1 to {TXN_APP_ID_MAX} printable characters, got {app_id!r:.80}"
        )
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise ConfigError(f"txn sequence must be an integer >= 0, got {sequence!r}")
    return app_id, sequence


def aware(when: datetime) -> datetime:
    """``as_of`` must say its zone: a naive time is refused rather than guessed."""
    if not isinstance(when, datetime):
        raise ConfigError(f"as_of is a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ConfigError(
            "as_of needs a timezone-aware datetime (e.g. datetime(2026, 11, 30, 12, "
            "tzinfo=timezone.utc)); a naive time's zone cannot be guessed"
        )
    return when


def _node_status(view: NodeView) -> dict[str, Any]:
    """One node of ``swarm_status()``: its heartbeat, judged state and the original SDK's keys.

    ``bees`` is the node's bee count (the original SDK's key); each bee's row is ``bee_detail``.
    """
    beat = view.heartbeat
    node = beat.model_dump(exclude={"bees"})
    return {
        **node,
        "state": view.state,
        "age_s": round(view.age, 3),
        "node_state": beat.state,
        "bees": len(beat.bees) or beat.bees_idle + beat.bees_busy,
        "idle_bees": beat.bees_idle,
        "memory_pressure": beat.memory_pressure,
        "colony_temperature": beat.temperature,
        "bee_detail": beat.bees,
    }
