"""A sealed chamber: a query DataFusion cannot stop in-process runs in a child it can kill.

DataFusion stops a dropped query where its operators next yield. A nested-loop or cross join
works through a piece of its probe side against the whole build side in one poll, so a timed-out
or cancelled join of two large inputs went on burning a core for tens of seconds (DataFusion 55,
apache/datafusion#19358). Such a plan is handed, as DataFusion's own plan bytes, to a child
process (``apiary _sealed``) that runs it within the bee's budget and streams Arrow IPC back;
at a deadline, a cancel or a memory stop the bee kills the child, and the work ends at once.

Only plans that need it pay for a process (a second interpreter and its start, ~0.5 s): the
others run in-process as before, and so does a plan DataFusion cannot serialise (tables held in
memory: a memory root, an attached Delta table whose files lack their partition columns).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil
import pyarrow as pa
from datafusion import DataFrame, LogicalPlan
from pydantic import BaseModel

from apiary.program import apiary_command
from apiary.sql.context import Reach

log = logging.getLogger("apiary.sealed")

# Operators that do all their work for a batch in one poll, so a dropped stream does not stop
# them (module docstring). Every other operator yields often enough to stop within a poll.
UNSTOPPABLE = frozenset({"NestedLoopJoinExec", "CrossJoinExec"})
# Batches in flight between the child's pipe and the bee: the child blocks on a full pipe, so
# a slow reader holds the query back instead of piling batches up in memory.
IN_FLIGHT = 2


class SealedJob(BaseModel):
    """What the child needs besides the plan bytes (sent first, as one JSON line on stdin)."""

    plan_bytes: int
    memory_budget: int
    partitions: int
    spill_dir: str
    location: str | None = None  # an S3 root's URI (never holds credentials)
    credentials: dict[str, str] | None = None  # through the pipe: never argv or a file
    shape: dict[str, str] = {}  # the DataFusion options of the parent's context
    settings: dict[str, str] = {}


def unstoppable(df: DataFrame, optimized: LogicalPlan | None = None) -> str | None:
    """The operator of ``df``'s physical plan that DataFusion could not stop, or None.

    Read from the optimised logical plan, which costs a third of physical planning: DataFusion
    plans a join with no equality between its sides (``on`` empty) as a NestedLoopJoinExec, or
    a CrossJoinExec when it has no condition at all; a join with an equality is a hash join.
    Only a query with a join or a subquery (which becomes one) can have one; the others skip
    planning here. ``optimized`` is ``df``'s optimised plan if the caller has it already.
    """
    if optimized is None:
        written = df.logical_plan().display_indent()
        if "Join" not in written and "Subquery" not in written:
            return None
    pending = [optimized if optimized is not None else df.optimized_logical_plan()]
    while pending:
        node = pending.pop()
        variant = node.to_variant()
        if type(variant).__name__ == "Join" and not variant.on():
            inner = str(variant.join_type()) == "Inner"
            return "CrossJoinExec" if inner and variant.filter() is None else "NestedLoopJoinExec"
        pending += node.inputs()
    return None


def plan_bytes(df: DataFrame) -> bytes | None:
    """``df``'s optimised plan as DataFusion's own bytes; None if it holds in-memory tables."""
    try:
        return df.optimized_logical_plan().to_bytes()
    except Exception as exc:  # "LogicalExtensionCodec is not provided": an in-memory table
        log.debug("plan cannot be serialised, runs in-process: %s", exc)
        return None


class Sealed:
    """One child process running one plan; :meth:`batches` yields its result, ``kill`` ends it."""

    def __init__(self, job: SealedJob, plan: bytes) -> None:
        self.process = subprocess.Popen(
            apiary_command("_sealed"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.psutil = psutil.Process(self.process.pid)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=IN_FLIGHT)
        self._stderr = b""
        assert self.process.stdin is not None
        # Written by a thread: a plan larger than the pipe would block until the child reads.
        self._writer = threading.Thread(
            target=_send, args=(self.process.stdin, job, plan), daemon=True
        )
        self._writer.start()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._errors = threading.Thread(target=self._read_errors, daemon=True)
        self._errors.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            with pa.ipc.open_stream(self.process.stdout) as reader:
                for batch in reader:
                    self._queue.put(batch)
        except Exception as exc:  # a killed or failed child: its stderr says why
            self._queue.put(exc)
        self._queue.put(None)

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        self._stderr = self.process.stderr.read()

    def batches(self, check: Callable[[], None], poll: float) -> Any:
        """The child's batches, calling ``check`` (deadline, cancel) every ``poll`` seconds."""
        while True:
            try:
                item = self._queue.get(timeout=poll)
            except queue.Empty:
                check()
                continue
            if item is None:
                break
            if isinstance(item, pa.RecordBatch):
                yield item
                continue
            break  # the stream broke off: the exit status below says how
        self.process.wait()
        self._errors.join()
        if self.process.returncode != 0:
            raise _child_error(self._stderr, self.process.returncode)

    def kill(self) -> None:
        """End the child now (its work, memory and threads); idempotent."""
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr, self.process.stdin):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()

    def private_memory(self) -> int:
        with contextlib.suppress(psutil.Error):
            info = self.psutil.memory_info()
            return info.rss - getattr(info, "shared", 0)
        return 0


