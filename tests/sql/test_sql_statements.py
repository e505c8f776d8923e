"""Classifying statements (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apiary.errors import SqlError
from apiary.sql.statements import (
    AddColumn,
    Describe,
    Query,
    Show,
    Use,
    classify,
    split_name,
    split_version,
    sql_type,
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("USE HIVE farm", Use(hive="farm")),
        ("use database farm;", Use(hive="farm")),
        ("USE BOX sensors", Use(box="sensors")),
        ("use schema sensors", Use(box="sensors")),
        ("USE farm.sensors", Use(hive="farm", box="sensors")),
        ("SHOW HIVES", Show("hives")),
        ("show databases", Show("hives")),
        ("SHOW BOXES IN farm", Show("boxes", "farm")),
        ("SHOW TABLES FROM farm.sensors", Show("frames", "farm.sensors")),
        ("SHOW FRAMES", Show("frames")),
        ("DESCRIBE farm.sensors.temps", Describe("farm.sensors.temps")),
        ('describe table "temps@v3"', Describe('"temps@v3"')),
        ("-- hello\nSELECT 1 /* x */ ;", Query("SELECT 1")),
        ("EXPLAIN SELECT 1", Query("SELECT 1", explain=True)),
        ("explain analyze select 1", Query("select 1", explain=True, analyze=True)),
    ],
)
def test_classify(sql: str, expected: object) -> None:
    assert classify(sql) == expected


@pytest.mark.parametrize(
    ("sql", "advice"),
    [
        ("MERGE INTO t USING s ON t.k = s.k", "upsert"),
        ("TRUNCATE t", "delete_rows"),
        ("CREATE TABLE t (x int)", "create_frame"),
        ("DROP TABLE t", "drop_frame"),
        ("ALTER TABLE t RENAME COLUMN y TO z", "column mapping"),
        ("ALTER TABLE t DROP COLUMN y", "column mapping"),
        ("ALTER TABLE t ALTER COLUMN y TYPE bigint", "widen_column"),
        ("COPY t TO 'x.csv'", "read_from_frame"),
        ("  -- comment\n  copy t to 'x.csv'", "read_from_frame"),
    ],
)
def test_blocked_statements_name_the_sdk_call(sql: str, advice: str) -> None:
    with pytest.raises(SqlError, match=advice):
        classify(sql)


@pytest.mark.parametrize("sql", ["", "  ;  ", "USE", "SHOW NOTHING", "DESCRIBE", "USE HIVE a b"])
def test_malformed_commands(sql: str) -> None:
    with pytest.raises(SqlError):
        classify(sql)


def test_alter_add_column() -> None:
    assert classify("ALTER TABLE h.b.t ADD COLUMN y BIGINT") == AddColumn("h.b.t", "y", "BIGINT")
    assert classify("alter frame t add if not exists y varchar;") == AddColumn(
        "t", "y", "varchar", True
    )
    assert sql_type("BIGINT") == "int64" and sql_type("timestamp[us, tz=UTC]").startswith("t")


def test_split_name_with_times() -> None:
    when = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert split_name('b."f@2026-11-30T12:00:00Z"') == (["b", "f"], when)
    assert split_version("f@2026-11-30T13:00:00+01:00") == ("f", when)
    with pytest.raises(SqlError, match="needs its zone"):
        split_version("f@2026-11-30T12:00:00")
    with pytest.raises(SqlError, match="@v<number> or a time"):
        split_version("f@yesterday")


def test_split_name_with_versions() -> None:
    assert split_name('b."f@v3"') == (["b", "f"], 3)
    assert split_name("h.b.f") == (["h", "b", "f"], None)
    assert split_name('"f@12"') == (["f"], 12)
    with pytest.raises(SqlError, match="@v<number>"):
        split_name('"f@latest"')
