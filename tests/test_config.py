"""Settings: defaults < TOML file < APIARY_* environment < arguments; errors name the key."""

from __future__ import annotations

import pytest

from apiary import Apiary, ConfigError
from apiary.config import load_settings


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.commit_retries, settings.max_partitions, settings.storage) == (100, 1000, None)
    assert settings.node_id


def test_file_then_environment_then_arguments(tmp_path, monkeypatch) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text('storage = "/from/file"\nnode_id = "pi-kitchen"\ncommit_retries = 7\n')
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    settings = load_settings()
    assert (settings.storage, settings.node_id, settings.commit_retries) == (
        "/from/file",
        "pi-kitchen",
        7,
    )
    monkeypatch.setenv("APIARY_COMMIT_RETRIES", "9")
    assert load_settings().commit_retries == 9
    assert load_settings(node_id="flag").node_id == "flag"


def test_storage_from_settings_is_used_by_the_sdk(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("APIARY_STORAGE", str(tmp_path / "configured"))
    with Apiary("test") as ap:
        ap.create_hive("h")
    assert (tmp_path / "configured" / "_registry" / "000000.json").is_file()


@pytest.mark.parametrize(
    ("text", "key"),
    [("commit_retries = -1\n", "commit_retries"), ("colour = 'red'\n", "colour")],
)
def test_invalid_file_names_the_file_and_key(tmp_path, monkeypatch, text, key) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text(text)
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    with pytest.raises(ConfigError, match=key) as info:
        load_settings()
    assert str(config) in str(info.value)


def test_toml_syntax_error_names_the_file(tmp_path, monkeypatch) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text("storage = \n")
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    with pytest.raises(ConfigError, match="apiary.toml"):
        load_settings()


def test_credentials_table_reaches_s3_and_stays_secret(s3_bucket, tmp_path, monkeypatch) -> None:
    secret = "config-file-secret-0042"
    config = tmp_path / "apiary.toml"
    config.write_text(
        f'storage = "{s3_bucket.uri}"\n\n[credentials]\n'
        f'access_key_id = "AKIDFROMFILE"\nsecret_access_key = "{secret}"\n'
    )
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.credentials is not None
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
    with Apiary("test") as ap:
        assert ap.credentials == {"access_key_id": "AKIDFROMFILE", "secret_access_key": secret}
        ap.create_hive("from_file")
        assert ap.list_hives() == ["from_file"]


def test_unknown_credential_key_is_named(tmp_path, monkeypatch) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text('[credentials]\naccess_key_id = "a"\nsecret_access_key = "b"\nregion = "x"\n')
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    with pytest.raises(ConfigError, match=r"credentials\.region"):
        load_settings()
