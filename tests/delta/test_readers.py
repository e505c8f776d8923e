"""Other Delta readers see a frame exactly as Apiary does: delta-rs and Polars, local and S3.

A frame of every Delta-mappable type, partitioned and not, goes through appends, overwrites,
compaction, vacuum and 250 versions (so checkpoints); at the latest and at old versions
``deltalake.DeltaTable(uri).to_pyarrow_table()`` and ``polars.read_delta`` equal
``read_from_frame``, ``history()`` shows Apiary's operations and ``file_uris()`` are its cells.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections.abc import Iterator

import deltalake  # in the test extra: a missing reader fails these tests, never skips them
import pyarrow as pa
import pytest
from support.polars_reader import PolarsReader, polars_reader

from apiary import Apiary

SCHEMA = pa.schema(
    [
        ("i8", pa.int8()),
        ("i16", pa.int16()),
        ("i32", pa.int32()),
        ("i64", pa.int64()),
        ("u8", pa.uint8()),
        ("u16", pa.uint16()),
        ("u32", pa.uint32()),
        ("f32", pa.float32()),
        ("f64", pa.float64()),
        ("ok", pa.bool_()),
        ("s", pa.string()),
        ("ls", pa.large_string()),
        ("bin", pa.binary()),
        ("day", pa.date32()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("ts_ms", pa.timestamp("ms", tz="UTC")),
        ("dec", pa.decimal128(12, 3)),
        ("region", pa.string()),
    ]
)
# Columns compared as Delta types (delta-rs reads Delta's type for each column).
AS_DELTA = {
    "u8": pa.int16(),
    "u16": pa.int32(),
    "u32": pa.int64(),
    "ls": pa.string(),
    "ts_ms": pa.timestamp("us", tz="UTC"),
}
VERSIONS = 250


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path) -> str:
    """Both backends a Delta reader can open (the memory store is private to this process)."""
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket").uri


def batch(n: int, rows: int = 3) -> pa.Table:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    k = [n * 10 + r for r in range(rows)]
    return pa.table(
        {
            "i8": [v % 100 for v in k],
            "i16": k,
            "i32": [v * 1000 for v in k],
            "i64": [None if v % 7 == 3 else v * 10**9 for v in k],
            "u8": [v % 256 for v in k],
            "u16": [v % 65536 for v in k],
            "u32": [v * 3 for v in k],
            "f32": [v / 4 for v in k],
            "f64": [None if v % 5 == 1 else v / 3 for v in k],
            "ok": [v % 2 == 0 for v in k],
            "s": [f"s{v}%/é." for v in k],
            "ls": [f"long {v}" for v in k],
            "bin": [bytes([v % 256]) for v in k],
            "day": [dt.date(2026, 1, 1) + dt.timedelta(days=v % 40) for v in k],
            "ts": [base + dt.timedelta(microseconds=v * 1001) for v in k],
            "ts_ms": [base + dt.timedelta(milliseconds=v) for v in k],
            "dec": [decimal.Decimal(v) / 8 for v in k],
            "region": [("eu", "us.east", "a b%")[v % 3] for v in k],
        },
        schema=SCHEMA,
    )


def canonical(table: pa.Table) -> pa.Table:
    """Delta's column types, rows in one order (by the unique i16)."""
    table = table.select(SCHEMA.names)
    fields = [pa.field(f.name, AS_DELTA.get(f.name, f.type)) for f in SCHEMA]
    return table.cast(pa.schema(fields)).sort_by("i16")


def storage_options(ap: Apiary) -> dict[str, str] | None:
    location = ap.storage.location
    if location.scheme != "s3":
        return None
    return {
        "AWS_ENDPOINT_URL": location.endpoint or os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
    }


@pytest.fixture(scope="module")
def polars() -> Iterator[PolarsReader]:
    """Polars, in a worker process of its own (see support/polars_reader.py)."""
    with polars_reader() as reader:
        yield reader


