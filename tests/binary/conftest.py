"""The frozen ``apiary`` program, built once per session (tests/support/frozen.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
from support.frozen import FrozenRelease, frozen_release


@pytest.fixture(scope="session")
def release() -> FrozenRelease:
    return frozen_release()


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def frozen(release: FrozenRelease, isolated_home) -> Run:
    """Run the frozen executable as a user would; the test's APIARY_HOME and AWS_* apply."""

    def run(*args: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "120"}
        env.pop("PYTHONPATH", None)  # the binary must not need (or see) the sources
        proc = subprocess.run(
            [str(release.executable), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            **kwargs,  # type: ignore[call-overload]
        )
        if check:
            assert proc.returncode == 0, f"apiary {' '.join(args)}: {proc.stderr[-3000:]}"
        return proc

    return run
