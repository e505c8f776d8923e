"""A poller on a local root is woken by the kernel when something appears under ``_queries/``.

``wait`` returns True only when woken (an event or a poke) and False when its time ran out, so
each test below waits far longer than any event takes and asserts how the wait ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from apiary.storage import open_storage
from apiary.storage.uri import parse_location
from apiary.storage.watch import Inotify, Timer, Watch, watch, watch_folder

LONG = 30.0  # a wait this long ends by an event; the test fails if it runs out instead


def _wakes(watching: Watch, action: Callable[[], object]) -> None:
    """``action`` done from another thread while ``watching`` waits ends the wait early."""
    thread = threading.Thread(target=lambda: (time.sleep(0.05), action()))
    thread.start()
    try:
        assert watching.wait(LONG) is True
    finally:
        thread.join()


def test_a_manifest_written_by_another_writer_wakes_the_watch(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    watching = watch(storage.location, "_queries")
    try:
        assert isinstance(watching, Inotify)  # Linux, as every Apiary node runs
        assert watching.wait(0.01) is False  # nothing happened: the time ran out
        _wakes(watching, lambda: storage.put("_queries/q1/manifest.json", b"{}"))
        # The folder empties and goes (a local store removes emptied folders), then a new
        # query makes it again: still seen.
        storage.delete("_queries/q1/manifest.json")
        while watching.wait(0.05):
            pass  # the deletion's own events, if any
        assert not (tmp_path / "root" / "_queries").exists()
        _wakes(watching, lambda: storage.put("_queries/q2/manifest.json", b"{}"))
        # A file added to a query folder that already exists (a partial result) is seen too.
        while watching.wait(0.05):
            pass
        _wakes(watching, lambda: storage.put("_queries/q2/t0000.n1.arrow", b"partial"))
    finally:
        watching.close()


def test_a_watch_for_manifests_sleeps_through_answers_and_heartbeats(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    watching = watch(storage.location, "_queries", names=frozenset({"manifest.json"}))
    try:
        # Written in full before the wait reads an event: the new folders are watched only
        # then, so the manifest already in them is what must wake the wait.
        storage.put("_queries/q1/manifest.json", b"{}")
        assert watching.wait(LONG) is True
        while watching.wait(0.05):
            pass
        storage.put("_queries/q1/t0000.n1.arrow", b"partial")
        storage.put("_queries/q1/t0001.n1.error.json", b"failed")
        storage.put("_queries/q9/t0000.n1.arrow", b"a folder with no manifest")
        storage.put("_heartbeats/n1.json", b"{}")
        assert watching.wait(0.5) is False  # none of them gives a node work
        _wakes(watching, lambda: storage.put("_queries/q1/manifest.json", b"{ }"))  # reassigned
        _wakes(watching, lambda: storage.put("_queries/q2/manifest.json", b"{}"))
    finally:
        watching.close()


def test_folders_the_watcher_ignores_never_wake_it(tmp_path: Path) -> None:
    """A node leaves the queries it coordinates to its coordinator: their manifests appearing
    must not wake its worker, while any other query's still does."""
    storage = open_storage(str(tmp_path / "root"))
    mine = {"mine"}
    manifests = frozenset({"manifest.json"})
    watching = watch(storage.location, "_queries", names=manifests, ignore=mine.__contains__)
    try:
        storage.put("_queries/mine/manifest.json", b"{}")
        assert watching.wait(0.5) is False
        storage.put("_queries/mine/manifest.json", b"{ }")  # rewritten: still not this node's
        assert watching.wait(0.5) is False
        _wakes(watching, lambda: storage.put("_queries/other/manifest.json", b"{}"))
    finally:
        watching.close()


def test_a_poke_wakes_a_wait_on_any_backend(tmp_path: Path) -> None:
    for watching in (watch(open_storage(str(tmp_path / "root")).location, "_queries"), Timer()):
        try:
            _wakes(watching, watching.poke)
            assert watching.wait(0.01) is False  # the poke was used up
        finally:
            watching.close()


def test_roots_the_kernel_cannot_watch_get_a_timer() -> None:
    assert isinstance(watch(parse_location("memory://x"), "_queries"), Timer)
    s3 = parse_location("s3://bucket/prefix?endpoint=http://127.0.0.1:9")
    assert isinstance(watch(s3, "_queries"), Timer)


def test_one_folder_is_watched_for_files_landing_in_it(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    assert isinstance(watch_folder(storage.location, "_queries/gone"), Timer)  # not there
    assert isinstance(watch_folder(parse_location("memory://x"), "_queries/q1"), Timer)
    storage.put("_queries/q1/manifest.json", b"{}")
    watching = watch_folder(storage.location, "_queries/q1")
    try:
        assert isinstance(watching, Inotify)
        assert watching.wait(0.01) is False
        _wakes(watching, lambda: storage.put("_queries/q1/t0000.n2.arrow", b"answer"))
    finally:
        watching.close()


def test_a_staged_upload_wakes_nobody_until_it_lands(tmp_path: Path) -> None:
    """A local put writes ``name#n`` first and renames it when complete. A listing shows only
    the completed name, so only the rename is worth a look (each look took CPU from the bee
    working on the same core)."""
    storage = open_storage(str(tmp_path / "root"))
    storage.put("_queries/q1/manifest.json", b"{}")
    folder = tmp_path / "root" / "_queries" / "q1"
    watching = watch_folder(storage.location, "_queries/q1")
    try:
        assert watching.notifies and not Timer().notifies
        (folder / "t0000.n2.arrow#7").write_bytes(b"half an answer")
        assert watching.wait(0.2) is False  # nothing a listing would show
        _wakes(watching, lambda: (folder / "t0000.n2.arrow#7").rename(folder / "t0000.n2.arrow"))
        listed = sorted(o.path for o in storage.list("_queries/q1"))
        assert listed == ["_queries/q1/manifest.json", "_queries/q1/t0000.n2.arrow"]
    finally:
        watching.close()
