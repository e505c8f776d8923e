"""Apiary: a lakehouse for small computers.

Write Arrow data from Python, query it with SQL, and let every node pointed at the same bucket
share the work. See :class:`apiary.Apiary`.
"""

import apiary.allocator  # noqa: F401  (first: before anything loads DataFusion)
from apiary.errors import (
    AlreadyExistsError,
    ApiaryError,
    CommitStateUnknownError,
    ConfigError,
    ConflictError,
    EntityNotFoundError,
    InvalidNameError,
    MemoryExceededError,
    NodeBusyError,
    NotFoundError,
    QueryCancelledError,
    SchemaError,
    SerializationError,
    SqlError,
    StorageError,
    TaskAbandonedError,
    TaskTimeoutError,
    UpgradeNeededError,
    WriteConflictError,
)
from apiary.version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from apiary.sdk import Apiary


def __getattr__(name: str) -> object:
    # The SDK pulls in DataFusion; loading it only when asked for keeps `import apiary.errors`
    # (and so `hardware`, and `apiary --version`) light.
    if name == "Apiary":
        from apiary.sdk import Apiary

        return Apiary
    raise AttributeError(f"module 'apiary' has no attribute {name!r}")


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
    "NodeBusyError",
    "NotFoundError",
    "QueryCancelledError",
    "SchemaError",
    "SerializationError",
    "SqlError",
    "StorageError",
    "TaskAbandonedError",
    "TaskTimeoutError",
    "UpgradeNeededError",
    "WriteConflictError",
    "__version__",
]
