"""The registry under concurrent clients, and its failure messages."""

from __future__ import annotations

import threading

import pytest

from apiary import AlreadyExistsError, Apiary, ApiaryError, EntityNotFoundError


def race(uri: str, n: int, action) -> list[object]:
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        with Apiary("test", uri) as ap:
            barrier.wait()
            try:
                results[i] = action(ap, i)
            except Exception as exc:
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_creates_of_different_hives_all_land(storage_uri) -> None:
    results = race(storage_uri, 6, lambda ap, i: ap.create_hive(f"h{i}"))
    assert results == [None] * 6
    with Apiary("test", storage_uri) as ap:
        assert ap.list_hives() == [f"h{i}" for i in range(6)]
        assert ap.registry.state().version == 5  # six commits, no lost update


def test_concurrent_creates_of_one_frame_agree(tmp_path) -> None:
    uri = str(tmp_path / "root")
    with Apiary("test", uri) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
    same = race(uri, 4, lambda ap, i: ap.create_frame("h", "b", "f", {"x": "int64"})["version"])
    assert same == [0, 0, 0, 0]
    differ = race(uri, 4, lambda ap, i: ap.create_frame("h", "b", "g", {f"c{i}": "int64"}))
    assert sum(isinstance(r, AlreadyExistsError) for r in differ) == 3


def test_missing_entities_and_non_empty_drops(tmp_path) -> None:
    with Apiary("test", str(tmp_path)) as ap:
        with pytest.raises(EntityNotFoundError, match="no hives here yet"):
            ap.list_boxes("h")
        ap.create_hive("farm")
        with pytest.raises(EntityNotFoundError, match="did you mean farm"):
            ap.create_box("farn", "b")
        ap.create_box("farm", "b")
        with pytest.raises(ApiaryError, match="cascade=True"):
            ap.drop_hive("farm")
        assert ap.list_boxes("farm") == ["b"]
