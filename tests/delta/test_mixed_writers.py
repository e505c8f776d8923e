"""Four Apiary writer processes and two delta-rs writer processes append to one table at once:
versions stay contiguous and every acknowledged row is there exactly once (local and S3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import child_env, finish, ids_by_commit, spawn_writer, start_together
from support.writer_process import FRAME, SCHEMA

from apiary import Apiary

APIARY_WRITERS, DELTA_RS_WRITERS, COMMITS, ROWS = 4, 2, 15, 10
DELTA_RS = str(Path(__file__).parents[1] / "support/delta_rs_writer.py")
COUNTS = ["--commits", str(COMMITS), "--rows", str(ROWS)]


def spawn_delta_rs(uri: str, writer: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, DELTA_RS, "--uri", uri, "--writer", str(writer), *COUNTS, "--wait-go"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_apiary_and_delta_rs_writers_append_together(backend, request, tmp_path) -> None:
    root = (
        str(tmp_path / "root") if backend == "local" else request.getfixturevalue("s3_bucket").uri
    )
    with Apiary("test", root) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        table_uri = ap.create_frame(*FRAME, SCHEMA)["uri"]
    procs = [spawn_writer(root, w, COMMITS, rows=ROWS, wait_go=True) for w in range(APIARY_WRITERS)]
    procs += [spawn_delta_rs(table_uri, 100 + w) for w in range(DELTA_RS_WRITERS)]
    start_together(procs)
    acks = [ack for proc in procs for ack in finish(proc)]

    total = (APIARY_WRITERS + DELTA_RS_WRITERS) * COMMITS
    assert len(acks) == total
    apiary_versions = [a["version"] for a in acks if a["version"] is not None]
    assert len(set(apiary_versions)) == len(apiary_versions) == APIARY_WRITERS * COMMITS
    with Apiary("test", root) as ap:
        ledger = ap.frame(*FRAME).ledger
        on_disk = [ledger.log.version_of(i) for i in ledger.log.versions_after(None)]
        assert on_disk == list(range(total + 1))  # contiguous: one version per commit
        history = [entry for entry, _ in ledger.history()]
        by_delta_rs = [e for e in history if e.writer.startswith("delta-rs")]
        assert len(by_delta_rs) == DELTA_RS_WRITERS * COMMITS
        table = ap.read_from_frame(*FRAME)
    assert table.num_rows == total * ROWS
    found = ids_by_commit(table)
    for ack in acks:
        base = ack["writer"] * 1_000_000 + ack["commit"] * 1_000
        assert sorted(found[(ack["writer"], ack["commit"])]) == list(range(base, base + ROWS))
