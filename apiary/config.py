"""Settings: defaults, overridden by a TOML file, overridden by ``APIARY_*`` variables.

The file is ``$APIARY_CONFIG`` if set, else ``/etc/apiary/apiary.toml`` (the Pi appliance), else
``~/.apiary/apiary.toml``; a missing file is fine. Keys are the field names below, at top level::

    storage = "s3://fleet/apiary?endpoint=http://minio.local:9000"
    node_id = "pi-kitchen"
    commit_retries = 100

    [credentials]            # S3 keys; or leave out and use the AWS_* variables
    access_key_id = "..."
    secret_access_key = "..."

Credentials are ``SecretStr``: they never show in a repr, a log line or an error.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from apiary.errors import ConfigError
from apiary.storage.uri import apiary_home


def config_file() -> Path | None:
    explicit = os.environ.get("APIARY_CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (Path("/etc/apiary/apiary.toml"), apiary_home() / "apiary.toml"):
        if candidate.is_file():
            return candidate
    return None


class S3Credentials(BaseModel):
    """Keys for an S3 / MinIO root, from the ``[credentials]`` table of the config file."""

    model_config = ConfigDict(extra="forbid")

    access_key_id: str = Field(min_length=1)
    secret_access_key: SecretStr = Field(min_length=1)
    session_token: SecretStr | None = None

    def as_dict(self) -> dict[str, str]:
        out = {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key.get_secret_value(),
        }
        if self.session_token is not None:
            out["session_token"] = self.session_token.get_secret_value()
        return out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APIARY_", extra="forbid")

    storage: str | None = Field(None, description="storage root URI; unset = ~/.apiary/data/<name>")
    credentials: S3Credentials | None = Field(
        None, description="S3 keys ([credentials] table); unset = the AWS_* variables"
    )
    node_id: str = Field(default_factory=socket.gethostname, description="this node's name")
    commit_retries: int = Field(100, ge=0, description="lost commit races retried before giving up")
    storage_retries: int = Field(6, ge=1, description="tries of one storage request on faults")
    max_partitions: int = Field(1000, ge=1, description="partitions one write may create")
    memory_per_bee: int | None = Field(
        None, gt=0, description="bytes per bee; unset = node memory budget / bees"
    )
    cores: int | None = Field(None, ge=1, description="override the detected core count")
    memory_mb: int | None = Field(None, ge=64, description="override the detected memory budget")
    model: str | None = Field(None, description="override the detected Raspberry Pi model")
    reserve_mb: int | None = Field(None, ge=0, description="memory kept for Python and the OS")
    vacuum_retention_hours: float = Field(168.0, ge=0, description="vacuum keeps younger cells")
    heartbeat_interval: float = Field(5.0, gt=0, description="seconds between heartbeats")
    suspect_after: float = Field(15.0, gt=0, description="heartbeat age when a node is suspect")
    dead_after: float = Field(30.0, gt=0, description="heartbeat age when a node is dead")
    forget_after: float = Field(60.0, gt=0, description="dead heartbeats are deleted after this")
    distribute_min_cells: int = Field(
        8,
        ge=0,
        description="cells a query must scan before it is shared with other nodes; 0: never",
    )
    distribute_min_gain: float = Field(
        1.3,
        ge=0,
        description="share a query only when the bytes its tasks read allow this speedup "
        "(frames a task cannot split are read whole by every task); 0: whenever it splits",
    )
    distribute_trip_mb: float = Field(
        16.0,
        ge=0,
        description="what the trip through the bucket costs a shared query, counted as "
        "megabytes its slowest task reads (for distribute_min_gain): short queries stay local",
    )
    write_wait_max: float = Field(
        5.0,
        ge=0,
        description="seconds a write waits at most on a hot node (its share: how near critical)",
    )
    task_timeout: float = Field(30.0, gt=0, description="seconds a node has to answer a task")
    task_attempts: int = Field(3, ge=1, description="nodes a task is tried on before abandoning")
    worker_poll_interval: float | None = Field(
        None,
        gt=0,
        description="seconds between looks for tasks while queries are about; "
        "unset = 0.02 on a local root, 0.25 on S3",
    )
    worker_idle_poll_interval: float | None = Field(
        None,
        gt=0,
        description="seconds between looks for tasks when none was seen for a minute; "
        "unset = 0.5 on a local root, 5 on S3 (each look is a LIST request)",
    )
    datafusion: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="DataFusion options for this node's queries, over Apiary's own choices "
        '(a [datafusion] table: "datafusion.execution.parquet.pushdown_filters" = true)',
    )
    cache_dir: Path | None = Field(
        None, description="folder for the cell cache; unset = $APIARY_HOME/cache"
    )
    cache_bytes: int = Field(
        2 * 1024**3, ge=0, description="local cache of cells from S3 roots; 0 turns it off"
    )

    serve: bool = Field(
        False, description="run the Arrow Flight SQL server in `apiary node` (also --serve)"
    )
    serve_listen: str = Field(
        "127.0.0.1:50051", description="host:port of the Flight SQL server (also --listen)"
    )
    serve_token: SecretStr | None = Field(
        None, description="bearer token Flight SQL clients must send; never logged"
    )
    serve_username: str | None = Field(None, description="user name for basic auth")
    serve_password: SecretStr | None = Field(None, description="password for basic auth")
    serve_tls_cert: Path | None = Field(None, description="PEM certificate: serve over TLS")
    serve_tls_key: Path | None = Field(None, description="PEM private key of that certificate")
    metrics_listen: str | None = Field(
        None, description="host:port for Prometheus /metrics in `apiary node`; unset = off"
    )

    @model_validator(mode="after")
    def _paired_serve_settings(self) -> Settings:
        if (self.serve_username is None) != (self.serve_password is None):
            raise ValueError("set serve_username and serve_password together")
        if (self.serve_tls_cert is None) != (self.serve_tls_key is None):
            raise ValueError("set serve_tls_cert and serve_tls_key together")
        return self

    @model_validator(mode="after")
    def _ordered_timings(self) -> Settings:
        if not self.heartbeat_interval < self.suspect_after <= self.dead_after <= self.forget_after:
            raise ValueError(
                "need heartbeat_interval < suspect_after <= dead_after <= forget_after"
            )
        return self

    def hardware_overrides(self) -> dict[str, Any]:
        """The keys that replace detected hardware (``hardware.detect(overrides=...)``); the SDK,
        ``apiary hardware`` and ``apiary doctor`` all use these, so they agree on the budget."""
        return {"cores": self.cores, "memory_mb": self.memory_mb, "model": self.model}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from file + environment + ``overrides`` (flags), with errors that name the key."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where = config_file()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        source = f" (config file {where}, APIARY_* variables or arguments)" if where else ""
        raise ConfigError(f"invalid settings{source}: {problems}") from None
    except Exception as exc:  # a TOML syntax error
        raise ConfigError(f"cannot read config file {config_file()}: {exc}") from None
