"""Apiary.sql() on every backend: names, commands, errors, time travel, full SELECT."""

from __future__ import annotations

import pyarrow as pa
import pytest

from apiary import Apiary, EntityNotFoundError, SchemaError, SqlError, StorageError

SCHEMA = {"region": "string", "sensor": "int32", "temp": "float64"}


def batch(region: str, start: int, n: int = 5) -> pa.Table:
    return pa.table(
        {
            "region": [region] * n,
            "sensor": pa.array(range(start, start + n), pa.int32()),
            "temp": [float(i) for i in range(start, start + n)],
        }
    )


@pytest.fixture
def ap(storage_uri: str):
    with Apiary("test", storage_uri) as client:
        client.create_hive("farm")
        client.create_box("farm", "sensors")
        client.create_frame("farm", "sensors", "temps", SCHEMA, partition_by=["region"])
        client.create_frame("farm", "sensors", "sites", {"region": "string", "name": "string"})
        for i, region in enumerate(["north", "south", "east", "west"]):
            client.write_to_frame("farm", "sensors", "temps", batch(region, 10 * i))
        client.write_to_frame(
            "farm",
            "sensors",
            "sites",
            pa.table({"region": ["north", "south"], "name": ["Tromsø", "Seville"]}),
        )
        yield client


def test_three_part_names_and_aggregates(ap: Apiary) -> None:
    result = ap.sql(
        "SELECT region, count(*) AS n, sum(temp) AS total FROM farm.sensors.temps "
        "GROUP BY region HAVING count(*) = 5 ORDER BY region"
    )
    assert result.to_pydict() == {
        "region": ["east", "north", "south", "west"],
        "n": [5] * 4,
        "total": [110.0, 10.0, 60.0, 160.0],
    }


def test_use_context_resolves_shorter_names(ap: Apiary) -> None:
    ap.sql("USE HIVE farm")
    assert ap.sql("SELECT count(*) AS n FROM sensors.temps")["n"].to_pylist() == [20]
    ap.sql("USE BOX sensors")
    assert ap.sql("SELECT count(*) AS n FROM temps")["n"].to_pylist() == [20]
    assert ap.using == ("farm", "sensors")
    # USE belongs to one client.
    with (
        Apiary("test", ap.storage.location.uri) as other,
        pytest.raises(EntityNotFoundError, match="USE HIVE"),
    ):
        other.sql("SELECT * FROM temps")


def test_joins_windows_and_subqueries(ap: Apiary) -> None:
    ap.sql("USE farm.sensors")
    joined = ap.sql(
        "SELECT s.name, max(t.temp) AS hottest FROM temps t JOIN sites s "
        "ON t.region = s.region GROUP BY s.name ORDER BY s.name"
    )
    assert joined.to_pydict() == {"name": ["Seville", "Tromsø"], "hottest": [14.0, 4.0]}
    ranked = ap.sql(
        "SELECT region, sensor, rank() OVER (PARTITION BY region ORDER BY temp DESC) "
        "AS r FROM temps WHERE sensor IN (SELECT max(sensor) FROM temps) "
    )
    assert ranked.to_pylist() == [{"region": "west", "sensor": 34, "r": 1}]
    limited = ap.sql("SELECT sensor FROM temps ORDER BY sensor DESC LIMIT 3")
    assert limited["sensor"].to_pylist() == [34, 33, 32]


def test_table_functions_need_no_hive_and_join_frames(ap: Apiary) -> None:
    assert ap.sql("SELECT count(*) AS n FROM range(100000)")["n"].to_pylist() == [100000]
    joined = ap.sql(
        "SELECT t.sensor FROM farm.sensors.temps t JOIN generate_series(30, 32) g "
        "ON t.sensor = g.value ORDER BY 1"
    )
    assert joined["sensor"].to_pylist() == [30, 31, 32]


def test_show_and_describe(ap: Apiary) -> None:
    assert ap.sql("SHOW HIVES")["hive"].to_pylist() == ["farm"]
    assert ap.sql("SHOW BOXES IN farm")["box"].to_pylist() == ["sensors"]
    assert ap.sql("SHOW FRAMES IN farm.sensors")["frame"].to_pylist() == ["sites", "temps"]
    described = dict(zip(*ap.sql("DESCRIBE farm.sensors.temps").to_pydict().values(), strict=True))
    assert described["version"] == "4" and described["cells"] == "4" and described["rows"] == "20"
    assert described["partition_by"] == "region"
    assert described["column region"] == "string, not null, partition key"
    assert int(described["bytes"]) == ap.get_frame("farm", "sensors", "temps")["bytes"]
    assert described["uri"] == ap.get_frame("farm", "sensors", "temps")["uri"]  # for Delta readers
    old = dict(zip(*ap.sql('DESCRIBE farm.sensors."temps@v2"').to_pydict().values(), strict=True))
    assert (old["version"], old["rows"]) == ("2", "10")


