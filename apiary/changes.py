"""Row-level changes by copy-on-write: delete, update and upsert rows of one frame.

Cells are immutable, so changing rows means rewriting the cells that hold them: each change reads
the cells pruning cannot rule out (partition values, then min / max / null counts, the same
pruning queries use), one cell per bee task, evaluates the user's SQL over that cell with
DataFusion, writes the cell's new rows with the ordinary cell writer and commits every removed and
added cell as ONE ``rewrite_cells`` version. A cell with no matching row is left alone.

Concurrency follows :mod:`apiary.ledger.rebase`: cells appended meanwhile stay (the change is
ordered before the append), while a cell this change read that someone else removed first is a
``WriteConflictError``. Then the latest snapshot is read again and only its new cells are
processed (a cell never changes, so a result computed for a still-live cell stays right); after
``retries`` such rounds the WriteConflictError is raised. Uploads of a lost round are deleted.

User SQL (predicates, SET expressions) sees one table, ``cell``, holding the cell's columns; it
is planned under the read-only statement options of the SQL layer, so it cannot read other tables
or files. A row whose predicate is NULL is neither deleted nor updated (SQL semantics).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import DataFrame, SessionContext

from apiary.cells.conform import conform
from apiary.cells.inputs import to_table
from apiary.cells.reader import read_cells
from apiary.cells.sizing import CellSizing
from apiary.cells.writer import write_cells
from apiary.errors import ApiaryError, SchemaError, SqlError, WriteConflictError
from apiary.frame import Frame
from apiary.ledger import CellMeta, Snapshot
from apiary.sql.context import Chamber, Pool
from apiary.sql.plan import scans
from apiary.sql.pruning import Cmp, InList, Predicate, prune
from apiary.sql.readonly import plan_read_only
from apiary.sql.sources import placeholder, plain_types
from apiary.sql.statements import balanced

log = logging.getLogger("apiary.changes")

TABLE = "cell"  # the one table user SQL sees: the columns of the cell being rewritten
HIT = "__apiary_hit"  # generated column names; frame columns never start with "__"
ROW = "__apiary_row"
RETRIES = 5  # rounds after a WriteConflictError before giving up
IN_LIST_MAX = 256  # distinct partition keys an upsert prunes by exactly (beyond: min / max)
READ_ONLY_NOTE = " (only read-only queries run here)"  # said by plan_read_only; noise here

Fetch = Callable[[str], bytes | Path] | None


@dataclass
class ChangeOutcome:
    """What one change did; ``to_dict`` is what the SDK returns."""

    operation: str
    version: int
    rows_deleted: int = 0
    rows_updated: int = 0
    rows_inserted: int = 0
    cells_removed: int = 0
    cells_added: int = 0
    cells_considered: int = 0  # live cells when the change committed
    cells_read: int = 0  # what pruning could not rule out, summed over every round
    bytes_read: int = 0
    attempts: int = 1
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "version": self.version,
            "rows_deleted": self.rows_deleted,
            "rows_updated": self.rows_updated,
            "rows_inserted": self.rows_inserted,
            "cells_removed": self.cells_removed,
            "cells_added": self.cells_added,
            "cells_considered": self.cells_considered,
            "cells_read": self.cells_read,
            "bytes_read": self.bytes_read,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
        }


@dataclass
class Rewriter:
    """How a change runs: the frame, the bees, cell sizing and the conflict retries."""

    frame: Frame
    pool: Pool
    sizing: CellSizing
    max_partitions: int
    fetch: Fetch = None
    retries: int = RETRIES
    before_commit: Callable[[], None] | None = None  # tests hold a change here


@dataclass
class _CellResult:
    path: str
    hits: int  # rows of the cell the change touched (deleted, updated or replaced)
    added: list[CellMeta] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)  # upsert: incoming rows matched here


# -- the three changes ---------------------------------------------------------------------------


def delete_rows(rw: Rewriter, where: str) -> ChangeOutcome:
    """Delete every row for which ``where`` is true."""
    where = _predicate_text(where)
    preds = check_predicate(rw.frame.schema, where)
    sql = f"SELECT * FROM {TABLE} WHERE ({where}) IS NOT TRUE"

    def process(bee: Chamber, cell: CellMeta) -> _CellResult:
        table = _read(rw, cell)
        kept = _run(bee, table, sql)
        hits = table.num_rows - kept.num_rows
        del table
        if hits == 0:
            return _CellResult(cell.path, 0)
        return _CellResult(cell.path, hits, _write(rw, _fit(kept, rw.frame.schema)))

    return _change(rw, "delete", preds, process, rows_key="rows_deleted")


def update_rows(rw: Rewriter, assignments: Mapping[str, str], where: str | None) -> ChangeOutcome:
    """Set ``column = expression`` on every row for which ``where`` is true (all rows: None).

    An update of a partition column moves the row to its new partition's cells.
    """
    schema = rw.frame.schema
    if not assignments:
        raise SchemaError("update_rows needs at least one column to set, e.g. {'temp': 'temp + 1'}")
    unknown = [c for c in assignments if c not in schema.names]
    if unknown:
        raise SchemaError(
            f"frame {rw.frame.full_name} has no column {unknown[0]!r} to set; "
            f"its columns are {', '.join(schema.names)}"
        )
    where = _predicate_text(where) if where is not None else "TRUE"
    preds = check_predicate(schema, where)
    exprs = {c: _expression_text(e, c) for c, e in assignments.items()}
    _check_expressions(schema, exprs)
    hit = f"({where}) IS TRUE"
    parts = [f'{hit} AS "{HIT}"'] + [
        f'CASE WHEN {hit} THEN ({e}) END AS "__apiary_set_{n}"'
        for n, e in enumerate(exprs.values())
    ]
    sql = f"SELECT {', '.join(parts)} FROM {TABLE}"

    def process(bee: Chamber, cell: CellMeta) -> _CellResult:
        table = _read(rw, cell)
        computed = _run(bee, table, sql)
        mask = computed.column(HIT)
        hits = pc.sum(mask.cast(pa.int64())).as_py() or 0
        if hits == 0:
            return _CellResult(cell.path, 0)
        for n, column in enumerate(exprs):
            target = schema.field(column)
            new = _fit_values(computed.column(f"__apiary_set_{n}"), target, mask)
            at = schema.get_field_index(column)
            table = table.set_column(at, target, pc.if_else(mask, new, table.column(at)))
        del computed
        return _CellResult(cell.path, hits, _write(rw, table))

    return _change(rw, "update", preds, process, rows_key="rows_updated")


def upsert(rw: Rewriter, data: object, on: Sequence[str]) -> ChangeOutcome:
    """Replace the rows whose ``on`` keys appear in ``data`` by data's rows; insert the rest.

    Every existing row holding an incoming key is replaced (rows appended twice under one key
    collapse into the incoming one). Keys in ``data`` must be unique and not null.
    """
    frame, schema = rw.frame, rw.frame.schema
    keys = list(on)
    if not keys or isinstance(on, str):
        raise SchemaError("upsert needs on=[key columns], e.g. on=['device', 'ts']")
    unknown = [k for k in keys if k not in schema.names]
    if unknown:
        raise SchemaError(
            f"upsert key {unknown[0]!r} is not a column of {frame.full_name}; "
            f"its columns are {', '.join(schema.names)}"
        )
    incoming = conform(to_table(data), schema, frame.partition_by)
    if incoming.num_rows == 0:
        return ChangeOutcome("upsert", frame.ledger.latest().version)
    for k in keys:
        nulls = incoming.column(k).null_count
        if nulls:
            raise SchemaError(f"upsert key column {k!r} has {nulls} null value(s); keys match by =")
    counts = incoming.group_by(keys).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    if repeated.num_rows:
        example = {k: repeated.column(k)[0].as_py() for k in keys}
        raise SchemaError(
            f"the data has {repeated.num_rows} key(s) more than once (e.g. {example}); "
            "an upsert takes one row per key: de-duplicate it first"
        )
    preds = _key_bounds(incoming, keys, frame.partition_by)
    key_table = incoming.select(keys).append_column(ROW, pa.array(range(incoming.num_rows)))
    on_sql = " AND ".join(f'{TABLE}."{k}" = incoming."{k}"' for k in keys)
    survivors = f"SELECT {TABLE}.* FROM {TABLE} LEFT ANTI JOIN incoming ON {on_sql}"
    matched = f'SELECT incoming."{ROW}" FROM incoming LEFT SEMI JOIN {TABLE} ON {on_sql}'

    def process(bee: Chamber, cell: CellMeta) -> _CellResult:
        table = _read(rw, cell)
        ctx = _context(bee, table)
        ctx.register_record_batches("incoming", [key_table.to_batches()])
        kept = bee.collect(ctx.sql(survivors), limit_result=False)
        hits = table.num_rows - kept.num_rows
        if hits == 0:
            return _CellResult(cell.path, 0)
        rows = bee.collect(ctx.sql(matched), limit_result=False).column(0).to_pylist()
        del table, ctx
        return _CellResult(cell.path, hits, _write(rw, _fit(kept, schema)), rows)

    new_cells = _write(rw, incoming)  # uploaded once, committed with whichever round wins
    try:
        outcome = _change(rw, "upsert", preds, process, rows_key=None, extra=new_cells)
    except BaseException:
        _discard(rw.frame, new_cells)
        raise
    outcome.rows_inserted = incoming.num_rows - outcome.rows_updated
    return outcome


class Appender:
    """Rows arriving batch by batch (``INSERT INTO f SELECT ...``): checked and cut into cells
    as they come, so no more than about one cell of them is held, and committed as ONE
    ``add_cells`` version by :meth:`commit`. :meth:`abort` deletes what was uploaded."""

    def __init__(self, frame: Frame, sizing: CellSizing, max_partitions: int) -> None:
        self.frame, self.sizing, self.max_partitions = frame, sizing, max_partitions
        self.started = time.perf_counter()
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.cells: list[CellMeta] = []
        self.rows = 0

    def put(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.pending.append(batch)
            self.pending_bytes += batch.nbytes
            if self.pending_bytes >= self.sizing.target_bytes:
                self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        frame = self.frame
        table = conform(pa.Table.from_batches(self.pending), frame.schema, frame.partition_by)
        self.pending, self.pending_bytes = [], 0
        self.cells += write_cells(
            frame.storage, frame.prefix, table, frame.partition_by, self.sizing, self.max_partitions
        )
        self.rows += table.num_rows

    def commit(self) -> dict[str, Any]:
        self._flush()
        if self.cells:
            version = self.frame.ledger.commit("add_cells", self.cells).version
        else:
            version = self.frame.ledger.latest().version
        return {
            "version": version,
            "rows_inserted": self.rows,
            "cells_added": len(self.cells),
            "bytes_written": sum(cell.bytes for cell in self.cells),
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
        }

    def abort(self) -> None:
        self.pending.clear()
        _discard(self.frame, self.cells)
        self.cells = []


# -- validation -----------------------------------------------------------------------------------


def check_predicate(schema: pa.Schema, where: str) -> list[Predicate]:
    """Plan ``where`` over an empty cell (read-only, this table only); its pruning predicates."""
    ctx = _planning(schema)
    df = _plan(ctx, f"SELECT * FROM {TABLE} WHERE {where}", "where")
    kind = _plan(ctx, f"SELECT ({where}) AS m FROM {TABLE}", "where").schema().field("m").type
    if kind not in (pa.bool_(), pa.null()):
        raise SqlError(f"the condition {where!r} is {kind}, not true/false; write e.g. x > 0")
    return [p for scan in scans(df.optimized_logical_plan()) for p in scan.predicates]


def _check_expressions(schema: pa.Schema, exprs: Mapping[str, str]) -> None:
    """Each expression plans over the cell and its type can become its column's type."""
    ctx = _planning(schema)
    for column, expr in exprs.items():
        kind = _plan(ctx, f"SELECT ({expr}) AS v FROM {TABLE}", f"SET {column}").schema()
        empty = pa.table({column: pa.array([], kind.field("v").type)})
        try:
            conform(empty, pa.schema([schema.field(column).with_nullable(True)]))
        except SchemaError as exc:
            raise SchemaError(f"SET {column} = {expr}: {exc}") from None


