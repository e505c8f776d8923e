"""Tasks cut in key order (pure logic): each task covers one narrow range of the join key."""

from __future__ import annotations

import pyarrow as pa

from apiary.ledger import CellMeta
from apiary.ledger.models import ColumnStats
from apiary.swarm.coordinator import assign
from apiary.swarm.keys import in_key_order, key_range, within
from apiary.swarm.world import Heartbeat, NodeView

# Eight cells of 1000 keys each, named in an order unrelated to their keys (as cell names are).
NAMES = ["f3", "a7", "c1", "e0", "b5", "d2", "g6", "h4"]
CELLS = [
    CellMeta(path=f"cell_{name}.parquet", rows=1000, bytes=8000 + i,
             stats={"k": ColumnStats(min=int(name[1]) * 1000, max=int(name[1]) * 1000 + 999)})
    for i, name in enumerate(NAMES)
]  # fmt: skip
OTHER = [
    CellMeta(path=f"o{i}.parquet", rows=500, bytes=4000,
             stats={"ok": ColumnStats(min=i * 1000, max=i * 1000 + 999)})
    for i in range(8)
]  # fmt: skip


def node(name: str) -> NodeView:
    return NodeView(Heartbeat(node_id=name, bees_idle=1, cores=1), 0.0, "alive")


def test_cells_sort_by_their_smallest_key_with_unknown_ones_last() -> None:
    unknown = CellMeta(path="cell_0.parquet", rows=5, bytes=10)
    ordered = in_key_order([*CELLS, unknown], "k", pa.int64())
    assert [c.path for c in ordered] == [
        *(f"cell_{n}.parquet" for n in sorted(NAMES, key=lambda n: n[1])),
        "cell_0.parquet",
    ]


def test_tasks_cut_in_key_order_narrow_the_other_frame_to_their_share() -> None:
    def narrowed(cells: list[CellMeta]) -> list[int]:
        plan = assign(cells, [node("a"), node("b")])
        kept = []
        for task in plan.tasks:
            mine = [c for c in CELLS if c.path in {r.path for r in task.cells}]
            bounds = key_range(mine, "k", pa.int64())
            assert bounds is not None
            kept.append(len(within(OTHER, "ok", pa.int64(), bounds)))
        return kept

    # By path, each half of the cells spans nearly every key: the other frame is read whole.
    assert max(narrowed(sorted(CELLS, key=lambda c: c.path))) >= 7
    # In key order, each task's range is a half: so is the other frame's share.
    assert narrowed(in_key_order(CELLS, "k", pa.int64())) == [4, 4]
