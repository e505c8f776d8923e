"""A process that changes rows of writer_process's frame while other processes write to it.

    python changer_process.py --storage URI --mode delete|increment --times N

``delete``: N deletes of writer 99's rows (``id % N = k``), one commit each. ``increment``: N
times ``UPDATE ... SET commit = commit + 1 WHERE writer = 99``; an update that loses every race
(WriteConflictError) is tried again, so each acknowledged line is one update applied once.
Prints READY, waits for a line on stdin, then one JSON line per acknowledged change.
"""

from __future__ import annotations

import argparse
import json
import sys

from writer_process import FRAME

from apiary import Apiary, WriteConflictError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", required=True)
    parser.add_argument("--mode", choices=["delete", "increment"], required=True)
    parser.add_argument("--times", type=int, default=1)
    parser.add_argument("--name", default="changer")
    args = parser.parse_args()
    with Apiary("test", args.storage, node_id=args.name, join_swarm=False) as ap:
        ap.frame(*FRAME).ledger.latest()
        print("READY", flush=True)
        sys.stdin.readline()
        for k in range(args.times):
            while True:
                try:
                    if args.mode == "delete":
                        where = f"writer = 99 AND id % {args.times} = {k}"
                        result = ap.delete_rows(*FRAME, where)
                    else:
                        result = ap.update_rows(*FRAME, {"commit": "commit + 1"}, "writer = 99")
                    break
                except WriteConflictError:
                    continue
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
