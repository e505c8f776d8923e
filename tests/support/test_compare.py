"""The result comparison used by the TPC-H suite and ``apiary bench tpch``."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from apiary.bench.tpch_queries import QUERIES, has_order_by
from support.compare import assert_same_result


def table(**columns: pa.Array) -> pa.Table:
    return pa.table(columns)


def test_identical_tables_match() -> None:
    t = table(
        k=pa.array([1, 2]), s=pa.array(["a", "b"]), d=pa.array([datetime.date(1995, 1, 1)] * 2)
    )
    assert_same_result(t, t, ordered=True)


def test_row_order_counts_only_when_ordered() -> None:
    a = table(k=pa.array([1, 2]), s=pa.array(["a", "b"]))
    b = table(k=pa.array([2, 1]), s=pa.array(["b", "a"]))
    assert_same_result(a, b, ordered=False)
    with pytest.raises(AssertionError, match="row 0, column 'k': 1 != 2"):
        assert_same_result(a, b, ordered=True)


def test_column_names_and_order_must_match() -> None:
    a = table(k=pa.array([1]), s=pa.array(["a"]))
    with pytest.raises(AssertionError, match="column names differ"):
        assert_same_result(a, table(k=pa.array([1]), t=pa.array(["a"])), ordered=False)
    with pytest.raises(AssertionError, match="column names differ"):
        assert_same_result(a, table(s=pa.array(["a"]), k=pa.array([1])), ordered=False)


def test_row_count_must_match() -> None:
    with pytest.raises(AssertionError, match="row counts differ: 2 != 1"):
        assert_same_result(table(k=pa.array([1, 1])), table(k=pa.array([1])), ordered=False)


def test_floats_within_relative_tolerance() -> None:
    a = table(x=pa.array([1e6, 0.1 + 0.2, None]))
    assert_same_result(a, table(x=pa.array([1e6 * (1 + 1e-12), 0.3, None])), ordered=True)
    with pytest.raises(AssertionError, match="column 'x'"):
        assert_same_result(a, table(x=pa.array([1e6 * (1 + 1e-8), 0.3, None])), ordered=True)


def test_nan_equals_nan_and_null_only_null() -> None:
    assert_same_result(
        table(x=pa.array([float("nan")])), table(x=pa.array([float("nan")])), ordered=True
    )
    with pytest.raises(AssertionError, match="None != 0.0"):
        assert_same_result(table(x=pa.array([None], pa.float64())), table(x=pa.array([0.0])), True)


def test_decimals_are_exact() -> None:
    dec = pa.decimal128(38, 4)
    a = table(x=pa.array([Decimal("1.0000")], dec))
    assert_same_result(a, table(x=pa.array([Decimal("1.00")], pa.decimal128(15, 2))), True)
    with pytest.raises(AssertionError, match="Decimal"):
        assert_same_result(a, table(x=pa.array([Decimal("1.0001")], dec)), ordered=True)


def test_decimal_never_equals_float() -> None:
    a = table(x=pa.array([Decimal("1.5")], pa.decimal128(10, 1)))
    with pytest.raises(AssertionError, match="column 'x' has type decimal128"):
        assert_same_result(a, table(x=pa.array([1.5])), ordered=True)


def test_string_kinds_and_integer_widths_are_interchangeable() -> None:
    a = table(s=pa.array(["x", None], pa.string()), n=pa.array([1, 2], pa.int32()))
    b = table(s=pa.array(["x", None], pa.string_view()), n=pa.array([1, 2], pa.int64()))
    assert_same_result(a, b, ordered=True)


def test_unordered_pairs_rows_whose_floats_differ_by_rounding() -> None:
    a = table(k=pa.array(["b", "a"]), x=pa.array([0.3, 2.0]))
    b = table(k=pa.array(["a", "b"]), x=pa.array([2.0, 0.1 + 0.2]))
    assert_same_result(a, b, ordered=False)


def test_unordered_comparison_sorts_nulls() -> None:
    a = table(k=pa.array([None, 1, 2]))
    assert_same_result(a, table(k=pa.array([2, None, 1])), ordered=False)
    with pytest.raises(AssertionError, match="after sorting"):
        assert_same_result(a, table(k=pa.array([2, 2, 1])), ordered=False)


def test_which_tpch_queries_sort() -> None:
    unordered = {n for n, q in QUERIES.items() if not has_order_by(q)}
    assert unordered == {6, 14, 17, 19}
    assert not has_order_by("select * from (select a from t order by a) s")
