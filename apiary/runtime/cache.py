"""The cell cache: whole cells from a remote root kept on local disk, least recently used first out.

Cells never change once written (a rewrite makes new cells), so a cached copy is valid forever;
the only question is space. Files are named by a hash of the storage key, written to a temporary
name and renamed, so a crash never leaves a half cell that looks whole. The keys held are
reported in the node's heartbeat, so coordinators can send tasks where the cells already are.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

DEFAULT_BYTES = 2 * 1024**3


class CellCache:
    def __init__(self, folder: Path, cap_bytes: int = DEFAULT_BYTES) -> None:
        self.folder = folder
        self.cap_bytes = cap_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, int] = OrderedDict()  # key -> size, oldest first
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._index = folder / "index.txt"
        self._load()

    def path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest() + ".parquet")

    @property
    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    @property
    def size(self) -> int:
        with self._lock:
            return sum(self._entries.values())

    def fetch(self, key: str, download: Callable[[str], bytes]) -> Path:
        """The local copy of ``key``, downloading it on a miss."""
        target = self.path(key)
        with self._lock:
            if key in self._entries and target.exists():
                self._entries.move_to_end(key)
                self.hits += 1
                return target
        data = download(key)  # outside the lock: other bees keep reading meanwhile
        partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)
        with self._lock:
            self.misses += 1
            self._entries[key] = len(data)
            self._entries.move_to_end(key)
            self._evict()
            self._save()
        return target

    def _evict(self) -> None:
        total = sum(self._entries.values())
        while total > self.cap_bytes and len(self._entries) > 1:
            key, size = self._entries.popitem(last=False)
            self.path(key).unlink(missing_ok=True)
            total -= size

    def _save(self) -> None:
        lines = "".join(f"{size}\t{key}\n" for key, size in self._entries.items())
        partial = self._index.with_suffix(".tmp")
        partial.write_text(lines)
        os.replace(partial, self._index)

    def _load(self) -> None:
        """Pick up the previous run's cells (in their old order), dropping what is gone."""
        try:
            lines = self._index.read_text().splitlines()
        except OSError:
            return
        for line in lines:
            size, _, key = line.partition("\t")
            if key and size.isdigit() and self.path(key).exists():
                self._entries[key] = int(size)
        self._evict()
