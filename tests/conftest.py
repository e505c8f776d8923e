"""Shared fixtures: a real moto S3 server (one per session) and a fault-injecting proxy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.fault_proxy import FaultProxy, ProxiedS3
from support.moto_server import MotoServer, S3Target, moto_missing_reason


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    reason = moto_missing_reason()
    if reason is not None:
        # In CI a missing moto must not silently turn every S3 test into a skip.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"moto[server] is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with MotoServer() as server:
        yield server


def _use_target(target: S3Target, monkeypatch: pytest.MonkeyPatch) -> S3Target:
    for key, value in target.env.items():
        monkeypatch.setenv(key, value)
    return target


@pytest.fixture
def s3_bucket(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """A fresh bucket per test (no reset needed); AWS_* variables point at moto."""
    bucket = moto_server.create_bucket()
    return _use_target(S3Target.make(moto_server.endpoint, bucket), monkeypatch)


@pytest.fixture
def fault_proxy(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxiedS3]:
    """A started FaultProxy in front of moto plus a fresh bucket; AWS_* point at the proxy."""
    bucket = moto_server.create_bucket()  # created directly, so no fault rule can hit it
    with FaultProxy(moto_server.endpoint) as proxy:
        yield ProxiedS3(proxy, _use_target(S3Target.make(proxy.endpoint, bucket), monkeypatch))
