"""Numbered objects created with ``put_if_absent``, and the one commit loop over them.

``<prefix>/000000.json, 000001.json, ...`` (the registry) or ``<frame>/_delta_log/
00000000000000000000.json, ...`` (a frame's Delta log) — whoever creates version N first owns
it, and only after reading N-1, so versions have no gaps. A client that knows version N learns
what is new by reading N+1, N+2, ... until one is absent: one GET per new entry (each must be
read anyway) and one miss, whatever the length of the history. A listing, by contrast, grows
with the history on a filesystem and also returns the checkpoints.

:func:`commit` is the only commit loop: the registry and every frame go through it, with one
retry budget, one backoff, one rebase hook and one checkpoint rule (every
``CHECKPOINT_INTERVAL`` versions, best effort: a missing checkpoint only costs time).
Lost replies are resolved by :meth:`apiary.storage.Storage.put_if_absent`, which reads the
object back and compares it with ours; every entry carries a fresh commit id, so equal bytes
mean our commit.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from apiary.delta.checkpoint import decode_last_checkpoint
from apiary.errors import ConflictError, NotFoundError, SerializationError
from apiary.storage import ObjectInfo, Storage

log = logging.getLogger("apiary.commitlog")

CHECKPOINT_INTERVAL = 100
_VERSION_FILE = re.compile(r"(\d+)\.json")

State = TypeVar("State")


class CommitLog:
    """A registry-style log: ``NNNNNN.json`` entries, ``_checkpoint/`` with a hint."""

    width = 6

    def __init__(self, storage: Storage, prefix: str) -> None:
        self.storage = storage
        self.prefix = prefix.rstrip("/")

    def version_name(self, version: int) -> str:
        return f"{version:0{self.width}d}.json"

    def path(self, version: int) -> str:
        return f"{self.prefix}/{self.version_name(version)}"

    def checkpoint_path(self, version: int) -> str:
        return f"{self.prefix}/_checkpoint/{self.version_name(version)}"

    @property
    def hint_path(self) -> str:
        return f"{self.prefix}/_checkpoint/_latest.json"

    # -- discovering versions ----------------------------------------------------------------

    def versions_after(self, version: int | None) -> list[ObjectInfo]:
        """Entries newer than ``version`` (all entries for None), in version order."""
        offset = None
        # Keys sort as text, so the offset trick only holds while the width stays the same.
        if version is not None and len(self.version_name(version)) == len(
            self.version_name(version + 1)
        ):
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
            raw = self.storage.get(self.hint_path)
        except NotFoundError:
            return None
        return self.decode_hint(raw)

    def decode_hint(self, raw: bytes) -> int | None:
        try:
            version = json.loads(raw)["version"]
        except (ValueError, KeyError, TypeError):
            return None  # a damaged hint is only an optimisation lost; entries remain the truth
        return version if isinstance(version, int) and version >= 0 else None

    def last_version(self) -> int:
        """The newest version by name alone (no entry is read); -1 for an empty log."""
        checkpoint = self.latest_checkpoint()
        found = self.versions_after(checkpoint - 1 if checkpoint else None)
        if not found:
            found = self.versions_after(None)  # a hint ahead of the entries (restored bucket)
        return self.version_of(found[-1]) if found else -1

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

    def read_raw_if_present(self, version: int) -> bytes | None:
        try:
            return self.storage.get(self.path(version))
        except NotFoundError:
            return None

    def read_if_present(self, version: int) -> Any | None:
        """Version ``version``'s document, or None when nobody has created it (yet)."""
        try:
            return self.read(version)
        except NotFoundError:
            return None

    def exists(self, version: int) -> bool:
        return self.storage.exists(self.path(version))

    def try_create(self, version: int, data: bytes) -> bool:
        """Create version ``version``; False if another writer got there first."""
        return self.storage.put_if_absent(self.path(version), data)

    def write_checkpoint(self, version: int, data: bytes, hint: bytes) -> None:
        """Checkpoint first, hint second: a hint never names a checkpoint that is not there."""
        self.storage.put(self.checkpoint_path(version), data)
        self.storage.put(self.hint_path, hint)


class DeltaLog(CommitLog):
    """A frame's ``_delta_log/``: 20-digit entries, Parquet checkpoints, ``_last_checkpoint``."""

    width = 20

    def checkpoint_path(self, version: int) -> str:
        return f"{self.prefix}/{version:0{self.width}d}.checkpoint.parquet"

    @property
    def hint_path(self) -> str:
        return f"{self.prefix}/_last_checkpoint"

    def decode_hint(self, raw: bytes) -> int | None:
        return decode_last_checkpoint(raw)


def is_checkpoint_version(version: int) -> bool:
    return version > 0 and version % CHECKPOINT_INTERVAL == 0


@dataclass(frozen=True)
class Attempt(Generic[State]):
    """What one attempt would commit: the entry's bytes and the state once it has landed."""

    version: int
    data: bytes
    after: State


def commit(
    log_: CommitLog,
    base: State,
    *,
    prepare: Callable[[State], Attempt[State] | None],
    refresh: Callable[[State], State],
    checkpoint: Callable[[State, int], None] | None = None,
    retries: int,
    what: str,
) -> tuple[State, Attempt[State] | None]:
    """Commit what ``prepare`` builds on ``base`` as the next version; rebase on lost races.

    ``prepare(base)`` returns the attempt for ``base`` (None: nothing to commit; it may raise,
    e.g. a WriteConflict found while rebasing); ``refresh(base)`` returns the newest state after
    losing a race. Only the small entry is retried, never what the caller uploaded before.
    Returns the state after the commit and the attempt that landed (None when there was
    nothing to do).
    """
    for attempt_number in range(retries + 1):
        attempt = prepare(base)
        if attempt is None:
            return base, None
        if log_.try_create(attempt.version, attempt.data):
            if checkpoint is not None and is_checkpoint_version(attempt.version):
                try:
                    checkpoint(attempt.after, attempt.version)
                except Exception as exc:  # the commit stands; a missing checkpoint costs time
                    log.warning("%s: could not write checkpoint %d: %s", what, attempt.version, exc)
            return attempt.after, attempt
        log.debug("%s: lost version %d (attempt %d)", what, attempt.version, attempt_number + 1)
        # Another writer won: a short jittered pause lets it finish before we race again.
        time.sleep(random.uniform(0, 0.002 * min(attempt_number + 1, 5)))
        base = refresh(base)
    raise ConflictError(
        f"a commit to {what} lost {retries + 1} races in a row and was not applied; what it "
        "uploaded is unreferenced (vacuum removes it). Retry, or raise commit_retries when "
        "many writers share it."
    )


def encode(document: dict[str, Any]) -> bytes:
    """Canonical JSON of a registry state (sorted keys, strict numbers)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
