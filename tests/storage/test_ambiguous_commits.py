"""Commits through a proxy that loses replies, throttles (503) and reports conflicts (409).

The proxy sits in front of moto on loopback: a "lost reply" PUT really was applied by S3, and
the writer must find that out by reading the entry back, not by retrying blindly.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pytest
from support.processes import finish, ids_by_commit, spawn_writer
from support.writer_process import FRAME, SCHEMA, batch

from apiary import Apiary, CommitStateUnknownError

SECRET = "Sup3r-s3cret-Value-9f2"  # moto accepts any key; this one must never be printed


@pytest.fixture
def ap(fault_proxy, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with Apiary("test", fault_proxy.target.uri) as client:
        client.create_hive(FRAME[0])
        client.create_box(*FRAME[:2])
        client.create_frame(*FRAME, SCHEMA)
        yield client


def entries(ap: Apiary) -> list:
    return [entry for entry, _ in ap.frame(*FRAME).ledger.history()]


def test_lost_reply_503_and_409_give_exactly_one_commit_each(ap, fault_proxy, caplog) -> None:
    proxy = fault_proxy.proxy
    proxy.add_fault("PUT", r"_delta_log/0{19}1\.json$", "lose_reply", times=1)
    proxy.add_fault("PUT", r"_delta_log/0{19}2\.json$", "status", status=503, times=2)
    proxy.add_fault("PUT", r"_delta_log/0{19}3\.json$", "status", status=409, times=1)
    proxy.add_fault("PUT", r"_delta_log/0{19}4\.json$", "lose_reply", times=3)
    caplog.set_level(logging.WARNING, logger="apiary.storage")

    versions = [ap.write_to_frame(*FRAME, batch(0, c, 10))["version"] for c in range(4)]

    assert versions == [1, 2, 3, 4]
    assert proxy.pending_faults() == 0  # every fault really fired
    assert [e.version for e in entries(ap)] == [0, 1, 2, 3, 4]
    table = ap.read_from_frame(*FRAME)
    assert table.num_rows == 40
    assert all(len(ids) == 10 for ids in ids_by_commit(table).values())
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert any("000001.json" in m for m in retries)  # retries are visible in the log
    assert any(
        "000004.json" in m and "read back: ours" in r.getMessage()
        for r in caplog.records
        for m in [r.getMessage()]
    )
    assert SECRET not in caplog.text  # the secret key never reaches the log


def test_storage_that_never_answers_reports_unknown_state_and_harms_nothing(ap, fault_proxy):
    ap.write_to_frame(*FRAME, batch(0, 0, 10))
    fault_proxy.proxy.add_fault("PUT", r"_delta_log/0{19}2\.json$", "status", status=503, times=50)
    with pytest.raises(CommitStateUnknownError, match="Re-read") as info:
        ap.write_to_frame(*FRAME, batch(0, 1, 10))
    assert SECRET not in str(info.value) and SECRET not in repr(ap)
    fault_proxy.proxy.clear_faults()
    with Apiary("test", fault_proxy.target.uri) as fresh:
        assert fresh.get_frame(*FRAME)["version"] == 1
        assert fresh.read_from_frame(*FRAME).num_rows == 10


def test_transient_read_faults_are_retried(ap, fault_proxy) -> None:
    ap.write_to_frame(*FRAME, batch(0, 0, 10))
    fault_proxy.proxy.add_fault("GET", r"\.parquet$", "status", status=503, times=2)
    fault_proxy.proxy.add_fault("GET", r"\.parquet$", "lose_reply", times=1)
    assert ap.read_from_frame(*FRAME).num_rows == 10
    assert fault_proxy.proxy.pending_faults() == 0


@pytest.mark.multiprocess
def test_racing_processes_through_lost_replies(ap, fault_proxy) -> None:
    """Four writer processes race while the proxy loses the replies of applied ledger PUTs."""
    fault_proxy.proxy.add_fault("PUT", r"_delta_log/\d+\.json$", "lose_reply", times=6)
    fault_proxy.proxy.add_fault("PUT", r"_delta_log/\d+\.json$", "status", status=409, times=3)
    procs = [spawn_writer(fault_proxy.target.uri, w, commits=8) for w in range(4)]
    acks = [ack for proc in procs for ack in finish(proc)]
    assert fault_proxy.proxy.pending_faults() == 0
    assert sorted(a["version"] for a in acks) == list(range(1, 33))
    assert [e.version for e in entries(ap)] == list(range(33))
    table: pa.Table = ap.read_from_frame(*FRAME)
    found = ids_by_commit(table)
    assert table.num_rows == 320
    assert all(len(found[(a["writer"], a["commit"])]) == 10 for a in acks)


def test_a_client_error_is_not_retried(ap, fault_proxy) -> None:
    """A 400 fails at once: obstore's message carries a debug dump of its client settings
    (``retry_timeout: …``) that must not make every error look like a timeout."""
    proxy = fault_proxy.proxy
    proxy.add_fault("PUT", r"_delta_log/0{19}1\.json$", "status", status=400, times=10)

    with pytest.raises(Exception, match="400"):
        ap.write_to_frame(*FRAME, batch(0, 0, 10))

    assert proxy.pending_faults() == 9  # one try of the ten the rule allowed
