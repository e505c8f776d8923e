"""The one family of errors Apiary raises.

Every error is an :class:`ApiaryError` (itself a ``RuntimeError``), and where a builtin says the
same thing it is mixed in too, so ``except ValueError`` keeps working for bad input. Messages say
what happened *and* what to do about it; they never contain credentials.
"""

from __future__ import annotations


class ApiaryError(RuntimeError):
    """Root of every error Apiary raises."""


class StorageError(ApiaryError):
    """The storage root could not be reached, or refused an operation."""


class NotFoundError(StorageError, LookupError):
    """An object that should exist in storage does not."""


class ConfigError(ApiaryError, ValueError):
    """A setting, URI or option is invalid."""


class InvalidNameError(ApiaryError, ValueError):
    """A hive, box, frame or column name is not allowed."""


class EntityNotFoundError(ApiaryError, LookupError):
    """A hive, box or frame does not exist."""


class AlreadyExistsError(ApiaryError):
    """A hive, box or frame exists already with a different definition."""


class SchemaError(ApiaryError, ValueError):
    """Data does not fit the frame's schema; nothing was written."""


class SqlError(ApiaryError, ValueError):
    """A SQL statement could not be parsed, planned or run as written."""


class ConflictError(ApiaryError):
    """A commit kept losing races and ran out of retries; nothing was committed."""


class WriteConflictError(ConflictError):
    """A concurrent commit changed the cells this rewrite depends on; nothing was committed."""


class CommitStateUnknownError(ConflictError):
    """Storage never confirmed whether a commit landed; re-read the frame before retrying."""


class SerializationError(ApiaryError):
    """A ledger entry, registry state or cell in storage could not be decoded."""


class MemoryExceededError(ApiaryError, MemoryError):
    """A task needed more memory than its bee's budget."""


class TaskTimeoutError(ApiaryError, TimeoutError):
    """A task ran longer than its timeout."""


class TaskAbandonedError(ApiaryError):
    """A task failed on every attempt and was abandoned."""


class QueryCancelledError(ApiaryError):
    """The caller cancelled a running query; nothing was returned."""


class UpgradeNeededError(ApiaryError):
    """The storage root holds data in an older Apiary format; ``apiary upgrade`` converts it."""


class NodeBusyError(ApiaryError):
    """The node is critical and refuses new queries for now; retrying later may succeed."""
