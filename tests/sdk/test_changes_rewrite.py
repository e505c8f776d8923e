"""What a row-level change rewrites, what it leaves alone, and how it survives a rival rewrite."""

from __future__ import annotations

import pyarrow as pa
import pytest

from apiary import Apiary, SchemaError, SqlError, WriteConflictError
from apiary.changes import Rewriter, delete_rows

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        pa.field("grp", pa.int32()),
        pa.field("temp", pa.float64()),
    ]
)


def _batch(ids: range, region: str | None = None) -> pa.Table:
    regions = ["north", "south", "east"]
    return pa.Table.from_pylist(
        [
            {"id": i, "region": region or regions[i % 3], "grp": i % 5, "temp": float(i)}
            for i in ids
        ],
        SCHEMA,
    )


@pytest.fixture
def ap(tmp_path):
    with Apiary("test", str(tmp_path / "root"), join_swarm=False) as client:
        client.create_hive("h")
        client.create_box("h", "b")
        client.create_frame("h", "b", "f", SCHEMA, partition_by=["region"])
        client.write_to_frame("h", "b", "f", _batch(range(0, 300)))
        client.write_to_frame("h", "b", "f", _batch(range(300, 600)))
        yield client


def _ids(ap: Apiary) -> list[int]:
    return sorted(ap.read_from_frame("h", "b", "f", columns=["id"]).column("id").to_pylist())


def test_a_delete_in_one_partition_rewrites_only_that_partitions_cells(ap: Apiary) -> None:
    before = ap.frame("h", "b", "f").ledger.latest()
    north = [c for c in before.cells.values() if c.partition == {"region": "north"}]
    assert len(before.cells) == 6 and len(north) == 2
    result = ap.delete_rows("h", "b", "f", "region = 'north' AND grp = 0")
    after = ap.frame("h", "b", "f").ledger.latest()
    assert result["cells_read"] == 2 and result["cells_removed"] == 2
    assert result["cells_added"] == 2
    assert result["bytes_read"] == sum(c.bytes for c in north)
    # the other partitions' cells are the very same objects
    assert {p for p, c in after.cells.items() if c.partition != {"region": "north"}} == {
        p for p, c in before.cells.items() if c.partition != {"region": "north"}
    }
    gone = {i for i in range(600) if i % 3 == 0 and i % 5 == 0}  # north is i % 3 == 0
    assert result["rows_deleted"] == len(gone)
    assert _ids(ap) == [i for i in range(600) if i not in gone]


def test_a_predicate_no_cells_stats_can_match_commits_nothing(ap: Apiary) -> None:
    history = ap.frame_history("h", "b", "f")
    result = ap.delete_rows("h", "b", "f", "id > 10000")
    assert result["version"] == history[-1]["version"]
    assert (result["rows_deleted"], result["cells_read"], result["bytes_read"]) == (0, 0, 0)
    assert ap.frame_history("h", "b", "f") == history


def test_cells_without_a_matching_row_are_not_rewritten(ap: Apiary) -> None:
    # The statistics cannot rule out the first batch's three cells (ids 0..299, grp 0..4), but
    # only one row (id 4, in south) matches: one cell is rewritten, the other two stay.
    result = ap.update_rows("h", "b", "f", {"temp": "0"}, "grp = 4 AND id < 5")
    assert result["rows_updated"] == 1 and result["cells_removed"] == 1
    assert result["cells_read"] == 3  # the first batch's three cells hold ids 0..299
    rows = ap.read_from_frame("h", "b", "f").to_pylist()
    assert [r["temp"] for r in rows if r["id"] == 4] == [0.0]


def test_an_update_of_the_partition_column_moves_rows(ap: Apiary) -> None:
    result = ap.update_rows("h", "b", "f", {"region": "'west'"}, "id < 10")
    assert result["rows_updated"] == 10
    west = ap.read_from_frame("h", "b", "f", partition_filter={"region": "west"})
    assert sorted(west.column("id").to_pylist()) == list(range(10))
    assert len(_ids(ap)) == 600


def _rewriter(ap: Apiary, before_commit=None, retries: int = 5) -> Rewriter:
    return Rewriter(
        ap.frame("h", "b", "f"),
        ap.pool,
        ap.sizing,
        ap.settings.max_partitions,
        retries=retries,
        before_commit=before_commit,
    )


def test_a_rewrite_that_lands_first_makes_the_delete_reapply_its_predicate(
    ap: Apiary, tmp_path
) -> None:
    rival = Apiary("rival", str(tmp_path / "root"), join_swarm=False).start()
    landed = []

    def hold() -> None:  # between the deleter's reads and its commit
        if not landed:
            landed.append(rival.update_rows("h", "b", "f", {"grp": "100"}, "id < 60"))

    result = delete_rows(_rewriter(ap, hold), "id % 2 = 0 OR grp = 100")
    rival.shutdown()
    assert landed[0]["rows_updated"] == 60
    assert result.attempts == 2
    # re-applied on the rival's rows: every id < 60 went, not just the even ones
    assert _ids(ap) == [i for i in range(60, 600) if i % 2]
    assert result.rows_deleted == 60 + 270  # every id < 60, then the even ids from 60 on
    assert result.version == landed[0]["version"] + 1


