"""Shared fixtures: a real moto S3 server (one per session) and a fault-injecting proxy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from apiary.testing.fault_proxy import FaultProxy, ProxiedS3
from apiary.testing.moto_server import MotoServer, S3Target, moto_missing_reason


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


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep every test away from the developer's ~/.apiary, config files and APIARY_* settings."""
    home = tmp_path_factory.mktemp("apiary-home")
    for key in list(os.environ):
        if key.startswith("APIARY_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("APIARY_HOME", str(home))
    monkeypatch.setenv("APIARY_CONFIG", str(home / "absent.toml"))
    return home


@pytest.fixture(params=["local", "memory", "s3"])
def storage_uri(request: pytest.FixtureRequest, tmp_path) -> str:
    """One storage root per backend: every test using it runs against all three."""
    if request.param == "local":
        return str(tmp_path / "root")
    if request.param == "memory":
        return f"memory://{request.node.name}-{os.getpid()}-{id(request)}"
    return request.getfixturevalue("s3_bucket").uri
