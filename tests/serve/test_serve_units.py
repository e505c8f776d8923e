"""Pure parts of the server: protocol messages, auth checks, catalog filters, listen parsing."""

from __future__ import annotations

import base64

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from apiary.catalog.models import RegistryState
from apiary.errors import ConfigError
from apiary.serve import metadata, protocol
from apiary.serve.auth import Authenticator, Secrets
from apiary.serve.node import is_loopback, split_listen


def test_messages_round_trip_and_foreign_bytes_are_refused() -> None:
    packed = protocol.pack(protocol.new("CommandStatementQuery", query="SELECT 1"))
    assert protocol.unpack(packed).query == "SELECT 1"
    tables = protocol.unpack(protocol.pack(protocol.new("CommandGetTables", catalog="farm")))
    assert tables.HasField("catalog") and not tables.HasField("db_schema_filter_pattern")
    with pytest.raises(protocol.ProtocolError, match="not a Flight SQL command"):
        protocol.unpack(b"\xff\xff\xff")
    with pytest.raises(protocol.ProtocolError, match="unsupported Flight SQL command"):
        protocol.unpack(
            protocol.pack(protocol.new("CommandGetCatalogs")).replace(
                b"GetCatalogs", b"GetCatalogZ"
            )
        )


def test_bearer_and_basic_auth() -> None:
    auth = Authenticator(Secrets(token="t0k3n", username="u", password="pa55"))
    assert auth.check("Bearer t0k3n") is None
    basic = "Basic " + base64.b64encode(b"u:pa55").decode()
    issued = auth.check(basic)
    assert issued and auth.check(f"Bearer {issued}") is None  # the session token works
    for bad in (None, "", "Bearer nope", "Basic " + base64.b64encode(b"u:x").decode(), "Basic %%"):
        with pytest.raises(flight.FlightUnauthenticatedError) as caught:
            auth.check(bad)
        assert "t0k3n" not in str(caught.value) and "nope" not in str(caught.value)
    assert "t0k3n" not in repr(auth.secrets) and "pa55" not in repr(auth.secrets)
    assert Authenticator(Secrets()).check(None) is None  # no secrets: loopback only, open


def test_session_tokens_expire() -> None:
    now = [0.0]
    auth = Authenticator(Secrets(username="u", password="p"), clock=lambda: now[0])
    issued = auth.check("Basic " + base64.b64encode(b"u:p").decode())
    now[0] = 25 * 3600
    with pytest.raises(flight.FlightUnauthenticatedError):
        auth.check(f"Bearer {issued}")


def test_catalog_filters_follow_sql_like() -> None:
    state = RegistryState.model_validate(
        {
            "hives": {
                "farm": {"boxes": {"sensors": {"frames": {}}, "sales": {"frames": {}}}},
                "lab": {"boxes": {"s_1": {"frames": {}}}},
            }
        }
    )
    assert metadata.catalogs(state).column(0).to_pylist() == ["farm", "lab"]
    schemas = metadata.db_schemas(state, None, "s%")
    assert schemas.to_pylist() == [
        {"catalog_name": "farm", "db_schema_name": "sales"},
        {"catalog_name": "farm", "db_schema_name": "sensors"},
        {"catalog_name": "lab", "db_schema_name": "s_1"},
    ]
    assert metadata.db_schemas(state, "farm", "sa_es").column(1).to_pylist() == ["sales"]
    assert metadata.tables(state, None, None, None, ["VIEW"], False).num_rows == 0


def test_sql_info_answers_what_was_asked() -> None:
    table = metadata.sql_info([metadata.SERVER_NAME, metadata.SERVER_READ_ONLY, 99999])
    assert table.schema == metadata.SQL_INFO_SCHEMA
    assert table.to_pylist() == [
        {"info_name": 0, "value": "Apiary"},
        {"info_name": 3, "value": True},
    ]
    assert metadata.sql_info([]).num_rows >= 5
    assert isinstance(table.column("value").type, pa.UnionType)


def test_listen_addresses() -> None:
    assert split_listen("127.0.0.1:50051", "serve_listen") == ("127.0.0.1", 50051)
    assert split_listen("[::1]:9464", "metrics_listen") == ("::1", 9464)
    for bad in ("50051", "host:", ":80", "host:99999"):
        with pytest.raises(ConfigError, match="serve_listen must be host:port"):
            split_listen(bad, "serve_listen")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("pi-kitchen")
