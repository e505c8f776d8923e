"""A password typed into an endpoint is refused, and no URL is printed or stored with one.

The secret is a distinctive string, so each check is a plain search for it: in errors, logs,
``apiary status`` output, heartbeat objects and ``apiary swarm --json``.
"""

from __future__ import annotations

import json
import logging

import pytest
from support.processes import run_apiary

from apiary import Apiary
from apiary.errors import ConfigError
from apiary.storage import open_storage
from apiary.storage.uri import Location, parse_location, redact
from apiary.swarm.world import heartbeat_path

SECRET = "pw-Zq81hQ7eLx"  # distinctive, so a plain search finds any leak


apiary_cli = run_apiary


@pytest.mark.parametrize(
    "endpoint",
    [
        f"http://user:{SECRET}@127.0.0.1:9000",
        f"http://{SECRET}@127.0.0.1:9000",
        f"https://user:{SECRET}@minio.local/",
        f"http://user:{SECRET}@@127.0.0.1:9000",
        f"ftp://user:{SECRET}@127.0.0.1:9000",
    ],
)
def test_userinfo_in_the_endpoint_is_refused_without_echoing_it(endpoint, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_location(f"s3://fleet/apiary?endpoint={endpoint}")
    message = str(info.value)
    assert SECRET not in message
    if not endpoint.startswith("ftp"):
        assert "AWS_SECRET_ACCESS_KEY" in message and "[credentials]" in message


def test_userinfo_in_aws_endpoint_url_is_refused_without_echoing_it(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://admin:{SECRET}@127.0.0.1:9000")
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL") as info:
        parse_location("s3://fleet/apiary")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "endpoint",
    [f"http://127.0.0.1:9000/?X-Amz-Security-Token={SECRET}", f"http://h:9000/#{SECRET}"],
)
def test_an_endpoint_carries_no_query_or_fragment(endpoint, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(ConfigError) as info:
        parse_location("s3://fleet/apiary")
    assert SECRET not in str(info.value)


def test_a_location_cannot_hold_a_password_however_it_is_made() -> None:
    with pytest.raises(ConfigError):
        Location("s3", "p", bucket="b", endpoint=f"http://u:{SECRET}@h:9000")
    with pytest.raises(ConfigError):
        open_storage(Location("s3", "p", bucket="b", endpoint=f"http://u:{SECRET}@h:9000"))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"s3://b/p?endpoint=http://u:{SECRET}@h:9000", "s3://b/p?endpoint=http://****@h:9000"),
        (f"s3://b/p?region=eu&access_key={SECRET}", "s3://b/p?region=eu&access_key=****"),
        (
            f"http://h:9000/?X-Amz-Signature={SECRET}&x=1",
            "http://h:9000/?X-Amz-Signature=****&x=****",
        ),
        (
            f"s3://b/p?endpoint=http://h:9000/?token={SECRET}",
            "s3://b/p?endpoint=http://h:9000/?token=****",
        ),
        (f"PUT http://a:b@c@h/key failed: {SECRET}@x", f"PUT http://****@h/key failed: {SECRET}@x"),
        ("/data/apiary (endpoint none)", "/data/apiary (endpoint none)"),
    ],
)
def test_redact_masks_userinfo_and_query_values(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_apiary_status_refuses_a_password_in_the_endpoint(tmp_path) -> None:
    uri = f"s3://fleet/apiary?endpoint=http://user:{SECRET}@127.0.0.1:1"
    proc = apiary_cli("status", "--storage", uri)
    assert proc.returncode == 1
    assert SECRET not in proc.stdout + proc.stderr
    assert "[credentials]" in proc.stderr
    proc = apiary_cli(
        "status",
        "--storage",
        "s3://fleet/apiary",
        env={"AWS_ENDPOINT_URL": f"http://user:{SECRET}@127.0.0.1:1"},
    )
    assert proc.returncode == 1
    assert SECRET not in proc.stdout + proc.stderr
    assert "AWS_ENDPOINT_URL" in proc.stderr


def test_an_unstarted_client_does_not_print_its_uri_whole() -> None:
    ap = Apiary("test", f"s3://b/p?endpoint=http://u:{SECRET}@h:9000")
    assert SECRET not in repr(ap)


def test_a_heartbeat_holding_a_password_is_shown_redacted(tmp_path) -> None:
    """An older or hostile node's heartbeat is untrusted input: observers never echo a URL."""
    root = str(tmp_path / "root")
    with Apiary("test", root, node_id="observer", join_swarm=False) as ap:
        beat = {"node_id": "old-node", "storage": f"s3://b/p (endpoint http://u:{SECRET}@h)"}
        ap.storage.put(heartbeat_path("old-node"), json.dumps(beat).encode())
        nodes = ap.swarm_status()["nodes"]
        assert [n["node_id"] for n in nodes] == ["old-node"]
        assert SECRET not in json.dumps(ap.swarm_status())
    proc = apiary_cli("swarm", "--json", "--storage", root)
    assert proc.returncode == 0, proc.stderr
    assert "old-node" in proc.stdout and SECRET not in proc.stdout


@pytest.mark.s3
def test_a_node_on_s3_never_prints_or_stores_its_secret(s3_bucket, monkeypatch, caplog) -> None:
    """Keys in AWS_* variables work, and appear in no log, heartbeat, status or error."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)  # moto accepts any key
    with caplog.at_level(logging.DEBUG, logger="apiary"):
        with Apiary("test", s3_bucket.uri, node_id="n1", join_swarm=True) as ap:
            ap.create_hive("farm")
            shown = json.dumps([ap.status(), ap.swarm_status()], default=str)
            stored = ap.storage.get(heartbeat_path("n1")).decode()
            with pytest.raises(Exception) as info:
                ap.storage.get("no/such/object")
        proc = apiary_cli(
            "status", "--storage", s3_bucket.uri, env={"AWS_SECRET_ACCESS_KEY": SECRET}
        )
    assert proc.returncode == 0, proc.stderr
    assert s3_bucket.endpoint in proc.stdout  # the endpoint is shown, without secrets
    for text in (shown, stored, str(info.value), caplog.text, proc.stdout + proc.stderr):
        assert SECRET not in text
