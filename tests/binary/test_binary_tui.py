"""The frozen ``apiary tui`` in a real pseudo-terminal: it draws its screen and quits on ctrl+q."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from support.frozen import FrozenRelease

# The first test here may pay for building the frozen release (~2 min on 2 cores, more when
# busy): tests/support/frozen.py builds it once per session for every module that needs it.
pytestmark = [pytest.mark.binary, pytest.mark.timeout(900), pytest.mark.tui]

ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
CTRL_Q = b"\x11"


def _read_until(fd: int, proc: subprocess.Popen[bytes], wanted: bytes, seconds: float) -> bytes:
    """Terminal output (escape codes removed) up to the first screen containing ``wanted``."""
    raw, deadline = b"", time.monotonic() + seconds
    while wanted not in ANSI.sub(b"", raw):
        left = deadline - time.monotonic()
        shown = ANSI.sub(b"", raw)[-2000:]
        assert left > 0, f"no {wanted!r} on screen after {seconds} s: {shown!r}"
        assert proc.poll() is None, f"tui exited ({proc.returncode}): {shown!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            try:
                raw += os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
    return ANSI.sub(b"", raw)


def _drain(fd: int, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                os.read(fd, 65536)
            except OSError:
                break
    proc.wait(timeout=max(deadline - time.monotonic(), 1))


def test_tui_draws_and_quits_on_ctrl_q(release: FrozenRelease, frozen, tmp_path: Path) -> None:
    root = tmp_path / "root"
    frozen("demo", "--storage", str(root), "--rows", "1000", "--batches", "1")
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [str(release.executable), "tui", "--storage", str(root), "--observe"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        start_new_session=True,  # the pty becomes its controlling terminal, as in a real shell
    )
    os.close(terminal)
    try:
        screen = _read_until(controller, proc, b"Monitor", seconds=60)
        assert b"Apiary" in screen  # the header's title
        os.write(controller, CTRL_Q)
        _drain(controller, proc, seconds=30)  # keep reading, or its last writes could block
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    assert proc.returncode == 0