def _planning(schema: pa.Schema) -> SessionContext:
    ctx = SessionContext()
    ctx.register_table(TABLE, placeholder(schema))
    return ctx


def _plan(ctx: SessionContext, sql: str, what: str) -> DataFrame:
    try:
        return plan_read_only(ctx, sql, [TABLE])
    except SqlError as exc:
        text = str(exc)
        if "No field named" in text:
            raise SchemaError(f"{what}: {text.replace(READ_ONLY_NOTE, '')}") from None
        hint = ""
        if "not found" in text:
            hint = "; conditions and SET expressions see only the frame's columns, no other table"
        raise SqlError(f"{what}: {text.replace(READ_ONLY_NOTE, '')}{hint}") from None


def _predicate_text(where: str) -> str:
    if not isinstance(where, str) or not where.strip():
        raise SqlError("give the rows to change as a SQL condition, e.g. where=\"device = 'd7'\"")
    return _one_expression(where.strip(), "where")


def _expression_text(expr: object, column: str) -> str:
    if not isinstance(expr, str) or not expr.strip():
        raise SqlError(f"SET {column}: give a SQL expression as a string, e.g. '{column} * 2'")
    return _one_expression(expr.strip(), f"SET {column}")


def _one_expression(text: str, what: str) -> str:
    if not balanced(text):
        raise SqlError(
            f"{what}: {text[:80]!r} is not one expression (unpaired quotes or parentheses, a "
            "comment or ';'); write a single SQL expression"
        )
    return text


