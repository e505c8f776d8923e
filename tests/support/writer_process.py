"""A writer in its own process, for concurrency and crash tests.

    python writer_process.py --storage URI --writer 3 --commits 25 --rows 10 [--crash-phase P]
        [--overwrite-every K]

Prints one JSON line per acknowledged commit: {"writer", "commit", "version"}. Row ids are
``writer * 1_000_000 + commit * 1_000 + i``, so the test can check every acknowledged write is
present exactly once. With ``--overwrite-every K`` commit numbers divisible by K overwrite the
frame instead of appending; with ``--wait-go`` it reads one line from stdin after ``READY``,
so a test can start several writers at the same moment. With ``--crash-phase`` the writer
announces ``PHASE <name>`` on stdout at that point of its next commit and then waits to be
killed; with ``--hold`` it waits for a line on stdin instead and then goes on, so a test can
commit something else between this writer's snapshot and its commit:

- ``cells_uploaded``: the cells are in storage, the ledger entry not yet sent;
- ``after_put``: the ledger entry was created, the caller has not been told.

With ``--txn APP`` every commit is sent with ``txn=(APP, commit)`` (an idempotent write) and
its line also says whether it was ``already_committed``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import pyarrow as pa

from apiary import Apiary
from apiary.commitlog import CommitLog

FRAME = ("crash", "test", "events")
SCHEMA = {"writer": "int32", "commit": "int32", "id": "int64"}


def batch(writer: int, commit: int, rows: int) -> pa.Table:
    base = writer * 1_000_000 + commit * 1_000
    return pa.table(
        {
            "writer": pa.array([writer] * rows, pa.int32()),
            "commit": pa.array([commit] * rows, pa.int32()),
            "id": pa.array(range(base, base + rows), pa.int64()),
        }
    )


def announce_and_wait(phase: str, hold: bool = False) -> None:
    print(f"PHASE {phase}", flush=True)
    if hold:
        sys.stdin.readline()
    else:
        threading.Event().wait()  # until SIGKILL


def install_crash(phase: str, hold: bool = False) -> None:
    original = CommitLog.try_create
    pending = [phase]  # only the first commit stops

    def try_create(self: CommitLog, version: int, document: bytes) -> bool:
        if version == 0 or not pending:  # version 0 creates the frame's table
            return original(self, version, document)
        if phase == "cells_uploaded":
            pending.clear()
            announce_and_wait(phase, hold)
        won = original(self, version, document)
        if phase == "after_put" and won:
            pending.clear()
            announce_and_wait(phase, hold)
        return won

    CommitLog.try_create = try_create  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", required=True)
    parser.add_argument("--writer", type=int, required=True)
    parser.add_argument("--commits", type=int, default=1)
    parser.add_argument("--first-commit", type=int, default=0)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--crash-phase", choices=["cells_uploaded", "after_put"])
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between commits")
    parser.add_argument("--overwrite-every", type=int, default=0)
    parser.add_argument("--wait-go", action="store_true")
    parser.add_argument("--hold", action="store_true", help="at --crash-phase, wait for stdin")
    parser.add_argument("--txn", help="send each commit with txn=(TXN, commit)")
    args = parser.parse_args()
    # Two processes re-sending the same writer's batches are two nodes.
    node = f"writer-{args.writer}" + (f"-{os.getpid()}" if args.txn else "")
    with Apiary("test", args.storage, node_id=node) as ap:
        ap.frame(*FRAME).ledger.latest()
        print("READY", flush=True)
        if args.wait_go:
            sys.stdin.readline()
        if args.crash_phase:
            install_crash(args.crash_phase, args.hold)
        for commit in range(args.first_commit, args.first_commit + args.commits):
            time.sleep(args.pause)
            every = args.overwrite_every
            write = ap.overwrite_frame if every and commit % every == 0 else ap.write_to_frame
            extra = {"txn": (args.txn, commit)} if args.txn else {}
            result = write(*FRAME, batch(args.writer, commit, args.rows), **extra)
            line = {"writer": args.writer, "commit": commit, "version": result["version"]}
            if args.txn:
                line["already_committed"] = result["already_committed"]
            print(json.dumps(line), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
