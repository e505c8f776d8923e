"""Readers pinned at a version keep their answer while a writer process keeps committing."""

from __future__ import annotations

import pytest
from support.processes import finish, spawn_writer
from support.writer_process import FRAME, SCHEMA, batch

from apiary import Apiary


@pytest.mark.multiprocess
def test_pinned_and_latest_reads_during_commits(tmp_path) -> None:
    uri = str(tmp_path / "root")
    with Apiary("test", uri) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, SCHEMA)
        for c in range(3):
            ap.write_to_frame(*FRAME, batch(9, c, 10))
        pinned_sql = (
            f'SELECT count(*) AS n, sum(id) AS s FROM {FRAME[0]}.{FRAME[1]}."{FRAME[2]}@v3"'
        )
        v3 = ap.read_from_frame(*FRAME, version=3)
        expected = [{"n": v3.num_rows, "s": sum(v3["id"].to_pylist())}]
        name = ".".join(FRAME)
        seen_latest = []
        writer = spawn_writer(uri, 1, commits=40, rows=10, pause=0.02)  # >= 0.8 s of commits
        while writer.poll() is None:
            assert ap.sql(pinned_sql).to_pylist() == expected
            latest = ap.sql(f"SELECT count(*) AS n FROM {name}")["n"].to_pylist()[0]
            assert latest % 10 == 0  # never half a commit
            seen_latest.append(latest)
        assert len(finish(writer)) == 40
        assert seen_latest == sorted(seen_latest)  # versions only move forward
        assert len(set(seen_latest)) > 1, "reads should have overlapped the commits"
        assert ap.sql(f"SELECT count(*) AS n FROM {name}")["n"].to_pylist() == [430]
        assert ap.sql(pinned_sql).to_pylist() == expected