def _fit_values(values: pa.ChunkedArray, target: pa.Field, mask: pa.ChunkedArray) -> pa.Array:
    """SET values as the column's type: lossless casts only, no NULL into a NOT NULL column."""
    name = target.name
    values = plain_types(pa.table({name: values})).column(name)
    try:
        fitted = conform(pa.table({name: values}), pa.schema([target.with_nullable(True)]))
    except SchemaError as exc:
        raise SchemaError(f"SET {name}: {exc}") from None
    column = fitted.column(name)
    if not target.nullable:
        bad = pc.sum(pc.and_(mask, pc.is_null(column)).cast(pa.int64())).as_py() or 0
        if bad:
            raise SchemaError(f"SET {name}: column {name!r} cannot be null ({bad} row(s) would be)")
    return column


def _key_bounds(incoming: pa.Table, keys: list[str], partition_by: list[str]) -> list[Predicate]:
    """Pruning for an upsert: exact partition keys when few, else each key's min and max."""
    preds: list[Predicate] = []
    for k in keys:
        column = incoming.column(k)
        distinct = pc.unique(column)
        if k in partition_by and len(distinct) <= IN_LIST_MAX:
            preds.append(InList(k, tuple(distinct.to_pylist())))
            continue
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is not None and high is not None:
            preds += [Cmp(k, ">=", low), Cmp(k, "<=", high)]
    return preds


