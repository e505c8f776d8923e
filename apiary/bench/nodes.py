"""Starting ``apiary node`` processes for the benchmarks, from an install or the frozen program."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Set

from apiary.program import apiary_command


def start_node(storage: str, node_id: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        apiary_command("node", "--storage", storage, "--node-id", node_id),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def pin(pid: int, cores: Set[int]) -> None:
    """Keep every thread of process ``pid`` on ``cores``.

    ``os.sched_setaffinity(pid, ...)`` moves one thread only, the one whose id is ``pid``;
    threads started later inherit their starter's cores, but those already running stay where
    they were: a node that is beating has a dozen (DataFusion's and the storage client's), and
    left unpinned they ran on the other node's core. Passes repeat until no thread was moved,
    so one started during a pass is caught by the next.
    """
    while True:
        moved = False
        for entry in os.scandir(f"/proc/{pid}/task"):
            tid = int(entry.name)
            try:
                if os.sched_getaffinity(tid) != set(cores):
                    os.sched_setaffinity(tid, cores)
                    moved = True
            except (ProcessLookupError, PermissionError):
                continue  # a thread that just ended
        if not moved:
            return


def need_moto(what: str) -> None:
    if importlib.util.find_spec("moto") is None:
        raise ModuleNotFoundError(f"the {what} benchmark needs moto: pip install 'apiary[bench]'")
