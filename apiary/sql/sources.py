"""Turning pinned, pruned cells into DataFusion tables that stream from where the cells live.

Local and S3 cells are read by DataFusion itself (S3 through its own object store, with range
requests, so a selective query fetches only the footers and column chunks it needs). Memory roots
exist only inside this process, so their cells are read through the storage contract.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import posixpath
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import pyarrow as pa
import pyarrow.dataset as ds
from datafusion import DataFrame, SessionConfig, SessionContext
from datafusion.catalog import Catalog, Schema, Table
from datafusion.object_store import AmazonS3

from apiary.cells.reader import check_identity, read_cells
from apiary.errors import NotFoundError, StorageError
from apiary.frame import Frame
from apiary.ledger import CellMeta
from apiary.sql.context import BatchSink
from apiary.storage import Location

_VIEW_TYPES = {
    pa.string(): pa.string_view(),
    pa.large_string(): pa.string_view(),
    pa.binary(): pa.binary_view(),
    pa.large_binary(): pa.binary_view(),
}
_PLAIN_TYPES = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}


def scan_schema(schema: pa.Schema) -> pa.Schema:
    """The frame schema as DataFusion scans it best: strings and binaries as views.

    Parquet has no view types; DataFusion reads strings as views on its own, and forcing plain
    strings instead made TPC-H queries about 20% slower.
    """
    return pa.schema([f.with_type(_VIEW_TYPES.get(f.type, f.type)) for f in schema])


def plain_types(table: pa.Table) -> pa.Table:
    """Results go back to the user with plain string/binary columns, as frames hold them."""
    if not any(f.type in _PLAIN_TYPES for f in table.schema):
        return table
    return table.cast(plain_schema(table.schema))


def plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(_PLAIN_TYPES.get(f.type, f.type)) for f in schema])


@dataclass
class PlainBatches:
    """Hands batches on to ``sink`` cast to ``schema`` (plain types, as :func:`plain_types`)."""

    sink: BatchSink
    schema: pa.Schema

    def put(self, batch: pa.RecordBatch, check: Callable[[], None]) -> None:
        self.sink.put(batch if batch.schema == self.schema else batch.cast(self.schema), check)


@contextlib.contextmanager
def scratch_folder(location: Location, parent: Path | None = None) -> Iterator[Path | None]:
    """A per-query folder for hard links, removed afterwards; None where there is no local disk.

    Links need one filesystem, so it lives inside a local root (or inside ``parent``, such as a
    node's cell cache).
    """
    if parent is None and location.scheme != "file":
        yield None
        return
    base = parent if parent is not None else Path(location.path) / "_scratch"
    folder = base / f"{os.getpid()}-{uuid.uuid4().hex}"
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def placeholder(schema: pa.Schema) -> Table:
    """An empty stand-in for planning (built without a context: it is made inside a callback)."""
    return Table(ds.dataset(schema.empty_table()))


def memory_frame(ctx: SessionContext, data: pa.Table) -> DataFrame:
    """``data`` as a DataFrame of ``ctx`` with at least one (possibly empty) partition.

    An empty table has no batch, so DataFusion would see no partition at all, which its plan
    checks reject under ORDER BY; one empty batch gives it one."""
    if data.num_rows == 0:
        data = pa.Table.from_batches([pa.RecordBatch.from_pylist([], schema=data.schema)])
    return ctx.from_arrow(data)


def in_memory(data: pa.Table) -> Table:
    # A context of its own, because from_arrow names a temporary table in the default schema,
    # which USE may have changed.
    return Table(memory_frame(SessionContext(), data))


def register_table(ctx: SessionContext, hive: str, box: str, name: str, table: Table) -> None:
    """Put ``table`` at hive.box.name in ``ctx``, creating the catalog and schema as needed."""
    if hive not in ctx.catalog_names():
        ctx.register_catalog_provider(hive, Catalog.memory_catalog())
    catalog = ctx.catalog(hive)
    if box not in catalog.names():
        catalog.register_schema(box, Schema.memory_schema())
    catalog.schema(box).register_table(name, table)


def register_object_store(
    ctx: SessionContext, location: Location, credentials: dict[str, str] | None
) -> None:
    """Give DataFusion its own S3 client for this bucket (same endpoint and credentials)."""
    if location.scheme != "s3":
        return
    creds = credentials or {}
    endpoint = location.endpoint
    store = AmazonS3(
        bucket_name=location.bucket,
        region=location.region or os.environ.get("AWS_REGION") or "us-east-1",
        access_key_id=creds.get("access_key_id") or os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_access_key=creds.get("secret_access_key") or os.environ.get("AWS_SECRET_ACCESS_KEY"),
        session_token=creds.get("session_token") or os.environ.get("AWS_SESSION_TOKEN"),
        endpoint=endpoint,
        allow_http=bool(endpoint and endpoint.startswith("http://")),
    )
    ctx.register_object_store("s3://", store, location.bucket)


def cell_url(location: Location, key: str) -> str:
    """Where DataFusion finds the object ``key`` of this storage root."""
    if location.scheme == "file":
        return str(Path(location.path) / key)
    full = f"{location.path}/{key}" if location.path else key
    # object_store decodes %-escapes in URLs, and escaped partition values contain '%'.
    return f"s3://{location.bucket}/{quote(full, safe='/=-_.')}"


class LinkedTables:
    """Tables over hard-linked cells of local roots, kept across queries (least recently used
    out), so a frame's next query skips linking its cells and DataFusion keeps the statistics it
    read from their footers (per table): ~20 ms of a short TPC-H query on 2 cores.

    A table is keyed by the exact cells it covers (path and size), so a new version or other
    pruning gets a table of its own. Before a kept table is used again, each cell's file must
    still be the very file linked (same inode): a cell deleted or replaced outside Apiary makes
    the table be linked anew, which fails loudly as it would have the first time. Tables are
    made in a context of their own, never a bee's, so they hold no bee's DataFusion runtime,
    but with the bee's options: a Parquet table scans with the options of the context that made
    it (pushdown and the like), so those are part of its key. A table in use by a running query
    (see :meth:`holding`) is never removed under it.
    """

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[object, ...], _Linked] = OrderedDict()
        self._makers: dict[tuple[tuple[str, str], ...], SessionContext] = {}
        self._folders: dict[str, Path] = {}  # storage root -> this process's link folder
        atexit.register(self.clear)

    @contextlib.contextmanager
    def holding(self) -> Iterator[list[_Linked]]:
        """Tables taken while in this block stay until it ends (one query's duration)."""
        held: list[_Linked] = []
        try:
            yield held
        finally:
            with self._lock:
                for entry in held:
                    entry.users -= 1
                    if entry.retired and entry.users == 0:
                        shutil.rmtree(entry.folder, ignore_errors=True)
                self._evict()

    def table(
        self,
        held: list[_Linked],
        frame: Frame,
        cells: Sequence[CellMeta],
        schema: pa.Schema,
        options: Mapping[str, str] | None = None,
    ) -> Table:
        """The table over ``cells`` (sorted by path) of ``frame`` on a local root, read with
        ``schema`` (the pinned version's: columns a cell predates read as nulls) and scanned
        with the DataFusion ``options`` of the context that runs it."""
        location = frame.storage.location
        cell_key = tuple((cell.path, cell.bytes) for cell in cells)
        settings = tuple(sorted((options or {}).items()))
        key = (location.path, frame.prefix, cell_key, schema.to_string(), settings)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.still_linked():
                self._retire(key)
                entry = None
            if entry is not None:
                entry.users += 1
                held.append(entry)
                self._entries.move_to_end(key)
                return entry.table
            base = self._folder(location.path)
            maker = self.maker(options)
        base.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=frame.full_name + ".", dir=base))
        try:
            link_cells(frame, cells, folder)
            sources = [
                (cell_url(location, f"{frame.prefix}/{cell.path}"), inode)
                for cell, inode in zip(cells, _inodes(folder, len(cells)), strict=True)
            ]
            table = Table(maker.read_parquet(str(folder), schema=scan_schema(schema)))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._lock:
            if key in self._entries:  # another query linked the same cells meanwhile
                self._retire(key)
            entry = self._entries[key] = _Linked(folder, table, sources)
            entry.users += 1
            held.append(entry)
            self._evict()
            return entry.table

    def maker(self, options: Mapping[str, str] | None) -> SessionContext:
        """The context that makes tables for queries run with ``options`` (call under the lock).

        Measured on TPC-H SF1: tables made with DataFusion's defaults ran Q4 25 % slower in a
        tuned context than tables made with the tuned options (``reorder_filters`` is read
        from the table, not from the running context)."""
        settings = tuple(sorted((options or {}).items()))
        maker = self._makers.get(settings)
        if maker is None:
            config = SessionConfig()
            for name, value in settings:
                config = config.set(name, value)
            maker = self._makers[settings] = SessionContext(config)
        return maker

    def clear(self) -> None:
        """Drop every table not in use, and this process's link folders once all are gone."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.users == 0]:
                self._retire(key)
            if not self._entries:
                for folder in self._folders.values():
                    shutil.rmtree(folder, ignore_errors=True)
                self._folders.clear()

    def _folder(self, root: str) -> Path:
        folder = self._folders.get(root)
        if folder is None:
            scratch = Path(root) / "_scratch"
            _remove_dead_link_folders(scratch)
            name = f"{TABLES_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
            folder = self._folders[root] = scratch / name
        return folder

    def _retire(self, key: tuple[object, ...]) -> None:
        entry = self._entries.pop(key)
        entry.retired = True
        if entry.users == 0:
            shutil.rmtree(entry.folder, ignore_errors=True)

    def _evict(self) -> None:
        idle = [key for key, entry in self._entries.items() if entry.users == 0]
        for key in idle[: max(0, len(self._entries) - self.limit)]:
            self._retire(key)


@dataclass
class _Linked:
    folder: Path
    table: Table
    sources: list[tuple[str, int]]  # each cell's file and the inode linked
    users: int = 0
    retired: bool = False

    def still_linked(self) -> bool:
        """True while every cell's file is the one linked (one stat per cell, no reads)."""
        try:
            return all(os.stat(path).st_ino == inode for path, inode in self.sources)
        except OSError:
            return False