def test_time_travel_equals_read_from_frame(ap: Apiary) -> None:
    ap.overwrite_frame("farm", "sensors", "temps", batch("north", 100))
    for version in range(0, 6):
        via_sql = ap.sql(f'SELECT * FROM farm.sensors."temps@v{version}" ORDER BY sensor')
        via_sdk = ap.read_from_frame("farm", "sensors", "temps", version=version)
        assert via_sql.equals(via_sdk.sort_by("sensor")), version
    assert ap.sql("SELECT count(*) AS n FROM farm.sensors.temps")["n"].to_pylist() == [5]
    both = ap.sql(
        'SELECT (SELECT count(*) FROM farm.sensors."temps@v4") AS old, '
        "(SELECT count(*) FROM farm.sensors.temps) AS now"
    )
    assert both.to_pylist() == [{"old": 20, "now": 5}]
    with pytest.raises(EntityNotFoundError, match="versions are 0..5"):
        ap.sql('SELECT * FROM farm.sensors."temps@v99"')


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        (
            "SELECT * FROM farm.sensors.tempz",
            EntityNotFoundError,
            "did you mean farm.sensors.temps",
        ),
        ("SELECT * FROM farn.sensors.temps", EntityNotFoundError, "did you mean hive farm"),
        ("SELECT * FROM farm.sensorz.temps", EntityNotFoundError, "did you mean box farm.sensors"),
        ("SELECT * FROM temps", EntityNotFoundError, "USE HIVE"),
        ("SELEC * FROM farm.sensors.temps", SqlError, "SELEC"),
        ("SELECT nope FROM farm.sensors.temps", SqlError, "nope"),
        ("USE HIVE nowhere", EntityNotFoundError, "hive nowhere does not exist"),
        ("USE BOX sensors", SqlError, "USE HIVE first"),
        ("INSERT INTO farm.sensors.temps VALUES ('x', 1)", SqlError, "list the columns"),
        ("DROP TABLE farm.sensors.temps", SqlError, "drop_frame"),
        ("CREATE TABLE x AS SELECT 1", SqlError, "create_frame"),
        ("DELETE FROM farm.sensors.temps WHERE nope = 1", SchemaError, "nope"),
        ("UPDATE farm.sensors.temps SET nope = 0", SchemaError, "no column 'nope'"),
        ("MERGE INTO farm.sensors.temps USING x ON a = b", SqlError, "upsert"),
        ("ALTER TABLE farm.sensors.temps RENAME COLUMN x TO y", SqlError, "column mapping"),
        ("COPY farm.sensors.temps TO '/tmp/x.csv'", SqlError, "read_from_frame"),
        ('SELECT * FROM farm.sensors."temps@vlatest"', SqlError, "@v<number>"),
    ],
)
def test_errors_are_clear_and_harm_nothing(ap: Apiary, sql: str, error, message: str) -> None:
    before = ap.get_frame("farm", "sensors", "temps")
    with pytest.raises(error, match=message):
        ap.sql(sql)
    assert ap.get_frame("farm", "sensors", "temps") == before
    assert ap.sql("SELECT count(*) AS n FROM farm.sensors.temps")["n"].to_pylist() == [20]


def test_a_cell_gone_missing_is_a_storage_error(ap: Apiary) -> None:
    frame = ap.frame("farm", "sensors", "temps")
    victim = next(c for c in frame.snapshot().cells.values() if c.partition["region"] == "east")
    ap.storage.delete(f"{frame.prefix}/{victim.path}")
    with pytest.raises(StorageError, match="missing"):
        ap.sql("SELECT * FROM farm.sensors.temps")
    # Other partitions stay queryable.
    north = ap.sql("SELECT count(*) AS n FROM farm.sensors.temps WHERE region = 'north'")
    assert north["n"].to_pylist() == [5]


def test_uncommitted_cells_in_the_frame_folder_are_never_read(ap: Apiary) -> None:
    """A writer's cells land in the frame's folders before its commit: queries must not see them."""
    frame = ap.frame("farm", "sensors", "temps")
    for cell in list(frame.snapshot().cells.values()):
        data = ap.storage.get(f"{frame.prefix}/{cell.path}")
        folder = cell.path.rsplit("/", 1)[0]
        ap.storage.put(f"{frame.prefix}/{folder}/cell_inflight.parquet", data)
    assert ap.sql("SELECT count(*) AS n FROM farm.sensors.temps")["n"].to_pylist() == [20]
    north = "SELECT count(*) AS n FROM farm.sensors.temps WHERE region = 'north'"
    assert ap.sql(north)["n"].to_pylist() == [5]
