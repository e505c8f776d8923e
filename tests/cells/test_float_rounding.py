"""Floats into a narrower float column are rounded, as every database does; overflow is refused."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.cells.conform import conform
from apiary.cells.types import schema_from_spec
from apiary.errors import SchemaError

F32_MAX = float(np.finfo(np.float32).max)


def to_float32(values: list) -> list:
    table = pa.table({"temp": pa.array(values, pa.float64())})
    return conform(table, schema_from_spec({"temp": "float32"})).column("temp").to_pylist()


def test_rounds_to_the_nearest_float32() -> None:
    out = to_float32([23.1, 0.1, -1e-50, None, F32_MAX])
    assert out[:2] == [float(np.float32(23.1)), float(np.float32(0.1))]
    assert out[2] == 0.0 and math.copysign(1, out[2]) == -1  # underflow keeps its sign
    assert out[3] is None
    assert out[4] == F32_MAX


def test_nan_and_infinities_stay_what_they_are() -> None:
    out = to_float32([math.nan, math.inf, -math.inf])
    assert math.isnan(out[0]) and out[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("value", [1e39, -1e39, 1e300, F32_MAX * 1.0001])
def test_a_finite_value_that_would_overflow_is_refused(value: float) -> None:
    with pytest.raises(SchemaError, match=r"'temp'.*float32") as info:
        to_float32([1.0, value])
    assert "inf" in str(info.value)  # says why: it would become infinite


def test_a_value_rounding_down_to_the_largest_float32_is_kept() -> None:
    # Just above float32's maximum, but nearer to it than to infinity: rounds to the maximum.
    assert to_float32([F32_MAX + 1e29]) == [F32_MAX]


def test_written_and_read_back_through_the_sdk(tmp_path) -> None:
    with Apiary("floats", storage=str(tmp_path)) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "weather", {"temp": "float32"})
        ap.write_to_frame("h", "b", "weather", pa.table({"temp": [23.1]}))
        back = ap.read_from_frame("h", "b", "weather")
        assert back.schema.field("temp").type == pa.float32()
        assert back["temp"].to_pylist() == [float(np.float32(23.1))]
        with pytest.raises(SchemaError, match="'temp'"):
            ap.write_to_frame("h", "b", "weather", pa.table({"temp": [1e39]}))
        assert ap.read_from_frame("h", "b", "weather").num_rows == 1  # nothing written
