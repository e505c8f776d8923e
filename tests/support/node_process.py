"""A node in its own process with an injected clock and task delay.

    node_process.py URI NODE_ID CLOCK_OFFSET_S [TASK_DELAY_S]


``apiary node`` itself always uses the machine clock; this stands in for a Raspberry Pi whose
clock is wrong (no battery, no NTP yet) without touching the machine's real clock.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from apiary import Apiary


def main() -> None:
    uri, node_id, offset = sys.argv[1], sys.argv[2], float(sys.argv[3])
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # as `apiary node` does
    ap = Apiary(
        "test",
        uri,
        node_id=node_id,
        clock=lambda: datetime.now(UTC) + timedelta(seconds=offset),
    ).start()
    worker = ap.worker  # the worker loop every started node runs
    assert worker is not None
    worker.poll_interval = 0.2
    worker.before_task = lambda task: time.sleep(delay)
    print("READY", flush=True)
    stop.wait()
    ap.shutdown()


if __name__ == "__main__":
    main()
