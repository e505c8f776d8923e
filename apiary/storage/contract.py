"""The storage contract every other layer uses, implemented once over an obstore store.

Local directories, S3 and memory all go through the same code: obstore gives each of them a real
atomic create (exclusive link on a filesystem, ``If-None-Match: *`` on S3), and this class adds
the retry rules and the handling of ambiguous conditional writes that commits depend on.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import obstore
import obstore.exceptions as oe

from apiary.errors import CommitStateUnknownError, NotFoundError, StorageError
from apiary.storage.retry import RetryPolicy, is_transient
from apiary.storage.uri import Location, redact

log = logging.getLogger("apiary.storage")


@dataclass(frozen=True)
class ObjectInfo:
    path: str
    size: int
    last_modified: datetime


class Storage:
    """get / get_range / put / put_if_absent / exists / list / delete, with retries.

    Paths are ``/``-separated keys relative to the storage root.
    """

    def __init__(
        self,
        store: Any,
        location: Location,
        *,
        retry: RetryPolicy | None = None,
        secrets: tuple[str, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.location = location
        self.retry = retry or RetryPolicy()
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        self.counters: dict[str, int] = {
            "get": 0,
            "get_range": 0,
            "put": 0,
            "list": 0,
            "head": 0,
            "delete": 0,
        }
        # For metrics: failed attempts (each retry counts) and payload bytes, by operation;
        # conditional puts (commits) won and lost to another writer.
        self.errors: dict[str, int] = dict.fromkeys(self.counters, 0)
        self.bytes: dict[str, int] = dict.fromkeys(self.counters, 0)
        self.conditional = {"won": 0, "lost": 0}

    def __repr__(self) -> str:
        return f"Storage({self.location})"

    # -- reads -----------------------------------------------------------------------------

    def get(self, path: str) -> bytes:
        return bytes(self.get_buffer(path))

    def get_buffer(self, path: str) -> memoryview:
        """An object's bytes, left in the storage client's buffer (no copy into Python bytes:
        for large objects parsed by Arrow)."""
        self.counters["get"] += 1
        data = self._call("get", path, lambda: memoryview(obstore.get(self.store, path).bytes()))
        self.bytes["get"] += len(data)
        return data

    def get_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an object."""
        self.counters["get_range"] += 1
        data = self._call(
            "get_range",
            path,
            lambda: bytes(obstore.get_range(self.store, path, start=start, end=end)),
        )
        self.bytes["get_range"] += len(data)
        return data

    def head(self, path: str) -> ObjectInfo:
        self.counters["head"] += 1
        return _info(self._call("head", path, lambda: obstore.head(self.store, path)))

    def exists(self, path: str) -> bool:
        try:
            self.head(path)
        except NotFoundError:
            return False
        return True

    def list(self, prefix: str, offset: str | None = None) -> list[ObjectInfo]:
        """Every object under ``prefix`` (a folder), sorted by path.

        With ``offset``, only paths after it: reading what is new in a ledger costs one short
        listing instead of a listing of the whole history.
        """
        self.counters["list"] += 1
        prefix = prefix.rstrip("/")

        def run() -> list[ObjectInfo]:
            stream = obstore.list(self.store, prefix or None, offset=offset)
            return [_info(meta) for chunk in stream for meta in chunk]

        return sorted(self._call("list", prefix, run), key=lambda info: info.path)

    # -- writes ----------------------------------------------------------------------------

    def put(self, path: str, data: bytes | memoryview) -> None:
        """Write or replace an object (idempotent, so retried freely)."""
        self.counters["put"] += 1
        self._call("put", path, lambda: obstore.put(self.store, path, data))
        self.bytes["put"] += len(data)

    def delete(self, path: str) -> None:
        """Delete an object; deleting one that is already gone is not an error."""
        self.counters["delete"] += 1
        with contextlib.suppress(NotFoundError):
            self._call("delete", path, lambda: obstore.delete(self.store, path))

    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Create ``path`` atomically; True if this call created it, False if another did.

        ``data`` must be unique to the caller (ledger entries carry a commit id). That makes a
        lost reply resolvable: when a retry finds the object present, it is ours exactly when
        its bytes are ours.
        """
        won = self._put_if_absent(path, data)
        self.conditional["won" if won else "lost"] += 1
        if won:
            self.bytes["put"] += len(data)
        return won

    def _put_if_absent(self, path: str, data: bytes) -> bool:
        self.counters["put"] += 1
        ambiguous: BaseException | None = None
        delays = self.retry.delays()
        while True:
            try:
                obstore.put(self.store, path, data, mode="create")
                return True
            except (oe.AlreadyExistsError, oe.PreconditionError):
                try:
                    existing = self.get(path)
                except NotFoundError:
                    # Refused but absent: S3's 409, a competing conditional write was in flight
                    # and then failed. Nobody holds the name, so try again.
                    existing = None
                except StorageError as exc:
                    if ambiguous is None:
                        raise
                    raise CommitStateUnknownError(
                        f"a reply creating {path} was lost and reading it back failed ({exc}); "
                        "re-read before retrying the write"
                    ) from exc
                if existing is not None:
                    won = existing == data
                    if ambiguous is not None:
                        log.warning(
                            "conditional put of %s: an earlier reply was lost; read back: %s",
                            path,
                            "ours, committed" if won else "another writer's",
                        )
                    return won
                error: BaseException = StorageError(f"{path} refused and absent")
            except Exception as exc:
                self.errors["put"] += 1
                if not is_transient(exc):
                    raise self._translate("put_if_absent", path, exc) from exc
                ambiguous = error = exc
            delay = next(delays, None)
            if delay is None:
                break
            log.warning(
                "conditional put of %s failed (%s); retrying in %.2fs",
                path,
                self._redact(str(error))[:200],
                delay,
            )
            self._sleep(delay)
        return self._settle(path, data, error)

    def _settle(self, path: str, data: bytes, error: BaseException) -> bool:
        """Retries are exhausted: decide from what storage holds, or admit we cannot know."""
        try:
            return self.get(path) == data
        except NotFoundError:
            raise CommitStateUnknownError(
                f"storage at {self.location} kept failing while creating {path} "
                f"({self._redact(str(error))[:200]}); it may still land. Re-read before "
                "retrying the write."
            ) from error
        except StorageError as exc:
            raise CommitStateUnknownError(
                f"could not confirm whether {path} was written to {self.location}: {exc}. "
                "Re-read the frame before retrying the write."
            ) from error

    # -- helpers ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The storage's own clock: the modification time of an object written just now.

        Ages of heartbeats and orphan cells are judged on this clock, never on the node's
        (a Raspberry Pi has no battery-backed clock and may boot in the past).
        """
        probe = f"_clock/{uuid.uuid4().hex}"
        self.put(probe, b"")
        try:
            return self.head(probe).last_modified
        finally:
            self.delete(probe)

    def check_conditional_writes(self) -> None:
        """Refuse a root whose conditional create silently overwrites (no ``If-None-Match``)."""
        probe = f"_clock/probe-{uuid.uuid4().hex}"
        try:
            first = self.put_if_absent(probe, b"first")
            second = self.put_if_absent(probe, b"second")
            kept = self.get(probe)
        finally:
            self.delete(probe)
        if not first or second or kept != b"first":
            raise StorageError(
                f"storage at {self.location} does not support conditional writes "
                "(a create-if-absent overwrote an existing object). Apiary needs them for safe "
                "commits: use S3, MinIO (2024 or newer) or a local directory. "
                "Run 'apiary doctor' for details."
            )

    def _call(self, op: str, path: str, fn: Callable[[], Any]) -> Any:
        delays = self.retry.delays()
        while True:
            try:
                return fn()
            except Exception as exc:
                if op in self.errors and not isinstance(exc, FileNotFoundError | oe.NotFoundError):
                    self.errors[op] += 1  # a missing object is an answer, not an error
                # A missing bucket stays missing: fail at once with a message that says so.
                retry = is_transient(exc) and _NO_SUCH_BUCKET not in str(exc)
                delay = next(delays, None) if retry else None
                if delay is None:
                    raise self._translate(op, path, exc) from exc
                log.warning(
                    "%s %s failed (%s); retrying in %.2fs",
                    op,
                    path or "/",
                    self._redact(str(exc))[:200],
                    delay,
                )
                self._sleep(delay)

    def _translate(self, op: str, path: str, exc: BaseException) -> StorageError:
        if _NO_SUCH_BUCKET in str(exc):  # S3 says 404 for a missing bucket too: not "absent"
            return self._missing_bucket()
        if isinstance(exc, oe.NotFoundError | FileNotFoundError):
            return NotFoundError(f"{path} not found in {self.location}")
        if isinstance(exc, oe.PermissionDeniedError | oe.UnauthenticatedError):
            return StorageError(
                f"{op} {path}: storage at {self.location} refused the credentials or "
                "permissions; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy"
            )
        detail = self._redact(str(exc)).strip().splitlines()
        first = detail[0][:300] if detail else type(exc).__name__
        return StorageError(f"{op} {path} failed on {self.location}: {first}")

    def _missing_bucket(self) -> StorageError:
        bucket = self.location.bucket
        where = self._redact(self.location.endpoint) if self.location.endpoint else "AWS S3"
        return StorageError(
            f"bucket {bucket} does not exist at {where}: create it (for example "
            f"'mc mb ALIAS/{bucket}' on MinIO, or 'aws s3 mb s3://{bucket}'), or correct the "
            "bucket name in the storage URL"
        )

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "****")
        return redact(text)  # and any URL the S3 client put in its message


_NO_SUCH_BUCKET = "<Code>NoSuchBucket</Code>"  # the error body of S3, MinIO and moto


def _info(meta: Any) -> ObjectInfo:
    return ObjectInfo(path=meta["path"], size=meta["size"], last_modified=meta["last_modified"])
