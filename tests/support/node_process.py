"""A node in its own process with an injected clock: ``node_process.py URI NODE_ID OFFSET_S``.

``apiary node`` itself always uses the machine clock; this stands in for a Raspberry Pi whose
clock is wrong (no battery, no NTP yet) without touching the machine's real clock.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime, timedelta

from apiary import Apiary


def main() -> None:
    uri, node_id, offset = sys.argv[1], sys.argv[2], float(sys.argv[3])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ap = Apiary(
        "test",
        uri,
        node_id=node_id,
        join_swarm=True,
        clock=lambda: datetime.now(UTC) + timedelta(seconds=offset),
    ).start()
    print("READY", flush=True)
    stop.wait()
    ap.shutdown()


if __name__ == "__main__":
    main()
