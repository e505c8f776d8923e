"""Deterministic sample sensor readings, for the demo and the benchmarks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa

REGIONS = ("north", "south", "east", "west")
SCHEMA = {
    "sensor_id": "int32",
    "region": "string",
    "ts": "timestamp[us, tz=UTC]",
    "temperature": "float64",
    "humidity": "float64",
}
_BASE_TEMP = {"north": 8.0, "south": 21.0, "east": 14.0, "west": 16.0}


def sensor_readings(rows: int, *, seed: int = 42, start: datetime | None = None) -> pa.Table:
    """``rows`` readings from 200 sensors spread over four regions, one per 10 s per sensor."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    sensor = [i % 200 for i in range(rows)]
    region = [REGIONS[s % len(REGIONS)] for s in sensor]
    ts = [start + timedelta(seconds=10 * (i // 200)) for i in range(rows)]
    temperature = [round(_BASE_TEMP[r] + rng.gauss(0, 3), 2) for r in region]
    humidity = [round(min(100.0, max(0.0, rng.gauss(60, 12))), 1) for _ in range(rows)]
    return pa.table(
        {
            "sensor_id": pa.array(sensor, pa.int32()),
            "region": pa.array(region, pa.string()),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "temperature": pa.array(temperature, pa.float64()),
            "humidity": pa.array(humidity, pa.float64()),
        }
    )
