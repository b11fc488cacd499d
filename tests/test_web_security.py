"""--web.config.file with real certificates and a real TLS client: TLS, mutual TLS, basic auth."""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from conftest import free_port, wait_for

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make certificates")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=test-ca", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


class Served:
    def __init__(self, web_config: Path, tmp_path: Path) -> None:
        self.port = free_port()
        log = tmp_path / "mail.log"
        log.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smtp_reply_exporter", "serve", "--log.path", str(log),
             "--web.listen-address", f"127.0.0.1:{self.port}", "--web.config.file", str(web_config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self._listening, what="exporter listening")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def get(url: str, context: ssl.SSLContext | None = None, user: str | None = None, password: str = ""):
    request = urllib.request.Request(url)
    if user is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def client_context(pki: Path, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if with_cert:
        ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    return ctx


def test_tls_with_basic_auth(pki, tmp_path):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n"
                      f"  min_version: TLS12\nbasic_auth_users:\n  alice: '{hashed}'\n")
    served = Served(config, tmp_path)
    try:
        url = f"https://127.0.0.1:{served.port}/metrics"
        ctx = client_context(pki, with_cert=False)
        status, body = get(url, ctx, "alice", "s3cret")
        assert status == 200 and "smtp_exporter_build_info" in body
        assert get(url, ctx, "alice", "wrong")[0] == 401
        assert get(url, ctx, "mallory", "s3cret")[0] == 401
        assert get(url, ctx)[0] == 401
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            get(f"http://127.0.0.1:{served.port}/metrics")  # plain HTTP to the TLS port
        assert get(url, ctx, "alice", "s3cret")[0] == 200  # the server survived the plain request
    finally:
        served.stop()


def test_mutual_tls_refuses_a_client_without_certificate(pki, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                      "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n")
    shutil.copy(pki / "server.crt", tmp_path)
    shutil.copy(pki / "server.key", tmp_path)
    shutil.copy(pki / "ca.crt", tmp_path)  # relative paths are relative to the config file
    served = Served(config, tmp_path)
    try:
        url = f"https://127.0.0.1:{served.port}/metrics"
        assert get(url, client_context(pki, with_cert=True))[0] == 200
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError, OSError)):
            get(url, client_context(pki, with_cert=False))
    finally:
        served.stop()


@pytest.mark.parametrize(("content", "message"), [
    ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "cannot load the certificate"),
    ("basic_auth_users:\n  alice: plaintext\n", "not a bcrypt hash"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
     "is not supported"),
    ("surprise: 1\n", "unknown keys"),
])
def test_a_bad_web_config_stops_the_exporter_with_one_clear_line(tmp_path, content, message):
    config = tmp_path / "web.yml"
    config.write_text(content)
    out = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "serve", "--log.path", str(tmp_path / "x"),
                          "--web.listen-address", f"127.0.0.1:{free_port()}", "--web.config.file", str(config)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "smtp-reply-exporter: error:" in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr


def test_stalled_tls_handshakes_do_not_hold_up_a_scrape(pki, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n")
    served = Served(config, tmp_path)
    stalled: list[socket.socket] = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            stalled.append(s)
            s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the first bytes of a ClientHello, never the rest
        assert get(f"https://127.0.0.1:{served.port}/metrics", client_context(pki, with_cert=False))[0] == 200
    finally:
        for s in stalled:
            s.close()
        served.stop()
