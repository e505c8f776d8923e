"""Idempotent writes: a batch re-sent with the same ``txn=(app_id, sequence)`` is committed once,
in one process, across two racing processes, and after the writer was killed before its reply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import deltalake
import pyarrow as pa
import pytest
from support.processes import (
    REPO,
    child_env,
    finish,
    ids_by_commit,
    release,
    spawn_writer,
    wait_for_line,
)
from support.writer_process import FRAME, SCHEMA, batch

from apiary import Apiary
from apiary.errors import ConfigError


def make_frame(uri: str) -> None:
    with Apiary("test", uri, join_swarm=False) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, SCHEMA)


def root_uri(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    if backend == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket").uri


def parquet_files(ap: Apiary) -> set[str]:
    return {o.path for o in ap.storage.list("/".join(FRAME)) if o.path.endswith(".parquet")}


def test_resend_in_one_process_is_a_no_op(tmp_path) -> None:
    uri = str(tmp_path / "root")
    make_frame(uri)
    with Apiary("test", uri, join_swarm=False) as ap:
        first = ap.write_to_frame(*FRAME, batch(1, 0, 10), txn=("pi-7", 5))
        assert first["already_committed"] is False
        ap.write_to_frame(*FRAME, batch(2, 0, 10))  # someone else's append in between
        files = parquet_files(ap)

        again = ap.write_to_frame(*FRAME, batch(1, 0, 10), txn=("pi-7", 5))
        assert again["already_committed"] is True and again["already_committed_exact"] is True
        assert again["version"] == first["version"]
        assert again["rows_written"] == 0 and again["cells_written"] == 0
        assert parquet_files(ap) == files  # nothing uploaded

        older = ap.write_to_frame(*FRAME, batch(1, 9, 10), txn=("pi-7", 3))
        assert older["already_committed"] is True and older["already_committed_exact"] is False
        assert older["version"] == 2  # "at or before" the newest version

        # Another application, or the next sequence, is a new write.
        assert not ap.write_to_frame(*FRAME, batch(3, 0, 10), txn=("pi-8", 5))["already_committed"]
        nxt = ap.write_to_frame(*FRAME, batch(1, 1, 10), txn=("pi-7", 6))
        assert nxt["already_committed"] is False and nxt["version"] == 4

        table = ap.read_from_frame(*FRAME)
        assert table.num_rows == 40
        assert all(len(ids) == 10 for ids in ids_by_commit(table).values())
        history = ap.frame_history(*FRAME)
        assert [h["txn"] for h in history[1:]] == [{"pi-7": 5}, {}, {"pi-8": 5}, {"pi-7": 6}]

        # Delta's own idempotency record: other Delta writers see the same sequences.
        table_uri = ap.get_frame(*FRAME)["uri"]
        assert deltalake.DeltaTable(table_uri).transaction_version("pi-7") == 6

    # A fresh client learns the sequences from the log.
    with Apiary("test", uri, join_swarm=False) as ap:
        again = ap.overwrite_frame(*FRAME, batch(1, 1, 10), txn=("pi-7", 6))
        assert again["already_committed"] is True and again["version"] == 4
        assert ap.read_from_frame(*FRAME).num_rows == 40  # the overwrite did not happen


@pytest.mark.parametrize(
    "txn",
    [("", 1), ("x" * 201, 1), ("tab\there", 1), ("app", -1), ("app", True), ("app", 1.0), "app"],
)
def test_bad_txn_is_refused_before_anything_is_written(tmp_path, txn) -> None:
    uri = str(tmp_path / "root")
    make_frame(uri)
    with Apiary("test", uri, join_swarm=False) as ap:
        with pytest.raises(ConfigError, match="txn"):
            ap.write_to_frame(*FRAME, batch(1, 0, 10), txn=txn)
        assert parquet_files(ap) == set()


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_two_processes_racing_the_same_txn_commit_once(backend, request, tmp_path) -> None:
    """Both pass the early check and upload their cells; only one commit lands, and the loser
    returns the winner's version with its own cells left for vacuum."""
    uri = root_uri(backend, request, tmp_path)
    make_frame(uri)
    procs = [
        spawn_writer(uri, 1, rows=10, crash_phase="cells_uploaded", hold=True, txn="pi-7")
        for _ in range(2)
    ]
    for proc in procs:
        wait_for_line(proc, "PHASE cells_uploaded")  # both uploaded, neither committed
    for proc in procs:
        release(proc)
    acks = [finish(proc)[0] for proc in procs]
    assert {a["version"] for a in acks} == {1}
    assert sorted(a["already_committed"] for a in acks) == [False, True]
    with Apiary("test", uri, join_swarm=False) as ap:
        table = ap.read_from_frame(*FRAME)
        assert table.num_rows == 10
        assert ap.get_frame(*FRAME)["version"] == 1
        live = {f"{'/'.join(FRAME)}/{p}" for p in ap.frame(*FRAME).ledger.latest().cells}
        assert len(parquet_files(ap) - live) == 1  # the loser's cell, orphaned
        report = ap.vacuum_frame(*FRAME, retention_hours=0, force=True)
        assert report["cells_deleted"] == 1


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_resend_after_kill_between_commit_and_reply(backend, request, tmp_path) -> None:
    """The writer dies after its commit landed but before it could reply; a fresh process
    re-sends the batch and gets the original version, not a duplicate."""
    uri = root_uri(backend, request, tmp_path)
    make_frame(uri)
    assert finish(spawn_writer(uri, 1, commits=2, txn="pi-7"))[-1]["version"] == 2
    doomed = spawn_writer(uri, 1, first_commit=2, crash_phase="after_put", txn="pi-7")
    wait_for_line(doomed, "PHASE after_put")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    # The same batches again, from the start: all three are already in. The newest sequence
    # names its version exactly; older ones are "committed at or before" the newest version.
    resent = finish(spawn_writer(uri, 1, commits=4, txn="pi-7"))
    assert [a["version"] for a in resent] == [3, 3, 3, 4]
    assert [a["already_committed"] for a in resent] == [True, True, True, False]
    with Apiary("test", uri, join_swarm=False) as ap:
        assert ap.frame_history(*FRAME)[3]["txn"] == {"pi-7": 2}  # the killed writer's commit
    with Apiary("test", uri, join_swarm=False) as ap:
        table = ap.read_from_frame(*FRAME)
        assert table.num_rows == 40
        assert sorted(ids_by_commit(table)) == [(1, c) for c in range(4)]
        assert all(len(ids) == 10 for ids in ids_by_commit(table).values())


