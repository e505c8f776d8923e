"""Eight real writer processes committing to one frame at once, on local disk and on S3."""

from __future__ import annotations

import pytest
from support.processes import finish, ids_by_commit, spawn_writer
from support.writer_process import FRAME, SCHEMA

from apiary import Apiary

WRITERS, COMMITS, ROWS = 8, 25, 10


def make_frame(uri: str) -> None:
    with Apiary("test", uri) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, SCHEMA)


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_eight_writers_commit_contiguously_and_lose_nothing(backend: str, request, tmp_path):
    uri = str(tmp_path / "root") if backend == "local" else request.getfixturevalue("s3_bucket").uri
    make_frame(uri)
    procs = [spawn_writer(uri, w, COMMITS, rows=ROWS) for w in range(WRITERS)]
    acks = [ack for proc in procs for ack in finish(proc)]

    assert len(acks) == WRITERS * COMMITS
    versions = sorted(ack["version"] for ack in acks)
    assert versions == list(range(1, WRITERS * COMMITS + 1))  # contiguous, none shared

    with Apiary("test", uri) as ap:
        ledger = ap.frame(*FRAME).ledger
        on_disk = [ledger.log.version_of(i) for i in ledger.log.versions_after(None)]
        assert on_disk == list(range(WRITERS * COMMITS + 1))
        table = ap.read_from_frame(*FRAME)
    assert table.num_rows == WRITERS * COMMITS * ROWS
    found = ids_by_commit(table)
    for ack in acks:
        ids = found[(ack["writer"], ack["commit"])]
        base = ack["writer"] * 1_000_000 + ack["commit"] * 1_000
        assert sorted(ids) == list(range(base, base + ROWS))  # present exactly once
    # Every writer's entries carry its own commit ids; no entry was written twice.
    entries = [entry for entry, _ in ledger.history()]
    assert len({e.commit_id for e in entries}) == len(entries)
