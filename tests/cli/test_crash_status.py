"""A command that crashes ends with a non-zero status, whatever catches the exception first.

Each case runs the real ``apiary`` entry point in a separate process with one function replaced
by one that raises; a service manager or a script must see the failure in the exit status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CRASH = """
import sys
{patch}
from apiary.cli import main
sys.argv = ["apiary", *sys.argv[1:]]
main()
"""

CASES = {
    # Textual catches an exception raised inside the app, prints it and returns normally.
    "tui": (
        "import tui.app\n"
        "def compose(self):\n"
        "    raise RuntimeError('compose exploded')\n"
        "tui.app.ApiaryApp.compose = compose",
        ["tui", "--observe"],
        "compose exploded",
    ),
    # Any other command: an unexpected error is not an ApiaryError, so it is not "handled".
    "demo": (
        "import apiary.cli.demo\n"
        "def crash(*args, **kwargs):\n"
        "    raise RuntimeError('demo exploded')\n"
        "apiary.cli.demo.open_apiary = crash",
        ["demo", "--rows", "10"],
        "demo exploded",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_crash_exits_non_zero(case: str, tmp_path: Path, isolated_home: Path) -> None:
    patch, args, message = CASES[case]
    root = tmp_path / "root"
    root.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        # Textual without a terminal: its headless driver, as in `App.run(headless=True)`.
        "TEXTUAL_DRIVER": "textual.drivers.headless_driver:HeadlessDriver",
    }
    proc = subprocess.run(
        [sys.executable, "-c", CRASH.format(patch=patch), *args, "--storage", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert message in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert proc.returncode != 0