# -- the copy-on-write loop ---------------------------------------------------------------------


def _change(
    rw: Rewriter,
    operation: str,
    preds: list[Predicate],
    process: Callable[[Chamber, CellMeta], _CellResult],
    *,
    rows_key: str | None,
    extra: list[CellMeta] | None = None,
) -> ChangeOutcome:
    """Process the candidate cells of the latest snapshot and commit; on a conflict, again."""
    started = time.perf_counter()
    frame = rw.frame
    done: dict[str, _CellResult] = {}  # by cell path: cells never change, results stay right
    outcome = ChangeOutcome(operation, -1)
    try:
        for attempt in range(1, rw.retries + 2):
            outcome.attempts = attempt
            snap: Snapshot = frame.ledger.latest()
            for path in [p for p in done if p not in snap.cells]:  # replaced by someone else
                _discard(frame, done.pop(path).added)
            candidates = prune(snap.cells, preds, frame.schema, frame.partition_by).kept
            for cell in candidates:
                if cell.path not in done:
                    done[cell.path] = rw.pool.run(
                        lambda bee, cell=cell: process(bee, cell),
                        name=f"{operation} {frame.full_name}: {cell.path}"[:90],
                    )
                    outcome.cells_read += 1
                    outcome.bytes_read += cell.bytes
            changed = [done[c.path] for c in candidates if done[c.path].hits]
            outcome.cells_considered = len(snap.cells)
            if not changed and not extra:
                outcome.version = snap.version
                break
            added = [m for r in changed for m in r.added] + list(extra or ())
            removed = [r.path for r in changed]
            if rw.before_commit is not None:
                rw.before_commit()
            try:
                entry = frame.ledger.commit("rewrite_cells", added, removed)
            except WriteConflictError:
                log.info("%s of %s lost a race (round %d); re-reading", operation, frame, attempt)
                continue
            outcome.version = entry.version
            outcome.cells_removed, outcome.cells_added = len(removed), len(added)
            hits = sum(r.hits for r in changed)
            if rows_key is not None:
                setattr(outcome, rows_key, hits)
            else:  # upsert: incoming rows that replaced something
                outcome.rows_updated = len({row for r in changed for row in r.matched})
                outcome.rows_deleted = 0
            for path in [p for p in done if p not in removed]:
                _discard(frame, done.pop(path).added)  # computed, then not needed
            done.clear()
            break
        else:
            raise WriteConflictError(
                f"{operation} on {frame.full_name} lost {rw.retries + 1} races with other "
                "rewrites of the same cells; nothing was committed. Run it again later."
            )
    except BaseException:
        for result in done.values():
            _discard(frame, result.added)
        raise
    outcome.duration_ms = round((time.perf_counter() - started) * 1000, 3)
    return outcome