def _inodes(folder: Path, count: int) -> list[int]:
    return [(folder / f"{n:06d}.parquet").stat().st_ino for n in range(count)]


TABLES_PREFIX = "tables-"


def _remove_dead_link_folders(scratch: Path) -> None:
    """Link folders of processes that are gone (killed before their exit handler ran)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(scratch):
            if not entry.name.startswith(TABLES_PREFIX):
                continue
            pid = entry.name[len(TABLES_PREFIX) :].split("-")[0]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(entry.path, ignore_errors=True)


LINKED = LinkedTables()
"""This process's tables over local cells (shared by every Apiary instance in it)."""


def link_cells(
    frame: Frame,
    cells: Sequence[CellMeta],
    folder: Path,
    fetch: Callable[[str], Path] | None = None,
) -> None:
    """Hard-link ``cells`` (or ``fetch``'s local copies) into ``folder``, checking each size."""
    location = frame.storage.location
    for n, cell in enumerate(cells):
        key = f"{frame.prefix}/{cell.path}"
        target = folder / f"{n:06d}.parquet"
        try:
            source = fetch(key) if fetch is not None else Path(cell_url(location, key))
            os.link(source, target)
        except (FileNotFoundError, NotFoundError):
            raise missing_cells(frame, [cell.path]) from None
        # A stat of the link just made: the size costs no request and no footer read.
        check_identity(cell, frame.full_name, size=target.stat().st_size)


