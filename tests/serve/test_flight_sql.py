"""Flight SQL through the ADBC driver against a real ``apiary node --serve`` process."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import adbc_driver_flightsql
import pandas as pd
import pyarrow as pa
import pytest
from adbc_driver_manager import dbapi
from conftest import TOKEN, ServedNode, connect
from support.compare import assert_same_result
from support.tpch import tpch_files

from apiary import Apiary
from apiary.bench.tpch import box_name, load
from apiary.bench.tpch_queries import QUERIES, has_order_by

SF = 0.01


def _small_root(tmp_path: Path) -> str:
    root = str(tmp_path / "root")
    with Apiary("t", root) as ap:
        ap.create_hive("farm")
        ap.create_box("farm", "sensors")
        ap.create_frame("farm", "sensors", "readings", {"id": "int64", "where": "string"})
        ap.write_to_frame(
            "farm",
            "sensors",
            "readings",
            pa.table({"id": list(range(1000)), "where": [f"shed-{i % 7}" for i in range(1000)]}),
        )
        ap.create_box("farm", "empty")
    return root


def test_tpch_through_adbc_equals_apiary_sql(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    files = tpch_files(SF, tmp_path / "parquet")
    root = str(tmp_path / "tpch-root")
    with Apiary("tpch", root) as ap:
        load(ap, files, "tpch", box_name(SF), cells_per_frame=3)
        ap.sql(f"USE tpch.{box_name(SF)}")
        expected = {n: ap.sql(q) for n, q in sorted(QUERIES.items())}
    node = serve_node(root, serve_token=TOKEN)
    with connect(node) as conn, conn.cursor() as cur:
        cur.execute(f"USE tpch.{box_name(SF)}")  # lasts for this connection
        for number, query in sorted(QUERIES.items()):
            cur.execute(query)
            got = cur.fetch_arrow_table()
            assert expected[number].num_rows > 0, number
            assert_same_result(got, expected[number], ordered=has_order_by(query))
    assert TOKEN not in node.log  # never logged


def test_catalogs_schemas_tables_sql_info_and_pandas(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    node = serve_node(_small_root(tmp_path), serve_token=TOKEN)
    with connect(node) as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        assert [c["catalog_name"] for c in objects] == ["farm"]
        schemas = {s["db_schema_name"]: s for s in objects[0]["catalog_db_schemas"]}
        assert sorted(schemas) == ["empty", "sensors"]
        (table,) = schemas["sensors"]["db_schema_tables"]
        assert (table["table_name"], table["table_type"]) == ("readings", "TABLE")
        assert [c["column_name"] for c in table["table_columns"]] == ["id", "where"]
        assert schemas["empty"]["db_schema_tables"] == []
        filtered = conn.adbc_get_objects(depth="tables", db_schema_filter="sens%").read_all()
        assert filtered.to_pylist()[0]["catalog_db_schemas"][0]["db_schema_name"] == "sensors"
        assert conn.adbc_get_table_types() == ["TABLE"]
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "Apiary"
        assert info["vendor_arrow_version"] == pa.__version__
        frame = pd.read_sql(
            'SELECT "where", count(*) AS n FROM farm.sensors.readings GROUP BY "where" '
            'ORDER BY "where"',
            conn,
        )
        assert frame["n"].sum() == 1000
        assert list(frame["where"])[:2] == ["shed-0", "shed-1"]


def test_errors_reach_the_client_with_apiarys_message(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    node = serve_node(_small_root(tmp_path), serve_token=TOKEN)
    with connect(node) as conn, conn.cursor() as cur:
        with pytest.raises(dbapi.Error, match="readings"):  # the suggestion names the frame
            cur.execute("SELECT * FROM farm.sensors.reading")
        with pytest.raises(dbapi.Error, match="read-only|not allowed|DROP|DDL"):
            cur.execute("DROP TABLE farm.sensors.readings")
        cur.execute("SELECT count(*) FROM farm.sensors.readings")  # the connection still works
        assert cur.fetchone() == (1000,)


def test_wrong_or_missing_token_is_refused_and_basic_auth_works(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    node = serve_node(
        _small_root(tmp_path), serve_token=TOKEN, serve_username="grafana", serve_password="pw-1"
    )
    refused = pytest.raises(dbapi.Error, match="(?i)unauthenticated")
    for token in ("wr0ng-t0ken", None):
        with refused, connect(node, token=token) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    with refused, connect(node, None, username="grafana", password="nope") as conn:
        conn.cursor().execute("SELECT 1")
    with connect(node, None, username="grafana", password="pw-1") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM farm.sensors.readings")
        assert cur.fetchone() == (1000,)
    for secret in (TOKEN, "pw-1", "wr0ng-t0ken"):
        assert secret not in node.log


def test_non_loopback_without_credentials_is_refused(
    serve_node: Callable[..., ServedNode], tmp_path: Path
) -> None:
    node = serve_node(_small_root(tmp_path), "--listen", "0.0.0.0:0", ready=False)
    assert node.process.wait(60) != 0
    assert "serve_token" in node.log and "reachable from other machines" in node.log


def test_tls_from_cert_and_key_files(serve_node: Callable[..., ServedNode], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    node = serve_node(
        _small_root(tmp_path),
        serve_token=TOKEN,
        serve_tls_cert=str(cert),
        serve_tls_key=str(key),
    )
    assert "grpc+tls://" in node.log
    import adbc_driver_flightsql.dbapi as flightsql

    options = {
        "adbc.flight.sql.authorization_header": f"Bearer {TOKEN}",
        adbc_driver_flightsql.DatabaseOptions.TLS_ROOT_CERTS.value: cert.read_text(),
    }
    uri = f"grpc+tls://127.0.0.1:{node.port}"
    with (
        flightsql.connect(uri, db_kwargs=options, autocommit=True) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT count(*) FROM farm.sensors.readings")
        assert cur.fetchone() == (1000,)
    # plain gRPC cannot talk to the TLS port
    with pytest.raises(dbapi.Error), connect(node) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
