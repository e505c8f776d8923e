"""The headless data layer: formatting and snapshots, with no app running."""

from __future__ import annotations

import pytest

from apiary import SqlError
from tui.data import (
    BeeRow,
    NodeRow,
    Source,
    bar,
    cell_text,
    duration,
    human_bytes,
    page_count,
    pick_node,
    reason,
    sort_nodes,
    spark,
)


def test_formatting() -> None:
    assert human_bytes(512) == "512 B" and human_bytes(3 * 2**30) == "3 GiB"
    assert [duration(s) for s in (None, 0.42, 12.4, 185, 7800)] == [
        "-",
        "0.4s",
        "12s",
        "3m05s",
        "2h10m",
    ]
    assert bar(0.5, 4) == "██··" and bar(2, 3) == "███" and bar(-1, 3) == "···"
    assert len(bar(0.33, 7)) == 7
    assert spark([0, 0.5, 1], 10) == "▁▅█" and spark([1] * 30, 4) == "████"
    assert cell_text(None) == "NULL" and cell_text("a\nb") == "a⏎b"
    assert cell_text("x" * 100, 10) == "x" * 9 + "…"
    assert page_count(0, 500) == 1 and page_count(1_000_000, 500) == 2000
    assert reason(SqlError("bad\n  thing")) == "SqlError: bad thing"


def test_nodes_sort_and_the_observed_node_is_chosen() -> None:
    nodes = (
        NodeRow("b", "dead", 40, temperature=0.9),
        NodeRow("a", "alive", 1, temperature=0.2, bees_busy=1),
        NodeRow("c", "suspect", 20, temperature=0.5),
    )
    assert [n.node_id for n in sort_nodes(nodes, "state")] == ["a", "c", "b"]
    assert [n.node_id for n in sort_nodes(nodes, "temp")] == ["b", "c", "a"]
    assert [n.node_id for n in sort_nodes(nodes, "node")] == ["a", "b", "c"]
    assert pick_node(nodes, "c").node_id == "c"
    assert pick_node(nodes, "gone").node_id == "a"  # the first alive one
    assert pick_node((), None) is None
    busy = NodeRow("x", "alive", 0, bees=(BeeRow(0, "busy", "t", 1.0, 100, 400),))
    assert busy.memory_used == 100


def test_attached_snapshot_shows_this_nodes_bees_and_colony(root: str) -> None:
    source = Source("test", root, node_id="pi-test")
    try:
        snap = source.snapshot()
        assert snap.reachable and snap.mode == "attached" and snap.node_id == "pi-test"
        assert [n.node_id for n in snap.nodes] == ["pi-test"] and snap.nodes[0].state == "alive"
        assert len(snap.bees) == source.apiary().pool.size
        assert snap.colony is not None and snap.colony.band in ("cold", "ideal", "warm", "hot")
        assert snap.namespace == {"farm": {"sensors": ["temps"]}}
        described = dict(source.describe("farm", "sensors", "temps"))
        assert described["rows"] == "4" and described["region"] == "string, not null, partition key"
        result = source.run_sql("SELECT count(*) AS n FROM farm.sensors.temps WHERE region = 'x'")
        assert result.table.column("n").to_pylist() == [0]
        assert result.pruning == (
            "farm.sensors.temps: 3 cells considered, 3 pruned by partition, "
            "0 pruned by statistics, 0 scanned",
        )
    finally:
        source.close()


def test_observer_writes_no_heartbeat(root: str) -> None:
    source = Source("test", root, observe=True)
    try:
        snap = source.snapshot()
        assert snap.reachable and snap.nodes == () and snap.bees == () and snap.colony is None
        assert source.apiary().storage.list("_heartbeats") == []
    finally:
        source.close()


@pytest.mark.parametrize("observe", [True, False])
def test_an_unreachable_root_is_a_snapshot_with_a_reason(tmp_path, observe: bool) -> None:
    (tmp_path / "file").write_text("")
    snap = Source("test", str(tmp_path / "file" / "root"), observe=observe).snapshot()
    # a file where the root's parent should be: the root does not exist, and is not made
    assert not snap.reachable and snap.error.startswith("NotFoundError: storage root")
