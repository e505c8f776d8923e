"""Apiary: a lakehouse for small computers.

Write Arrow data from Python, query it with SQL, and let every node pointed at the same bucket
share the work. See :class:`apiary.Apiary`.
"""

from apiary.errors import (
    AlreadyExistsError,
    ApiaryError,
    CommitStateUnknownError,
    ConfigError,
    ConflictError,
    EntityNotFoundError,
    InvalidNameError,
    MemoryExceededError,
    NotFoundError,
    SchemaError,
    SerializationError,
    SqlError,
    StorageError,
    TaskAbandonedError,
    TaskTimeoutError,
    WriteConflictError,
)
from apiary.sdk import Apiary
from apiary.version import __version__

__all__ = [
    "AlreadyExistsError",
    "Apiary",
    "ApiaryError",
    "CommitStateUnknownError",
    "ConfigError",
    "ConflictError",
    "EntityNotFoundError",
    "InvalidNameError",
    "MemoryExceededError",
    "NotFoundError",
    "SchemaError",
    "SerializationError",
    "SqlError",
    "StorageError",
    "TaskAbandonedError",
    "TaskTimeoutError",
    "WriteConflictError",
    "__version__",
]
