"""`--web.config.file`: TLS and basic auth in the format of the Prometheus exporter-toolkit.

    tls_server_config:
      cert_file: server.crt          # paths relative to this file
      key_file: server.key
      client_ca_file: ca.crt         # with client_auth_type, for mutual TLS
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12
    basic_auth_users:
      alice: $2y$10$...              # bcrypt hash (htpasswd -nBC 10 alice)

Needs PyYAML to read the file and bcrypt for basic_auth_users (`pip install 'smtp-reply-exporter[web]'`).
A password of over 72 bytes is refused (401, and a warning once per user): bcrypt reads only 72 bytes,
so accepting it would accept any password sharing its first 72 bytes, and bcrypt 5 refuses it anyway.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import logging
import os
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}


class WebConfigError(ValueError):
    """The web config file is unreadable or says something this exporter cannot do."""


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    BUSY = "busy"  # too many password checks already running or waiting: try again shortly


BCRYPT_MAX_BYTES = 72  # bcrypt reads no further; bcrypt 5 refuses longer passwords outright
BCRYPT_CONCURRENT = 1  # one check at a time, as the exporter-toolkit does: an attack costs at most a core
BCRYPT_QUEUED = 4  # checks running or waiting; more are answered 429 so that scrapes keep their workers
CACHE_SIZE = 256


@dataclass
class WebConfig:
    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    _verified: dict[bytes, None] = field(default_factory=dict)  # digests of user, password and hash that passed
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _checking: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(BCRYPT_CONCURRENT))
    _queued: int = 0
    _dummy: bytes = b""
    _warned: set[str] = field(default_factory=set)

    def check(self, header: str | None) -> Verdict:
        """The verdict on an Authorization header; always ALLOWED without basic_auth_users.

        An unknown user costs the same bcrypt time as a wrong password (checked against a dummy hash of
        the same cost), so timing does not tell which users exist. Successes are remembered by a digest
        of user, password and hash (never the password itself), so a scrape pays bcrypt once."""
        if not self.users:
            return Verdict.ALLOWED
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() != "basic":  # RFC 7617: the scheme is case-insensitive
            return Verdict.DENIED
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        except ValueError:
            return Verdict.DENIED
        hashed = self.users.get(user)
        secret = password.encode("utf-8")
        key = hashlib.sha256(b"\0".join((user.encode("utf-8"), secret, hashed or b""))).digest()
        if hashed is not None and key in self._verified:
            return Verdict.ALLOWED
        too_long = len(secret) > BCRYPT_MAX_BYTES
        if too_long and hashed is not None and user not in self._warned:
            self._warned.add(user)
            log.warning("basic auth: user %r sent a password of over %d bytes, which bcrypt cannot check: "
                        "refused (401); use a shorter password", user, BCRYPT_MAX_BYTES)
        with self._lock:
            if self._queued >= BCRYPT_QUEUED:
                return Verdict.BUSY
            self._queued += 1
        try:
            with self._checking:
                ok = self._bcrypt(secret[:BCRYPT_MAX_BYTES], hashed or self._dummy_hash())
        finally:
            with self._lock:
                self._queued -= 1
        if not ok or hashed is None or too_long:
            return Verdict.DENIED
        with self._lock:
            if len(self._verified) >= CACHE_SIZE:
                del self._verified[next(iter(self._verified))]
            self._verified[key] = None
        return Verdict.ALLOWED

    @staticmethod
    def _bcrypt(secret: bytes, hashed: bytes) -> bool:
        import bcrypt

        try:
            return bool(bcrypt.checkpw(secret, hashed))
        except ValueError:  # a hash bcrypt cannot read: load() checks the prefix, not every byte
            log.warning("basic auth: a configured hash cannot be read by bcrypt")
            return False

    def _dummy_hash(self) -> bytes:
        """A hash of nothing anyone knows, at the highest cost among the users' hashes."""
        with self._lock:
            if not self._dummy:
                import bcrypt

                cost = max(_cost(h) for h in self.users.values())
                self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(rounds=cost))
            return self._dummy


def _cost(hashed: bytes) -> int:
    """The cost factor of a bcrypt hash ($2y$10$... is 10); bcrypt's default when unreadable."""
    try:
        return min(31, max(4, int(hashed[4:6])))
    except ValueError:
        return 12


def load(path: str) -> WebConfig:
    try:
        import yaml
    except ImportError as err:
        raise WebConfigError("--web.config.file needs PyYAML: pip install 'smtp-reply-exporter[web]'") from err
    try:
        with open(path, encoding="utf-8") as f:
            data: Any = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as err:
        raise WebConfigError(f"cannot read web config {path}: {err}") from err
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: expected a mapping")
    unknown = set(data) - {"tls_server_config", "basic_auth_users", "http_server_config"}
    if unknown:
        raise WebConfigError(f"{path}: unknown keys {sorted(unknown)}")
    base = os.path.dirname(os.path.abspath(path))
    config = WebConfig()
    if data.get("tls_server_config"):
        config.tls = _tls(data["tls_server_config"], base, path)
    users = data.get("basic_auth_users") or {}
    if users:
        try:
            import bcrypt  # noqa: F401
        except ImportError as err:
            raise WebConfigError("basic_auth_users needs bcrypt: pip install 'smtp-reply-exporter[web]'") from err
        for user, hashed in users.items():
            if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise WebConfigError(f"{path}: basic_auth_users.{user} is not a bcrypt hash")
        config.users = {str(u): h.encode() for u, h in users.items()}
        config._dummy_hash()  # at start, not in the first request
    return config


def _tls(tls: dict[str, Any], base: str, path: str) -> ssl.SSLContext:
    def file(key: str) -> str:
        value = tls.get(key)
        if not value:
            raise WebConfigError(f"{path}: tls_server_config.{key} is required")
        return str(value) if os.path.isabs(str(value)) else os.path.join(base, str(value))

    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        raise WebConfigError(f"{path}: client_auth_type {auth!r} is not supported; use one of {sorted(CLIENT_AUTH)}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(file("cert_file"), file("key_file"))
    except (OSError, ssl.SSLError) as err:
        raise WebConfigError(f"{path}: cannot load the certificate or key: {err}") from err
    for key, attr in (("min_version", "minimum_version"), ("max_version", "maximum_version")):
        if key in tls:
            if tls[key] not in TLS_VERSIONS:
                raise WebConfigError(f"{path}: tls_server_config.{key} must be one of {sorted(TLS_VERSIONS)}")
            setattr(context, attr, TLS_VERSIONS[tls[key]])
    if "min_version" not in tls:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = CLIENT_AUTH[auth]
    if auth != "NoClientCert":
        try:
            context.load_verify_locations(file("client_ca_file"))
        except (OSError, ssl.SSLError) as err:
            raise WebConfigError(f"{path}: cannot load client_ca_file: {err}") from err
    return context
