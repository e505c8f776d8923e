"""On S3, DataFusion reads cells straight from the bucket, and only the cells that survive."""

from __future__ import annotations

from urllib.parse import unquote

import pyarrow as pa

from apiary import Apiary


def test_selecting_one_partition_reads_only_its_cells(fault_proxy) -> None:
    proxy = fault_proxy.proxy
    with Apiary("test", fault_proxy.target.uri) as ap:
        ap.create_hive("farm")
        ap.create_box("farm", "sensors")
        ap.create_frame(
            "farm", "sensors", "temps", {"region": "string", "v": "int64"}, partition_by=["region"]
        )
        for region in ("north", "south", "east", "west"):
            for _ in range(2):
                ap.write_to_frame(
                    "farm",
                    "sensors",
                    "temps",
                    pa.table({"region": [region] * 1000, "v": range(1000)}),
                )
        proxy.clear_requests()
        result = ap.sql("SELECT sum(v) AS s FROM farm.sensors.temps WHERE region = 'south'")
        assert result["s"].to_pylist() == [2 * sum(range(1000))]

    paths = [
        unquote(r.path)
        for r in proxy.requests
        if r.method in ("GET", "HEAD") and ".parquet" in r.path
    ]
    assert paths, "DataFusion should have read the south cells through S3"
    assert all("/region=south/" in p for p in paths), paths
    assert len(set(paths)) == 2
    # Listings only touch the catalog, the ledger and the south folder, never other partitions.
    listed = [unquote(r.query) for r in proxy.requests if "list-type" in r.query]
    others = ("region=north", "region=east", "region=west")
    assert not any(o in q for q in listed for o in others), listed


def test_s3_results_equal_the_sdk(s3_bucket) -> None:
    with Apiary("test", s3_bucket.uri) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"k": "string", "x": "float64"}, partition_by=["k"])
        ap.write_to_frame(
            "h", "b", "f", pa.table({"k": ["a.b", "c/d", "e f"], "x": [1.0, 2.0, 3.0]})
        )
        via_sql = ap.sql("SELECT * FROM h.b.f ORDER BY x")
        assert via_sql.equals(ap.read_from_frame("h", "b", "f").sort_by("x"))
        assert ap.sql("SELECT x FROM h.b.f WHERE k = 'c/d'")["x"].to_pylist() == [2.0]
