"""A writer SIGKILLed at each phase of a commit: the frame opens, only complete commits show,
vacuum removes the orphans, and nothing acknowledged is lost."""

from __future__ import annotations

import signal

import pytest
from support.processes import acknowledged, finish, ids_by_commit, spawn_writer, wait_for_line
from support.writer_process import FRAME, SCHEMA

from apiary import Apiary


def prepare(uri: str) -> list[dict]:
    """A frame with two acknowledged commits by writer 0."""
    with Apiary("test", uri) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, SCHEMA)
    return finish(spawn_writer(uri, 0, commits=2))


def cells_in_storage(ap: Apiary) -> set[str]:
    prefix = "/".join(FRAME) + "/"
    return {
        o.path[len(prefix) :]
        for o in ap.storage.list("/".join(FRAME))
        if o.path.endswith(".parquet")
    }


def check_after_crash(uri: str, acks: list[dict], *, expect_crashed_commit: bool) -> None:
    with Apiary("test", uri) as ap:
        info = ap.get_frame(*FRAME)
        table = ap.read_from_frame(*FRAME)
        found = ids_by_commit(table)
        for ack in acks:  # nothing acknowledged is lost
            assert len(found[(ack["writer"], ack["commit"])]) == 10
        crashed = (1, 7)
        assert (crashed in found) is expect_crashed_commit  # all or nothing
        assert table.num_rows == 10 * (len(acks) + expect_crashed_commit)
        assert info["version"] == len(acks) + expect_crashed_commit

        referenced = set(ap.frame(*FRAME).ledger.latest().cells)
        orphans = cells_in_storage(ap) - referenced
        assert len(orphans) == (0 if expect_crashed_commit else 1)
        report = ap.vacuum_frame(*FRAME, retention_hours=0, force=True)
        assert report["cells_deleted"] == len(orphans)
        assert cells_in_storage(ap) == referenced
        assert ap.read_from_frame(*FRAME).num_rows == table.num_rows
        # The frame still takes writes at the next version.
        assert ap.write_to_frame(*FRAME, table.slice(0, 1))["version"] == info["version"] + 1


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["local", "s3"])
@pytest.mark.parametrize(("phase", "committed"), [("cells_uploaded", False), ("after_put", True)])
def test_sigkill_at_each_phase(backend, phase, committed, request, tmp_path) -> None:
    uri = str(tmp_path / "root") if backend == "local" else request.getfixturevalue("s3_bucket").uri
    acks = prepare(uri)
    proc = spawn_writer(uri, 1, commits=1, first_commit=7, crash_phase=phase)
    lines = wait_for_line(proc, "PHASE")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert acknowledged(lines) == []  # the crashed commit was never acknowledged
    check_after_crash(uri, acks, expect_crashed_commit=committed)


@pytest.mark.multiprocess
@pytest.mark.parametrize(("action", "committed"), [("hold", False), ("hold_after_forward", True)])
def test_sigkill_while_ledger_put_is_in_flight(fault_proxy, action, committed) -> None:
    """The ledger PUT is on the wire (held by the proxy, before or after reaching S3)."""
    uri = fault_proxy.target.uri
    acks = prepare(uri)
    fault_proxy.proxy.add_fault("PUT", r"_delta_log/0{19}3\.json$", action, times=1)
    proc = spawn_writer(uri, 1, commits=1, first_commit=7)
    assert fault_proxy.proxy.wait_held(timeout=60), "the ledger PUT never reached the proxy"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    fault_proxy.proxy.release_held()
    assert acknowledged(proc.stdout.read().splitlines()) == []
    check_after_crash(uri, acks, expect_crashed_commit=committed)
