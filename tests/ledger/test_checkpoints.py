"""Checkpoints: a frame with 250 versions opens from its checkpoint, not by replaying 250."""

from __future__ import annotations

import pyarrow as pa
import pytest

from apiary import Apiary


@pytest.fixture
def long_frame(tmp_path):
    uri = str(tmp_path / "root")
    with Apiary("test", uri) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"n": "int64"})
        for i in range(250):
            ap.write_to_frame("h", "b", "f", pa.table({"n": [i]}))
    return uri


def test_checkpoints_written_every_hundred_versions(long_frame) -> None:
    with Apiary("test", long_frame) as ap:
        log = ap.frame("h", "b", "f").ledger.log
        names = sorted(
            name
            for o in ap.storage.list("h/b/f/_delta_log")
            if not (name := o.path.rsplit("/", 1)[-1]).endswith(".json")
        )
        assert names == [
            "00000000000000000100.checkpoint.parquet",
            "00000000000000000200.checkpoint.parquet",
            "_last_checkpoint",
        ]
        assert log.latest_checkpoint() == 200


def test_opening_reads_the_checkpoint_and_only_the_entries_after_it(long_frame) -> None:
    with Apiary("test", long_frame) as ap:
        frame = ap.frame("h", "b", "f")
        before = dict(ap.storage.counters)
        snap = frame.ledger.latest()
        gets = ap.storage.counters["get"] - before["get"]
        assert snap.version == 250 and snap.rows == 250
        # hint + checkpoint + the 50 entries after version 200 + one miss (251); no listing
        assert gets == 2 + 50 + 1
        assert ap.storage.counters["list"] == before["list"]
        assert sorted(frame.read()["n"].to_pylist()) == list(range(250))


def test_time_travel_uses_the_nearest_earlier_checkpoint(long_frame) -> None:
    with Apiary("test", long_frame) as ap:
        frame = ap.frame("h", "b", "f")
        frame.ledger.latest()  # open the frame first; then time travel costs only this:
        before = ap.storage.counters["get"]
        assert frame.snapshot(137).rows == 137
        assert ap.storage.counters["get"] - before == 1 + 37  # checkpoint 100 + 37 entries
        assert sorted(frame.read(version=99)["n"].to_pylist()) == list(range(99))


def test_a_missing_checkpoint_only_costs_time(long_frame, tmp_path) -> None:
    (tmp_path / "root/h/b/f/_delta_log/00000000000000000200.checkpoint.parquet").unlink()
    (tmp_path / "root/h/b/f/_delta_log/_last_checkpoint").write_text("{garbage")
    with Apiary("test", long_frame) as ap:
        assert ap.get_frame("h", "b", "f")["rows"] == 250
        assert ap.read_from_frame("h", "b", "f", version=230).num_rows == 230


def test_registry_checkpoint_hint(tmp_path) -> None:
    with Apiary("test", str(tmp_path / "r")) as ap:
        for i in range(105):
            ap.create_hive(f"h{i}")
        assert ap.registry.log.latest_checkpoint() == 100
    with Apiary("test", str(tmp_path / "r")) as ap:
        before = ap.storage.counters["get"]
        assert len(ap.list_hives()) == 105
        assert ap.storage.counters["get"] - before == 2  # the hint, then only the newest state
