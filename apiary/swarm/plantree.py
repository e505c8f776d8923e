"""DataFusion's optimised plan as a tree with parent links, which the bindings do not give."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datafusion import LogicalPlan


@dataclass(eq=False)
class Node:
    plan: LogicalPlan
    kind: str  # the variant's class name: TableScan, Join, Aggregate, ...
    parent: Node | None
    children: list[Node] = field(default_factory=list)

    @property
    def variant(self) -> Any:
        return self.plan.to_variant()

    def field_names(self) -> list[str]:
        """Output columns as DataFusion prints them: ``qualifier.name`` or ``name``."""
        try:
            return list(self.variant.schema().field_names())
        except Exception:  # a node whose variant has no schema accessor
            return []


def tree(plan: LogicalPlan, parent: Node | None = None) -> Node:
    node = Node(plan, type(plan.to_variant()).__name__, parent)
    node.children = [tree(child, node) for child in plan.inputs()]
    return node


def scan_nodes(node: Node) -> list[Node]:
    found = [node] if node.kind == "TableScan" else []
    for child in node.children:
        found += scan_nodes(child)
    return found
