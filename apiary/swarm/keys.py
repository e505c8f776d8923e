"""Narrowing the other frames of a join to the key range of each task's own cells.

Where the driving frame meets another frame F on ``driving.k = F.k'``, and F's rows reach that
join only through operators that keep or drop each row with its own ``k'`` (filters,
projections and aliases that pass ``k'`` through, joins with ``k'`` on their side, GROUP BY
``k'``), then rows of F whose ``k'`` lies outside the range of ``k`` in a task's cells can meet
none of that task's rows, and dropping them changes nothing the task computes. The ledger's
min / max per cell gives both ranges without opening a file. TPC-H's lineitem and orders are
both written in order key order, so a task reading a tenth of lineitem reads about a tenth of
orders too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from datafusion import Expr

from apiary.cells.stats import decode_stat
from apiary.ledger import CellMeta
from apiary.swarm.plantree import Node


@dataclass(frozen=True)
class KeyLink:
    """The rows of frame ``scan`` matter to a task only where ``column`` falls within the
    task's range of the driving frame's ``driving_column``."""

    scan: tuple[str | None, str | None, str]
    column: str
    driving_column: str


def key_links(scan: Node, top: Node, shown_scans: list[str]) -> list[KeyLink]:
    """Links for every frame all of whose scans meet the driving ``scan`` on an equal key,
    on the way from ``scan`` up to ``top``; ``shown_scans`` names every scan of the plan."""
    found: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    node = scan
    while node is not top and node.parent is not None:
        parent = node.parent
        if parent.kind == "Join":
            mine = parent.children.index(node)
            for pair in parent.variant.on():
                ours, theirs = Expr(pair[mine]), Expr(pair[1 - mine])
                driving = _trace_expr(node, ours)
                other = _trace_expr(parent.children[1 - mine], theirs)
                if driving is not None and driving[0] is scan and other is not None:
                    fqn = tuple(other[0].variant.fqn())
                    found.setdefault(fqn, []).append((other[1], driving[1]))
        node = parent
    links = []
    for fqn, pairs in found.items():
        name = ".".join(p for p in fqn if p)
        # Every scan of that frame must be linked alike (one cell list serves them all).
        if len(set(pairs)) == 1 and shown_scans.count(name) == len(pairs):
            links.append(KeyLink(fqn, *pairs[0]))  # type: ignore[arg-type]
    return links


def _trace_expr(node: Node, expr: Expr) -> tuple[Node, str] | None:
    variant = expr.to_variant()
    if type(variant).__name__ != "Column":
        return None
    return _trace(node, variant.relation(), variant.name())


def _trace(node: Node, qualifier: str | None, name: str) -> tuple[Node, str] | None:
    """The scan and column a column of ``node``'s output comes from, unchanged row by row."""
    kind = node.kind
    if kind == "TableScan":
        return node, name
    if kind == "Filter":
        return _trace(node.children[0], qualifier, name)
    if kind == "SubqueryAlias":
        return _trace(node.children[0], None, name)
    if kind == "Projection":
        for raw in node.variant.projections():
            expr = Expr(raw)
            variant = expr.to_variant()
            if type(variant).__name__ == "Alias":
                if variant.alias() == name:
                    return _trace_expr(node.children[0], Expr(variant.expr()))
            elif (
                type(variant).__name__ == "Column"
                and variant.name() == name
                and (qualifier is None or variant.relation() in (None, qualifier))
            ):
                return _trace(node.children[0], variant.relation(), name)
        return None
    if kind == "Join":
        wanted = f"{qualifier}.{name}" if qualifier else None
        sides = [
            i
            for i, child in enumerate(node.children)
            if any(f == wanted or (wanted is None and (f == name or f.endswith("." + name)))
                   for f in child.field_names())
        ]  # fmt: skip
        return _trace(node.children[sides[0]], qualifier, name) if len(sides) == 1 else None
    if kind == "Aggregate":
        for raw in node.variant.group_by_exprs():
            variant = Expr(raw).to_variant()
            if type(variant).__name__ == "Column" and variant.name() == name:
                return _trace(node.children[0], variant.relation(), name)
        return None
    return None  # anything else may change which rows carry a key


def key_range(cells: Sequence[CellMeta], column: str, kind: pa.DataType) -> tuple[Any, Any] | None:
    """The smallest and largest non-null ``column`` over ``cells``; None when unknown."""
    lows, highs = [], []
    for cell in cells:
        stats = cell.stats.get(column)
        if stats is None:
            return None
        if stats.null_count >= cell.rows:
            continue  # only nulls, which never equal anything
        if stats.min is None or stats.max is None:
            return None
        lows.append(decode_stat(stats.min, kind))
        highs.append(decode_stat(stats.max, kind))
    if not lows:
        return None
    try:
        return min(lows), max(highs)
    except TypeError:
        return None


def within(
    cells: Sequence[CellMeta], column: str, kind: pa.DataType, bounds: tuple[Any, Any]
) -> list[CellMeta]:
    """The ``cells`` that may hold a ``column`` value within ``bounds`` (unknown: kept)."""
    low, high = bounds
    kept = []
    for cell in cells:
        stats = cell.stats.get(column)
        try:
            if stats is not None and stats.null_count >= cell.rows:
                continue  # only nulls: they meet nothing in an equi-join
            known = stats is not None and stats.min is not None and stats.max is not None
            if known and (
                decode_stat(stats.max, kind) < low or decode_stat(stats.min, kind) > high
            ):
                continue
        except (TypeError, ValueError):
            pass
        kept.append(cell)
    return kept


def in_key_order(cells: Sequence[CellMeta], column: str, kind: pa.DataType) -> list[CellMeta]:
    """``cells`` by their smallest ``column`` (by path where unknown, after the rest).

    Tasks are cut from consecutive cells, so in this order each task covers one narrow range
    of the key and the frames narrowed to it keep few cells; in path order (random names) a
    task's cells spread over the whole range and narrowing kept nearly everything.
    """

    def low(cell: CellMeta) -> tuple[int, Any, str]:
        stats = cell.stats.get(column)
        if stats is None or stats.min is None:
            return (1, 0, cell.path)
        try:
            return (0, decode_stat(stats.min, kind), cell.path)
        except (TypeError, ValueError):
            return (1, 0, cell.path)

    try:
        return sorted(cells, key=low)
    except TypeError:  # values that do not compare (never for one column's type)
        return sorted(cells, key=lambda c: c.path)
