"""The coordinator's half of a split query: partial results in, the exact single-node answer out.

Partial aggregates are re-aggregated (SUM of sums, SUM of counts, MIN of mins, MAX of maxes, AVG
as their quotient computed the way DataFusion computes AVG), cast to the types the plan gives
them, then the plan's own nodes above the split point are replayed over the merged rows.

Those nodes refer to columns by qualifier and name (``orders.o_orderdate``), and one table
can carry only one qualifier; so the merged rows are given to DataFusion as one table per
qualifier, joined back together on a row number.

Most merges are a few rows re-aggregated, then picked, renamed and ordered: pyarrow's kernels
do those alone, without DataFusion's fixed cost (TPC-H Q1's merge: 2.4 -> 0.3 ms, Q6's 1.0 ->
0.02 ms on one core). DataFusion still computes whatever an expression above the split point
computes, and merges where pyarrow's answer could differ (MIN/MAX over floats) or be slower.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import DataFrame, Expr, SessionConfig, SessionContext, col
from datafusion import functions as f
from datafusion.expr import SortExpr

from apiary.sql.plan import expr_variant, projected
from apiary.sql.sources import memory_frame
from apiary.swarm.split import NotDistributable, OutField, Split, limit_value, replay

ROW_ID = "__apiary_row"
# Partial rows merged in one partition: split over the cores, DataFusion's repartitioning of a
# few thousand rows cost more than it saved (TPC-H Q10's 43k partial groups: 13.5 -> 8.7 ms).
ONE_PARTITION_ROWS = 1_000_000
_MERGE_WITH = {"min": f.min, "max": f.max}
# Partial rows re-aggregated by pyarrow at most: it skips DataFusion's fixed cost (~1 ms), but
# its grouping is single-threaded and slower per row (TPC-H Q10's 76k partial rows: 24 ms
# against DataFusion's 8; Q3's 23k: 2.0 ms against 3.2).
KERNEL_ROWS = 50_000
# ...and at most this many when a group key is a string: pyarrow hashes those slower (Q10's 32k
# partial groups on five string keys: 6.3 ms against DataFusion's 3.9; 2k rows: 0.5 against 0.9).
KERNEL_STRING_ROWS = 5_000
PICK_ROWS = 20_000  # merged rows ordered by pyarrow at most: DataFusion's top-k is faster above


def merge(split: Split, partials: Sequence[pa.Table]) -> pa.Table:
    assert partials, "every task answers, or the query has failed"
    data = pa.concat_tables(partials)
    engine = _Engine(data.num_rows)
    if split.shape == "aggregate":
        rows = _final_aggregate(engine, data, split)
    else:
        rows = data.rename_columns([f"c{i}" for i in range(data.num_columns)])
    picked = _picked(rows, split)
    if picked is not None:
        return picked
    rows, done = _first_rows(engine.ctx, rows, split)
    if done:  # the plan ended in that ORDER BY ... LIMIT: nothing is left to replay
        return rows.rename_columns([out.name for out in split.fields])
    result = replay(_qualified(engine.ctx, rows, split.fields), split.upper).to_arrow_table()
    keep = [i for i, name in enumerate(result.column_names) if not name.startswith(ROW_ID)]
    return result.select(keep)


class _Engine:
    """DataFusion for what pyarrow cannot do alone, made on first use: a merge that needs
    none (a total, a few groups in order) skips its cost, ~1-2 ms of a shared query."""

    def __init__(self, rows: int) -> None:
        self._rows = rows
        self._ctx: SessionContext | None = None

    @property
    def ctx(self) -> SessionContext:
        if self._ctx is None:
            config = SessionConfig()
            if self._rows < ONE_PARTITION_ROWS:
                config = config.with_target_partitions(1)
            self._ctx = SessionContext(config)
        return self._ctx


def _final_aggregate(engine: _Engine, data: pa.Table, split: Split) -> pa.Table:
    groups = [f"g{i}" for i in range(split.groups)]
    needed: dict[str, tuple[str, str]] = {}  # partial column -> (merged column, how)
    for partial in split.partials:
        how = partial.function if partial.function in ("min", "max") else "sum"
        for column in partial.columns:
            needed.setdefault(column, (f"m_{column}", how))
    merged = _by_kernel(data, groups, needed)
    if merged is None:
        exprs = [_MERGE_WITH.get(how, f.sum)(col(c)).alias(m) for c, (m, how) in needed.items()]
        merged = memory_frame(engine.ctx, data).aggregate([col(g) for g in groups], exprs)
        merged = merged.to_arrow_table()
    if split.groups == 0 and merged.num_rows == 0:  # no task saw a row: one row, as SQL says
        merged = pa.table(
            {m: pa.nulls(1, data.schema.field(c).type) for c, (m, _) in needed.items()}
        )
    arrays = [merged.column(g) for g in groups]
    for partial, target in zip(split.partials, split.types[split.groups :], strict=True):
        first = merged.column(needed[partial.columns[0]][0])
        if partial.function == "avg":
            arrays.append(_average(first, merged.column(needed[partial.columns[1]][0]), target))
        elif partial.function == "count":
            arrays.append(pc.fill_null(first, 0).cast(target))
        else:
            arrays.append(first.cast(target))
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def _by_kernel(
    data: pa.Table, groups: list[str], needed: dict[str, tuple[str, str]]
) -> pa.Table | None:
    """The partials merged by pyarrow's own kernels, or None where they would differ from
    DataFusion's (MIN/MAX of floats: pyarrow passes over NaN, DataFusion does not), where
    pyarrow has no kernel for a type, or where DataFusion is faster (many rows)."""
    if data.num_rows > KERNEL_ROWS:
        return None
    keys = [data.schema.field(g).type for g in groups]
    fixed = all(pa.types.is_primitive(t) or pa.types.is_decimal(t) for t in keys)
    if not fixed and data.num_rows > KERNEL_STRING_ROWS:
        return None
    for column, (_, how) in needed.items():
        if how != "sum" and pa.types.is_floating(data.schema.field(column).type):
            return None
    try:
        if groups:
            merged = data.group_by(groups, use_threads=False).aggregate(
                [(c, how) for c, (_, how) in needed.items()]
            )
            return merged.rename_columns(
                [n if n in groups else needed[n.rsplit("_", 1)[0]][0] for n in merged.column_names]
            )
        kernels = {"sum": pc.sum, "min": pc.min, "max": pc.max}
        return pa.table(
            {m: pa.repeat(kernels[how](data.column(c)), 1) for c, (m, how) in needed.items()}
        )
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _picked(rows: pa.Table, split: Split) -> pa.Table | None:
    """The nodes above the split point applied by pyarrow, when all they do is pick, rename,
    order (a few rows, by columns that are not floats: NaN sorts apart) and cut rows; None
    when one computes anything, for DataFusion to replay."""
    fields = list(split.fields)
    for node in reversed(split.upper):
        kind = type(node).__name__
        if kind == "Projection":
            picked: list[int] = []
            named: list[OutField] = []
            for raw in node.projections():
                variant = expr_variant(Expr(raw))
                out = None
                while type(variant).__name__ == "Alias":  # count(*) AS n is an alias twice
                    out = out or OutField(None, variant.alias())
                    variant = expr_variant(Expr(variant.expr()))
                index = _column_index(variant, fields)
                if index is None:
                    return None
                picked.append(index)
                named.append(out or fields[index])
            rows, fields = rows.select(picked), named
            rows = rows.rename_columns([f"c{i}" for i in range(len(fields))])
        elif kind == "SubqueryAlias":
            fields = [OutField(node.alias(), out.name) for out in fields]
        elif kind == "Sort":
            if rows.num_rows > PICK_ROWS:
                return None
            keys: list[tuple[str, str, str]] = []
            for sort_expr in node.sort_exprs():
                index = _column_index(expr_variant(Expr(sort_expr.expr())), fields)
                if index is None or pa.types.is_floating(rows.schema.field(index).type):
                    return None
                order = "ascending" if sort_expr.ascending() else "descending"
                keys.append(
                    (f"c{index}", order, "at_start" if sort_expr.nulls_first() else "at_end")
                )
            try:
                order = pc.sort_indices(rows, sort_keys=keys)
            except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return None  # a type pyarrow cannot order
            rows = rows.take(order[: node.get_fetch_val() or len(order)])  # top k: k rows taken
        elif kind == "Limit":
            try:
                fetch, skip = limit_value(node.fetch()), limit_value(node.skip()) or 0
            except NotDistributable:
                return None
            rows = rows.slice(skip, fetch)
        else:
            return None
    return rows.rename_columns([out.name for out in fields])


def _column_index(variant: Any, fields: list[OutField]) -> int | None:
    """Which of ``fields`` a Column expression names; None for anything else, or when it
    cannot be told apart."""
    if type(variant).__name__ != "Column":
        return None
    return _field_index(variant.relation(), variant.name(), fields)


def _field_index(qualifier: str | None, name: str, fields: list[OutField]) -> int | None:
    """Which of ``fields`` is ``name`` (of ``qualifier``, when given); None unless just one."""
    matches = [
        i
        for i, out in enumerate(fields)
        if out.name == name and (qualifier is None or out.qualifier == qualifier)
    ]
    return matches[0] if len(matches) == 1 else None


def _average(sums: pa.ChunkedArray, counts: pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """AVG from a total and a count, as DataFusion computes it from its own sum and count."""
    if not pa.types.is_decimal(target):
        ratio = pc.divide(
            sums.cast(pa.float64()),
            pc.if_else(pc.equal(counts, 0), None, counts).cast(pa.float64()),
        )
        return ratio.cast(target)
    # Decimal AVG: the sum rescaled to the result's scale, divided by the count, truncated
    # toward zero (integer arithmetic on the unscaled values, as DataFusion does).
    values = []
    exact = decimal.Context(prec=100)  # 38-digit values times 10**scale, without rounding
    for total, count in zip(sums.to_pylist(), counts.to_pylist(), strict=True):
        if total is None or not count:
            values.append(None)
            continue
        unscaled = int(
            total.scaleb(target.scale, exact).to_integral_value(decimal.ROUND_DOWN, exact)
        )
        quotient = abs(unscaled) // count * (1 if unscaled >= 0 else -1)
        values.append(decimal.Decimal(quotient).scaleb(-target.scale, exact))
    return pa.array(values, target)


def _first_rows(ctx: SessionContext, rows: pa.Table, split: Split) -> tuple[pa.Table, bool]:
    """Where the plan ends in ORDER BY … LIMIT k on columns the merged rows hold as they are
    (passed on by projections and aliases), only the first k rows by those keys can be in the
    answer: keep just those before the rows get their qualifiers (a join per qualifier took
    ~10 ms over TPC-H Q10's 43k partial groups). The plan's own sort then runs as before; True
    when that sort and limit were all the plan had left, and the rows are the answer."""
    upper = list(split.upper)  # top first
    keep, skip = 0, 0
    if upper and type(upper[0]).__name__ == "Limit":
        try:
            fetch, skip = limit_value(upper[0].fetch()), limit_value(upper[0].skip()) or 0
        except NotDistributable:
            return rows, False
        if fetch is None:
            return rows, False
        keep = fetch + skip
        upper = upper[1:]
    if not upper or type(upper[0]).__name__ != "Sort":
        return rows, False
    sort, below = upper[0], upper[1:]
    fetch = sort.get_fetch_val()
    keep = min(keep, fetch) if keep and fetch else keep or fetch or 0
    if not keep:
        return rows, False
    whole = not below
    if rows.num_rows <= keep and not whole:
        return rows, False
    if any(type(node).__name__ not in ("Projection", "SubqueryAlias") for node in below):
        return rows, False  # a filter or an aggregate under the sort: every row may matter
    keys = []
    for sort_expr in sort.sort_exprs():
        index = _source_column(Expr(sort_expr.expr()), below, split.fields)
        if index is None:
            return rows, False
        keys.append(SortExpr(col(f"c{index}"), sort_expr.ascending(), sort_expr.nulls_first()))
    first = memory_frame(ctx, rows).sort(*keys).limit(keep).to_arrow_table()
    return (first.slice(skip), True) if whole else (first, False)


def _source_column(expr: Expr, below: Sequence[Any], fields: list[OutField]) -> int | None:
    """Which of ``fields`` a sort key is, passed down through the ``below`` nodes (top first)
    unchanged; None when it is computed or cannot be told apart."""
    variant = expr_variant(expr)
    if type(variant).__name__ != "Column":
        return None
    qualifier, name = variant.relation(), variant.name()
    for node in below:
        if type(node).__name__ == "SubqueryAlias":
            qualifier = None  # the alias renames the relation; the name alone must tell
            continue
        found = projected(node, name, qualifier)
        if found is None:
            return None
        qualifier, name = found
    return _field_index(qualifier, name, fields)


def _qualified(ctx: SessionContext, rows: pa.Table, fields: list[OutField]) -> DataFrame:
    """``rows`` (columns c0, c1, ... in ``fields`` order) as a DataFrame with the plan's column
    qualifiers, so the plan's own expressions above the split point resolve against it."""
    groups: dict[str | None, list[int]] = {}
    for i, out in enumerate(fields):
        groups.setdefault(out.qualifier, []).append(i)
    # 1, 2, ... n without a Python loop (pa.array(range(n)) took ~10 ms per 100k rows)
    numbers = pc.cumulative_sum(pa.nulls(rows.num_rows, pa.int64()).fill_null(1))
    joined: DataFrame | None = None
    for k, (qualifier, columns) in enumerate(groups.items()):
        part = pa.Table.from_arrays(
            [rows.column(i) for i in columns] + [numbers],
            names=[fields[i].name for i in columns] + [f"{ROW_ID}{k}"],
        )
        df = memory_frame(ctx, part)
        if qualifier is not None:
            df = df.alias(qualifier)
        joined = (
            df
            if joined is None
            else joined.join(df, left_on=f"{ROW_ID}0", right_on=f"{ROW_ID}{k}", how="inner")
        )
    assert joined is not None
    # In the plan's order; unqualified columns (aggregates, expressions) made unqualified again
    # by an alias, as a later aggregate names its output after the columns it reads.
    return joined.select(
        *[
            col(_quoted(out.qualifier, out.name))
            if out.qualifier is not None
            else col(_quoted(None, out.name)).alias(out.name)
            for out in fields
        ]
    )


def _quoted(qualifier: str | None, name: str) -> str:
    parts = ([] if qualifier is None else qualifier.split(".")) + [name]
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)
