"""`apiary load` on awkward files: NaN in CSV, a truncated .csv.gz, files with no rows."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from support.processes import run_apiary

from apiary import Apiary

apiary = run_apiary


def read(root: Path, frame: str = "z") -> pa.Table:
    with Apiary("test", root) as ap:
        return ap.read_from_frame("x", "y", frame).sort_by("id")


def test_csv_nan_is_nan_and_an_empty_field_is_null(tmp_path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("id,temp,note\n1,NaN,a\n2,,NaN\n3,4.5,\n4,nan,c\n5,-inf,d\n")
    root = tmp_path / "root"
    proc = apiary("load", "x.y.z", str(src), "--storage", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "loaded 5 rows" in proc.stdout
    table = read(root)
    temp = table.column("temp").to_pylist()
    assert math.isnan(temp[0]) and math.isnan(temp[3]), temp
    assert temp[1] is None and temp[2] == 4.5 and temp[4] == -math.inf
    assert table.column("temp").null_count == 1
    assert table.column("note").to_pylist() == ["a", "NaN", "", "c", "d"]

    # Into the existing frame (parsed with its own types), the same rule.
    proc = apiary("load", "x.y.z", str(src), "--storage", str(root))
    assert proc.returncode == 0, proc.stderr
    assert read(root).column("temp").null_count == 2


def test_a_truncated_csv_gz_is_one_clear_line_and_committed_chunks_stay(tmp_path) -> None:
    # ~33 MB of CSV: several of the reader's 4 MB blocks parse before the cut.
    rows = [f"{i},{'oslo' if i % 2 else 'rome'},{i % 30}.5" for i in range(2_000_000)]
    whole = gzip.compress(("id,city,temp\n" + "\n".join(rows) + "\n").encode(), 1)
    src = tmp_path / "big.csv.gz"
    src.write_bytes(whole[: len(whole) * 2 // 3])  # a download cut short
    root = tmp_path / "root"

    proc = apiary("load", "x.y.z", str(src), "--storage", str(root), "--chunk-rows", "50000")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "big.csv.gz" in errors[0] and "truncated or corrupt" in errors[0], errors[0]
    loaded = read(root)
    assert 0 < loaded.num_rows < 2_000_000 and loaded.num_rows % 50_000 == 0
    assert loaded.column("id").to_pylist() == list(range(loaded.num_rows))
    assert f"{loaded.num_rows:,} rows" in proc.stderr and "stay" in proc.stderr, proc.stderr


def test_a_header_only_csv_creates_the_frame_with_string_columns(tmp_path) -> None:
    src = tmp_path / "empty.csv"
    src.write_text("id,city,temp\n")
    root = tmp_path / "root"
    proc = apiary("load", "x.y.z", str(src), "--storage", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "does not exist" not in proc.stdout + proc.stderr
    assert "no rows" in proc.stdout and "string" in proc.stdout, proc.stdout
    assert "loaded 0 rows" in proc.stdout
    with Apiary("test", root) as ap:
        frame = ap.frame("x", "y", "z")
        assert frame.schema == pa.schema(
            {"id": pa.string(), "city": pa.string(), "temp": pa.string()}
        )
        assert ap.sql("SELECT count(*) AS n FROM x.y.z")["n"].to_pylist() == [0]


def test_a_header_only_csv_into_an_existing_frame_loads_nothing(tmp_path) -> None:
    root = tmp_path / "root"
    rows = tmp_path / "rows.csv"
    rows.write_text("id,temp\n1,2.5\n")
    assert apiary("load", "x.y.z", str(rows), "--storage", str(root)).returncode == 0
    header = tmp_path / "header.csv"
    header.write_text("id,temp\n")
    proc = apiary("load", "x.y.z", str(header), "--storage", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "loaded 0 rows" in proc.stdout and "no commits" in proc.stdout
    assert read(root).num_rows == 1


def test_an_empty_parquet_file_creates_the_frame_with_its_types(tmp_path) -> None:
    src = tmp_path / "empty.parquet"
    schema = pa.schema({"id": pa.int64(), "temp": pa.float64()})
    pq.write_table(schema.empty_table(), src)
    root = tmp_path / "root"
    proc = apiary("load", "x.y.z", str(src), "--storage", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "loaded 0 rows" in proc.stdout
    with Apiary("test", root) as ap:
        assert ap.frame("x", "y", "z").schema == schema


def test_an_empty_file_is_refused_before_any_write(tmp_path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("id\n1\n")
    empty = tmp_path / "nothing.csv"
    empty.write_text("")
    root = tmp_path / "root"
    proc = apiary("load", "x.y.z", str(good), str(empty), "--storage", str(root))
    assert proc.returncode == 1
    assert "nothing.csv" in proc.stderr and "empty" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (root / "x").exists()


def test_a_header_only_file_before_one_with_rows_takes_types_from_the_rows(tmp_path) -> None:
    header = tmp_path / "a.csv"
    header.write_text("id,temp\n")
    rows = tmp_path / "b.csv"
    rows.write_text("id,temp\n1,2.5\n")
    root = tmp_path / "root"
    proc = apiary("load", "x.y.z", str(header), str(rows), "--storage", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "loaded 1 row from 2 files" in proc.stdout
    with Apiary("test", root) as ap:
        assert ap.frame("x", "y", "z").schema == pa.schema({"id": pa.int64(), "temp": pa.float64()})
