"""How cells store values: decimals of up to 18 digits as integers, wider ones as bytes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from apiary import Apiary


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
    with Apiary("t", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", schema)
        ap.write_to_frame("h", "b", "f", data)
        [cell] = (tmp_path / "root").rglob("cell_*.parquet")
        physical = {
            column.path_in_schema: column.physical_type
            for column in (pq.ParquetFile(cell).metadata.row_group(0).column(i) for i in range(3))
        }
        assert physical == {"small": "INT32", "price": "INT64", "wide": "FIXED_LEN_BYTE_ARRAY"}
        assert ap.read_from_frame("h", "b", "f").equals(data)
        total = ap.sql("SELECT sum(price) AS s, min(small) AS m FROM h.b.f")
        assert total.column("s")[0].as_py() == Decimal("9999999999997.24")
        assert total.column("m")[0].as_py() == Decimal("-0.01")
