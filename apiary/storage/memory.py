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
