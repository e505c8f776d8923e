"""Apiary.sql() runs each query inside a bee: over-budget queries spill or fail alone."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from support.waiting import wait_until

from apiary import Apiary, MemoryExceededError


@pytest.fixture
def ap(tmp_path, monkeypatch):
    monkeypatch.setenv("APIARY_MEMORY_PER_BEE", str(16 * 1024 * 1024))
    with Apiary("test", str(tmp_path / "root")) as client:
        client.create_hive("h")
        client.create_box("h", "b")
        client.create_frame("h", "b", "big", {"k": "int64", "s": "string"})
        n = 2_000_000
        client.write_to_frame(
            "h",
            "b",
            "big",
            pa.table({"k": pa.array(range(n)), "s": pa.array([f"row-{i:09d}" for i in range(n)])}),
        )
        client.create_frame("h", "b", "small", {"x": "int64"})
        client.write_to_frame("h", "b", "small", pa.table({"x": [1, 2, 3]}))
        yield client


def test_an_over_budget_query_spills_or_fails_while_another_completes(ap: Apiary) -> None:
    heavy = "SELECT s, count(*) AS c FROM h.b.big GROUP BY s ORDER BY c DESC, s LIMIT 5"
    outcome: dict[str, object] = {}

    def run_heavy() -> None:
        try:
            outcome["rows"] = ap.sql(heavy).num_rows
        except MemoryExceededError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run_heavy)
    thread.start()
    small = ap.sql("SELECT sum(x) AS total FROM h.b.small")  # on the other bee, meanwhile
    thread.join(timeout=300)
    assert small["total"].to_pylist() == [6]
    assert outcome.get("rows") == 5 or "memory" in str(outcome.get("error"))
    if "error" in outcome:
        assert "16" in str(outcome["error"])  # names the bee's budget
    # The node is still up and the bees are idle again.
    assert ap.sql("SELECT count(*) AS n FROM h.b.small")["n"].to_pylist() == [3]
    # A bee whose query failed may drain a moment longer than its caller waits (bounded).
    wait_until(lambda: all(b["state"] == "idle" for b in ap.bee_status()), 30, "idle bees")
