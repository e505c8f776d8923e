"""Results stream from the bee batch by batch: bounded server memory, a client that goes away
frees its bee, and many clients at once queue for the bees (or are told the node is busy)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import psutil
import pyarrow as pa
import pytest
from adbc_driver_manager import dbapi
from conftest import TOKEN, ServedNode, connect
from support.waiting import wait_until

from apiary import Apiary
from apiary.errors import MemoryExceededError
from apiary.runtime.colony import Colony, Reading
from apiary.serve.flight import ApiaryFlightServer

ROWS = 1_000_000
MiB = 1 << 20


def _big_root(tmp_path: Path) -> str:
    """One frame of 1,000,000 rows, ~110 MB as Arrow: far more than a bee's budget here."""
    root = str(tmp_path / "root")
    with Apiary("t", root) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "big", {"id": "int64", "payload": "string"})
        ids = pa.array(range(ROWS), pa.int64())
        payload = pa.compute.binary_join_element_wise(
            pa.compute.cast(ids, pa.string()), pa.scalar("x" * 90), ""
        )
        ap.write_to_frame("h", "b", "big", pa.table({"id": ids, "payload": payload}))
    return root


def test_a_million_rows_stream_with_bounded_server_memory(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    root = _big_root(tmp_path)
    budget = 48 * MiB
    with Apiary("t", root, join_swarm=False) as ap:
        ap.settings.memory_per_bee = budget
        with pytest.raises(MemoryExceededError):  # whole, the result cannot fit a bee
            ap.sql("SELECT id, payload FROM h.b.big")
    node = serve_node(root, serve_token=TOKEN, memory_per_bee=str(budget))
    server = psutil.Process(node.process.pid)
    with connect(node) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM h.b.big")  # warm: DataFusion loaded, files cached
        assert cur.fetchone() == (ROWS,)
        arrow_base = node.metric("apiary_arrow_allocated_bytes")
        arrow_peak, after_first, total_bytes = arrow_base, 0, 0
        for run in range(3):
            rows = batches = 0
            cur.execute("SELECT id, payload FROM h.b.big")
            for batch in cur.fetch_record_batch():
                rows += batch.num_rows
                total_bytes += batch.nbytes
                batches += 1
                if batches % 8 == 0:  # a reader slower than the node: backpressure
                    arrow_peak = max(arrow_peak, node.metric("apiary_arrow_allocated_bytes"))
            assert rows == ROWS
            assert batches > 50  # streamed in many batches, not one
            if run == 0:
                after_first = _private(server)
        after_third = _private(server)
    assert total_bytes > 300 * MiB
    # What the server holds in Arrow while streaming: a few batches in flight, never the
    # ~110 MB result.
    held = arrow_peak - arrow_base
    assert held < 16 * MiB, f"the server held {held / MiB:.0f} MiB of Arrow data"
    # And its memory does not grow with what it streams: two more results (~220 MB) later,
    # private memory (as the node's own ceiling counts it) grew by a fraction of one result
    # (the allocators keep some freed memory for reuse).
    grown = after_third - after_first
    assert grown < total_bytes / 6, f"the server grew {grown / MiB:.0f} MiB over two streams"


def _private(process: psutil.Process) -> int:
    info = process.memory_info()
    return info.rss - info.shared


_CLIENT = textwrap.dedent(
    """
    import sys, time
    import adbc_driver_flightsql.dbapi as flightsql
    uri, token = sys.argv[1], sys.argv[2]
    conn = flightsql.connect(
        uri, db_kwargs={"adbc.flight.sql.authorization_header": "Bearer " + token},
        autocommit=True,
    )
    cur = conn.cursor()
    cur.execute("SELECT id, payload FROM h.b.big")
    reader = cur.fetch_record_batch()
    reader.read_next_batch()
    print("READING", flush=True)
    time.sleep(600)
    """
)


def _stalled_client(node: ServedNode) -> subprocess.Popen[str]:
    """A client process that read one batch of a big result and then stopped reading."""
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, node.uri, TOKEN], stdout=subprocess.PIPE, text=True
    )
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "READING"
    return client


