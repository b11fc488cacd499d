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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}


class WebConfigError(ValueError):
    """The web config file is unreadable or says something this exporter cannot do."""


@dataclass
class WebConfig:
    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    _verified: dict[bytes, bool] = field(default_factory=dict)  # sha256(user:password) -> result
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authorised(self, header: str | None) -> bool:
        """Whether an Authorization header passes; always true without basic_auth_users."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except ValueError:
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        # bcrypt is slow by design; remember verdicts (keyed by a digest, never the password itself)
        key = hashlib.sha256(f"{user}:{password}".encode()).digest()
        with self._lock:
            known = self._verified.get(key)
        if known is None:
            import bcrypt

            known = bcrypt.checkpw(password.encode("utf-8"), hashed)
            with self._lock:
                if len(self._verified) > 1024:
                    self._verified.clear()
                self._verified[key] = known
        return hmac.compare_digest(b"1" if known else b"0", b"1")


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
