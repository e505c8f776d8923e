"""What a SQL session needs from the node it runs in, and what it hands to the swarm.

:class:`SqlContext` is deliberately narrow — the catalog, frames, bees, the storage location and
an optional :class:`Distributor` — so the SQL layer depends on no layer above it: the SDK builds
the context, and the swarm supplies the distributor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pyarrow as pa
from datafusion import DataFrame, LogicalPlan, SessionConfig, SessionContext

from apiary.catalog import FrameDef, Registry
from apiary.frame import Frame
from apiary.sql.plan import Scan
from apiary.sql.pruning import Pruned
from apiary.storage import Location

T = TypeVar("T")


@dataclass(frozen=True)
class Reach:
    """Where the cells a plan scans live: the storage root and its S3 credentials, if any."""

    location: Location
    credentials: dict[str, str] | None = None


class Chamber(Protocol):
    """One bee: a DataFusion context within its memory budget, and a deadline-bound collect."""

    settings: Mapping[str, str]  # the node's own DataFusion options (apiary.toml)

    def context(
        self,
        config: SessionConfig | None = None,
        *,
        partitions: int = 1,
        reach: Reach | None = None,
        shape: Mapping[str, str] | None = None,
    ) -> SessionContext: ...

    def session(
        self,
        *,
        catalog: str | None = None,
        schema: str | None = None,
        partitions: int = 1,
        reach: Reach | None = None,
        shape: Mapping[str, str] | None = None,
    ) -> SessionContext:
        """The bee's own context, kept across tasks (tables registered in it last one task)."""
        ...

    def options(
        self, *, partitions: int = 1, shape: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The DataFusion options :meth:`context` sets (tables made elsewhere need them)."""
        ...

    def collect(
        self, df: DataFrame, *, limit_result: bool = True, optimized: LogicalPlan | None = None
    ) -> pa.Table: ...

    def stream(
        self, df: DataFrame, sink: BatchSink, *, optimized: LogicalPlan | None = None
    ) -> None: ...


class BatchSink(Protocol):
    """Takes batches one at a time; ``put`` may block (a slow reader), calling ``check`` while
    it waits so that the bee's deadline and a cancel still apply."""

    def put(self, batch: pa.RecordBatch, check: Callable[[], None]) -> None: ...


class ResultSink(BatchSink, Protocol):
    """Where :meth:`~apiary.sql.session.SqlSession.stream` sends a result: its schema first
    (before any row is computed), then its batches."""

    def start(self, schema: pa.Schema) -> None: ...


class Pool(Protocol):
    size: int

    def run(
        self,
        fn: Callable[[Any], T],
        *,
        name: str,
        retry: bool = True,
        cancel: threading.Event | None = None,
    ) -> T: ...


@dataclass
class PinnedFrame:
    """A frame a query reads, pinned at one version, with the cells pruning kept."""

    hive: str
    box: str
    table: str  # as the query names it: "frame" or "frame@v3"
    version: int | None  # pinned by name, or None for the latest
    frame: Frame
    pruned: Pruned
    schema: pa.Schema | None = None  # the frame's schema at the pinned version (None: latest)


@dataclass
class PlannedQuery:
    """A query planned against stand-ins, with its frames pinned and pruned: what the swarm
    needs to decide whether, and how, to share it."""

    sql: str
    plan: LogicalPlan  # optimised, against empty stand-ins of the frames
    planning: SessionContext  # the context that planned it (builds fragments of it)
    stand_ins: Callable[[], SessionContext]  # a fresh such context, to plan it another way
    frames: list[PinnedFrame]
    default_hive: str | None  # USE HIVE / USE BOX in force
    default_box: str | None
    scans: list[Scan]  # every scan of ``plan``, once per scan (sql.plan.scans)

    def pinned(self, catalog: str | None, schema: str | None, table: str) -> PinnedFrame | None:
        """The frame a scan names (missing parts resolved like DataFusion: with USE)."""
        hive, box = catalog or self.default_hive, schema or self.default_box
        return next(
            (f for f in self.frames if (f.hive, f.box, f.table) == (hive, box, table)), None
        )


@dataclass
class Decision:
    """Whether a query is shared, and the numbers ``last_query.distribution`` reports."""

    plan: Any = None  # the distributor's own plan for it; None runs it on this node
    info: dict[str, Any] = field(default_factory=dict)
    explain: str = ""  # one line for EXPLAIN


class Distributor(Protocol):
    def decide(self, query: PlannedQuery) -> Decision: ...

    def run(
        self, query: PlannedQuery, decision: Decision, cancel: threading.Event | None
    ) -> pa.Table: ...


class FrameChanges(Protocol):
    """Row-changing statements (DELETE, UPDATE, INSERT), done by the node's own SDK calls.

    Each returns the SDK's report of the one commit it made (``version``, ``rows_*``, ...)."""

    def delete(self, hive: str, box: str, frame: str, where: str) -> dict[str, Any]: ...

    def update(
        self, hive: str, box: str, frame: str, assignments: dict[str, str], where: str | None
    ) -> dict[str, Any]: ...

    def appender(self, hive: str, box: str, frame: str) -> RowAppender:
        """Where INSERT's rows go, batch by batch, before its one commit."""
        ...


class RowAppender(Protocol):
    def put(self, batch: pa.RecordBatch) -> None: ...

    def commit(self) -> dict[str, Any]: ...  # one commit of every row put; ``rows_inserted``

    def abort(self) -> None: ...  # nothing is committed; uploads are deleted


class SchemaChanges(Protocol):
    """Schema changes SQL may make (``ALTER TABLE f ADD COLUMN``), done by the SDK."""

    def add_columns(
        self, hive: str, box: str, frame: str, columns: Any, *, if_not_exists: bool = False
    ) -> dict[str, Any]: ...


@dataclass
class SqlContext:
    """Everything :class:`~apiary.sql.session.SqlSession` uses of the node it runs in."""

    registry: Callable[[], Registry]
    frame: Callable[[str, str, str, FrameDef], Frame]
    pool: Callable[[], Pool]
    location: Callable[[], Location]
    credentials: dict[str, str] | None = None
    admit: Callable[[], None] = lambda: None  # raises when the node is too hot for a query
    distributor: Distributor | None = None
    changes: FrameChanges | None = None  # None: DELETE / UPDATE / INSERT are refused
    schema_changes: SchemaChanges | None = None  # None: ALTER TABLE is refused
