"""``bench.nodes.pin`` keeps every thread of a process on the given cores, including threads
that were running before it was called (``sched_setaffinity`` on a pid moves only one)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from apiary.bench.nodes import pin

THREADS = """
import threading, time, sys
for _ in range(4):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def allowed(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(t.name)) for t in Path(f"/proc/{pid}/task").iterdir()]


def test_every_running_thread_is_moved() -> None:
    core = min(os.sched_getaffinity(0))
    child = subprocess.Popen(
        [sys.executable, "-c", THREADS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        before = allowed(child.pid)
        assert len(before) >= 5  # the main thread and the four sleepers, all running
        pin(child.pid, {core})
        assert all(cores == {core} for cores in allowed(child.pid))
        time.sleep(0.1)
        assert child.poll() is None  # moved, not harmed
    finally:
        child.kill()
        child.wait()
