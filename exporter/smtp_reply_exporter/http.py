"""The HTTP face: /metrics, a landing page listing the codes seen with their meaning, and health."""

from __future__ import annotations

import html
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from . import __version__
from .codes import knowledge_base
from .metrics import Counts
from .webconfig import WebConfig

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 30.0


def landing_page(counts: Counts, telemetry_path: str) -> str:
    kb = knowledge_base()
    rows = []
    for code, n in sorted(counts.codes_seen().items()):
        entry = kb.basic(code)
        rows.append(
            f"<tr class='w-{entry.weight}'><td>{code}</td><td>{entry.klass}</td><td>{entry.weight}</td>"
            f"<td>{n}</td><td>{html.escape(entry.meaning)}</td><td>{html.escape(entry.fix)}</td></tr>"
        )
    table = "\n".join(rows) or "<tr><td colspan='6'>No replies seen yet.</td></tr>"
    path = html.escape(telemetry_path)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SMTP reply exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}}
.w-transient_pressure td,.w-transient td{{background:#fff6e0}}.w-permanent td{{background:#fde8e8}}</style>
</head><body>
<h1>SMTP reply exporter</h1>
<p>Version {__version__}. <a href="{path}">Metrics</a> · <a href="/-/healthy">healthy</a> ·
<a href="/-/ready">ready</a></p>
<h2>Reply codes seen</h2>
<table id="codes"><thead><tr><th>Code</th><th>Class</th><th>Weight</th><th>Count</th><th>Meaning</th>
<th>How to fix</th></tr></thead><tbody>
{table}
</tbody></table>
</body></html>
"""


class _Server(ThreadingHTTPServer):
    """One thread per connection; with TLS, the handshake happens in that thread, not in accept()."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(REQUEST_TIMEOUT)  # a slow or silent client cannot hold a thread forever
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as err:
                log.debug("TLS handshake with %s failed: %s", client_address, err)
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)


def make_server(
    address: tuple[str, int],
    registry: CollectorRegistry,
    counts: Counts,
    ready: Callable[[], bool],
    telemetry_path: str = "/metrics",
    web: WebConfig | None = None,
) -> ThreadingHTTPServer:
    auth = web or WebConfig()

    class Handler(BaseHTTPRequestHandler):
        server_version = f"smtp-reply-exporter/{__version__}"

        def do_GET(self) -> None:
            if not auth.authorised(self.headers.get("Authorization")):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="smtp-reply-exporter"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = self.path.split("?", 1)[0]
            if path == telemetry_path:
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, content_type, encoder(registry))
            elif path == "/":
                self._send(200, "text/html; charset=utf-8", landing_page(counts, telemetry_path).encode())
            elif path == "/-/healthy":
                self._send(200, "text/plain; charset=utf-8", b"OK\n")
            elif path == "/-/ready":
                ok = ready()
                self._send(200 if ok else 503, "text/plain; charset=utf-8", b"OK\n" if ok else b"starting\n")
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    server_class = type("Server", (_Server,), {"address_family": family})
    server: _Server = server_class(address, Handler)
    server.tls = auth.tls
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
