"""Prometheus metrics of a node (``metrics_listen``): read from the node at each scrape, plus
the query counters the Flight SQL server keeps.

Gauges and counters that the node already keeps (bees, temperature, storage requests, cache,
swarm) are read by a collector when Prometheus scrapes, so nothing is done between scrapes.
Each node has its own registry: nothing is shared through prometheus-client's global one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apiary.sdk import Apiary
from apiary.serve.flight import QueryObserver

BANDS = ("cold", "ideal", "warm", "hot", "critical")
BEE_STATES = ("idle", "busy", "draining")
NODE_STATES = ("alive", "suspect", "dead")
# Query latency buckets: a Pi answers small queries in tens of ms, big scans in tens of seconds.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class NodeCollector(Collector):
    """What the node knows about itself, read at scrape time."""

    def __init__(self, ap: Apiary) -> None:
        self.ap = ap

    def collect(self) -> Iterator[Metric]:
        ap = self.ap
        node = ap.node_id
        bees = ap.pool.status()
        states = GaugeMetricFamily("apiary_bees", "Bees by state", labels=["node", "state"])
        for state in BEE_STATES:
            states.add_metric([node, state], sum(b["state"] == state for b in bees))
        yield states
        yield _per_bee(
            node,
            bees,
            "memory_used",
            "apiary_bee_memory_used_bytes",
            "Estimated memory a busy bee uses",
        )
        yield _per_bee(
            node,
            bees,
            "memory_budget",
            "apiary_bee_memory_budget_bytes",
            "Each bee's memory budget",
        )
        yield _per_bee(
            node,
            bees,
            "spilled_bytes",
            "apiary_bee_spilled_bytes",
            "Bytes in each bee's spill folder",
        )
        yield _gauge("apiary_bees_waiting", "Callers waiting for a bee", node, ap.pool.queue_depth)
        yield _gauge(
            "apiary_arrow_allocated_bytes",
            "Bytes Arrow (pyarrow) holds now: results, batches in flight",
            node,
            pa.total_allocated_bytes(),
        )

        reading = ap.colony.reading()
        yield _gauge(
            "apiary_colony_temperature", "Colony temperature, 0..1", node, reading["temperature"]
        )
        band = GaugeMetricFamily(
            "apiary_colony_band", "1 for the current band", labels=["node", "band"]
        )
        for name in BANDS:
            band.add_metric([node, name], float(reading["band"] == name))
        yield band

        storage = ap.storage
        yield _by_op(
            "apiary_storage_requests", "Storage requests by operation", node, storage.counters
        )
        yield _by_op(
            "apiary_storage_errors", "Failed storage attempts by operation", node, storage.errors
        )
        yield _by_op(
            "apiary_storage_bytes",
            "Payload bytes read or written by operation",
            node,
            storage.bytes,
        )
        yield _counter(
            "apiary_commits", "Commits (conditional puts) won", node, storage.conditional["won"]
        )
        yield _counter(
            "apiary_commit_retries",
            "Commits lost to another writer and retried",
            node,
            storage.conditional["lost"],
        )

        cache = ap.cache
        yield _counter("apiary_cache_hits", "Cell cache hits", node, cache.hits if cache else 0)
        yield _counter(
            "apiary_cache_misses", "Cell cache misses", node, cache.misses if cache else 0
        )
        yield _gauge(
            "apiary_cache_bytes", "Bytes in the cell cache", node, cache.size if cache else 0
        )

        world = GaugeMetricFamily(
            "apiary_swarm_nodes", "Nodes by state, as this node sees them", labels=["node", "state"]
        )
        views = ap.world()
        for state in NODE_STATES:
            world.add_metric([node, state], sum(v.state == state for v in views))
        yield world
        worker = ap.worker
        yield _counter(
            "apiary_tasks_run",
            "Distributed-query tasks this node ran",
            node,
            worker.tasks_run if worker is not None else 0,
        )
        yield _counter(
            "apiary_tasks_abandoned",
            "Tasks abandoned after every attempt failed",
            node,
            ap.pool.abandoned_total,
        )


class QueryMetrics(QueryObserver):
    """Queries answered through the Flight SQL endpoint: count, errors, latency."""

    def __init__(self, registry: CollectorRegistry, node: str) -> None:
        self.node = node
        self.queries = Counter("apiary_queries", "Queries answered", ["node"], registry=registry)
        self.errors = Counter(
            "apiary_query_errors", "Queries that failed", ["node", "error"], registry=registry
        )
        self.latency = Histogram(
            "apiary_query_seconds",
            "Query latency, start to last batch",
            ["node"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.reassigned = Counter(
            "apiary_tasks_reassigned",
            "Tasks of this node's distributed queries moved to another node",
            ["node"],
            registry=registry,
        )
        for metric in (self.queries, self.latency, self.reassigned):
            metric.labels(node)  # exported from the start, at 0: rate() works at once

    def finished(
        self,
        seconds: float,
        error: BaseException | None,
        distribution: dict[str, Any] | None = None,
    ) -> None:
        self.queries.labels(self.node).inc()
        self.latency.labels(self.node).observe(seconds)
        if error is not None:
            self.errors.labels(self.node, type(error).__name__).inc()
        moved = (distribution or {}).get("reassigned")
        if isinstance(moved, int) and moved > 0:
            self.reassigned.labels(self.node).inc(moved)


class MetricsEndpoint:
    """``/metrics`` of one node on ``host:port``, served on a thread of prometheus-client."""

    def __init__(self, ap: Apiary, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(NodeCollector(ap))
        self.queries = QueryMetrics(self.registry, ap.node_id)
        self._server, self._thread = start_http_server(port, host, registry=self.registry)
        self.port = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _gauge(name: str, doc: str, node: str, value: float) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, doc, labels=["node"])
    metric.add_metric([node], value)
    return metric


def _counter(name: str, doc: str, node: str, value: float) -> CounterMetricFamily:
    metric = CounterMetricFamily(name, doc, labels=["node"])
    metric.add_metric([node], value)
    return metric


def _by_op(name: str, doc: str, node: str, values: dict[str, int]) -> CounterMetricFamily:
    metric = CounterMetricFamily(name, doc, labels=["node", "operation"])
    for op, value in sorted(values.items()):
        metric.add_metric([node, op], value)
    return metric


def _per_bee(
    node: str, bees: list[dict[str, Any]], key: str, name: str, doc: str
) -> GaugeMetricFamily:
    metric = GaugeMetricFamily(name, doc, labels=["node", "bee"])
    for bee in bees:
        metric.add_metric([node, str(bee["id"])], bee[key])
    return metric
