"""Validation of the names people type, and escaping of partition values into paths.

Names become path segments in the bucket, so they are checked against a strict pattern: nothing a
user types can climb out of the storage root or collide with Apiary's own ``_``-prefixed folders.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from apiary.errors import InvalidNameError

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def validate_name(name: object, kind: str) -> str:
    """Return ``name`` if it is a valid hive/box/frame/column name, else raise.

    Letters, digits and ``_``, starting with a letter, at most 64 characters. The leading letter
    keeps user folders apart from ``_registry``, ``_delta_log`` and the other internal folders.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"{kind} name must be a string, got {type(name).__name__}")
    shown = name if len(name) <= 40 else name[:40] + "…"
    if not name:
        raise InvalidNameError(f"{kind} name is empty; use letters, digits and '_'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"{kind} name {shown!r} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if not _NAME.fullmatch(name):
        raise InvalidNameError(
            f"{kind} name {shown!r} is not allowed: use letters, digits and '_', "
            "starting with a letter (no spaces, '.', '/' or '-')"
        )
    return name


def escape_partition_value(value: str) -> str:
    """Escape a partition value so it is exactly one safe path segment.

    Everything but letters, digits, ``-`` and ``_`` is percent-encoded, including ``.`` so that
    ``.`` and ``..`` can never appear as a segment. The empty string gets a marker of its own.
    """
    if value == "":
        return "%00"
    return quote(value, safe="-_").replace(".", "%2E").replace("~", "%7E")


def unescape_partition_value(segment: str) -> str:
    if segment == "%00":
        return ""
    return unquote(segment)


def partition_path(partition: dict[str, str], columns: list[str]) -> str:
    """``region=eu/day=2026-01-01`` for the given partition values, in partition-column order."""
    return "/".join(f"{col}={escape_partition_value(partition[col])}" for col in columns)
