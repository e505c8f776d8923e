"""The storage contract, held to the same behaviour on every backend (local, memory, S3)."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from apiary.errors import NotFoundError
from apiary.storage import open_storage


@pytest.fixture
def storage(storage_uri: str):
    return open_storage(storage_uri)


def test_put_get_roundtrip_and_range(storage) -> None:
    storage.put("a/b/c.bin", b"0123456789")
    assert storage.get("a/b/c.bin") == b"0123456789"
    assert storage.get_range("a/b/c.bin", 2, 5) == b"234"
    storage.put("a/b/c.bin", b"new")
    assert storage.get("a/b/c.bin") == b"new"


def test_missing_object_is_not_found(storage) -> None:
    with pytest.raises(NotFoundError, match="nope/x"):
        storage.get("nope/x")
    assert not storage.exists("nope/x")
    storage.delete("nope/x")  # deleting something absent is fine


def test_list_is_sorted_with_sizes_and_folder_bounded(storage) -> None:
    for name, data in [("p/b", b"22"), ("p/a", b"1"), ("p/sub/c", b"333"), ("pq/x", b"")]:
        storage.put(name, data)
    listed = storage.list("p")
    assert [(i.path, i.size) for i in listed] == [("p/a", 1), ("p/b", 2), ("p/sub/c", 3)]
    assert all(isinstance(i.last_modified, datetime) for i in listed)
    assert [i.path for i in storage.list("p", offset="p/a")] == ["p/b", "p/sub/c"]
    assert storage.list("empty") == []


def test_put_if_absent_wins_once(storage) -> None:
    assert storage.put_if_absent("log/000001.json", b"mine") is True
    assert storage.put_if_absent("log/000001.json", b"theirs") is False
    assert storage.get("log/000001.json") == b"mine"
    # The same bytes again is how a retry after a lost reply sees its own commit.
    assert storage.put_if_absent("log/000001.json", b"mine") is True


def test_put_if_absent_has_exactly_one_winner_under_threads(storage) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        results.append(storage.put_if_absent("race/000000.json", f"writer-{i}".encode()))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    winner = results.index(True)
    assert storage.get("race/000000.json").decode().startswith("writer-")
    assert len(results) == 8 and winner >= 0


def test_conditional_writes_are_verified_and_clock_read(storage) -> None:
    storage.check_conditional_writes()
    assert storage.list("_clock") == []  # the probe cleans up after itself
    now = storage.now()
    assert now.tzinfo is not None


def test_delete_removes(storage) -> None:
    storage.put("d/x", b"1")
    storage.delete("d/x")
    assert not storage.exists("d/x")