# -- one cell, inside a bee --------------------------------------------------------------------


def _read(rw: Rewriter, cell: CellMeta) -> pa.Table:
    frame = rw.frame
    return read_cells(
        frame.storage,
        frame.prefix,
        [cell],
        frame.schema,
        frame_name=frame.full_name,
        fetch=rw.fetch,
    )


def _context(bee: Chamber, table: pa.Table) -> SessionContext:
    ctx = bee.context()
    batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    ctx.register_record_batches(TABLE, [batches])
    return ctx


def _run(bee: Chamber, table: pa.Table, sql: str) -> pa.Table:
    """``sql`` (already validated) over ``table`` as ``cell``, in the bee's memory budget."""
    ctx = _context(bee, table)
    try:
        df = plan_read_only(ctx, sql, [TABLE])
        return plain_types(bee.collect(df, limit_result=False))
    except ApiaryError:
        raise
    except Exception as exc:  # DataFusion at run time: division by zero, a failed cast ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SqlError(f"{first[:300]}; nothing was committed") from None


def _write(rw: Rewriter, table: pa.Table) -> list[CellMeta]:
    if table.num_rows == 0:
        return []
    frame = rw.frame
    return write_cells(
        frame.storage, frame.prefix, table, frame.partition_by, rw.sizing, rw.max_partitions
    )


def _fit(table: pa.Table, schema: pa.Schema) -> pa.Table:
    table = plain_types(table)
    return table if table.schema == schema else table.cast(schema)


def _discard(frame: Frame, cells: list[CellMeta]) -> None:
    """Delete uploads no commit references (else ``vacuum`` would, later)."""
    for cell in cells:
        try:
            frame.storage.delete(f"{frame.prefix}/{cell.path}")
        except Exception as exc:  # best effort: an orphan is harmless
            log.warning("could not delete unused cell %s: %s", cell.path, exc)
