"""The few Flight SQL messages Apiary's server reads and writes (``FlightSql.proto``).

pyarrow serves Arrow Flight but ships no Flight SQL layer, and no maintained Python package
provides one. The messages are declared here by hand, field numbers as in Apache Arrow's
``format/FlightSql.proto``, and built with protobuf's own descriptor and message factory, so
encoding and decoding stay protobuf's. Every command travels packed in a
``google.protobuf.Any``.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from apiary.errors import ApiaryError

PACKAGE = "arrow.flight.protocol.sql"
TYPE_URL = f"type.googleapis.com/{PACKAGE}."

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BYTES, _BOOL, _UINT32 = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_BOOL, _F.TYPE_UINT32
_ONE, _MANY = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# message name -> fields (name, number, type, repeated, proto3 "optional")
_MESSAGES: dict[str, list[tuple[str, int, int, bool, bool]]] = {
    "CommandStatementQuery": [
        ("query", 1, _STRING, False, False),
        ("transaction_id", 2, _BYTES, False, True),
    ],
    "TicketStatementQuery": [("statement_handle", 1, _BYTES, False, False)],
    "CommandGetSqlInfo": [("info", 1, _UINT32, True, False)],
    "CommandGetCatalogs": [],
    "CommandGetDbSchemas": [
        ("catalog", 1, _STRING, False, True),
        ("db_schema_filter_pattern", 2, _STRING, False, True),
    ],
    "CommandGetTables": [
        ("catalog", 1, _STRING, False, True),
        ("db_schema_filter_pattern", 2, _STRING, False, True),
        ("table_name_filter_pattern", 3, _STRING, False, True),
        ("table_types", 4, _STRING, True, False),
        ("include_schema", 5, _BOOL, False, False),
    ],
    "CommandGetTableTypes": [],
    "CommandPreparedStatementQuery": [("prepared_statement_handle", 1, _BYTES, False, False)],
    "ActionCreatePreparedStatementRequest": [
        ("query", 1, _STRING, False, False),
        ("transaction_id", 2, _BYTES, False, True),
    ],
    "ActionCreatePreparedStatementResult": [
        ("prepared_statement_handle", 1, _BYTES, False, False),
        ("dataset_schema", 2, _BYTES, False, False),
        ("parameter_schema", 3, _BYTES, False, False),
    ],
    "ActionClosePreparedStatementRequest": [("prepared_statement_handle", 1, _BYTES, False, False)],
}


def _build() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="apiary_flight_sql.proto", package=PACKAGE, syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, repeated, optional in fields:
            field = message.field.add(
                name=field_name, number=number, type=kind, label=_MANY if repeated else _ONE
            )
            if optional:  # proto3 "optional": presence tracked through a synthetic oneof
                field.proto3_optional = True
                field.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=f"_{field_name}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in _MESSAGES
    }


MESSAGES = _build()


def new(name: str, **fields: object) -> Message:
    return MESSAGES[name](**fields)


def pack(message: Message) -> bytes:
    """``message`` packed in an Any, as Flight SQL sends commands, tickets and results."""
    wrapped = any_pb2.Any(
        type_url=TYPE_URL + message.DESCRIPTOR.name, value=message.SerializeToString()
    )
    return wrapped.SerializeToString()


def unpack(data: bytes) -> Message:
    """The Flight SQL message in ``data``; a clear error for anything else (untrusted input)."""
    wrapped = any_pb2.Any()
    try:
        wrapped.ParseFromString(data)
    except DecodeError:
        raise ProtocolError("not a Flight SQL command: use a Flight SQL client") from None
    name = wrapped.type_url.removeprefix(TYPE_URL)
    if not wrapped.type_url.startswith(TYPE_URL) or name not in MESSAGES:
        raise ProtocolError(
            f"unsupported Flight SQL command {wrapped.type_url[:120]!r}; this server runs "
            "statement queries, prepared queries and the catalog commands (GetCatalogs, "
            "GetDbSchemas, GetTables, GetTableTypes, GetSqlInfo)"
        )
    message = MESSAGES[name]()
    try:
        message.ParseFromString(wrapped.value)
    except DecodeError:
        raise ProtocolError(f"malformed {name}") from None
    return message


class ProtocolError(ApiaryError, ValueError):
    """A request that is not (supported) Flight SQL."""
