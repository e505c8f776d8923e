"""A real Prometheus server (Debian's ``prometheus``) scrapes a running node's /metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import TOKEN, ServedNode, connect, free_port
from support.waiting import wait_until

from apiary import Apiary


@pytest.fixture
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        reason = "the prometheus server is not installed (apt-get install prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"prometheus is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture
def prometheus(
    prometheus_binary: str, tmp_path: Path
) -> Iterator[Callable[[int], Callable[[str], list[dict]]]]:
    """Start Prometheus scraping 127.0.0.1:<port> every second; gives a query function."""
    started: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> Callable[[str], list[dict]]:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: apiary\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n"
        )
        process = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
        )
        started.append(process)

        def query(promql: str) -> list[dict]:
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": promql}
            )
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    answer = json.loads(reply.read())
            except OSError:
                return []  # not up yet
            assert answer["status"] == "success", answer
            return answer["data"]["result"]

        return query

    yield start
    for process in started:
        process.terminate()
        assert process.wait(30) == 0


def test_prometheus_scrapes_bee_and_query_series_from_a_node(
    serve_node: Callable[..., ServedNode], prometheus, tmp_path: Path
) -> None:
    root = str(tmp_path / "root")
    with Apiary("t", root) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "t", {"x": "int64"})
        ap.write_to_frame("h", "b", "t", pa.table({"x": list(range(100))}))
    node = serve_node(root, serve_token=TOKEN, cores="2")
    query = prometheus(node.metrics_port)
    with connect(node) as conn, conn.cursor() as cur:
        for i in range(5):
            cur.execute(f"SELECT sum(x) FROM h.b.t WHERE x > {i}")
            assert cur.fetchone()[0] > 0
        with pytest.raises(Exception, match="nope"):
            cur.execute("SELECT * FROM h.b.nope")

    def value(promql: str) -> float | None:
        result = query(promql)
        return float(result[0]["value"][1]) if result else None

    wait_until(lambda: value("apiary_queries_total") == 6, timeout=60, what="6 queries")
    assert value('apiary_bees{state="idle"}') == 2
    assert value("sum(apiary_bees)") == 2
    assert value("apiary_query_errors_total") == 1
    assert value("apiary_query_seconds_count") == 6
    assert value('up{job="apiary"}') == 1
    assert value("apiary_colony_temperature") is not None
    assert value('apiary_storage_requests_total{operation="get"}') > 0
