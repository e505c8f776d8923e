"""How cells store values: decimals of up to 18 digits as integers, wider ones as bytes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from apiary import Apiary


@contextmanager
def written(tmp_path: Path, schema: pa.Schema, data: pa.Table) -> Iterator[tuple[Apiary, Path]]:
    """A frame of ``schema`` holding ``data`` in one cell, and that cell's file."""
    with Apiary("t", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", schema)
        ap.write_to_frame("h", "b", "f", data)
        [cell] = (tmp_path / "root").rglob("cell_*.parquet")
        yield ap, cell


def test_decimals_are_stored_as_integers_and_read_back_exactly(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            ("small", pa.decimal128(9, 2)),
            ("price", pa.decimal128(15, 2)),
            ("wide", pa.decimal128(30, 4)),
        ]
    )
    data = pa.table(
        {
            "small": [Decimal("1234567.89"), Decimal("-0.01"), None],
            "price": [Decimal("9999999999999.99"), Decimal("0.50"), Decimal("-3.25")],
            "wide": [Decimal("12345678901234567890123456.7890"), None, Decimal("-1.0001")],
        },
        schema=schema,
    )
    with written(tmp_path, schema, data) as (ap, cell):
        physical = {
            column.path_in_schema: column.physical_type
            for column in (pq.ParquetFile(cell).metadata.row_group(0).column(i) for i in range(3))
        }
        assert physical == {"small": "INT32", "price": "INT64", "wide": "FIXED_LEN_BYTE_ARRAY"}
        assert ap.read_from_frame("h", "b", "f").equals(data)
        total = ap.sql("SELECT sum(price) AS s, min(small) AS m FROM h.b.f")
        assert total.column("s")[0].as_py() == Decimal("9999999999997.24")
        assert total.column("m")[0].as_py() == Decimal("-0.01")


def test_columns_of_mostly_distinct_values_are_stored_plain_and_repeating_ones_with_a_dictionary(
    tmp_path: Path,
) -> None:
    rows = 20_000
    schema = pa.schema(
        [("device", pa.int32()), ("temp", pa.float64()), ("site", pa.string()), ("ok", pa.bool_())]
    )
    data = pa.table(
        {
            "device": pa.array([n % 40 for n in range(rows)], pa.int32()),
            "temp": pa.array([n * 0.37 + 0.001 * (n % 7) for n in range(rows)], pa.float64()),
            "site": pa.array([f"site-{n % 3}" for n in range(rows)]),
            "ok": pa.array([n % 2 == 0 for n in range(rows)]),
        },
        schema=schema,
    )
    with written(tmp_path, schema, data) as (ap, cell):
        group = pq.ParquetFile(cell).metadata.row_group(0)
        encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(4)}
        assert "RLE_DICTIONARY" in encodings["device"]
        assert "RLE_DICTIONARY" in encodings["site"]
        assert "RLE_DICTIONARY" not in encodings["temp"]  # a dictionary as big as the values
        assert ap.read_from_frame("h", "b", "f").equals(data)
        hot = ap.sql("SELECT count(*) AS n FROM h.b.f WHERE temp > 7000 AND device = 3")
        assert hot.column("n")[0].as_py() == sum(
            1 for n in range(rows) if n * 0.37 + 0.001 * (n % 7) > 7000 and n % 40 == 3
        )
