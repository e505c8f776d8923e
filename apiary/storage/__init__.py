"""Storage: one contract (:class:`Storage`) over local directories, S3 and memory."""

from __future__ import annotations

import os

from apiary.storage.contract import ObjectInfo, Storage
from apiary.storage.retry import RetryPolicy
from apiary.storage.uri import Location, apiary_home, parse_location, redact

__all__ = [
    "Location",
    "ObjectInfo",
    "RetryPolicy",
    "Storage",
    "apiary_home",
    "open_storage",
    "parse_location",
    "redact",
]


def open_storage(
    uri: str | os.PathLike[str] | Location | None = None,
    *,
    name: str = "default",
    credentials: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    create: bool = True,
) -> Storage:
    """Open a storage root from a URI (see :mod:`apiary.storage.uri`); ``None`` is the default.

    ``create=False`` refuses a local root that does not exist yet (``NotFoundError``) instead of
    making it: what a command that only reads wants. S3 and memory roots need no creating.
    """
    location = uri if isinstance(uri, Location) else parse_location(uri, name)
    if location.scheme == "file":
        from apiary.storage import local

        return Storage(local.make_store(location, create=create), location, retry=retry)
    if location.scheme == "memory":
        from apiary.storage import memory

        return Storage(memory.make_store(location), location, retry=retry)
    from apiary.storage import s3

    return Storage(
        s3.make_store(location, credentials),
        location,
        retry=retry,
        secrets=s3.secrets_in_use(credentials),
    )
