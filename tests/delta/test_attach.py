"""Apiary reads other writers' Delta tables: attach_frame, pruning from their stats, appends,
refusal of reader features it does not implement, and ``apiary load`` of a table folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import deltalake
import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.errors import SchemaError


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket").uri


def options(ap: Apiary) -> dict[str, str] | None:
    if ap.storage.location.scheme != "s3":
        return None
    return {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
    }


def sales(start: int, rows: int) -> pa.Table:
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": [("eu", "us", "apac")[i % 3] for i in ids],
            "amount": [i * 1.5 for i in ids],
        }
    )


def table_uri(ap: Apiary, relative: str) -> str:
    location = ap.storage.location
    if location.scheme == "s3":
        return f"s3://{location.bucket}/{location.path.strip('/')}/{relative}"
    return str(Path(location.path) / relative)


def test_a_delta_rs_table_is_attached_queried_pruned_appended_and_read_back(root) -> None:
    with Apiary("test", root) as ap:
        uri = table_uri(ap, "ext/sales")
        opts = options(ap)
        deltalake.write_deltalake(uri, sales(0, 30), partition_by=["region"], storage_options=opts)
        deltalake.write_deltalake(
            uri, sales(30, 30), partition_by=["region"], mode="append", storage_options=opts
        )
        deltalake.write_deltalake(  # overwrite: only ids 100..159 stay
            uri, sales(100, 60), partition_by=["region"], mode="overwrite", storage_options=opts
        )
        for start in (200, 300):
            deltalake.write_deltalake(
                uri, sales(start, 30), partition_by=["region"], mode="append", storage_options=opts
            )
        deltalake.DeltaTable(uri, storage_options=opts).create_checkpoint()
        deltalake.write_deltalake(
            uri, sales(400, 30), partition_by=["region"], mode="append", storage_options=opts
        )

        ap.create_hive("h")
        ap.create_box("h", "b")
        info = ap.attach_frame("h", "b", "sales", uri)
        assert info["partition_by"] == ["region"] and info["version"] == 5
        assert info["rows"] == 60 + 30 + 30 + 30
        assert ap.attach_frame("h", "b", "sales", uri)["version"] == 5  # again: a no-op

        explain = ap.sql("EXPLAIN SELECT * FROM h.b.sales WHERE id >= 400").to_pylist()
        pruning = next(row["plan"] for row in explain if row["plan_type"].startswith("apiary"))
        assert "pruned by statistics" in pruning
        assert int(pruning.split(" pruned by statistics")[0].rsplit(", ", 1)[1]) > 0
        got = ap.sql("SELECT region, count(*) AS n FROM h.b.sales WHERE id >= 400 GROUP BY region")
        assert {r["region"]: r["n"] for r in got.to_pylist()} == {"eu": 10, "us": 10, "apac": 10}
        eu = ap.sql("SELECT count(*) AS n FROM h.b.sales WHERE region = 'eu'").to_pylist()
        assert eu == [{"n": 50}]

        old = ap.read_from_frame("h", "b", "sales", version=1)
        assert sorted(old["id"].to_pylist()) == list(range(60))
        assert ap.write_to_frame("h", "b", "sales", sales(1000, 9))["version"] == 6

        back = deltalake.DeltaTable(uri, storage_options=opts).to_pyarrow_table()
        expected = sorted([*range(100, 160), *range(200, 230), *range(300, 330)])
        expected += [*range(400, 430), *range(1000, 1009)]
        assert sorted(back["id"].to_pylist()) == sorted(expected)  # every row, exactly once
        apiary_view = ap.read_from_frame("h", "b", "sales")
        assert sorted(apiary_view.to_pylist(), key=lambda r: r["id"]) == sorted(
            back.select(["id", "region", "amount"]).to_pylist(), key=lambda r: r["id"]
        )
        ap.drop_frame("h", "b", "sales")  # the table is not Apiary's: it stays
        assert deltalake.DeltaTable(uri, storage_options=opts).version() == 6


def _with_protocol(tmp_path: Path, protocol: dict, configuration: dict | None = None) -> Path:
    uri = tmp_path / "root/ext/t"
    deltalake.write_deltalake(str(uri), sales(0, 3))
    first = uri / "_delta_log/00000000000000000000.json"
    lines = []
    for line in first.read_text().splitlines():
        action = json.loads(line)
        if "protocol" in action:
            action = {"protocol": protocol}
        if "metaData" in action and configuration:
            action["metaData"]["configuration"] = configuration
        lines.append(json.dumps(action))
    first.write_text("\n".join(lines))
    return uri


@pytest.mark.parametrize(
    ("protocol", "configuration", "feature"),
    [
        (
            {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "readerFeatures": ["deletionVectors"],
                "writerFeatures": ["deletionVectors"],
            },
            {"delta.enableDeletionVectors": "true"},
            "deletionVectors",
        ),
        (
            {"minReaderVersion": 2, "minWriterVersion": 5},
            {"delta.columnMapping.mode": "name"},
            "columnMapping",
        ),
        (
            {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "readerFeatures": ["columnMapping", "v2Checkpoint"],
                "writerFeatures": ["columnMapping", "v2Checkpoint"],
            },
            {},
            "columnMapping, v2Checkpoint",
        ),
    ],
)
def test_reader_features_apiary_lacks_are_named(tmp_path, protocol, configuration, feature):
    uri = _with_protocol(tmp_path, protocol, configuration)
    with Apiary("test", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        with pytest.raises(SchemaError, match=feature):
            ap.attach_frame("h", "b", "t", str(uri))
        assert ap.list_frames("h", "b") == []


def test_attach_refuses_a_table_outside_the_root(tmp_path) -> None:
    deltalake.write_deltalake(str(tmp_path / "elsewhere"), sales(0, 3))
    with Apiary("test", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        with pytest.raises(Exception, match="outside the storage root"):
            ap.attach_frame("h", "b", "t", str(tmp_path / "elsewhere"))


def test_apiary_load_accepts_a_delta_table(tmp_path) -> None:
    source = tmp_path / "table"
    deltalake.write_deltalake(str(source), sales(0, 40), partition_by=["region"])
    deltalake.write_deltalake(str(source), sales(40, 5), partition_by=["region"], mode="append")
    root = tmp_path / "root"
    done = subprocess.run(
        [sys.executable, "-m", "apiary", "load", "x.y.z", str(source), "--storage", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "loaded 45 rows" in done.stdout
    with Apiary("test", str(tmp_path / "root")) as ap:
        got = ap.read_from_frame("x", "y", "z")
        assert sorted(got["id"].to_pylist()) == list(range(45))
        assert set(got["region"].to_pylist()) == {"eu", "us", "apac"}
