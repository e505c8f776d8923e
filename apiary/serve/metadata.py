"""Flight SQL's catalog commands over Apiary's registry: hive → catalog, box → schema
(``db_schema``), frame → table; and GetSqlInfo. Pure functions of a registry state."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa

from apiary.catalog.models import RegistryState
from apiary.cells.types import schema_from_json
from apiary.version import __version__

TABLE_TYPE = "TABLE"

# SqlInfo ids (FlightSql.proto, enum SqlInfo) this server answers.
SERVER_NAME, SERVER_VERSION, SERVER_ARROW_VERSION, SERVER_READ_ONLY, SERVER_SQL = 0, 1, 2, 3, 4
SERVER_SUBSTRAIT, SERVER_TRANSACTION, SERVER_CANCEL = 5, 8, 9
SQL_IDENTIFIER_QUOTE_CHAR = 504

_SQL_INFO_VALUE = pa.dense_union(
    [
        pa.field("string_value", pa.string()),
        pa.field("bool_value", pa.bool_()),
        pa.field("bigint_value", pa.int64()),
        pa.field("int32_bitmask", pa.int32()),
        pa.field("string_list", pa.list_(pa.string())),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
    ]
)
SQL_INFO_SCHEMA = pa.schema(
    [pa.field("info_name", pa.uint32(), nullable=False), pa.field("value", _SQL_INFO_VALUE, False)]
)
CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.string(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.string()), pa.field("db_schema_name", pa.string(), False)]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.string()),
        pa.field("db_schema_name", pa.string()),
        pa.field("table_name", pa.string(), False),
        pa.field("table_type", pa.string(), False),
    ]
)
TABLES_WITH_SCHEMA = TABLES_SCHEMA.append(pa.field("table_schema", pa.binary(), False))
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.string(), nullable=False)])


def like(pattern: str | None) -> re.Pattern[str] | None:
    """A Flight SQL filter pattern (SQL LIKE: ``%`` any run, ``_`` one character)."""
    if pattern is None:
        return None
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _matches(value: str, pattern: re.Pattern[str] | None) -> bool:
    return pattern is None or pattern.fullmatch(value) is not None


def catalogs(state: RegistryState) -> pa.Table:
    return pa.table([pa.array(sorted(state.hives), pa.string())], schema=CATALOGS_SCHEMA)


def db_schemas(state: RegistryState, catalog: str | None, pattern: str | None) -> pa.Table:
    match = like(pattern)
    rows = [
        (hive, box)
        for hive, h in sorted(state.hives.items())
        if catalog is None or hive == catalog
        for box in sorted(h.boxes)
        if _matches(box, match)
    ]
    return _rows(rows, DB_SCHEMAS_SCHEMA)


def tables(
    state: RegistryState,
    catalog: str | None,
    schema_pattern: str | None,
    table_pattern: str | None,
    table_types: Iterable[str],
    include_schema: bool,
) -> pa.Table:
    boxes, names = like(schema_pattern), like(table_pattern)
    types = set(table_types)
    rows: list[tuple[object, ...]] = []
    if types and TABLE_TYPE not in types:
        return TABLES_WITH_SCHEMA.empty_table() if include_schema else TABLES_SCHEMA.empty_table()
    for hive, h in sorted(state.hives.items()):
        if catalog is not None and hive != catalog:
            continue
        for box, b in sorted(h.boxes.items()):
            if not _matches(box, boxes):
                continue
            for name, definition in sorted(b.frames.items()):
                if not _matches(name, names):
                    continue
                row: tuple[object, ...] = (hive, box, name, TABLE_TYPE)
                if include_schema:
                    row += (schema_from_json(definition.columns).serialize().to_pybytes(),)
                rows.append(row)
    return _rows(rows, TABLES_WITH_SCHEMA if include_schema else TABLES_SCHEMA)


def table_types() -> pa.Table:
    return pa.table([pa.array([TABLE_TYPE])], schema=TABLE_TYPES_SCHEMA)


def sql_info(wanted: Iterable[int]) -> pa.Table:
    """The GetSqlInfo answer: the ids asked for that this server knows (all when none asked)."""
    known: dict[int, tuple[int, object]] = {  # id -> (union member, value)
        SERVER_NAME: (0, "Apiary"),
        SERVER_VERSION: (0, __version__),
        SERVER_ARROW_VERSION: (0, pa.__version__),
        SERVER_READ_ONLY: (1, True),  # SQL reads; writes go through the SDK
        SERVER_SQL: (1, True),
        SERVER_SUBSTRAIT: (1, False),
        SERVER_TRANSACTION: (3, 0),  # SQL_TRANSACTION_NONE
        SERVER_CANCEL: (1, False),  # cancel by closing the stream, not CancelQuery
        SQL_IDENTIFIER_QUOTE_CHAR: (0, '"'),
    }
    ids = [i for i in (list(wanted) or sorted(known)) if i in known]
    children: list[list[object]] = [[] for _ in _SQL_INFO_VALUE]
    type_ids, offsets = [], []
    for i in ids:
        member, value = known[i]
        type_ids.append(member)
        offsets.append(len(children[member]))
        children[member].append(value)
    arrays = [
        pa.array(values, type=_SQL_INFO_VALUE.field(n).type) for n, values in enumerate(children)
    ]
    value = pa.UnionArray.from_dense(
        pa.array(type_ids, pa.int8()),
        pa.array(offsets, pa.int32()),
        arrays,
        [f.name for f in _SQL_INFO_VALUE],
    )
    return pa.table([pa.array(ids, pa.uint32()), value], schema=SQL_INFO_SCHEMA)


def _rows(rows: list[tuple[object, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table(
        [pa.array(list(c), f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )
