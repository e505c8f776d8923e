"""A manifest without tasks for coordinator tests: a count over one frame of one column."""

from __future__ import annotations

from apiary.swarm.manifest import FrameRef, Manifest

FRAGMENT = Manifest(
    query_id="0" * 32,
    coordinator="n1",
    frames=[
        FrameRef(
            hive="h", box="b", frame="f", columns=[{"name": "x", "type": "int64", "nullable": True}]
        )
    ],
    fragment_sql="SELECT count(*) AS n FROM h.b.f",
    tasks=[],
)
