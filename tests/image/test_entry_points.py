"""The builders start from a fresh clone: ``just binary`` with nothing but Python's standard
library, ``python -m image.cli`` / ``python -m image`` as the ``apiary-image`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=60
    )


def test_binary_builder_needs_only_the_standard_library() -> None:
    # -S: no site-packages at all, so any third-party import (rich, click…) fails here.
    proc = _run("-S", "-m", "image.binary", "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--arch {aarch64,x86_64}" in proc.stdout
    proc = _run("-S", "-c", "import image.foreign")
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("module", ["image.cli", "image"])
def test_image_cli_runs_as_a_module(module: str) -> None:
    proc = _run("-m", module, "build", "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage:" in proc.stdout and "--base" in proc.stdout
