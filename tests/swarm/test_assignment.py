"""Task assignment (pure logic): balanced by bees, cache-aware, never starving a node."""

from __future__ import annotations

from apiary.ledger import CellMeta
from apiary.swarm.coordinator import assign
from apiary.swarm.world import Heartbeat, NodeView


def node(name: str, bees: int, cached: list[str] = ()) -> NodeView:
    beat = Heartbeat(node_id=name, bees_idle=bees, cores=bees, cached_cells=list(cached))
    return NodeView(beat, 0.0, "alive")


CELLS = [CellMeta(path=f"c{i}.parquet", rows=10, bytes=100) for i in range(12)]


def test_tasks_follow_idle_bees() -> None:
    plan = assign(CELLS, [node("pi-zero", 1), node("pi-5", 4)])
    assert plan.per_node() == {"pi-5": 4, "pi-zero": 1}
    assert sorted(c.path for t in plan.tasks for c in t.cells) == sorted(c.path for c in CELLS)


def test_cached_cells_attract_their_tasks_without_starving_a_cold_node() -> None:
    warm = [f"h/b/f/c{i}.parquet" for i in range(12)]
    plan = assign(CELLS, [node("warm", 2, warm), node("cold", 2)], prefix="h/b/f")
    assert plan.per_node() == {"warm": 2, "cold": 2}
    assert plan.cached_tasks == 2
    half = [f"h/b/f/{c.path}" for c in CELLS[:6]]
    plan = assign(CELLS, [node("a", 1, half), node("b", 1)], prefix="h/b/f", tasks_per_bee=3)
    assert plan.per_node() == {"a": 3, "b": 3}
    cached_by_a = {p.removeprefix("h/b/f/") for p in half}
    a_overlap = sum(
        len({c.path for c in t.cells} & cached_by_a) for t in plan.tasks if t.node == "a"
    )
    b_overlap = sum(
        len({c.path for c in t.cells} & cached_by_a) for t in plan.tasks if t.node == "b"
    )
    assert a_overlap > b_overlap  # a gets the tasks whose cells it holds


def test_when_every_node_caches_some_cells_every_task_goes_to_its_cells() -> None:
    """Uneven caches (a first run's tasks were uneven): a node's cells make at most its share of
    tasks, so none of them spills over to a node that would have to download them."""
    cached = {"a": CELLS[:6], "b": CELLS[6:9], "c": CELLS[9:]}
    nodes = [node(n, 2, [f"h/b/f/{c.path}" for c in cells]) for n, cells in cached.items()]
    plan = assign(CELLS, nodes, prefix="h/b/f")
    assert plan.cached_tasks == len(plan.tasks)
    assert set(plan.per_node()) == {"a", "b", "c"}
    assert all(n <= 2 for n in plan.per_node().values())
    assert sorted(c.path for t in plan.tasks for c in t.cells) == sorted(c.path for c in CELLS)


def test_cells_of_nearly_equal_size_split_evenly() -> None:
    """Four cells a few bytes apart on two nodes: two each, whichever pair is the bigger."""
    for sizes in (
        [100, 101, 102, 103],
        [103, 102, 101, 100],
        [57931706, 57938646, 57940039, 57948382],
    ):
        cells = [CellMeta(path=f"c{i}.parquet", rows=10, bytes=b) for i, b in enumerate(sizes)]
        plan = assign(cells, [node("a", 1), node("b", 1)])
        assert sorted(len(t.cells) for t in plan.tasks) == [2, 2], sizes
    cells = [CellMeta(path=f"c{i}.parquet", rows=10, bytes=100 + i) for i in range(8)]
    plan = assign(cells, [node("a", 2), node("b", 2)])
    assert sorted(len(t.cells) for t in plan.tasks) == [2, 2, 2, 2]
    # One big cell and small ones: the big one alone, the rest together.
    cells = [CellMeta(path=f"c{i}.parquet", rows=10, bytes=b) for i, b in enumerate([900, 50, 50])]
    plan = assign(cells, [node("a", 1), node("b", 1)])
    assert sorted(len(t.cells) for t in plan.tasks) == [1, 2]
