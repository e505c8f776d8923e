"""Whether sharing can pay (pure logic): what the slowest task reads against the whole query."""

from __future__ import annotations

from apiary.ledger import CellMeta
from apiary.swarm.cost import estimate


def cells(*sizes: int) -> list[CellMeta]:
    return [CellMeta(path=f"c{i}.parquet", rows=1, bytes=b) for i, b in enumerate(sizes)]


def test_a_big_frame_split_two_ways_nearly_halves_the_bytes() -> None:
    cost = estimate([cells(100, 100), cells(100, 100)], others=[10])
    assert (cost.query_bytes, cost.task_bytes, cost.tasks) == (410, 210, 2)
    assert round(cost.gain, 2) == 1.95


def test_a_small_driving_frame_beside_a_big_whole_one_cannot_pay() -> None:
    cost = estimate([cells(10), cells(10)], others=[1000, 1000])  # lineitem read twice, whole
    assert cost.gain < 1.01
    assert "each of 2 tasks would read up to 2 kB of the 2 kB" in cost.describe()


def test_the_slowest_task_sets_the_gain_and_narrowed_frames_count_per_run() -> None:
    def narrowed(run: list[CellMeta]) -> int:
        return 5 * sum(c.bytes for c in run)  # the other frame's cells in the run's key range

    cost = estimate([cells(100), cells(300)], others=[narrowed])
    assert cost.query_bytes == 400 + 5 * 400
    assert cost.task_bytes == 300 + 5 * 300
    assert round(cost.gain, 2) == 1.33


def test_the_trip_through_the_bucket_keeps_a_short_query_local_but_not_a_long_one() -> None:
    mb = 1_000_000
    short = estimate([cells(20 * mb), cells(20 * mb)], others=[8 * mb], trip_bytes=16 * mb)
    assert round(short.gain, 2) == 1.09  # 48 MB on one node against 28 MB + the trip
    assert "the trip through the bucket counts as 16.0 MB" in short.describe()
    long = estimate([cells(100 * mb), cells(100 * mb)], others=[8 * mb], trip_bytes=16 * mb)
    assert round(long.gain, 2) == 1.68
    free = estimate([cells(20 * mb), cells(20 * mb)], others=[8 * mb])
    assert round(free.gain, 2) == 1.71 and "trip" not in free.describe()
