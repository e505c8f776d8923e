"""S3 and S3-compatible servers (MinIO, moto) through obstore's S3 client."""

from __future__ import annotations

import os
from datetime import timedelta

from obstore.store import S3Store

from apiary.errors import ConfigError
from apiary.storage.uri import Location


def make_store(location: Location, credentials: dict[str, str] | None = None) -> S3Store:
    """Build the client. Credentials come from ``credentials`` or the usual ``AWS_*`` variables.

    obstore's own retries are switched off: the contract layer retries, so that it knows when a
    conditional put may have been applied and must be read back, and so retries show in logs.
    """
    config: dict[str, str] = {}
    if location.endpoint:
        config["endpoint"] = location.endpoint
    config["region"] = (
        location.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    for key, value in (credentials or {}).items():
        if key not in ("access_key_id", "secret_access_key", "session_token"):
            raise ConfigError(f"unknown S3 credential field {key!r}")
        config[key] = value
    allow_http = bool(location.endpoint and location.endpoint.startswith("http://"))
    return S3Store(
        location.bucket,
        prefix=location.path or None,
        config=config,  # type: ignore[arg-type]
        client_options={
            "allow_http": allow_http,
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(seconds=60),
        },
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=60)},
    )


def secrets_in_use(credentials: dict[str, str] | None = None) -> tuple[str, ...]:
    """Secret values that must be scrubbed from any message that leaves the storage layer."""
    values = [
        os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        os.environ.get("AWS_SESSION_TOKEN", ""),
        *(credentials or {}).get("secret_access_key", "").split(),
        *(credentials or {}).get("session_token", "").split(),
    ]
    return tuple(v for v in values if len(v) >= 4)
