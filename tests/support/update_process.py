"""Update every row of a big frame in a process of its own and report its peak RSS.

    python update_process.py ROOT HIVE BOX FRAME    (APIARY_MEMORY_PER_BEE sets the bees)

Prints one JSON line: the update's report, the process's peak RSS before the update (imports,
start, ledger read) and after it, in bytes.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from apiary import Apiary


def peak() -> int:
    """This process's peak RSS in bytes: VmHWM, which starts afresh at exec (ru_maxrss may
    carry the forking parent's peak over on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main() -> None:
    root, hive, box, frame = sys.argv[1:5]
    with Apiary("big", root, join_swarm=False) as ap:
        ap.frame(hive, box, frame).ledger.latest()
        ap.pool  # noqa: B018  (the bees exist before the baseline is taken)
        before = peak()
        result = ap.update_rows(hive, box, frame, {"temp": "temp + 1", "note": "upper(note)"})
        print(json.dumps({"result": result, "rss_before": before, "rss_peak": peak()}))


if __name__ == "__main__":
    main()