def test_losing_every_race_raises_and_leaves_no_cells_behind(ap: Apiary, tmp_path) -> None:
    rival = Apiary("rival", str(tmp_path / "root"), join_swarm=False).start()
    n = iter(range(100))

    def rival_wins() -> None:
        rival.update_rows("h", "b", "f", {"temp": f"{next(n)}"}, "id < 3")

    with pytest.raises(WriteConflictError, match="lost 3 races"):
        delete_rows(_rewriter(ap, rival_wins, retries=2), "id < 3")
    rival.shutdown()
    assert _ids(ap) == list(range(600))  # the delete committed nothing
    frame = ap.frame("h", "b", "f")
    ever = {c.path for e, _ in frame.ledger.history() for c in e.add}
    stored = {
        o.path[len(frame.prefix) + 1 :]
        for o in ap.storage.list(frame.prefix)
        if o.path.endswith(".parquet") and "/_" not in o.path
    }
    assert stored == ever  # the loser's uploads were deleted


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda ap: ap.update_rows("h", "b", "f", {"nope": "1"}), SchemaError, "no column 'nope'"),
        (lambda ap: ap.update_rows("h", "b", "f", {"grp": "1.5"}), SchemaError, "SET grp"),
        (lambda ap: ap.update_rows("h", "b", "f", {"temp": "'hot'"}), SchemaError, "string"),
        (lambda ap: ap.update_rows("h", "b", "f", {"id": "NULL"}), SchemaError, "cannot be null"),
        (lambda ap: ap.update_rows("h", "b", "f", {"grp": "99999999999"}), SchemaError, "grp"),
        (lambda ap: ap.delete_rows("h", "b", "f", "nope = 1"), SchemaError, "nope"),
        (lambda ap: ap.delete_rows("h", "b", "f", "id + 1"), SqlError, "boolean"),
        (lambda ap: ap.delete_rows("h", "b", "f", ""), SqlError, "condition"),
        (lambda ap: ap.delete_rows("h", "b", "f", "id < 0) OR (TRUE"), SqlError, "one expr"),
        (lambda ap: ap.delete_rows("h", "b", "f", "id < 0 --"), SqlError, "one expression"),
        (lambda ap: ap.update_rows("h", "b", "f", {"grp": "1) + (2"}), SqlError, "one expr"),
        (
            lambda ap: ap.delete_rows("h", "b", "f", "id IN (SELECT id FROM h.b.f)"),
            SqlError,
            "no other",
        ),
        (lambda ap: ap.update_rows("h", "b", "f", {"temp": "1 / (id - id)"}), SqlError, "zero"),
        (lambda ap: ap.upsert("h", "b", "f", _batch(range(2)), on=[]), SchemaError, "on="),
        (lambda ap: ap.upsert("h", "b", "f", _batch(range(2)), on=["x"]), SchemaError, "'x'"),
        (
            lambda ap: ap.upsert("h", "b", "f", pa.concat_tables([_batch(range(2))] * 2), ["id"]),
            SchemaError,
            "more than once",
        ),
        (
            lambda ap: ap.upsert("h", "b", "f", _batch(range(2)).drop_columns(["grp"]), ["grp"]),
            SchemaError,
            "null value",
        ),
    ],
)
def test_bad_changes_are_clear_errors_and_harm_nothing(ap: Apiary, call, error, message) -> None:
    history = ap.frame_history("h", "b", "f")
    with pytest.raises(error, match=message):
        call(ap)
    assert ap.frame_history("h", "b", "f") == history
    assert len(_ids(ap)) == 600


def test_changes_on_every_storage_backend(storage_uri: str) -> None:
    with Apiary("test", storage_uri, join_swarm=False) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", SCHEMA, partition_by=["region"])
        ap.write_to_frame("h", "b", "f", _batch(range(0, 30)))
        assert ap.delete_rows("h", "b", "f", "id >= 20")["rows_deleted"] == 10
        assert ap.update_rows("h", "b", "f", {"grp": "grp + 10"}, "id < 5")["rows_updated"] == 5
        done = ap.upsert("h", "b", "f", _batch(range(18, 22), region="west"), on=["id"])
        assert (done["rows_updated"], done["rows_inserted"]) == (2, 2)
        rows = {r["id"]: r for r in ap.read_from_frame("h", "b", "f").to_pylist()}
        assert sorted(rows) == list(range(22))
        assert [rows[i]["grp"] for i in range(5)] == [10, 11, 12, 13, 14]
        assert rows[19]["region"] == "west" and rows[17]["region"] != "west"
        # SQL sees the same rows (on S3, DataFusion reads the new cells straight from the bucket)
        n = ap.sql("SELECT count(*) AS n FROM h.b.f WHERE region = 'west'").column("n")[0]
        assert n.as_py() == 4


def test_an_upsert_reads_only_cells_its_keys_can_be_in(ap: Apiary) -> None:
    # ids 300..599 live in the second batch's three cells; the first batch's are ruled out by
    # their id range, and only the cell holding id 450 is rewritten
    done = ap.upsert("h", "b", "f", _batch(range(450, 451), region="north"), on=["id"])
    assert (done["cells_read"], done["cells_removed"], done["rows_updated"]) == (3, 1, 1)
    done = ap.upsert("h", "b", "f", _batch(range(1000, 1003)), on=["id"])
    assert (done["cells_read"], done["cells_removed"], done["rows_inserted"]) == (0, 0, 3)
    assert len(_ids(ap)) == 603
