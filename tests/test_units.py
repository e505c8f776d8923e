"""One style for figures on screen: binary memory units with IEC names, and real plurals."""

from __future__ import annotations

import pytest

from apiary.units import count, human_bytes


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "—"),
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1,023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (512 * 2**20, "512 MiB"),
        (24_105 * 2**20, "23.5 GiB"),
        (2 * 2**30, "2 GiB"),
        (3 * 2**40, "3 TiB"),
        (5000 * 2**40, "5,000 TiB"),
    ],
)
def test_human_bytes(n, text) -> None:
    assert human_bytes(n) == text


def test_count() -> None:
    assert [count(n, "row") for n in (0, 1, 2, 4000)] == ["0 rows", "1 row", "2 rows", "4,000 rows"]
    assert count(1, "cell") == "1 cell" and count(3, "entry", "entries") == "3 entries"
