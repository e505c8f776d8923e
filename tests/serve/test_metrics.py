"""The /metrics endpoint of a node, in this process, and the Grafana dashboard drawn from it."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pyarrow as pa

from apiary import Apiary
from apiary.serve.metrics import MetricsEndpoint

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "apiary-dashboard.json"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        return reply.read().decode()


def test_metrics_count_storage_commits_and_queries(tmp_path: Path) -> None:
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        endpoint = MetricsEndpoint(ap, "127.0.0.1", 0)
        try:
            ap.create_hive("h")
            ap.create_box("h", "b")
            ap.create_frame("h", "b", "t", {"x": "int64"})
            ap.write_to_frame("h", "b", "t", pa.table({"x": [1, 2, 3]}))
            endpoint.queries.finished(0.2, None)
            endpoint.queries.finished(0.1, ValueError("bad"))
            text = _scrape(endpoint.port)
        finally:
            endpoint.close()
    series = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    node = ap.node_id
    assert float(series[f'apiary_commits_total{{node="{node}"}}']) >= 4  # catalog + ledger
    assert float(series[f'apiary_storage_bytes_total{{node="{node}",operation="put"}}']) > 0
    assert float(series[f'apiary_storage_requests_total{{node="{node}",operation="get"}}']) > 0
    assert float(series[f'apiary_queries_total{{node="{node}"}}']) == 2
    assert float(series[f'apiary_query_errors_total{{error="ValueError",node="{node}"}}']) == 1
    assert float(series[f'apiary_query_seconds_bucket{{le="0.25",node="{node}"}}']) == 2
    bees = [k for k in series if k.startswith("apiary_bees{")]
    assert len(bees) == 3  # idle, busy, draining


def test_the_grafana_dashboard_draws_only_series_a_node_exports(tmp_path: Path) -> None:
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        endpoint = MetricsEndpoint(ap, "127.0.0.1", 0)
        try:
            endpoint.queries.finished(0.1, ValueError("bad"))  # errors are labelled by kind
            exported = set(re.findall(r"^(apiary_\w+)", _scrape(endpoint.port), re.MULTILINE))
        finally:
            endpoint.close()
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"apiary_\w+", target["expr"])
    }
    assert len(used) >= 15
    assert used <= exported, f"not exported: {sorted(used - exported)}"
