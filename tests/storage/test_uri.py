"""Storage URI parsing (pure logic)."""

from __future__ import annotations

import pytest

from apiary.errors import ConfigError
from apiary.storage.uri import parse_location


def test_default_is_under_apiary_home(isolated_home) -> None:
    loc = parse_location(None, "farm")
    assert loc.scheme == "file"
    assert loc.path == str(isolated_home / "data" / "farm")


def test_local_forms(tmp_path) -> None:
    assert parse_location(str(tmp_path)).path == str(tmp_path)
    assert parse_location(f"file://{tmp_path}").path == str(tmp_path)
    assert parse_location("memory://x").path == "x"


def test_s3_with_endpoint_and_region(monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    loc = parse_location("s3://fleet/apiary/prod?endpoint=http://minio:9000&region=eu-west-1")
    assert (loc.scheme, loc.bucket, loc.path) == ("s3", "fleet", "apiary/prod")
    assert (loc.endpoint, loc.region) == ("http://minio:9000", "eu-west-1")
    assert str(loc) == "s3://fleet/apiary/prod (endpoint http://minio:9000)"


def test_s3_endpoint_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert parse_location("s3://b").endpoint == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://AKIAXXXX:supersecret@bucket/p",
        "s3://bucket/p?secret_access_key=supersecret",
        "s3://bucket/p?access_key_id=AKIAXXXX",
    ],
)
def test_credentials_in_uri_are_refused_without_echoing_them(uri: str) -> None:
    with pytest.raises(ConfigError, match="credential") as info:
        parse_location(uri)
    assert "supersecret" not in str(info.value)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("gs://bucket", "not supported"),
        ("s3://", "needs a bucket"),
        ("s3://b?colour=red", "unknown"),
        ("s3://b/../x", "'..'"),
        ("s3://b?endpoint=minio:9000", "http"),
        ("  ", "empty"),
    ],
)
def test_bad_uris_say_what_is_wrong(uri: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_location(uri)


@pytest.mark.parametrize(
    "uri", ["s3://b/p/q?endpoint=http://h:9000&region=eu-west-1", "s3://b", "memory://m"]
)
def test_uri_round_trips(uri: str) -> None:
    assert parse_location(parse_location(uri).uri) == parse_location(uri)
