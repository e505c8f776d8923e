"""Real node processes with short heartbeat timings, for swarm tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from support.processes import REPO, child_env

# Seconds, as APIARY_* variables: fast enough that suspect/dead show within a test.
SHORT_TIMINGS = {
    "APIARY_HEARTBEAT_INTERVAL": "0.5",
    "APIARY_SUSPECT_AFTER": "2",
    "APIARY_DEAD_AFTER": "4",
    "APIARY_FORGET_AFTER": "60",
}
# A stopping node finishes the storage request in flight, which may take S3's 60 s timeout.
STOP_WITHIN = 75
NODE_SCRIPT = REPO / "tests" / "support" / "node_process.py"


def use_short_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test's own Apiary clients judge heartbeats with the same short timings."""
    for key, value in SHORT_TIMINGS.items():
        monkeypatch.setenv(key, value)


def start_apiary_node(
    uri: str, node_id: str, *, quiet: bool = False, **settings: str
) -> subprocess.Popen[str]:
    """``apiary node`` as a user (or systemd) starts it; output piped unless ``quiet``;
    ``settings`` are extra ``APIARY_*`` variables."""
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "apiary", "node", "--storage", uri, "--node-id", node_id],
        stdout=output,
        stderr=output,
        text=True,
        env=child_env({**SHORT_TIMINGS, **settings}),
    )


def start_test_node(
    uri: str, node_id: str, *, clock_offset_s: float = 0.0, task_delay_s: float = 0.0
) -> subprocess.Popen[str]:
    """A node with an injected clock offset and task delay (support/node_process.py)."""
    return subprocess.Popen(
        [sys.executable, str(NODE_SCRIPT), uri, node_id, str(clock_offset_s), str(task_delay_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(SHORT_TIMINGS),
    )


def stop_all(procs: list[subprocess.Popen[str]]) -> None:
    """SIGTERM every node still running (waking a SIGSTOPped one first) and wait for each."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # its threads' stacks, to say what it waits on
            time.sleep(1.0)
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(
                f"a node did not stop within {STOP_WITHIN} s of SIGTERM; its threads:\n"
                f"{(err or '')[-8000:]}"
            ) from None
