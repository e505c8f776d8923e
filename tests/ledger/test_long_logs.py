"""A frame with a long history: opening it and committing to it cost the same as for a short one.

Counts storage requests, not time: a listing of the ledger grows with the history (on a local
root the offset is applied after walking the whole folder), so neither opening nor committing
may list it.
"""

from __future__ import annotations

import pytest

from apiary import Apiary
from apiary.commitlog import CHECKPOINT_INTERVAL
from apiary.ledger import CellMeta

VERSIONS = 1_000
FRAME = ("h", "b", "f")


def cell(i: int) -> CellMeta:
    return CellMeta(path=f"cell_{i}.parquet", rows=1, bytes=100)


@pytest.fixture(scope="module")
def long_root(tmp_path_factory) -> str:
    """1,000 one-cell commits (ledger entries only: these tests count the ledger's requests)."""
    root = str(tmp_path_factory.mktemp("long") / "root")
    with Apiary("test", root) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame(*FRAME, {"n": "int64"})
        ledger = ap.frame(*FRAME).ledger
        for i in range(VERSIONS):
            ledger.commit("add_cells", [cell(i)])
    return root


def requests(ap: Apiary, before: dict[str, int]) -> dict[str, int]:
    return {k: v - before[k] for k, v in ap.storage.counters.items() if v != before[k]}


def test_opening_a_long_frame_reads_a_bounded_number_of_objects(long_root) -> None:
    with Apiary("test", long_root) as ap:
        frame = ap.frame(*FRAME)
        before = dict(ap.storage.counters)
        snap = frame.ledger.latest()
        assert snap.version == VERSIONS and len(snap.cells) == VERSIONS
        spent = requests(ap, before)
        # hint + checkpoint + at most 99 entries after it + one miss; no listing at all
        assert spent.get("get", 0) <= 2 + (CHECKPOINT_INTERVAL - 1) + 1
        assert spent.get("list", 0) == 0


def test_a_commit_to_an_up_to_date_long_frame_is_one_create(long_root) -> None:
    with Apiary("test", long_root) as ap:
        ledger = ap.frame(*FRAME).ledger
        ledger.latest()
        before = dict(ap.storage.counters)
        entry = ledger.commit("add_cells", [cell(VERSIONS)])
        assert entry.version == VERSIONS + 1
        assert requests(ap, before) == {"put": 1}  # no listing, no read


def test_catching_up_reads_only_the_new_entries(long_root) -> None:
    with Apiary("test", long_root) as a, Apiary("test", long_root) as b:
        reader = a.frame(*FRAME).ledger
        start = reader.latest().version
        writer = b.frame(*FRAME).ledger
        for i in range(5):
            writer.commit("add_cells", [cell(10_000 + i)])
        before = dict(a.storage.counters)
        assert reader.latest().version == start + 5
        assert requests(a, before) == {"get": 5 + 1}  # the five entries and one miss


def test_a_stale_writer_rebases_by_reading_what_it_missed(long_root) -> None:
    with Apiary("test", long_root) as a, Apiary("test", long_root) as b:
        stale = a.frame(*FRAME).ledger
        start = stale.latest().version
        b.frame(*FRAME).ledger.commit("add_cells", [cell(20_000)])
        before = dict(a.storage.counters)
        entry = stale.commit("add_cells", [cell(20_001)])
        assert entry.version == start + 2
        # a lost create (storage reads the winner back: is it ours?), the missed entry, one
        # miss, the winning create
        assert requests(a, before) == {"put": 2, "get": 3}
        assert {"cell_20000.parquet", "cell_20001.parquet"} <= set(stale.latest().cells)


def test_a_write_does_not_list_the_catalog_once_it_is_read(tmp_path) -> None:
    """Every write resolves its frame through the catalog: once a state is held, finding out
    that nothing changed is one miss, never a listing of ``_registry`` (which grows with it)."""
    import pyarrow as pa

    with Apiary("test", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        for i in range(30):  # a catalog with some history
            ap.create_frame("h", "b", f"f{i}", {"n": "int64"})
        ap.write_to_frame("h", "b", "f0", pa.table({"n": [1]}))
        before = dict(ap.storage.counters)
        ap.write_to_frame("h", "b", "f0", pa.table({"n": [2]}))
        assert requests(ap, before).get("list", 0) == 0
        # another client's change is still seen
        with Apiary("test", str(tmp_path / "root")) as other:
            other.create_frame("h", "b", "late", {"n": "int64"})
        assert "late" in ap.list_frames("h", "b")
