"""Local directory backend: the embedded default, and a shared disk for one machine."""

from __future__ import annotations

from pathlib import Path

from obstore.store import LocalStore

from apiary.errors import StorageError
from apiary.storage.uri import Location


def make_store(location: Location) -> LocalStore:
    root = Path(location.path)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the storage directory {root}: {exc.strerror}; "
            "choose a writable directory with --storage or APIARY_STORAGE"
        ) from exc
    # automatic_cleanup removes folders emptied by vacuum or drop.
    return LocalStore(prefix=root, automatic_cleanup=True)
