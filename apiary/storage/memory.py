"""In-process memory backend, shared by name so several clients in one test see one bucket."""

from __future__ import annotations

import threading

from obstore.store import MemoryStore

from apiary.storage.uri import Location

_stores: dict[str, MemoryStore] = {}
_lock = threading.Lock()


def make_store(location: Location) -> MemoryStore:
    with _lock:
        return _stores.setdefault(location.path, MemoryStore())


def forget(name: str) -> None:
    """Drop a named memory store (tests use a fresh name per test instead where they can)."""
    with _lock:
        _stores.pop(name, None)