def frame_table(
    ctx: SessionContext,
    frame: Frame,
    cells: Sequence[CellMeta],
    scratch: Path | None = None,
    fetch: Callable[[str], Path] | None = None,
    schema: pa.Schema | None = None,
    linked: list[_Linked] | None = None,
    options: Mapping[str, str] | None = None,
) -> Table:
    """A table over exactly ``cells`` of ``frame`` (one pinned version) with the frame's schema
    (``schema``: the schema at that version; columns a cell predates read as nulls).

    Never a live folder of the frame: DataFusion lists a folder when the query runs, and would
    pick up cells that writers uploaded meanwhile, even uncommitted ones. On a local root the
    cells are hard-linked into a folder (one scan over a folder is what DataFusion plans best):
    with ``linked`` (a query's hold on :data:`LINKED`) a folder and table kept across queries,
    made with ``options`` (those of ``ctx``: see :class:`LinkedTables`), else a per-query
    ``scratch`` folder; local copies from ``fetch`` (a node's cell cache) go to ``scratch``.
    On S3 each cell is read by its own key and the scans are unioned. Every cell's size is
    checked against
    the ledger first, so a cell replaced outside Apiary fails instead of giving wrong results.
    """
    location = frame.storage.location
    full = schema if schema is not None else frame.schema
    if not cells:
        return in_memory(full.empty_table())
    # An attached Delta table's files may lack partition columns: read_cells adds them.
    if location.scheme == "memory" or not frame.files_hold_partition_columns:
        data = read_cells(frame.storage, frame.prefix, cells, full, frame_name=frame.full_name)
        return in_memory(data)
    schema = scan_schema(full)
    ordered = sorted(cells, key=lambda cell: cell.path)
    if linked is not None and fetch is None and location.scheme == "file":
        return LINKED.table(linked, frame, ordered, full, options)
    if scratch is not None and (fetch is not None or location.scheme == "file"):
        scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=frame.full_name + ".", dir=scratch))
        link_cells(frame, ordered, folder, fetch)
        return Table(ctx.read_parquet(str(folder), schema=schema))
    check_present(frame, cells)
    df = None
    for cell in ordered:
        part = ctx.read_parquet(cell_url(location, f"{frame.prefix}/{cell.path}"), schema=schema)
        df = part if df is None else df.union(part)
    return Table(df)


def check_present(frame: Frame, cells: Sequence[CellMeta]) -> None:
    """List the narrowest folder holding all ``cells``; fail loudly if any is gone or replaced.

    DataFusion would read a missing file as an empty one, and a replaced one as if it were the
    cell. One listing (a partition's folder for a selective query), not one request per cell;
    the listing carries each object's size, which must be the size the ledger recorded.
    """
    folders = [posixpath.dirname(cell.path) for cell in cells]
    common = posixpath.commonpath(folders) if all(folders) else ""
    prefix = f"{frame.prefix}/{common}" if common else frame.prefix
    present = {info.path: info.size for info in frame.storage.list(prefix)}
    missing = [cell.path for cell in cells if f"{frame.prefix}/{cell.path}" not in present]
    if missing:
        raise missing_cells(frame, missing)
    for cell in cells:
        check_identity(cell, frame.full_name, size=present[f"{frame.prefix}/{cell.path}"])


def missing_cells(frame: Frame, missing: Sequence[str]) -> StorageError:
    return StorageError(
        f"{len(missing)} cell(s) of frame {frame.full_name} are missing from storage "
        f"(e.g. {missing[0]}): deleted outside Apiary, or vacuumed while still referenced. "
        "Restore them, or overwrite the frame."
    )
