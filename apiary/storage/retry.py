"""Which storage faults are worth retrying, and how long to wait between tries (pure logic)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

import obstore.exceptions as oe

# obstore reports HTTP failures as GenericError text; these are the ones a retry can fix:
# server errors, throttling, S3's "another conditional write is in flight" (409), and
# connections that timed out, were reset or closed before a reply arrived.
_TRANSIENT = re.compile(
    r"\b(5\d\d|429|409)\b|SlowDown|Throttl|ServiceUnavailable|InternalError|RequestTimeout"
    r"|ConditionalRequestConflict|timed out|timeout|connection|reset|broken pipe"
    r"|error sending request|incomplete message|unexpected eof|end of file",
    re.IGNORECASE,
)

_DEBUG = "Debug source:"
# The dump names the HTTP layer's own failure kind: transient whatever the message says.
_TRANSIENT_CAUSE = re.compile(r"\bkind: (Timeout|Connect|Interrupted)\b")


def is_transient(exc: BaseException) -> bool:
    """True for faults that may succeed when tried again (and may have been applied already)."""
    if isinstance(exc, oe.NotFoundError | oe.AlreadyExistsError | oe.PreconditionError):
        return False
    if isinstance(exc, oe.PermissionDeniedError | oe.UnauthenticatedError | oe.InvalidPathError):
        return False
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    if not isinstance(exc, oe.BaseError):
        return False
    # obstore appends a "Debug source:" dump of its client settings (``retry_timeout: 180s``…),
    # which would make every error look like a timeout: judge the message itself only.
    message = str(exc).split(_DEBUG, 1)[0]
    return bool(_TRANSIENT.search(message) or _TRANSIENT_CAUSE.search(str(exc)))


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter.

    ``attempts`` counts every try, the first included. Full jitter spreads out nodes that failed
    together (a throttled bucket answers the whole swarm at once) so they do not retry in step.
    """

    attempts: int = 6
    base_delay: float = 0.05
    max_delay: float = 2.0

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The sleep before each retry: ``attempts - 1`` values."""
        rand = rng or random
        for attempt in range(self.attempts - 1):
            yield rand.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
