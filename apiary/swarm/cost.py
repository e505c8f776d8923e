"""Whether sharing a split query can pay (pure logic): the bytes a task reads against the
bytes the query reads on one node.

Every task reads its own run of the driving frame's cells, the cells of each key-narrowed
frame within its run's key range, and every other frame whole (the bucket is the broadcast
medium). When the other frames are most of the query, as when a small frame drives a join
with a big one, the slowest task reads nearly what one node would, and sharing only adds the
trip through the bucket.

That trip (a manifest, the workers' polls, partial results and their merge: 5-15 ms on a local
root) is counted as bytes the slowest task reads besides its own, ``trip_bytes``, so a short
query, whose tasks read a few megabytes, stays on one node instead of losing to it (TPC-H Q16
at SF1 ran 0.71x shared).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from apiary.ledger import CellMeta


@dataclass(frozen=True)
class Estimate:
    tasks: int
    query_bytes: int  # what every scan of the query reads after pruning, on one node
    task_bytes: int  # the most any one task reads
    trip_bytes: int = 0  # the trip through the bucket, as bytes read (module docstring)

    @property
    def gain(self) -> float:
        """The speedup the bytes allow: query bytes over the slowest task's bytes and the trip."""
        return self.query_bytes / max(self.task_bytes + self.trip_bytes, 1)

    def describe(self) -> str:
        return (
            f"each of {self.tasks} tasks would read up to {_mb(self.task_bytes)} of the "
            f"{_mb(self.query_bytes)} the query reads (frames that cannot be split are read "
            f"whole by every task){self._trip()}, a gain of {self.gain:.2f}x at most"
        )

    def _trip(self) -> str:
        return (
            f" and the trip through the bucket counts as {_mb(self.trip_bytes)}"
            if self.trip_bytes
            else ""
        )


def estimate(
    runs: Sequence[Sequence[CellMeta]],
    others: Sequence[int | Callable[[Sequence[CellMeta]], int]],
    trip_bytes: int = 0,
) -> Estimate:
    """``runs``: the driving cells as tasks would get them. ``others``: for every other scan of
    the query, its bytes, or a function of a run giving the bytes a task over it reads.
    ``trip_bytes``: what the trip through the bucket costs, as bytes read."""
    whole = [o for o in others if isinstance(o, int)]
    narrowed = [o for o in others if not isinstance(o, int)]
    every = [c for run in runs for c in run]
    query = sum(c.bytes for c in every) + sum(whole) + sum(n(every) for n in narrowed)
    slowest = max(
        (sum(c.bytes for c in run) + sum(whole) + sum(n(run) for n in narrowed) for run in runs),
        default=0,
    )
    return Estimate(tasks=len(runs), query_bytes=query, task_bytes=slowest, trip_bytes=trip_bytes)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"
