"""Common table expressions worth computing once (pure logic).

DataFusion inlines a CTE wherever the query names it, so a CTE named twice is computed twice.
TPC-H Q15 names ``revenue0`` in its join and again in ``max(total_revenue)``: two aggregates
over a quarter of lineitem where one would do (SF1, 2 cores: 116 ms as planned, 56 ms with
``revenue0`` computed once first; DuckDB, which does this, 47 ms).

Apiary computes such a CTE first, keeps its rows as a table of that name for the rest of the
query, and runs the query without it. Only where it pays: the CTE is named more than once, and
the optimised plan computes the very same aggregate over a frame under every name, so no
reference had a filter pushed into it that a whole result would lose. The answer is the same
either way: a CTE means its rows, wherever it is named.

The bindings expose no SQL syntax tree, so the WITH clause is cut here, skipping quoted text
and parentheses (tree-sitter's SQL grammar, installed for the TUI's editor, rejects DataFusion's
``interval '3' month`` and so half of TPC-H). A clause that does not read as CTEs followed by a
query is run as written, and so is one whose cut pieces DataFusion will not plan.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from datafusion import LogicalPlan

from apiary.sql.statements import closing, strip

_WITH = re.compile(r"\s*WITH\s+", re.IGNORECASE)
_HEAD = re.compile(
    r'(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|"[^"]+")\s*(?:\([^()\'"]*\)\s*)?'
    r"AS\s*\(",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s*")
# Plan nodes a CTE's reference passes through on the way down to its aggregate.
_PASS = ("Projection:", "Filter:", "SubqueryAlias:")


@dataclass(frozen=True)
class Once:
    """``sql`` rewritten so some CTEs are computed once: run each of ``first`` (a CTE's name and
    a query giving its rows) and keep the rows as a table of that name, then run ``main``."""

    first: tuple[tuple[str, str], ...]
    main: str

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.first]


@dataclass(frozen=True)
class _Cte:
    name: str | None  # lower-cased; None for a quoted name (left as it is)
    text: str  # ``name [(columns)] AS (query)``


@dataclass
class _Node:
    line: str
    children: list[_Node] = field(default_factory=list)

    def text(self, depth: int = 0) -> str:
        return "\n".join(["  " * depth + self.line] + [c.text(depth + 1) for c in self.children])

    def walk(self) -> Iterator[_Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def computed_once(sql: str, plan: LogicalPlan) -> Once | None:
    """How to run ``sql`` (optimised as ``plan``) computing its repeated CTEs once; None when
    none is worth it (most queries: those without WITH cost one regular expression)."""
    if not _WITH.match(strip(sql)):
        return None
    return _rewrite(sql, plan.display_indent())


@functools.lru_cache(maxsize=64)
def _rewrite(sql: str, plan_text: str) -> Once | None:
    parsed = _split(sql)
    if parsed is None:
        return None
    ctes, main = parsed
    root = _tree(plan_text)
    repeated = {c.name for c in ctes if c.name is not None and _repeated(root, c.name)}
    if not repeated:
        return None
    first = []
    for n, cte in enumerate(ctes):
        if cte.name in repeated:
            # The CTEs before it are kept with it: its query may name them.
            defined = ", ".join(c.text for c in ctes[: n + 1])
            first.append((cte.name, f"WITH {defined} SELECT * FROM {cte.name}"))
    rest = [c.text for c in ctes if c.name not in repeated]
    rewritten = f"WITH {', '.join(rest)} {main}" if rest else main
    return Once(tuple(first), rewritten)


def _split(sql: str) -> tuple[list[_Cte], str] | None:
    """The CTEs of ``sql``'s WITH clause and the query after it, or None when ``sql`` does not
    read as ``WITH name [(columns)] AS (query), ... query`` (WITH RECURSIVE among them)."""
    text = strip(sql)
    at = _WITH.match(text)
    if at is None:
        return None
    pos, ctes = at.end(), []
    while True:
        head = _HEAD.match(text, pos)
        if head is None:
            return None
        end = closing(text, head.end() - 1)
        if end is None:
            return None
        name = head["name"].lower() if head["name"] else None  # a quoted name stays in place
        ctes.append(_Cte(name, text[head.start() : end + 1]))
        after = _SPACE.match(text, end + 1).end()  # type: ignore[union-attr]
        if not text.startswith(",", after):
            main = text[after:]
            return (ctes, main) if main else None
        pos = _SPACE.match(text, after + 1).end()  # type: ignore[union-attr]


def _tree(plan_text: str) -> _Node:
    """DataFusion's indented plan (two spaces a level) as a tree of its lines."""
    root = _Node("")
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for line in plan_text.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        node = _Node(line.strip())
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((depth, node))
    return root


def _repeated(root: _Node, name: str) -> bool:
    """True when the plan names CTE ``name`` more than once and computes the same aggregate
    over a frame under each name."""
    found = [_aggregate(node) for node in root.walk() if node.line == f"SubqueryAlias: {name}"]
    if len(found) < 2 or any(text is None for text in found):
        return False
    return len(set(found)) == 1 and "TableScan:" in str(found[0])


def _aggregate(node: _Node) -> str | None:
    """The aggregate a CTE's reference reads, through projections and filters (whose scalar
    subqueries DataFusion shows as a child of their own); None if it reads none."""
    while node.line.startswith(_PASS):
        inputs = [c for c in node.children if not c.line.startswith("Subquery:")]
        if len(inputs) != 1:
            return None
        node = inputs[0]
    return node.text() if node.line.startswith("Aggregate:") else None
