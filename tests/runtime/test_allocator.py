"""Apiary processes run without transparent huge pages unless the user asks for them, and
keep freed memory for reuse a little longer than DataFusion's allocator would.

DataFusion's allocator (mimalloc) asks for huge pages and gives freed memory back soon after,
so a node idling between tasks paid for zeroing fresh 2 MB pages on every task (see
apiary/allocator.py for the measurements). The kernel's own per-process flag is checked.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from support.nodes import stop_all
from support.processes import child_env

# The flag is inherited and kept across exec, and this test process has it set (it imported
# apiary): each child first clears it, as a process started from a shell would have it clear.
FRESH = "import ctypes; assert ctypes.CDLL(None).prctl(41, 0, 0, 0, 0) == 0\n"
IMPORT_THEN_REPORT = (
    FRESH + "import apiary, datafusion\n"
    "datafusion.SessionContext().sql('SELECT 1').collect()\n"
    "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('THP_enabled')][0])"
)


def _env(**extra: str) -> dict[str, str]:
    env = child_env(extra)
    for name in ("MIMALLOC_ALLOW_THP", "MIMALLOC_PURGE_DELAY"):
        if name not in extra:
            env.pop(name, None)  # this test process set it when importing apiary
    return env


def _thp_enabled(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("THP_enabled:"):
            return line.split()[1]
    raise AssertionError("the kernel reports no THP_enabled for the process")


def _reported(code: str, **extra: str) -> str:
    """What a fresh Python running ``code`` prints, with ``extra`` in its environment."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(**extra), timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_process_using_apiary_has_huge_pages_off_and_can_turn_them_back_on() -> None:
    assert _reported(IMPORT_THEN_REPORT) == "0"
    assert _reported(IMPORT_THEN_REPORT, MIMALLOC_ALLOW_THP="1") == "1"


def test_a_running_node_has_huge_pages_off(tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    command = [sys.executable, "-m", "apiary", "node", "--storage", root, "--node-id", "n1"]
    node = subprocess.Popen(
        [sys.executable, "-c", FRESH + f"import os; os.execv({sys.executable!r}, {command!r})"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        heartbeat = tmp_path / "root" / "_heartbeats" / "n1.json"
        deadline = time.monotonic() + 60
        while not heartbeat.exists():  # running: its engine is loaded
            assert node.poll() is None, node.communicate()[1]
            assert time.monotonic() < deadline, "the node never beat"
            time.sleep(0.1)
        assert _thp_enabled(node.pid) == "0"
    finally:
        stop_all([node])


def test_freed_memory_is_kept_for_reuse_for_a_second_unless_the_user_says_otherwise() -> None:
    """mimalloc reads its options from the environment as DataFusion's library loads; Apiary
    sets them first (the measured effect is in apiary/allocator.py)."""
    report = (
        "import os, apiary, datafusion\n"
        "datafusion.SessionContext().sql('SELECT 1').collect()\n"
        "print(os.environ['MIMALLOC_PURGE_DELAY'])"
    )
    assert _reported(report) == "1000"
    assert _reported(report, MIMALLOC_PURGE_DELAY="10") == "10"
