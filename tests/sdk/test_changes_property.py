"""DELETE, UPDATE and upsert agree with the same change applied to a plain Python copy.

Random frames (partitioned, with NULLs, several cells) and random predicates; the model uses SQL's
three-valued logic, so a row whose condition is NULL is neither deleted nor updated. delta-rs must
read the same rows, and the version before the change must still read as it was.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Any

import deltalake
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiary import Apiary

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        pa.field("grp", pa.int32()),
        pa.field("temp", pa.float64()),
    ]
)
REGIONS = ["north", "south", "east"]
Row = dict[str, Any]
Truth = bool | None  # SQL's three values
names = itertools.count()


def _cmp(op: Callable[[Any, Any], bool], column: str, value: Any) -> Callable[[Row], Truth]:
    return lambda row: None if row[column] is None else op(row[column], value)


def _and(a: Truth, b: Truth) -> Truth:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: Truth, b: Truth) -> Truth:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


@st.composite
def predicates(draw: st.DrawFn) -> tuple[str, Callable[[Row], Truth]]:
    """A SQL condition and the same condition in Python, three-valued."""
    t = draw(st.floats(-20, 20, allow_nan=False).map(lambda x: round(x, 1)))
    g = draw(st.integers(0, 4))
    r = draw(st.sampled_from(REGIONS))
    choices: list[tuple[str, Callable[[Row], Truth]]] = [
        (f"temp > {t}", _cmp(operator.gt, "temp", t)),
        (f"grp = {g}", _cmp(operator.eq, "grp", g)),
        ("grp IS NULL", lambda row: row["grp"] is None),
        (f"region = '{r}'", _cmp(operator.eq, "region", r)),
        (f"NOT (grp > {g})", lambda row: None if row["grp"] is None else not row["grp"] > g),
        (
            f"temp < {t} OR grp = {g}",
            lambda row: _or(_cmp(operator.lt, "temp", t)(row), _cmp(operator.eq, "grp", g)(row)),
        ),
        (
            f"region IN ('{r}', 'east') AND temp >= {t}",
            lambda row: _and(row["region"] in (r, "east"), _cmp(operator.ge, "temp", t)(row)),
        ),
        ("id % 3 = 0", lambda row: row["id"] % 3 == 0),
        (f"id > 1000 AND grp = {g}", lambda row: False),  # no cell's stats can match
    ]
    return draw(st.sampled_from(choices))


ASSIGNMENTS: list[tuple[dict[str, str], Callable[[Row], Row]]] = [
    (
        {"temp": "temp * 2 + 1"},
        lambda row: {**row, "temp": None if row["temp"] is None else row["temp"] * 2 + 1},
    ),
    ({"grp": "coalesce(grp, 0) + 1"}, lambda row: {**row, "grp": (row["grp"] or 0) + 1}),
    ({"region": "'west'", "grp": "NULL"}, lambda row: {**row, "region": "west", "grp": None}),
]


@st.composite
def frames(draw: st.DrawFn) -> list[list[Row]]:
    """One to three batches of rows (each batch one cell per partition), ids unique."""
    batches = draw(st.lists(st.integers(1, 25), min_size=1, max_size=3))
    ids = itertools.count()
    return [
        [
            {
                "id": next(ids),
                "region": draw(st.sampled_from(REGIONS)),
                "grp": draw(st.none() | st.integers(0, 4)),
                "temp": draw(st.none() | st.floats(-20, 20, allow_nan=False)),
            }
            for _ in range(n)
        ]
        for n in batches
    ]


@pytest.fixture(scope="module")
def ap(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("changes") / "root"
    with Apiary("prop", str(root), join_swarm=False) as client:
        client.create_hive("h")
        client.create_box("h", "b")
        yield client


def _load(ap: Apiary, batches: list[list[Row]]) -> tuple[str, int]:
    name = f"f{next(names)}"
    ap.create_frame("h", "b", name, SCHEMA, partition_by=["region"])
    version = 0
    for rows in batches:
        version = ap.write_to_frame("h", "b", name, pa.Table.from_pylist(rows, SCHEMA))["version"]
    return name, version


def _rows(table: pa.Table) -> list[Row]:
    return sorted(table.select(SCHEMA.names).to_pylist(), key=lambda row: row["id"])


def _check(ap: Apiary, name: str, before: int, old: list[Row], expected: list[Row]) -> None:
    assert _rows(ap.read_from_frame("h", "b", name)) == sorted(expected, key=lambda r: r["id"])
    uri = ap.frame("h", "b", name).uri
    assert _rows(deltalake.DeltaTable(uri).to_pyarrow_table()) == _rows(
        pa.Table.from_pylist(expected, SCHEMA)
    )
    assert _rows(ap.read_from_frame("h", "b", name, version=before)) == sorted(
        old, key=lambda r: r["id"]
    )


SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(batches=frames(), pred=predicates())
def test_delete_matches_the_model(ap: Apiary, batches: list[list[Row]], pred) -> None:
    where, holds = pred
    name, before = _load(ap, batches)
    old = [row for rows in batches for row in rows]
    expected = [row for row in old if holds(row) is not True]
    result = ap.delete_rows("h", "b", name, where)
    assert result["rows_deleted"] == len(old) - len(expected)
    assert result["version"] == (before + 1 if result["rows_deleted"] else before)
    _check(ap, name, before, old, expected)


@SETTINGS
@given(batches=frames(), pred=predicates() | st.none(), change=st.sampled_from(ASSIGNMENTS))
def test_update_matches_the_model(ap: Apiary, batches: list[list[Row]], pred, change) -> None:
    assignments, apply = change
    where, holds = pred if pred is not None else (None, lambda row: True)
    name, before = _load(ap, batches)
    old = [row for rows in batches for row in rows]
    expected = [apply(row) if holds(row) is True else row for row in old]
    result = ap.update_rows("h", "b", name, assignments, where)
    assert result["rows_updated"] == sum(holds(row) is True for row in old)
    _check(ap, name, before, old, expected)


@SETTINGS
@given(
    batches=frames(),
    keys=st.lists(st.integers(0, 90), min_size=1, max_size=20, unique=True),
    region=st.sampled_from(REGIONS),
)
def test_upsert_matches_the_model(ap: Apiary, batches: list[list[Row]], keys, region) -> None:
    name, before = _load(ap, batches)
    old = [row for rows in batches for row in rows]
    incoming = [{"id": k, "region": region, "grp": 7, "temp": float(k)} for k in keys]
    by_id = {row["id"]: row for row in old}
    updated = sum(k in by_id for k in keys)
    by_id.update({row["id"]: row for row in incoming})
    result = ap.upsert("h", "b", name, pa.Table.from_pylist(incoming, SCHEMA), on=["id"])
    assert (result["rows_updated"], result["rows_inserted"]) == (updated, len(keys) - updated)
    _check(ap, name, before, old, list(by_id.values()))