def assert_readers_agree(
    ap: Apiary, polars: PolarsReader, frame: str, version: int | None = None
) -> None:
    info = ap.get_frame("h", "b", frame)
    options = storage_options(ap)
    expected = canonical(ap.read_from_frame("h", "b", frame, version=version))
    table = deltalake.DeltaTable(info["uri"], version=version, storage_options=options)
    assert canonical(table.to_pyarrow_table()).equals(expected)
    polars_table = polars.read_delta(info["uri"], version=version, options=options)
    assert canonical(polars_table).equals(expected)
    cells = ap.frame("h", "b", frame).snapshot(version).cells
    assert sorted(table.file_uris()) == sorted(f"{info['uri']}/{path}" for path in cells)


@pytest.mark.parametrize("partition_by", [[], ["region"]], ids=["flat", "partitioned"])
def test_delta_readers_see_every_version_of_a_frame(root, partition_by, polars) -> None:
    with Apiary("test", root) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        info = ap.create_frame("h", "b", "f", SCHEMA, partition_by=partition_by)
        assert info["uri"].endswith("h/b/f")
        for n in range(5):
            ap.write_to_frame("h", "b", "f", batch(n))
        ap.overwrite_frame("h", "b", "f", batch(50))
        for n in range(51, 55):
            ap.write_to_frame("h", "b", "f", batch(n))
        compacted = ap.compact_frame("h", "b", "f")
        assert compacted["cells_removed"] > 1
        vacuumed = ap.vacuum_frame("h", "b", "f", retention_hours=0, force=True)
        assert vacuumed["cells_deleted"] > 0
        version = ap.get_frame("h", "b", "f")["version"]
        while version < VERSIONS:
            version = ap.write_to_frame("h", "b", "f", batch(100 + version, rows=1))["version"]

        assert_readers_agree(ap, polars, "f")
        for old in (11, 150, 201):  # after vacuum, after the first checkpoint, after the second
            assert_readers_agree(ap, polars, "f", old)

        table = deltalake.DeltaTable(info["uri"], storage_options=storage_options(ap))
        assert table.version() == VERSIONS
        history = {h["version"]: h for h in table.history()}
        assert len(history) == VERSIONS + 1
        assert history[0]["operation"] == "CREATE TABLE"
        assert history[1]["operation"] == "WRITE"
        assert history[1]["apiary"]["operation"] == "add_cells"
        assert history[6]["operationParameters"]["mode"] == "Overwrite"
        assert history[11]["operation"] == "OPTIMIZE"
        assert {h["apiary"]["writer"] for h in history.values()} == {ap.node_id}
        assert table.protocol().min_reader_version == 1


def test_a_naive_timestamp_needs_the_timestamp_ntz_feature(tmp_path) -> None:
    with Apiary("test", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        info = ap.create_frame("h", "b", "n", {"t": "timestamp", "day": "date"}, ["day"])
        rows = pa.table(
            {
                "t": pa.array([dt.datetime(2026, 3, 1, 12, 0, 0, 5), None], pa.timestamp("us")),
                "day": [dt.date(2026, 3, 1), dt.date(2026, 3, 2)],
            }
        )
        ap.write_to_frame("h", "b", "n", rows)
        table = deltalake.DeltaTable(info["uri"])
        assert table.protocol().reader_features == ["timestampNtz"]
        got = table.to_pyarrow_table().select(["t", "day"]).sort_by("day")
        assert got.equals(ap.read_from_frame("h", "b", "n").sort_by("day"))


@pytest.mark.parametrize(
    ("kind", "use"),
    [
        ("uint64", "decimal128(20, 0)"),
        ("time", "Delta has no time type"),
        ("duration", "Delta has no duration"),
        ("timestamp[ns]", "timestamp[us]"),
        ("date64", "date32"),
    ],
)
def test_types_delta_lacks_are_refused_naming_what_to_use(tmp_path, kind, use) -> None:
    with Apiary("test", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        with pytest.raises(Exception, match="Delta") as info:
            ap.create_frame("h", "b", "x", {"c": kind})
        assert use in str(info.value) and "'c'" in str(info.value)
        assert ap.list_frames("h", "b") == []  # nothing was committed
