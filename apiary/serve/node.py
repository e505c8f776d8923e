"""Starting the node's Flight SQL server and metrics endpoint from its settings."""

from __future__ import annotations

import ipaddress
import logging

from apiary.config import Settings
from apiary.errors import ConfigError
from apiary.sdk import Apiary
from apiary.serve.auth import Secrets
from apiary.serve.flight import ApiaryFlightServer, QueryObserver

log = logging.getLogger("apiary.serve")


def split_listen(listen: str, setting: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) from a setting, with an error naming the setting."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{setting} must be host:port, such as 127.0.0.1:50051; got {listen!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secrets_from(settings: Settings) -> Secrets:
    return Secrets(
        token=settings.serve_token.get_secret_value() if settings.serve_token else None,
        username=settings.serve_username,
        password=settings.serve_password.get_secret_value() if settings.serve_password else None,
    )


def start_flight(
    ap: Apiary, settings: Settings, observer: QueryObserver | None = None
) -> ApiaryFlightServer:
    """The Flight SQL server on ``serve_listen``, answering on gRPC's own threads.

    Refuses (ConfigError) to listen beyond loopback without a token or password, and reads the
    TLS files up front so a wrong path fails at start, naming the setting.
    """
    host, port = split_listen(settings.serve_listen, "serve_listen")
    secrets = secrets_from(settings)
    if not is_loopback(host) and not secrets.required:
        raise ConfigError(
            f"serve_listen {settings.serve_listen} is reachable from other machines: set "
            "serve_token (or serve_username and serve_password) so only your clients can "
            "query, or listen on 127.0.0.1"
        )
    tls = None
    if settings.serve_tls_cert is not None and settings.serve_tls_key is not None:
        try:
            tls = (settings.serve_tls_cert.read_bytes(), settings.serve_tls_key.read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"cannot read serve_tls_cert / serve_tls_key: {exc.strerror}: {exc.filename}"
            ) from None
    scheme = "grpc+tls" if tls else "grpc+tcp"
    where = f"[{host}]" if ":" in host else host
    try:
        server = ApiaryFlightServer(
            ap, f"{scheme}://{where}:{port}", secrets=secrets, tls=tls, observer=observer
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.serve_listen}: {exc}") from None
    except Exception as exc:  # pyarrow: a port in use, a bad certificate
        raise ConfigError(f"cannot start Flight SQL on {settings.serve_listen}: {exc}") from None
    # Listening since it was made. Not serve(): it would take over SIGTERM and SIGINT.
    kinds = [("bearer token", secrets.token), ("basic auth", secrets.password)]
    auth = ", ".join(kind for kind, secret in kinds if secret) or "no auth"
    log.info("Flight SQL listening on %s://%s:%d (%s)", scheme, where, server.port, auth)
    return server
