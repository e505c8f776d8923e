"""Who may use the Flight SQL endpoint: a bearer token, or a user name and password.

Checked on every call by a server middleware, against the configured secrets with
constant-time comparisons. Basic auth (what JDBC and DBeaver send) is answered with a bearer
token for the session, as Flight SQL clients expect. Secrets and tokens are never logged and
never put in an error.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.flight as flight

SESSION_TOKENS_KEPT = 10_000
SESSION_TOKEN_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Secrets:
    """The configured secrets; both None means no authentication (loopback only)."""

    token: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def required(self) -> bool:
        return self.token is not None or self.password is not None

    def __repr__(self) -> str:  # never the values
        return f"Secrets(token={'set' if self.token else None}, basic={self.username!r})"


class Authenticator:
    """Checks one call's ``authorization`` header; issues session tokens for basic auth."""

    def __init__(self, secrets_: Secrets, clock: Callable[[], float] = time.monotonic) -> None:
        self.secrets = secrets_
        self._clock = clock
        self._sessions: OrderedDict[str, float] = OrderedDict()  # token -> expiry
        self._lock = threading.Lock()

    def check(self, header: str | None) -> str | None:
        """None when the call may go ahead with what it sent; a new session token when basic
        auth succeeded (sent back as ``Bearer``). Raises FlightUnauthenticatedError."""
        if not self.secrets.required:
            return None
        if not header:
            raise flight.FlightUnauthenticatedError(
                "this Apiary endpoint needs a bearer token or a user name and password"
            )
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            if self.secrets.token is not None and _same(value, self.secrets.token):
                return None
            if self._session_valid(value):
                return None
        elif scheme == "basic" and self.secrets.password is not None:
            username, password = _basic(value)
            if _same(username, self.secrets.username or "") and _same(
                password, self.secrets.password
            ):
                return self._issue()
        raise flight.FlightUnauthenticatedError(
            "wrong or expired credentials for this Apiary endpoint"
        )

    def _issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = self._clock() + SESSION_TOKEN_SECONDS
            while len(self._sessions) > SESSION_TOKENS_KEPT:
                self._sessions.popitem(last=False)
        return token

    def _session_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._sessions.get(token)
            if expiry is None:
                return False
            if expiry < self._clock():
                del self._sessions[token]
                return False
            return True


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


class AuthMiddleware(flight.ServerMiddleware):
    def __init__(self, issued: str | None) -> None:
        self.issued = issued

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.issued}"} if self.issued else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> AuthMiddleware:
        values = headers.get("authorization") or headers.get("Authorization") or [None]
        return AuthMiddleware(self.authenticator.check(values[0]))


class AcceptHandshake(flight.ServerAuthHandler):
    """Lets the Handshake call through: the middleware has checked its header already."""

    def authenticate(
        self, outgoing: flight.ServerAuthSender, incoming: flight.ServerAuthReader
    ) -> None:
        pass

    def is_valid(self, token: bytes) -> str:
        return ""
