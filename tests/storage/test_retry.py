"""Retry classification and backoff (pure logic)."""

from __future__ import annotations

import random

import obstore.exceptions as oe
import pytest

from apiary.storage.retry import RetryPolicy, is_transient


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (oe.GenericError("Server returned non-2xx status code: 503 Service Unavailable"), True),
        (oe.GenericError("HTTP error: error sending request"), True),
        (oe.GenericError("Server returned non-2xx status code: 500 Internal Server Error"), True),
        (oe.GenericError("<Code>SlowDown</Code>"), True),
        (oe.GenericError("operation timed out"), True),
        (oe.GenericError("Server returned non-2xx status code: 400 Bad Request"), False),
        (oe.NotFoundError("Object at location x not found"), False),
        (oe.AlreadyExistsError("412 Precondition Failed"), False),
        (oe.PermissionDeniedError("403"), False),
        (ConnectionResetError(), True),
        (ValueError("503"), False),
    ],
)
def test_transient_classification(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_delays_are_capped_jittered_and_counted() -> None:
    policy = RetryPolicy(attempts=8, base_delay=0.1, max_delay=0.5)
    delays = list(policy.delays(random.Random(1)))
    assert len(delays) == 7
    assert all(0 <= d <= min(0.5, 0.1 * 2**i) for i, d in enumerate(delays))
    assert len(set(delays)) == 7  # jittered, not in lockstep


_DEBUG_DUMP = (
    '\n\nDebug source:\nGeneric {\n    store: "S3",\n    source: RetryError(\n'
    "        RetryErrorImpl {\n            retries: 0,\n            retry_timeout: 180s,\n"
    "            inner: Status {\n                status: 400,\n            },\n        },\n"
    "    ),\n}"
)


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        # obstore's real messages end in a dump of its settings, "retry_timeout" included
        ("Server returned non-2xx status code: 400 Bad Request" + _DEBUG_DUMP, False),
        ("Server returned non-2xx status code: 503 Service Unavailable" + _DEBUG_DUMP, True),
        ("HTTP error: error sending request" + _DEBUG_DUMP, True),
        ("Generic S3 error: request failed\n\nDebug source:\n  kind: Connect,\n", True),
    ],
)
def test_the_debug_dump_does_not_decide(message: str, transient: bool) -> None:
    assert is_transient(oe.GenericError(message)) is transient