def test_a_client_killed_mid_stream_frees_its_bee_within_two_seconds(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    node = serve_node(_big_root(tmp_path), serve_token=TOKEN)
    client = _stalled_client(node)
    try:
        # The client stopped reading: its bee waits, holding the query back.
        assert node.metric("apiary_bees", state="busy") == 1
        client.kill()
        client.wait()
        killed = time.monotonic()
        wait_until(
            lambda: (
                node.metric("apiary_bees", state="busy") == 0
                and node.metric("apiary_bees", state="draining") == 0
            ),
            timeout=10,
            what="the bee to be idle",
        )
        freed = time.monotonic() - killed
    finally:
        client.kill()
    assert freed < 2.0, f"the bee was busy {freed:.2f} s after its client died"
    with connect(node) as conn, conn.cursor() as cur:  # and the node answers the next client
        cur.execute("SELECT count(*) FROM h.b.big")
        assert cur.fetchone() == (ROWS,)


def test_a_node_stops_cleanly_while_a_client_stalls_mid_stream(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    node = serve_node(_big_root(tmp_path), serve_token=TOKEN)
    client = _stalled_client(node)
    try:
        asked = time.monotonic()
        assert node.stop() == 0, node.log
        assert time.monotonic() - asked < 15
        assert "stopped cleanly" in node.log
    finally:
        client.kill()
        client.wait()


def test_twenty_clients_fifty_queries_each_queue_for_the_bees(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    root = str(tmp_path / "root")
    with Apiary("t", root) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "t", {"k": "int64", "v": "float64"})
        ap.write_to_frame(
            "h", "b", "t", pa.table({"k": [i % 10 for i in range(10_000)], "v": [1.0] * 10_000})
        )
    node = serve_node(root, serve_token=TOKEN, cores="2")
    bees = node.metric("apiary_bees", state="idle")
    assert bees == 2
    errors: list[BaseException] = []
    answers: list[int] = []
    seen = {"busy": 0.0, "waiting": 0.0}
    done = threading.Event()

    def client(n: int) -> None:
        try:
            with connect(node) as conn, conn.cursor() as cur:
                for i in range(50):
                    cur.execute(f"SELECT sum(v) AS s FROM h.b.t WHERE k <> {(n + i) % 10}")
                    answers.append(int(cur.fetchone()[0]))
        except BaseException as exc:
            errors.append(exc)

    def sample() -> None:
        while not done.is_set():
            text = node.metrics()
            for line in text.splitlines():
                if line.startswith("apiary_bees{") and 'state="busy"' in line:
                    seen["busy"] = max(seen["busy"], float(line.rsplit(" ", 1)[1]))
                if line.startswith("apiary_bees_waiting{"):
                    seen["waiting"] = max(seen["waiting"], float(line.rsplit(" ", 1)[1]))

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    sampler.join()
    assert errors == []
    assert answers == [9000] * 1000
    assert seen["busy"] <= bees  # never more running queries than bees...
    assert seen["waiting"] > 0  # ...the others waited in the queue


def test_a_critical_node_refuses_queries_as_busy(tmp_path: Path) -> None:
    """The server in this process, so that the node's load can be set: a colony whose sampler
    reads full CPU and memory (everything else real: server, bees, ADBC client)."""
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        ap.create_hive("h")
        load = {"hot": False}
        ap._colony = Colony(  # the reading is all that is injected
            ap.pool,
            sampler=lambda: Reading(1.0, 1.0, 1.0) if load["hot"] else Reading(0.1, 0.1),
            min_interval=0.0,
        )
        server = ApiaryFlightServer(ap, "grpc://127.0.0.1:0")
        try:
            uri = f"grpc://127.0.0.1:{server.port}"
            with flightsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute("SELECT 41 + 1")
                assert cur.fetchone() == (42,)
                load["hot"] = True
                with pytest.raises(dbapi.Error, match="busy: this node is critical"):
                    cur.execute("SELECT 41 + 1")
                cur.execute("SHOW HIVES")  # commands still answer: only queries are refused
                assert cur.fetchall() == [("h",)]
                load["hot"] = False
                cur.execute("SELECT 41 + 1")  # and queries again once it cools
                assert cur.fetchone() == (42,)
        finally:
            server.shutdown()
