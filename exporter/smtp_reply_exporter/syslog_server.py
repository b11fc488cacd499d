"""A syslog receiver (UDP and TCP; RFC 3164 and RFC 5424; octet-counting and newline framing).

An MTA in a container can send its log straight here. Each message becomes one log line in the
usual "timestamp host program[pid]: message" form. Malformed or over-long messages are counted
and dropped, never fatal; the number of TCP connections is capped.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from .inbox import Chunk, Inbox
from .stats import SourceStats

log = logging.getLogger(__name__)
MAX_MESSAGE = 1 << 16
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 300.0

_PRI = re.compile(rb"<(\d{1,3})>")
# RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
_RFC5424 = re.compile(rb"1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?", re.S)


def to_line(message: bytes) -> bytes | None:
    """One syslog message as a log line (without newline), or None when it is malformed."""
    message = message.rstrip(b"\r\n\x00")
    m = _PRI.match(message)
    if m is None or int(m.group(1)) > 191:
        return None
    rest = message[m.end():]
    if b"\n" in rest:
        rest = rest.replace(b"\r\n", b" ").replace(b"\n", b" ")
    v = _RFC5424.fullmatch(rest)
    if v is None:
        return rest if rest else None  # RFC 3164: "Mmm dd hh:mm:ss host tag[pid]: msg" as files have it
    stamp, host, app, procid, _msgid, _sd, msg = v.groups()
    msg = (msg or b"").removeprefix(b"\xef\xbb\xbf")
    pid = b"" if procid == b"-" else b"[" + procid + b"]"
    return b"%s %s %s%s: %s" % (stamp, host, app, pid, msg)


class SyslogServer:
    """Listens on `address` ("host:port", "udp://host:port" or "tcp://host:port")."""

    def __init__(self, address: str, inbox: Inbox, stats: SourceStats, source: str) -> None:
        scheme, _, hostport = address.rpartition("://")
        host, _, port = hostport.rpartition(":")
        self.host, self.port = host.strip("[]") or "127.0.0.1", int(port)
        self.protocols = {"udp": ("udp",), "tcp": ("tcp",), "": ("udp", "tcp")}[scheme]
        self.inbox, self.stats, self.source = inbox, stats, source
        self._servers: list[socketserver.BaseServer] = []
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def emit(self, lines: list[bytes], block: bool) -> None:
        if lines and not self.inbox.put(Chunk(self.source, b"\n".join(lines) + b"\n"), block=block, timeout=5):
            self.stats.bad_lines["dropped"] += len(lines)

    def malformed(self) -> None:
        self.stats.bad_lines["malformed"] += 1

    def start(self) -> None:
        receiver = self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data = self.request[0]
                line = to_line(data) if len(data) <= MAX_MESSAGE else None
                if line is None:
                    receiver.malformed()
                else:
                    receiver.emit([line], block=False)

        class Tcp(socketserver.StreamRequestHandler):
            timeout = IDLE_TIMEOUT

            def handle(self) -> None:
                try:
                    for batch in frames(self.rfile, receiver.malformed):
                        receiver.emit([line for m in batch if (line := _checked(m, receiver.malformed))], True)
                except (OSError, TimeoutError):
                    pass
                finally:
                    receiver._connections.release()

        class LimitedTcpServer(socketserver.ThreadingTCPServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                """Admit connections in the order they were accepted, and refuse one over the limit
                here, before a thread is started for it."""
                if not receiver._connections.acquire(blocking=False):
                    receiver.stats.connections_refused += 1
                    log.warning("syslog: connection limit (%d) reached; refusing %s", MAX_CONNECTIONS,
                                client_address)
                    self.shutdown_request(request)
                    return
                try:
                    super().process_request(request, client_address)
                except BaseException:  # no thread started: its handler will not release the slot
                    receiver._connections.release()
                    raise

        for proto in self.protocols:
            base = socketserver.ThreadingUDPServer if proto == "udp" else LimitedTcpServer
            server_class = type(f"Syslog{proto.upper()}", (base,), {"address_family": family,
                                                                     "allow_reuse_address": True,
                                                                     "daemon_threads": True,
                                                                     "request_queue_size": 128})
            server = server_class((self.host, self.port), Udp if proto == "udp" else Tcp)
            if self.port == 0:  # tests ask for any free port: both protocols share the first one
                self.port = server.server_address[1]
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, name=f"syslog-{proto}", daemon=True).start()
        log.info("syslog receiver on %s:%d (%s)", self.host, self.port, "+".join(self.protocols))

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def _checked(message: bytes, malformed: Callable[[], None]) -> bytes | None:
    line = to_line(message)
    if line is None:
        malformed()
    return line


def frames(rfile: BinaryIO | io.BufferedIOBase, malformed: Callable[[], None]) -> Iterator[list[bytes]]:
    """Messages of a TCP stream, in batches: octet counting ("123 <34>1 ...") when a frame starts
    with a digit, else newline framing (RFC 6587). Over-long frames are skipped and counted."""
    while True:
        first = rfile.read(1)
        if not first:
            return
        if first.isdigit():
            digits = first
            while (c := rfile.read(1)).isdigit() and len(digits) < 7:
                digits += c
            if c != b" ":
                malformed()
                rfile.readline(MAX_MESSAGE)  # resynchronise on the next newline
                continue
            size = int(digits)
            if size > MAX_MESSAGE:
                malformed()
                _skip(rfile, size)
                continue
            message = rfile.read(size)
            if len(message) < size:
                return
            yield [message]
        else:
            line = first + rfile.readline(MAX_MESSAGE)
            if not line.endswith(b"\n") and len(line) > MAX_MESSAGE:
                malformed()
                while (rest := rfile.readline(MAX_MESSAGE)) and not rest.endswith(b"\n"):
                    pass
                continue
            yield [line]


def _skip(rfile: BinaryIO | io.BufferedIOBase, size: int) -> None:
    while size > 0:
        got = rfile.read(min(size, 1 << 16))
        if not got:
            return
        size -= len(got)
