"""Schemas other tools write, and the original SDK's JSON form, create frames through the SDK."""

from __future__ import annotations

import datetime as dt
import subprocess
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.tpch import require_tpchgen

from apiary import Apiary
from apiary.bench.tpch import tpchgen_executable
from apiary.errors import SchemaError


@pytest.fixture
def ap(tmp_path: Path):
    with Apiary("test", str(tmp_path / "root")) as client:
        client.create_hive("h")
        client.create_box("h", "b")
        yield client


@pytest.fixture(scope="module")
def tpch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tpchgen()
    exe = tpchgen_executable()
    out = tmp_path_factory.mktemp("tpch")
    cmd = [exe, "parquet", "-s", "0.01", "--tables", "nation,customer", f"--output-dir={out}"]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def plain(table: pa.Table) -> pa.Table:
    """``table`` with view and large types as their plain type: what a frame gives back."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_string_view(t) or pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_binary_view(t) or pa.types.is_large_binary(t):
            t = pa.binary()
        fields.append(pa.field(f.name, t, f.nullable))
    return table.cast(pa.schema(fields))


@pytest.mark.parametrize("name", ["nation", "customer"])
def test_a_tpchgen_file_creates_its_own_frame(ap: Apiary, tpch_dir: Path, name: str) -> None:
    path = tpch_dir / f"{name}.parquet"
    schema = pq.read_schema(path)
    assert any(pa.types.is_string_view(f.type) for f in schema)  # what made it fail before
    ap.create_frame("h", "b", name, schema)
    table = pq.read_table(path)
    ap.write_to_frame("h", "b", name, table)
    back = ap.read_from_frame("h", "b", name)
    assert back.schema == plain(table).schema.remove_metadata()
    assert back.num_rows == table.num_rows > 0
    key = back.schema.names[0]
    assert back.sort_by(key).equals(plain(table).sort_by(key).cast(back.schema))
    # SQL sees it too (the stored types are the plain ones DataFusion reads back as views)
    count = ap.sql(f"SELECT count(*) AS n FROM h.b.{name}")["n"][0].as_py()
    assert count == table.num_rows


def test_a_polars_file_creates_its_own_frame(ap: Apiary, tmp_path: Path) -> None:
    df = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["a", None, "ccc"],
            "temp": [20.5, 21.0, None],
            "kind": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
            "day": [dt.date(2026, 1, d) for d in (1, 2, 3)],
            "at": [dt.datetime(2026, 1, 1, h) for h in (1, 2, 3)],
            "blob": [b"\x00", b"\x01\x02", None],
            "price": pl.Series(["1.50", "2.25", "3.00"]).cast(pl.Decimal(10, 2)),
            "ok": [True, False, None],
        }
    )
    path = tmp_path / "polars.parquet"
    df.write_parquet(path)
    schema = pq.read_schema(path)
    assert pa.types.is_large_string(schema.field("name").type)
    ap.create_frame("h", "b", "pl", schema)
    stored = ap.get_frame("h", "b", "pl")["schema"]
    assert stored.field("name").type == pa.string()
    assert stored.field("kind").type == pa.string()
    assert stored.field("blob").type == pa.binary()
    ap.write_to_frame("h", "b", "pl", pq.read_table(path))
    ap.write_to_frame("h", "b", "pl", df)  # the DataFrame itself, through its Arrow stream
    back = ap.read_from_frame("h", "b", "pl").sort_by("id")
    assert back.schema == stored
    assert back["name"].to_pylist() == ["a", "a", None, None, "ccc", "ccc"]
    assert back["kind"].to_pylist() == ["x", "x", "y", "y", "x", "x"]
    assert back["price"].to_pylist()[:2] == [Decimal("1.50")] * 2


def test_a_polars_list_column_is_refused_by_name(ap: Apiary, tmp_path: Path) -> None:
    path = tmp_path / "lists.parquet"
    pl.DataFrame({"id": [1], "tags": [["a", "b"]]}).write_parquet(path)
    with pytest.raises(SchemaError, match="'tags'.*nested"):
        ap.create_frame("h", "b", "lists", pq.read_schema(path))
    assert ap.list_frames("h", "b") == []


ORIGINAL = {
    "fields": [
        {"name": "sensor", "type": {"name": "utf8"}, "nullable": False},
        {
            "name": "temp",
            "type": {"name": "floatingpoint", "precision": "SINGLE"},
            "nullable": True,
        },
        {
            "name": "ts",
            "type": {"name": "timestamp", "unit": "MICROSECOND", "timezone": "UTC"},
            "nullable": True,
        },
        {"name": "n", "type": {"name": "int", "bitWidth": 32, "isSigned": True}, "nullable": True},
    ]
}


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_original_json_schema_end_to_end(ap: Apiary) -> None:
    ap.create_frame("h", "b", "readings", ORIGINAL, partition_by=["sensor"])
    schema = ap.frame("h", "b", "readings").schema
    assert schema.field("temp").type == pa.float32()
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("n").type == pa.int32()
    data = pa.table(
        {
            "sensor": ["a", "b"],
            "temp": [23.1, 19.5],  # float64 into float32: rounded
            "ts": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * 2, pa.timestamp("us", "UTC")),
            "n": [1, 2],
        }
    )
    ap.write_to_frame("h", "b", "readings", ipc_bytes(data))
    back = ap.read_from_frame("h", "b", "readings").sort_by("sensor")
    assert back["temp"].to_pylist() == [pytest.approx(23.1, rel=1e-6), 19.5]
    assert back["temp"].type == pa.float32()
    # The same frame in today's dict form is the same definition: a no-op, not AlreadyExists.
    ap.create_frame(
        "h",
        "b",
        "readings",
        {"sensor": "utf8", "temp": "float32", "ts": "timestamptz", "n": "int32"},
        partition_by=["sensor"],
    )


def test_empty_original_schema_makes_a_frame_with_no_columns(ap: Apiary) -> None:
    ap.create_frame("h", "b", "empty", {"fields": []})
    assert ap.list_frames("h", "b") == ["empty"]
    info = ap.get_frame("h", "b", "empty")
    assert info["rows"] == 0
    assert ap.read_from_frame("h", "b", "empty").num_columns == 0
    with pytest.raises(SchemaError, match="'x' is not in the frame"):
        ap.write_to_frame("h", "b", "empty", pa.table({"x": [1]}))
