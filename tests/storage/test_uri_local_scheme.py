"""``local://`` storage URIs (the original SDK's spelling of a local directory)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.errors import ConfigError
from apiary.storage.uri import parse_location


def test_local_absolute_path(tmp_path: Path) -> None:
    loc = parse_location(f"local://{tmp_path}")  # local:///abs/path
    assert (loc.scheme, loc.path) == ("file", str(tmp_path))
    assert loc == parse_location(str(tmp_path)) == parse_location(f"file://{tmp_path}")


def test_local_relative_path_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_location("local://data/apiary").path == str(tmp_path / "data" / "apiary")
    assert parse_location("LOCAL://data").path == str(tmp_path / "data")


def test_local_home_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_location("local://~/apiary").path == str(tmp_path / "apiary")


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("local://", "needs a directory"),
        ("local:///srv/a?x=1", "no options"),
        ("local://user:pw@host/srv", "credentials"),
    ],
)
def test_bad_local_uris_say_what_is_wrong(uri: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        parse_location(uri)
    assert "pw" not in str(info.value)


def test_local_uri_round_trips(tmp_path: Path) -> None:
    loc = parse_location(f"local://{tmp_path}")
    assert parse_location(loc.uri) == loc


def test_apiary_on_a_local_uri_writes_into_that_directory(tmp_path: Path) -> None:
    root = tmp_path / "srv" / "apiary"
    with Apiary("test", storage=f"local://{root}") as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"x": "int64"})
        ap.write_to_frame("h", "b", "f", pa.table({"x": [1, 2]}))
        assert ap.read_from_frame("h", "b", "f")["x"].to_pylist() == [1, 2]
    assert any(root.joinpath("h", "b", "f").rglob("*.parquet"))
    with Apiary("other", storage=str(root)) as again:  # the same root as a plain path
        assert again.read_from_frame("h", "b", "f").num_rows == 2
