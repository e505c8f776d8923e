"""The frozen ``apiary tui`` in a real pseudo-terminal, driven as a user would.

It must stay up, draw its panels, highlight and run a SQL statement typed into its editor
(tree-sitter's SQL grammar and Textual's lazily imported widgets are loaded dynamically, so a
frozen program missing them dies at start), show the result, and exit 0 on ctrl+q. The program
exiting early, a traceback on screen or a non-zero status fails the test.
"""

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
CTRL_Q, F3, F5 = b"\x11", b"\x1b[13~", b"\x1b[15~"
# 1,000 demo rows times 7: a number only the query's result puts on the screen.
QUERY = b"SELECT count(*) * 7 AS answer FROM demo.sensors.readings"
ANSWER = b"7000"


class Terminal:
    """The controller side of a pty: everything the program drew so far, escape codes kept."""

    def __init__(self, fd: int, proc: subprocess.Popen[bytes]) -> None:
        self.fd, self.proc, self.raw = fd, proc, b""

    @property
    def text(self) -> bytes:
        return ANSI.sub(b"", self.raw)

    def wait_for(self, wanted: bytes, seconds: float) -> None:
        """Until ``wanted`` is on screen; fails if the program exits or closes the terminal."""
        deadline = time.monotonic() + seconds
        while wanted not in self.text:
            shown = self.text[-3000:].decode(errors="replace")
            assert b"Traceback" not in self.raw, f"the tui crashed: {shown}"
            assert time.monotonic() < deadline, f"no {wanted!r} after {seconds} s: {shown}"
            assert self.proc.poll() is None, f"tui exited ({self.proc.returncode}): {shown}"
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    self.raw += os.read(self.fd, 65536)
                except OSError:  # EIO: every writer closed the terminal, i.e. the program left
                    raise AssertionError(f"tui closed its terminal: {shown}") from None

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def drain_until_exit(self, seconds: float) -> int:
        """Keep reading (or its last writes could block) until the program exits."""
        deadline = time.monotonic() + seconds
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.raw += os.read(self.fd, 65536)
                except OSError:
                    break
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))


def test_tui_runs_a_query_and_quits_on_ctrl_q(
    release: FrozenRelease, frozen, tmp_path: Path
) -> None:
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
    screen = Terminal(controller, proc)
    try:
        screen.wait_for(b"Swarm", seconds=90)  # the monitor tab's panels, drawn after mount
        screen.send(F3)
        screen.wait_for(b"Hives", seconds=30)  # the SQL tab's namespace tree
        screen.send(QUERY)
        screen.wait_for(b"demo.sensors.readings", seconds=30)  # the editor echoes the text
        screen.send(F5)
        screen.wait_for(ANSWER, seconds=60)  # the results table: the query really ran
        screen.send(CTRL_Q)
        status = screen.drain_until_exit(seconds=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    assert b"Traceback" not in screen.raw, screen.text[-3000:].decode(errors="replace")
    assert status == 0