FRESH_PROCESS = """
import json, sys
from apiary import Apiary
from support.writer_process import FRAME, batch
with Apiary("test", sys.argv[1], join_swarm=False) as ap:
    snap = ap.frame(*FRAME).ledger.latest()
    again = ap.write_to_frame(*FRAME, batch(1, 0, 3), txn=("pi-7", 1))
    older = ap.write_to_frame(*FRAME, batch(2, 0, 3), txn=("pi-8", 39))
    table = ap.read_from_frame(*FRAME)
    print(json.dumps({
        "from_checkpoint": snap.txns["pi-7"].version is None,
        "pi8": snap.txns["pi-8"].sequence,
        "again": [again["already_committed"], again["already_committed_exact"], again["version"]],
        "older": [older["already_committed"], older["version"]],
        "rows": table.num_rows,
        "types": {f.name: str(f.type) for f in table.schema},
        "notes": table.column("note").to_pylist().count("x"),
        "v2_types": [str(t) for t in ap.read_from_frame(*FRAME, version=2).schema.types],
    }))
"""


@pytest.mark.multiprocess
def test_txns_and_evolved_schema_survive_a_checkpoint(tmp_path) -> None:
    """Version 100 is a checkpoint: it keeps each application's sequence and the evolved
    schema, so a fresh process opening the frame from it still refuses a re-send (finding the
    original version by its commit time) and reads the new columns."""
    uri = str(tmp_path / "root")
    make_frame(uri)
    tiny = pa.table({"writer": pa.array([0], pa.int32()), "commit": [0], "id": [0]})
    with Apiary("test", uri, join_swarm=False) as ap:
        ap.write_to_frame(*FRAME, batch(1, 0, 3), txn=("pi-7", 1))  # version 1
        ap.write_to_frame(*FRAME, batch(2, 0, 3), txn=("pi-8", 40))  # version 2
        ap.add_columns(*FRAME, {"note": "string"})  # version 3
        ap.widen_column(*FRAME, "commit", "int64")  # version 4
        for _ in range(96):
            ap.write_to_frame(*FRAME, tiny.append_column("note", pa.array(["x"])))
        ap.write_to_frame(*FRAME, tiny)  # version 101, past the checkpoint
        assert ap.frame(*FRAME).ledger.log.latest_checkpoint() == 100
    child = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, uri],
        capture_output=True,
        text=True,
        env=child_env({"PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}),
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    seen = json.loads(child.stdout.splitlines()[-1])
    assert seen["from_checkpoint"] is True and seen["pi8"] == 40
    assert seen["again"] == [True, True, 1]
    assert seen["older"] == [True, 101]
    assert seen["rows"] == 6 + 97
    assert seen["types"] == {"writer": "int32", "commit": "int64", "id": "int64", "note": "string"}
    assert seen["notes"] == 96
    assert seen["v2_types"] == ["int32", "int32", "int64"]


def test_checkpoint_parquet_holds_the_txn_rows(tmp_path) -> None:
    """Other Delta readers see the sequences too: the checkpoint has Delta's txn rows."""
    import pyarrow.parquet as pq

    uri = str(tmp_path / "root")
    make_frame(uri)
    with Apiary("test", uri, join_swarm=False) as ap:
        for n in range(100):
            ap.write_to_frame(*FRAME, batch(1, n, 1), txn=("pi-7", n))
        path = tmp_path / "root" / "/".join(FRAME) / "_delta_log"
        rows = pq.read_table(path / f"{100:020d}.checkpoint.parquet").column("txn").to_pylist()
        txns = [r for r in rows if r is not None]
        assert [(t["appId"], t["version"]) for t in txns] == [("pi-7", 99)]
        assert json.loads((path / "_last_checkpoint").read_text())["version"] == 100
