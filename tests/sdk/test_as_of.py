"""Time travel by time: ``read_from_frame(..., as_of=...)`` and ``"frame@<time>"`` in SQL read
the newest version committed by then, judged on each version's recorded commit time."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.errors import ConfigError, EntityNotFoundError, SqlError

F = ("farm", "sensors", "temps")


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def frame(tmp_path):
    """A frame with versions 1..4, each adding (version) rows, a little apart in time."""
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        ap.create_hive("farm")
        ap.create_box("farm", "sensors")
        ap.create_frame(*F, {"v": "int64"})
        for version in range(1, 5):
            time.sleep(0.02)  # commit times in milliseconds: keep them distinct
            ap.write_to_frame(*F, pa.table({"v": [version] * version}))
        ledger = ap.frame(*F).ledger
        times = [ledger.commit_time(v) for v in range(5)]
        yield ap, times


def test_as_of_reads_the_version_committed_by_then(frame) -> None:
    ap, times = frame
    assert times == sorted(times) and len(set(times)) == 5
    for version in range(5):
        rows = sum(range(1, version + 1))
        assert ap.read_from_frame(*F, as_of=times[version]).num_rows == rows
        assert ap.version_as_of(*F, times[version]) == version
        if version < 4:
            between = times[version] + (times[version + 1] - times[version]) / 2
            assert ap.version_as_of(*F, between) == version
    assert ap.version_as_of(*F, times[-1] + timedelta(days=365)) == 4
    # Any zone names the same instant.
    plus_two = times[2].astimezone(timezone(timedelta(hours=2)))
    assert ap.read_from_frame(*F, as_of=plus_two).num_rows == 3


def test_as_of_errors(frame) -> None:
    ap, times = frame
    with pytest.raises(EntityNotFoundError, match=re.escape(times[0].isoformat())):
        ap.read_from_frame(*F, as_of=times[0] - timedelta(seconds=1))
    with pytest.raises(ConfigError, match="timezone-aware"):
        ap.read_from_frame(*F, as_of=datetime(2026, 11, 30, 12))
    with pytest.raises(ConfigError, match="not both"):
        ap.read_from_frame(*F, version=1, as_of=times[1])


def test_as_of_reads_few_entries(frame) -> None:
    """A binary search over commit times: a handful of GETs, not one per version."""
    ap, times = frame
    for _ in range(40):
        ap.write_to_frame(*F, pa.table({"v": [0]}))
    ledger = ap.frame(*F).ledger
    ledger.latest()
    before = ap.storage.counters["get"]
    assert ledger.version_at(times[3]) == 3
    assert ap.storage.counters["get"] - before <= 10  # 45 versions: ~log2(45) + 2


def test_sql_time_form(frame) -> None:
    ap, times = frame
    ap.sql("USE farm.sensors")
    for version in (1, 3):
        got = ap.sql(f'SELECT count(*) AS n FROM "temps@{stamp(times[version])}"')
        assert got.column("n").to_pylist() == [sum(range(1, version + 1))]
        assert ap.last_query.frames[0].version == version
    both = ap.sql(
        f'SELECT (SELECT count(*) FROM "temps@{stamp(times[1])}") AS a, '
        f'(SELECT count(*) FROM farm.sensors."temps@v2") AS b, (SELECT count(*) FROM temps) AS c'
    )
    assert both.to_pylist() == [{"a": 1, "b": 3, "c": 10}]
    described = ap.sql(f'DESCRIBE "temps@{stamp(times[2])}"').to_pylist()
    assert {"property": "version", "value": "2"} in described
    early = stamp(times[0] - timedelta(seconds=5))
    with pytest.raises(EntityNotFoundError, match="did not exist yet"):
        ap.sql(f'SELECT * FROM "temps@{early}"')
    with pytest.raises(SqlError, match="needs its zone"):
        ap.sql('SELECT * FROM "temps@2026-11-30T12:00:00"')
