"""DELETE, UPDATE and INSERT through ``Apiary.sql()`` and ``apiary sql``."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from apiary import Apiary, EntityNotFoundError, SchemaError, SqlError
from apiary.sql.statements import Delete, Insert, Update, classify
from tests.support.processes import run_apiary

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("region", pa.string(), nullable=False),
        pa.field("temp", pa.float64()),
        pa.field("note", pa.string()),
    ]
)


@pytest.fixture
def ap(tmp_path):
    with Apiary("test", str(tmp_path / "root"), join_swarm=False) as client:
        client.create_hive("farm")
        client.create_box("farm", "sensors")
        client.create_frame("farm", "sensors", "temps", SCHEMA, partition_by=["region"])
        rows = [
            {"id": i, "region": ["north", "south"][i % 2], "temp": float(i), "note": None}
            for i in range(10)
        ]
        client.write_to_frame("farm", "sensors", "temps", pa.Table.from_pylist(rows, SCHEMA))
        yield client


def _rows(ap: Apiary) -> list[dict]:
    return ap.sql("SELECT * FROM farm.sensors.temps ORDER BY id").to_pylist()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DELETE FROM f", Delete("f")),
        ("delete from h.b.f where x = 'a WHERE b';", Delete("h.b.f", "x = 'a WHERE b'")),
        (
            "UPDATE b.f SET a = 1, s = concat('x, y', s) WHERE k IN (1, 2)",
            Update("b.f", (("a", "1"), ("s", "concat('x, y', s)")), "k IN (1, 2)"),
        ),
        (
            'UPDATE f SET "T" = (SELECT 1) where (a = 1)',
            Update("f", (("T", "(SELECT 1)"),), "(a = 1)"),
        ),
        ("INSERT INTO f VALUES (1, 'a')", Insert("f", None, "VALUES (1, 'a')")),
        (
            "insert into h.b.f (a, b) select x, y from g",
            Insert("h.b.f", ("a", "b"), "select x, y from g"),
        ),
        ("INSERT INTO f (SELECT 1)", Insert("f", None, "(SELECT 1)")),
        (
            "DELETE FROM f /* old */ WHERE note = '--x /* y */' -- the bad batch",
            Delete("f", "note = '--x /* y */'"),
        ),
    ],
)
def test_statements_are_cut_into_their_parts(sql: str, expected: object) -> None:
    assert classify(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM",
        "DELETE FROM f WHERE",
        "DELETE FROM f LIMIT 1",
        "UPDATE f SET",
        "UPDATE f SET a == 1",
        "INSERT INTO f",
        "INSERT INTO f DEFAULT VALUES",
    ],
)
def test_malformed_changes_say_how_to_write_them(sql: str) -> None:
    with pytest.raises(SqlError, match="write|not column = expression"):
        classify(sql)


def test_delete_update_insert_in_sql(ap: Apiary) -> None:
    deleted = ap.sql("DELETE FROM farm.sensors.temps WHERE temp >= 8 OR note IS NOT NULL")
    assert deleted.column_names == ["rows_deleted", "cells_removed", "cells_added", "version"]
    assert deleted.to_pylist()[0]["rows_deleted"] == 2
    ap.sql("USE farm.sensors")
    updated = ap.sql("UPDATE temps SET temp = temp * 10, note = 'checked; ok' WHERE id < 3")
    assert updated.to_pylist()[0]["rows_updated"] == 3
    inserted = ap.sql("INSERT INTO temps VALUES (20, 'east', 1.5, NULL), (21, 'east', NULL, 'x')")
    assert inserted.to_pylist()[0]["rows_inserted"] == 2
    copied = ap.sql(
        "INSERT INTO temps (id, region) SELECT id + 100, 'west' FROM temps WHERE id < 2"
    )
    assert copied.column_names == ["rows_inserted", "cells_added", "version"]
    assert copied.to_pylist()[0]["rows_inserted"] == 2
    rows = {r["id"]: r for r in _rows(ap)}
    assert sorted(rows) == [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 100, 101]
    assert rows[2] == {"id": 2, "region": "north", "temp": 20.0, "note": "checked; ok"}
    assert rows[3]["temp"] == 3.0 and rows[3]["note"] is None
    assert rows[101] == {"id": 101, "region": "west", "temp": None, "note": None}
    # the old version still reads the old rows
    first = ap.sql('SELECT count(*) AS n FROM "temps@v1"').column("n")[0].as_py()
    assert first == 10


def test_insert_select_streams_a_result_larger_than_a_bee_into_one_commit(tmp_path) -> None:
    with Apiary("test", str(tmp_path / "root"), join_swarm=False) as ap:
        ap.settings.memory_per_bee = 16 << 20  # before the bees exist
        ap.create_hive("h")
        ap.create_box("h", "b")
        for name in ("src", "copy"):
            ap.create_frame("h", "b", name, {"id": "int64", "text": "string"})
        ids = pa.array(range(400_000), pa.int64())
        text = pc.binary_join_element_wise(
            "a reading that is long enough ", ids.cast(pa.string()), ""
        )
        ap.write_to_frame("h", "b", "src", pa.table({"id": ids, "text": text}))
        with pytest.raises(Exception, match="larger than bee"):  # collected whole, it cannot fit
            ap.sql("SELECT * FROM h.b.src")
        done = ap.sql("INSERT INTO h.b.copy SELECT * FROM h.b.src").to_pylist()[0]
        assert done["rows_inserted"] == 400_000 and done["cells_added"] >= 2
        assert [v["version"] for v in ap.frame_history("h", "b", "copy")] == [0, 1]
        n = ap.sql("SELECT count(DISTINCT id) AS n FROM h.b.copy").column("n")[0].as_py()
        assert n == 400_000


def test_a_failing_insert_commits_and_leaves_nothing(ap: Apiary) -> None:
    frame = ap.frame("farm", "sensors", "temps")
    files = {o.path for o in ap.storage.list(frame.prefix)}
    with pytest.raises(SchemaError):  # the second row does not fit: nothing of the first stays
        ap.sql("INSERT INTO farm.sensors.temps (id, region) VALUES (50, 'x'), (NULL, 'y')")
    assert {o.path for o in ap.storage.list(frame.prefix)} == files
    assert len(_rows(ap)) == 10


def test_delete_without_where_deletes_every_row(ap: Apiary) -> None:
    done = ap.sql("DELETE FROM farm.sensors.temps").to_pylist()[0]
    assert done["rows_deleted"] == 10
    assert _rows(ap) == []


def test_a_where_no_cell_can_match_commits_nothing(ap: Apiary) -> None:
    before = ap.get_frame("farm", "sensors", "temps")["version"]
    done = ap.sql("UPDATE farm.sensors.temps SET temp = 0 WHERE id > 1000").to_pylist()[0]
    assert done == {"rows_updated": 0, "cells_removed": 0, "cells_added": 0, "version": before}


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        ("UPDATE farm.sensors.temps SET nope = 1", SchemaError, "no column 'nope'"),
        ("UPDATE farm.sensors.temps SET temp = nope + 1", SchemaError, "nope"),
        ("DELETE FROM farm.sensors.temps WHERE nope > 1", SchemaError, "nope"),
        ("UPDATE farm.sensors.temps SET id = 'x'", SchemaError, "string"),
        ("UPDATE farm.sensors.temps SET id = NULL", SchemaError, "cannot be null"),
        ("UPDATE farm.sensors.temps SET temp = 1, temp = 2", SqlError, "more than once"),
        ("DELETE FROM farm.sensors.temps WHERE temp +", SqlError, "where"),
        ("DELETE FROM farm.sensors.temps WHERE id", SqlError, "boolean"),
        (
            "DELETE FROM farm.sensors.temps WHERE id IN (SELECT 1 FROM farm.sensors.temps)",
            SqlError,
            "no other table",
        ),
        ('DELETE FROM farm.sensors."temps@v1"', SqlError, "old versions"),
        ("DELETE FROM farm.sensors.nope", EntityNotFoundError, "nope"),
        ("DELETE FROM temps", SqlError, "USE"),
        ("INSERT INTO farm.sensors.temps VALUES (1, 'x')", SqlError, "list the columns"),
        ("INSERT INTO farm.sensors.temps (id) VALUES (1)", SchemaError, "region"),
        ("INSERT INTO farm.sensors.temps (id, region) VALUES ('a', 'x')", SchemaError, "id"),
        ("COPY farm.sensors.temps TO '/tmp/x.csv'", SqlError, "read_from_frame"),
        ("CREATE TABLE x (a INT)", SqlError, "create_frame"),
        ("DROP TABLE farm.sensors.temps", SqlError, "drop_frame"),
        ("TRUNCATE farm.sensors.temps", SqlError, "delete_rows"),
        ("MERGE INTO farm.sensors.temps USING x ON a = b", SqlError, "upsert"),
        ("SET x = 1", SqlError, "settings"),
    ],
)
def test_bad_changes_are_clear_and_harm_nothing(ap: Apiary, sql: str, error, message: str) -> None:
    before = ap.frame_history("farm", "sensors", "temps")
    with pytest.raises(error, match=message):
        ap.sql(sql)
    assert ap.frame_history("farm", "sensors", "temps") == before


def test_apiary_sql_prints_the_counts(tmp_path) -> None:
    root = str(tmp_path / "root")
    assert run_apiary("demo", "--storage", root, "--rows", "1000", "--batches", "2").returncode == 0
    table = "demo.sensors.readings"
    done = run_apiary("sql", f"DELETE FROM {table} WHERE region = 'north'", "--storage", root)
    assert done.returncode == 0, done.stderr
    assert "rows_deleted" in done.stdout and "500" in done.stdout
    shown = run_apiary(
        "sql", f"SELECT count(*) AS n FROM {table}", "--storage", root, "--format", "json"
    )
    left = json.loads(shown.stdout.splitlines()[0])["n"]
    assert left == 1500  # two batches of 1000 rows, spread evenly over four regions
    refused = run_apiary("sql", f"COPY {table} TO 'x.csv'", "--storage", root)
    assert refused.returncode != 0 and "read_from_frame" in refused.stderr


def test_a_served_nodes_sessions_only_read(ap: Apiary) -> None:
    session = ap.sql_session("farm", "sensors")
    with pytest.raises(SqlError, match="only reads"):
        session.execute("DELETE FROM temps")
    assert session.execute("SELECT count(*) AS n FROM temps").column("n")[0].as_py() == 10
