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
