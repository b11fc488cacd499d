"""The HTTP face: /metrics, a landing page listing the codes seen with their meaning, and health."""

from __future__ import annotations

import html
import io
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector

from . import __version__
from .codes import knowledge_base
from .exposition import TextExposition
from .httpd import HttpServer, Limits, Refusals
from .metrics import Counts
from .webconfig import Verdict, WebConfig

log = logging.getLogger(__name__)


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


class RefusalsCollector(Collector):
    """smtp_exporter_http_refused_total{reason}: what the web server's limits turned away."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("smtp_exporter_http_refused", "HTTP connections and requests refused by the "
                                     "web server's limits (431, 408, oldest idle closed at the cap, failed accept, "
                                     "429 while password checks pile up)", labels=["reason"])
        for reason, n in self.refusals.snapshot().items():
            family.add_metric([reason], n)
        yield family


class _Request(BaseHTTPRequestHandler):
    """The standard library's request parsing and replies, over a head the server has already read:
    the response is written to a buffer, which the server sends under its own deadline."""

    server_version = "smtp-reply-exporter"  # no Python or library versions for strangers to read

    def setup(self) -> None:
        self.rfile = io.BytesIO(self.request)
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        pass

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def make_server(
    address: tuple[str, int],
    registry: CollectorRegistry,
    counts: Counts,
    ready: Callable[[], bool],
    telemetry_path: str = "/metrics",
    web: WebConfig | None = None,
    limits: Limits | None = None,
) -> HttpServer:
    auth = web or WebConfig()
    refusals = Refusals()
    registry.register(RefusalsCollector(refusals))
    text = TextExposition()

    class Handler(_Request):
        def do_GET(self) -> None:
            verdict = auth.check(self.headers.get("Authorization"))
            if verdict is not Verdict.ALLOWED:
                busy = verdict is Verdict.BUSY
                self.send_response(429 if busy else 401)
                if busy:
                    refusals.add("auth_busy")
                    self.send_header("Retry-After", "1")
                self.send_header("WWW-Authenticate", 'Basic realm="smtp-reply-exporter"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = self.path.split("?", 1)[0]
            if path == telemetry_path:
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                fast = encoder is generate_latest  # the Prometheus text format: series texts kept (exposition.py)
                self._send(200, content_type, text.render(registry) if fast else encoder(registry))
            elif path == "/":
                self._send(200, "text/html; charset=utf-8", landing_page(counts, telemetry_path).encode())
            elif path == "/-/healthy":
                self._send(200, "text/plain; charset=utf-8", b"OK\n")
            elif path == "/-/ready":
                ok = ready()
                self._send(200 if ok else 503, "text/plain; charset=utf-8", b"OK\n" if ok else b"starting\n")
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def do_HEAD(self) -> None:
            self.do_GET()  # _send leaves the body out

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def respond(head: bytes, client: tuple[str, int]) -> bytes:
        handler = Handler(head, client, None)  # type: ignore[arg-type]
        assert isinstance(handler.wfile, io.BytesIO)
        return handler.wfile.getvalue()

    return HttpServer(address, respond, auth.tls, limits, refusals)


def serve_in_thread(server: HttpServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
