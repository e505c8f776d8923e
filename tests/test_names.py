"""Name validation and partition-value escaping (pure logic)."""

from __future__ import annotations

import pytest

from apiary.errors import InvalidNameError
from apiary.names import escape_partition_value, unescape_partition_value, validate_name


@pytest.mark.parametrize("name", ["a", "sensors", "Temp_2", "x" * 64])
def test_valid_names(name: str) -> None:
    assert validate_name(name, "frame") == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("..", "not allowed"),
        ("a/b", "not allowed"),
        ("has space", "not allowed"),
        ("_ledger", "not allowed"),
        ("1abc", "not allowed"),
        ("x" * 300, "300 characters"),
        ("dash-name", "not allowed"),
        (None, "must be a string"),
    ],
)
def test_invalid_names_are_refused_with_reason(name: object, fragment: str) -> None:
    with pytest.raises(InvalidNameError, match=fragment):
        validate_name(name, "frame")


@pytest.mark.parametrize("value", ["north", "", ".", "..", "a/b", "x y", "100%", "ü", "~", "-_"])
def test_partition_values_escape_to_one_safe_segment(value: str) -> None:
    segment = escape_partition_value(value)
    assert "/" not in segment and segment not in (".", "..", "") and "." not in segment
    assert unescape_partition_value(segment) == value
