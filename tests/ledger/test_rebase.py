"""The rebase rule as pure logic: what a commit removes on the version it lands on."""

from __future__ import annotations

import pytest

from apiary.errors import WriteConflictError
from apiary.ledger import CellMeta, Snapshot
from apiary.ledger.rebase import Change, removals


def cell(name: str) -> CellMeta:
    return CellMeta(path=f"{name}.parquet", rows=1, bytes=10)


def snapshot(version: int, *names: str) -> Snapshot:
    return Snapshot(version=version, frame_id="f", cells={c.path: c for c in map(cell, names)})


def test_an_append_removes_nothing_wherever_it_lands() -> None:
    change = Change("add_cells", (cell("new"),))
    assert removals(change, snapshot(3, "a"), "h.b.f") == []
    assert removals(change, snapshot(9, "a", "b", "c"), "h.b.f") == []


def test_a_full_overwrite_removes_what_is_live_where_it_lands_not_what_it_saw() -> None:
    change = Change("rewrite_cells", (cell("new"),), replace_all=True)
    seen = snapshot(3, "a")  # what the writer saw when it started
    assert removals(change, seen, "h.b.f") == ["a.parquet"]
    landed = snapshot(5, "a", "appended")  # an append landed meanwhile
    assert removals(change, landed, "h.b.f") == ["a.parquet", "appended.parquet"]
    replaced = snapshot(6, "other")  # another overwrite landed meanwhile
    assert removals(change, replaced, "h.b.f") == ["other.parquet"]
    assert removals(change, snapshot(0), "h.b.f") == []  # an empty frame


def test_a_rewrite_keeps_cells_appended_meanwhile() -> None:
    change = Change("rewrite_cells", (cell("merged"),), ("a.parquet", "b.parquet"))
    landed = snapshot(7, "a", "b", "appended")
    assert removals(change, landed, "h.b.f") == ["a.parquet", "b.parquet"]


def test_a_rewrite_of_cells_someone_removed_is_a_write_conflict() -> None:
    change = Change("rewrite_cells", (cell("merged"),), ("a.parquet", "b.parquet"))
    with pytest.raises(WriteConflictError, match=r"h\.b\.f \(now at version 7\).*b\.parquet"):
        removals(change, snapshot(7, "a", "other"), "h.b.f")


def test_an_overwrite_does_not_also_name_cells() -> None:
    with pytest.raises(ValueError, match="full overwrite"):
        Change("rewrite_cells", (), ("a.parquet",), replace_all=True)
