"""Every subcommand of the frozen program, driven as a user would in a fresh APIARY_HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.frozen import FrozenRelease

from apiary.cli import COMMANDS

# The first test here may pay for building the frozen release (~2 min on 2 cores, more when
# busy): tests/support/frozen.py builds it once per session for every module that needs it.
pytestmark = [pytest.mark.binary, pytest.mark.timeout(900)]

NODE_TIMINGS = {  # fast heartbeats, in the order the settings demand
    "APIARY_HEARTBEAT_INTERVAL": "0.5",
    "APIARY_SUSPECT_AFTER": "3",
    "APIARY_DEAD_AFTER": "6",
    "APIARY_FORGET_AFTER": "12",
}


@pytest.fixture
def demo_root(frozen, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    out = frozen("demo", "--storage", str(root), "--rows", "1000", "--batches", "3").stdout
    assert "Read back 3,000 rows: all present" in out
    return root


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_lazy_subcommand_was_frozen(frozen, command: str) -> None:
    # Subcommands are imported by name at run time; a missing hidden import fails right here.
    assert "Usage: apiary" in frozen(command, "--help").stdout


def test_bench_subcommands_were_frozen(frozen) -> None:
    for sub in ("write", "tpch", "s3", "swarm"):
        assert "Usage: apiary bench" in frozen("bench", sub, "--help").stdout


def test_demo_then_sql_reads_the_demo_frame(frozen, demo_root: Path) -> None:
    query = (
        "SELECT region, count(*) AS n FROM demo.sensors.readings GROUP BY region ORDER BY region"
    )
    out = frozen("sql", "--storage", str(demo_root), query, "--format", "csv").stdout
    assert out.splitlines() == [
        '"region","n"',
        '"east",750',
        '"north",750',
        '"south",750',
        '"west",750',
    ]


def test_a_join_on_no_equality_runs_in_a_sealed_child(frozen, demo_root: Path) -> None:
    # Such a join runs in `apiary _sealed`, the frozen program started again by itself.
    query = (
        "SELECT count(*) AS n FROM demo.sensors.readings a JOIN demo.sensors.readings b "
        "ON a.temperature + b.temperature < -1000"
    )
    run = frozen("-v", "sql", "--storage", str(demo_root), query, "--format", "csv")
    assert run.stdout.splitlines() == ['"n"', "0"]
    assert "NestedLoopJoinExec runs in a sealed child" in run.stderr


def test_shell_reads_statements_from_stdin(frozen, demo_root: Path) -> None:
    script = "USE demo.sensors;\nSELECT count(*) * 7 AS n\n  FROM readings;\n"
    out = frozen("shell", "--storage", str(demo_root), input=script).stdout
    assert "21000" in out  # 3,000 rows times 7; the second statement spans two lines


def test_node_heartbeats_and_stops_cleanly_on_sigterm(
    release: FrozenRelease, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    heartbeat = root / "_heartbeats" / "pi-frozen.json"
    env = {**os.environ, **NODE_TIMINGS}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [str(release.executable), "node", "--storage", str(root), "--node-id", "pi-frozen"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # the node logs this after its first heartbeat is written
            seen.append(line)
            if "joined the swarm" in line:
                break
        else:
            pytest.fail(f"node exited ({proc.wait()}) before joining: {''.join(seen)}")
        first = heartbeat.stat().st_mtime_ns
        assert json.loads(heartbeat.read_text())["node_id"] == "pi-frozen"
        deadline = time.monotonic() + 20  # the heartbeat thread keeps writing (every 0.5 s)
        while heartbeat.stat().st_mtime_ns == first:
            assert time.monotonic() < deadline, "no second heartbeat within 20 s"
            time.sleep(0.1)

        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped cleanly" in err
    assert not heartbeat.exists(), "a clean stop deletes the node's own heartbeat"


def test_hardware_reports_cores(frozen) -> None:
    assert "Cores (bees)" in frozen("hardware").stdout
    detected = json.loads(frozen("hardware", "--json").stdout)
    cores = detected["profile"]["cores"]
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    assert detected["budgets"]["bees"] == cores


def test_doctor_on_a_local_root(frozen, tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()  # doctor checks a root; it never creates one
    out = frozen("doctor", "--storage", str(tmp_path / "root")).stdout
    assert "create-if-absent is atomic" in out


@pytest.mark.s3
def test_doctor_on_s3_checks_conditional_writes(frozen, s3_bucket) -> None:
    # The binary's own obstore/TLS stack talks to the moto server the fixture started.
    out = frozen("doctor", "--storage", s3_bucket.uri).stdout
    assert "create-if-absent is atomic" in out
    assert "storage reachable" in out


@pytest.mark.multiprocess
def test_bench_write_spawns_writer_processes(frozen) -> None:
    # Writer processes are spawned: in a frozen program that re-executes the binary itself,
    # which only works because apiary.cli.main calls multiprocessing.freeze_support().
    out = frozen(
        "bench", "write", "--rows", "20000", "--repeats", "1", "--commits", "5",
        "--writers", "1,2", "--json",
    ).stdout  # fmt: skip
    results = json.loads(out)
    assert results["write"]["rows"] == 20000
    assert results["write"]["apiary"]["ratio_vs_bare"] > 0
    assert [(c["writers"], c["commits"]) for c in results["commits"]] == [(1, 5), (2, 10)]


def test_benchmarks_needing_moto_say_so_in_one_line(frozen) -> None:
    # moto is deliberately not frozen in; the S3 and swarm benchmarks need a pip install.
    for sub, what in (("s3", "S3"), ("swarm", "swarm")):
        proc = frozen("bench", sub, "--rows", "10", check=False)
        assert proc.returncode == 1
        assert f"the {what} benchmark needs moto" in proc.stderr
        assert "Traceback" not in proc.stderr
