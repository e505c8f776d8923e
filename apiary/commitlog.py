"""Numbered JSON objects created with ``put_if_absent``: the shape of both the registry and ledgers.

``<prefix>/000000.json, 000001.json, ...`` — whoever creates version N first owns it, and only
after reading N-1, so versions have no gaps. A client that knows version N learns what is new by
reading N+1, N+2, ... until one is absent: one GET per new entry (each must be read anyway) and
one miss, whatever the length of the history. A listing, by contrast, grows with the history on a
filesystem (the offset is applied after walking the folder) and also returns the checkpoints.
``<prefix>/_checkpoint/`` holds checkpoints and a hint naming the latest, so that opening a long
log starts near its end.
"""

from __future__ import annotations

import json
import re
from typing import Any

from apiary.errors import NotFoundError, SerializationError
from apiary.storage import ObjectInfo, Storage

WIDTH = 6
CHECKPOINT_INTERVAL = 100
_VERSION_FILE = re.compile(r"(\d+)\.json")


def version_name(version: int) -> str:
    return f"{version:0{WIDTH}d}.json"


class CommitLog:
    def __init__(self, storage: Storage, prefix: str) -> None:
        self.storage = storage
        self.prefix = prefix.rstrip("/")

    def path(self, version: int) -> str:
        return f"{self.prefix}/{version_name(version)}"

    def checkpoint_path(self, version: int) -> str:
        return f"{self.prefix}/_checkpoint/{version_name(version)}"

    @property
    def hint_path(self) -> str:
        return f"{self.prefix}/_checkpoint/_latest.json"

    # -- discovering versions ----------------------------------------------------------------

    def versions_after(self, version: int | None) -> list[ObjectInfo]:
        """Entries newer than ``version`` (all entries for None), in version order."""
        offset = None
        # Keys sort as text, so the offset trick only holds while the width stays the same
        # (version 999999 -> 1000000); at that boundary list everything once.
        if version is not None and len(str(version)) == len(str(version + 1)):
            offset = self.path(version)
        found = []
        for info in self.storage.list(self.prefix, offset=offset):
            name = info.path[len(self.prefix) + 1 :]
            match = _VERSION_FILE.fullmatch(name)
            if match and (version is None or int(match[1]) > version):
                found.append((int(match[1]), info))
        return [info for _, info in sorted(found, key=lambda pair: pair[0])]

    @staticmethod
    def version_of(info: ObjectInfo) -> int:
        return int(info.path.rsplit("/", 1)[-1].split(".")[0])

    def latest_checkpoint(self) -> int | None:
        """The version the hint names, or None. A missing or stale hint only costs time."""
        try:
            hint = self.read_json(self.hint_path)
            return int(hint["version"])
        except NotFoundError:
            return None
        except (SerializationError, KeyError, TypeError, ValueError):
            return None  # a damaged hint is only an optimisation lost; entries remain the truth

    # -- reading and writing -----------------------------------------------------------------

    def read_json(self, path: str) -> Any:
        raw = self.storage.get(path)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SerializationError(
                f"{path} in {self.storage.location} is not valid JSON ({exc}). It was damaged "
                "outside Apiary; restore it from a backup or copy of the bucket."
            ) from exc

    def read(self, version: int) -> Any:
        return self.read_json(self.path(version))

    def read_if_present(self, version: int) -> Any | None:
        """Version ``version``'s document, or None when nobody has created it (yet)."""
        try:
            return self.read(version)
        except NotFoundError:
            return None

    def exists(self, version: int) -> bool:
        return self.storage.exists(self.path(version))

    def last_version(self) -> int:
        """The newest version by name alone (no entry is read); -1 for an empty log.

        Lists from the checkpoint the hint names: for messages and checks, not hot paths.
        """
        checkpoint = self.latest_checkpoint()
        found = self.versions_after(checkpoint - 1 if checkpoint else None)
        if not found:
            found = self.versions_after(None)  # a hint ahead of the entries (restored bucket)
        return self.version_of(found[-1]) if found else -1

    def try_create(self, version: int, document: dict[str, Any]) -> bool:
        """Create version ``version``; False if another writer got there first."""
        return self.storage.put_if_absent(self.path(version), encode(document))

    def write_checkpoint(self, version: int, document: dict[str, Any]) -> None:
        """Checkpoint first, hint second: a hint never names a checkpoint that is not there."""
        self.storage.put(self.checkpoint_path(version), encode(document))
        self.storage.put(self.hint_path, encode({"version": version}))


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
