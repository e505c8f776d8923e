"""Storage URIs: what a person may type, and what it resolves to (pure logic).

Accepted forms::

    None                                  ~/.apiary/data/<name>/ (the embedded default)
    /some/dir, ./dir, file:///some/dir    a local directory
    local:///some/dir, local://rel/dir    the same (the original SDK's spelling; rel is under cwd)
    s3://bucket/prefix?endpoint=URL&region=R   S3 or any S3-compatible server (MinIO, moto)
    memory://name                         in-process memory, shared by name (tests)

Credentials never come from the URI: a URI is printed in logs, status and the TUI. That holds
for the endpoint too (no ``user:password@``), and :func:`redact` masks any URL that is printed
or stored anyway (errors from the S3 client, heartbeats written by other nodes).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from apiary.errors import ConfigError

Scheme = Literal["file", "s3", "memory"]

_S3_QUERY_KEYS = {"endpoint", "region"}
_SECRET_HINTS = ("key", "secret", "token", "password", "credential")
_KEYS_GO_ELSEWHERE = (
    "put the keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the [credentials] table "
    "of apiary.toml instead"
)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")
_QUERY_VALUE = re.compile(r"([?&])([^=&#?\s]+)=([^&#?\s]*)")
_REGION = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def redact(text: str) -> str:
    """``text`` with every URL's ``user:password@`` and query values (but endpoint and region)
    masked. The one function through which a URL is printed or stored."""
    text = _USERINFO.sub(r"\1****@", text)
    return _QUERY_VALUE.sub(
        lambda m: m[0] if m[2] in _S3_QUERY_KEYS else f"{m[1]}{m[2]}=****", text
    )


def apiary_home() -> Path:
    """Where the embedded default keeps its data: ``$APIARY_HOME`` or ``~/.apiary``."""
    return Path(os.environ.get("APIARY_HOME") or Path.home() / ".apiary")


@dataclass(frozen=True)
class Location:
    """A parsed storage root. ``str(location)`` is safe to print."""

    scheme: Scheme
    path: str  # local: absolute directory; s3: key prefix inside the bucket; memory: store name
    bucket: str = ""
    endpoint: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        # However a Location is made, it holds nothing secret: it is printed everywhere.
        if self.endpoint is not None:
            check_endpoint(self.endpoint, "the S3 endpoint")
        if self.region is not None and not _REGION.fullmatch(self.region):
            raise ConfigError("S3 region must be letters, digits, '-', '_' or '.' (e.g. us-east-1)")

    @property
    def uri(self) -> str:
        """A URI that parses back to this location (credentials are never part of it)."""
        if self.scheme != "s3":
            return self.path if self.scheme == "file" else f"memory://{self.path}"
        options = (("endpoint", self.endpoint), ("region", self.region))
        query = "&".join(f"{key}={value}" for key, value in options if value)
        return f"s3://{self.bucket}/{self.path}" + (f"?{query}" if query else "")

    def __str__(self) -> str:
        if self.scheme == "file":
            return self.path
        if self.scheme == "memory":
            return f"memory://{self.path}"
        root = f"s3://{self.bucket}/{self.path}".rstrip("/")
        return f"{root} (endpoint {redact(self.endpoint)})" if self.endpoint else root


def parse_location(uri: str | os.PathLike[str] | None, name: str = "default") -> Location:
    """Resolve what the user gave as ``storage`` into a :class:`Location`."""
    if uri is None:
        return Location("file", str(apiary_home() / "data" / name))
    text = os.fspath(uri).strip()
    if not text:
        raise ConfigError("storage URI is empty; give a directory, s3://bucket/prefix or omit it")
    if "://" not in text:
        return Location("file", str(Path(text).expanduser().resolve()))
    if text.lower().startswith("memory://"):
        return Location("memory", text[len("memory://") :].strip("/") or "default")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ConfigError(f"storage URI is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if parts.username or parts.password:
        raise ConfigError(f"storage URI must not contain credentials; {_KEYS_GO_ELSEWHERE}")
    if scheme in ("file", "local"):
        # ``local://data`` puts "data" in the netloc: joined back, it is a relative directory.
        directory = parts.netloc + parts.path
        if parts.query:
            raise ConfigError(f"{scheme}:// storage URIs take no options")
        if not directory:
            raise ConfigError(
                f"{scheme}:// needs a directory: {scheme}:///absolute/path or {scheme}://relative/path"
            )
        return Location("file", str(Path(directory).expanduser().resolve()))
    if scheme in ("s3", "s3a"):
        return _parse_s3(parts.netloc, parts.path, parts.query)
    raise ConfigError(
        f"storage scheme {scheme!r} is not supported; use a local directory, "
        "s3://bucket/prefix (S3, MinIO) or memory://name"
    )


def _parse_s3(bucket: str, path: str, query: str) -> Location:
    if not bucket:
        raise ConfigError("s3:// URI needs a bucket: s3://bucket/optional/prefix")
    options = parse_qs(query, keep_blank_values=True)
    for key in options:
        if any(hint in key.lower() for hint in _SECRET_HINTS):
            raise ConfigError(
                f"storage URI option {key!r} looks like a credential; credentials never go in "
                "the URI: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or use apiary.toml"
            )
        if key not in _S3_QUERY_KEYS:
            raise ConfigError(
                f"unknown s3:// URI option {key!r}; allowed: {', '.join(sorted(_S3_QUERY_KEYS))}"
            )
    endpoint = options.get("endpoint", [None])[-1] or None
    if endpoint:
        check_endpoint(endpoint, "the ?endpoint= of the storage URI")
    else:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
        if endpoint:
            check_endpoint(endpoint, "AWS_ENDPOINT_URL")
    region = options.get("region", [None])[-1] or None
    prefix = path.strip("/")
    if any(seg in ("..", ".") for seg in prefix.split("/")):
        raise ConfigError("s3:// prefix must not contain '.' or '..' segments")
    return Location("s3", prefix, bucket=bucket, endpoint=endpoint, region=region)


def check_endpoint(endpoint: str, source: str) -> None:
    """Refuse an endpoint that carries a secret (``user:password@``, a query) or is no URL."""
    try:
        parts = urlsplit(endpoint)
        has_userinfo = "@" in parts.netloc or bool(parts.username or parts.password)
    except ValueError:
        raise ConfigError(f"{source} is not a valid URL") from None
    if has_userinfo or "@" in endpoint:
        raise ConfigError(
            f"{source} must not contain a user name or password; {_KEYS_GO_ELSEWHERE}"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"S3 endpoint {redact(endpoint)!r} ({source}) must be http://host[:port] or https://..."
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{source} must be a plain http(s)://host[:port] URL, without '?' or '#' parts; "
            f"{_KEYS_GO_ELSEWHERE}"
        )
