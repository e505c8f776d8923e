"""`apiary load`: files of every supported format into frames, chunked, with clear errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from apiary import Apiary
from apiary.cells.files import FileSource, detect_format
from apiary.cli import cli
from apiary.errors import SchemaError


def write_csv(path: Path, rows: range, *, bad_row: int | None = None) -> Path:
    lines = ["id,city,temp"]
    for i in rows:
        temp = "warm" if i == bad_row else f"{i % 30}.5"
        lines.append(f"{i},{'oslo' if i % 2 else 'rome'},{temp}")
    path.write_text("\n".join(lines) + "\n")
    return path


def load(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["load", *args], catch_exceptions=False)
    return result.exit_code, result.output


def frame_table(root: Path, name: str = "x.y.z") -> pa.Table:
    hive, box, frame = name.split(".")
    with Apiary("test", root) as ap:
        return ap.read_from_frame(hive, box, frame).sort_by("id")


def test_csv_creates_a_partitioned_frame_in_exact_chunks(tmp_path) -> None:
    src = write_csv(tmp_path / "a.csv", range(2500))
    root = tmp_path / "root"
    code, out = load(
        "x.y.z", str(src), "--storage", str(root), "--chunk-rows", "1000", "--partition-by", "city"
    )
    assert code == 0, out
    assert "loaded 2,500 rows from 1 file in 3 commits" in out
    table = frame_table(root)
    assert table.column("id").to_pylist() == list(range(2500))
    assert table.column("temp").to_pylist()[:3] == [0.5, 1.5, 2.5]
    with Apiary("test", root) as ap:
        info = ap.get_frame("x", "y", "z")
        assert info["partition_by"] == ["city"] and info["version"] == 3


def test_every_format_into_one_existing_frame(tmp_path) -> None:
    root = tmp_path / "root"
    with Apiary("test", root) as ap:
        ap.create_hive("x")
        ap.create_box("x", "y")
        # temp is float64 in the frame: integer-looking CSV text must still parse as float
        ap.create_frame("x", "y", "z", {"id": "int64", "city": "string", "temp": "float64"})
    csv_gz = tmp_path / "b.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"id,city,temp\n0,oslo,1\n1,rome,2\n"))
    tsv = tmp_path / "c.tsv"
    tsv.write_text("id\tcity\ttemp\n2\toslo\t3\n")
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": [3, 4], "city": ["rome", "oslo"], "temp": [4.0, 5.0]}), parquet)
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text(json.dumps({"id": 5, "city": "rome", "temp": 6}) + "\n")
    code, out = load(
        "x.y.z", str(csv_gz), str(tsv), str(parquet), str(jsonl), "--storage", str(root)
    )
    assert code == 0, out
    table = frame_table(root)
    assert table.column("id").to_pylist() == [0, 1, 2, 3, 4, 5]
    assert table.column("temp").to_pylist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_replace_overwrites_and_keeps_history(tmp_path) -> None:
    root = tmp_path / "root"
    assert (
        load("x.y.z", str(write_csv(tmp_path / "a.csv", range(10))), "--storage", str(root))[0] == 0
    )
    code, out = load(
        "x.y.z",
        str(write_csv(tmp_path / "b.csv", range(100, 103))),
        "--storage",
        str(root),
        "--replace",
    )
    assert code == 0, out
    assert frame_table(root).column("id").to_pylist() == [100, 101, 102]
    with Apiary("test", root) as ap:
        assert ap.read_from_frame("x", "y", "z", version=1).num_rows == 10


def test_unknown_extension_fails_before_any_write(tmp_path) -> None:
    root = tmp_path / "root"
    good = write_csv(tmp_path / "a.csv", range(5))
    odd = tmp_path / "notes.txt"
    odd.write_text("id\n1\n")
    with pytest.raises(SchemaError, match="pass --format"):
        load("x.y.z", str(good), str(odd), "--storage", str(root))
    assert not (root / "x").exists()


def test_bad_value_names_the_file_and_keeps_committed_chunks(tmp_path) -> None:
    root = tmp_path / "root"
    src = write_csv(tmp_path / "a.csv", range(400_000), bad_row=350_000)
    with pytest.raises(SchemaError, match=r"a\.csv: cannot read as csv") as info:
        load("x.y.z", str(src), "--storage", str(root), "--chunk-rows", "50000")
    assert "create the frame with an explicit schema" in str(info.value)
    table = frame_table(root)
    # whole chunks before the bad block are committed; nothing after it, nothing duplicated
    assert 0 < table.num_rows < 350_000 and table.num_rows % 50_000 == 0
    assert table.column("id").to_pylist() == list(range(table.num_rows))


def test_partition_by_on_an_existing_frame_is_refused(tmp_path) -> None:
    root = tmp_path / "root"
    src = write_csv(tmp_path / "a.csv", range(5))
    assert load("x.y.z", str(src), "--storage", str(root))[0] == 0
    code, out = load("x.y.z", str(src), "--storage", str(root), "--partition-by", "city")
    assert code == 2 and "only applies when the load creates the frame" in out
    assert frame_table(root).num_rows == 5


def test_format_detection() -> None:
    assert detect_format(Path("x.CSV.gz")) == "csv"
    assert detect_format(Path("dir.v2/x.ndjson")) == "json"
    assert detect_format(Path("x.pq")) == "parquet"
    with pytest.raises(SchemaError, match="pass --format"):
        detect_format(Path("README"))


def test_chunks_report_progress_through_the_file(tmp_path) -> None:
    src = write_csv(tmp_path / "a.csv", range(400_000))
    chunks = list(FileSource(src).chunks(100_000))
    assert [c.table.num_rows for c in chunks] == [100_000] * 4
    done = [c.bytes_done for c in chunks]
    assert done == sorted(done) and done[-1] == src.stat().st_size
