"""Local directory backend: the embedded default, and a shared disk for one machine."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from obstore.store import LocalStore

from apiary.errors import NotFoundError, StorageError
from apiary.storage.contract import ObjectInfo
from apiary.storage.uri import Location


def make_store(location: Location, *, create: bool = True) -> LocalStore:
    """The store over ``location``'s directory, made first when ``create`` (writers may make a
    new root; readers must not, or a mistyped path silently becomes an empty root)."""
    root = Path(location.path)
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the storage directory {root}: {exc.strerror}; "
                "choose a writable directory with --storage or APIARY_STORAGE"
            ) from exc
    elif not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise NotFoundError(
            f"storage root {root} {what}; nothing was created. Check the path given with "
            "--storage or APIARY_STORAGE, or make a new root by writing to it first "
            "(apiary demo, apiary load, or the SDK)"
        )
    # automatic_cleanup removes folders emptied by vacuum or drop.
    return LocalStore(prefix=root, automatic_cleanup=True)


# obstore's LocalStore writes a put to "<name>#<n>" and renames it when complete; listings hide
# such names, so the staged file of a writer killed in between is found only by walking the disk.
STAGED = re.compile(r"[^#]+#\d+")


def staged_uploads(location: Location, prefix: str) -> list[ObjectInfo]:
    """Staged (never completed) uploads under ``prefix``; keys are relative to the root.

    Times are the files' modification times: the same clock as ``Storage.now()`` on this root.
    """
    if location.scheme != "file":
        return []  # S3 and memory never show a partial object
    root = Path(location.path)
    found = []
    for path in (root / prefix).rglob("*#*"):
        if STAGED.fullmatch(path.name) and path.is_file():
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
            found.append(ObjectInfo(path.relative_to(root).as_posix(), stat.st_size, modified))
    return sorted(found, key=lambda info: info.path)


def delete_staged(location: Location, key: str) -> None:
    """Remove one staged upload found by :func:`staged_uploads` (already gone is fine)."""
    if not STAGED.fullmatch(key.rsplit("/", 1)[-1]):
        raise ValueError(f"{key} is not a staged upload")
    (Path(location.path) / key).unlink(missing_ok=True)