def _send(stdin: IO[bytes], job: SealedJob, plan: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):  # a child killed before it read
        stdin.write(job.model_dump_json().encode() + b"\n")
        stdin.write(plan)
        stdin.close()


def _child_error(stderr: bytes, code: int) -> Exception:
    """The child's error as the in-process run would have raised it (same message)."""
    for line in reversed(stderr.decode(errors="replace").splitlines()):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            return Exception(json.loads(line)["error"])
    tail = stderr.decode(errors="replace").strip()[-500:]
    return RuntimeError(f"the sealed query process ended with status {code}: {tail or 'no output'}")


def job_for(
    plan: bytes, memory_budget: int, partitions: int, spill_dir: Path, reach: Reach | None
) -> SealedJob:
    s3 = reach is not None and reach.location.scheme == "s3"
    return SealedJob(
        plan_bytes=len(plan),
        memory_budget=memory_budget,
        partitions=partitions,
        spill_dir=str(spill_dir / f"sealed-{uuid.uuid4().hex[:8]}"),
        location=reach.location.uri if s3 and reach else None,
        credentials=reach.credentials if s3 and reach else None,
    )


def child_main(stdin: IO[bytes], stdout: IO[bytes], stderr: IO[str]) -> int:
    """The child: read the job and plan, run it in a bee of its own, stream IPC to ``stdout``.

    The plan comes from the parent's own bee (a read-only query it planned itself); its scans
    name the files to read, so the child needs no catalog.
    """
    from apiary.runtime.bees import Bee  # the child's chamber: same budget, spill and settings
    from apiary.sql.sources import register_object_store
    from apiary.storage import parse_location

    try:
        job = SealedJob.model_validate_json(stdin.readline())
        plan = stdin.read(job.plan_bytes)
        bee = Bee(0, job.memory_budget, Path(job.spill_dir), settings=job.settings)
        ctx = bee.context(partitions=job.partitions, shape=job.shape)
        if job.location is not None:
            register_object_store(ctx, parse_location(job.location), job.credentials)
        df = ctx.create_dataframe_from_logical_plan(LogicalPlan.from_bytes(ctx, plan))
        writer = None
        for batch in df.execute_stream():
            data = batch.to_pyarrow()
            if writer is None:
                writer = pa.ipc.new_stream(stdout, data.schema)
            writer.write_batch(data)
        if writer is None:
            writer = pa.ipc.new_stream(stdout, df.schema())
        writer.close()
        stdout.flush()
    except BrokenPipeError:
        return 1  # the parent stopped reading: it has given up on this query
    except Exception as exc:
        stderr.write(json.dumps({"error": str(exc)}) + "\n")
        stderr.flush()
        return 2
    return 0


def main() -> None:
    sys.exit(child_main(sys.stdin.buffer, sys.stdout.buffer, sys.stderr))
