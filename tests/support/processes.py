"""Starting real child processes (writers, CLI) for multi-process tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("writer_process.py")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment (AWS_*, APIARY_HOME set by fixtures) plus the repo on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_apiary(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    """The ``apiary`` command as a user runs it: a separate process, errors on stderr."""
    return subprocess.run(
        [sys.executable, "-m", "apiary", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=child_env({"COLUMNS": str(columns), **(env or {})}),
        timeout=120,
    )


def spawn_writer(
    storage: str,
    writer: int,
    commits: int = 1,
    *,
    rows: int = 10,
    first_commit: int = 0,
    crash_phase: str | None = None,
    pause: float = 0.0,
    overwrite_every: int = 0,
    wait_go: bool = False,
    hold: bool = False,
    txn: str | None = None,
) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        str(WRITER),
        "--storage",
        storage,
        "--writer",
        str(writer),
        "--commits",
        str(commits),
        "--rows",
        str(rows),
        "--first-commit",
        str(first_commit),
    ]
    if crash_phase:
        cmd += ["--crash-phase", crash_phase]
    if pause:
        cmd += ["--pause", str(pause)]
    if overwrite_every:
        cmd += ["--overwrite-every", str(overwrite_every)]
    if wait_go:
        cmd.append("--wait-go")  # the test writes a line to stdin to start it (start_together)
    if txn:
        cmd += ["--txn", txn]  # each commit sent with txn=(txn, commit)
    if hold:
        cmd.append("--hold")  # at crash_phase, wait for a line on stdin (release) and go on
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if wait_go or hold else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def release(proc: subprocess.Popen[str]) -> None:
    """Let a writer spawned with ``wait_go`` or ``hold`` go on."""
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def start_together(procs: list[subprocess.Popen[str]]) -> None:
    """Release writers spawned with ``wait_go`` once every one of them is ready."""
    for proc in procs:
        wait_for_line(proc, "READY")
    for proc in procs:
        release(proc)


def wait_for_line(proc: subprocess.Popen[str], prefix: str) -> list[str]:
    """Read the child's stdout until a line starting with ``prefix``; return the lines before."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        if line.startswith(prefix):
            return seen
        seen.append(line)
    raise AssertionError(f"child exited ({proc.wait()}) before {prefix!r}: {proc.stderr.read()}")


def acknowledged(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> list[dict]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"writer failed ({proc.returncode}): {err[-3000:]}"
    return acknowledged(out.splitlines())


def ids_by_commit(table: pa.Table) -> dict[tuple[int, int], list[int]]:
    found: dict[tuple[int, int], list[int]] = {}
    for writer, commit, ident in zip(
        table["writer"].to_pylist(),
        table["commit"].to_pylist(),
        table["id"].to_pylist(),
        strict=True,
    ):
        found.setdefault((writer, commit), []).append(ident)
    return found
