"""A syslog receiver on UDP and TCP: an MTA in a container can send its log straight here.

UDP: one thread reads datagrams (up to 64 KiB) in a loop into the bounded inbox, in batches; a
batch that finds the inbox full is dropped and counted, and the kernel's own drops for the socket
(/proc/net/udp) are exported, so loss is never silent. TCP: one thread per connection, at most
MAX_CONNECTIONS and MAX_PER_PEER from one address; a connection that sends nothing is closed after
SILENT_TIMEOUT, a quiet one after IDLE_TIMEOUT, and at a cap the newest idle connection gives way
to the new sender.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..stats import SourceStats
from ..syslog_server import MAX_MESSAGE, frames, to_line
from ..tail import Warnings
from . import Lines
from .inbox import Inbox

log = logging.getLogger(__name__)
MAX_DATAGRAM = 1 << 16  # the largest UDP payload fits
MAX_CONNECTIONS = 64
MAX_PER_PEER = 16
SILENT_TIMEOUT = 10.0  # seconds for a new connection to send its first byte
IDLE_TIMEOUT = 120.0  # seconds a connection may stay quiet after that
IDLE_GRACE = 1.0  # quiet this long (or silent since it connected): may give way to a new sender
RCVBUF = 8 << 20  # bytes asked for the UDP socket's receive buffer (the kernel may cap it)
UDP_BATCH = 1024  # datagrams handed over in one chunk at most
DROPS_EVERY = 1.0  # seconds between two reads of the kernel's drop counter


@dataclass
class _Connection:
    sock: socket.socket
    peer: str
    accepted: float
    last: float | None = None  # when it last sent something

    def idle(self, now: float, grace: float) -> bool:
        return self.last is None or now - self.last >= grace


class SyslogSource:
    """Listens on `address` ("host:port", "udp://host:port" or "tcp://host:port")."""

    def __init__(self, address: str, stats: SourceStats) -> None:
        scheme, _, hostport = address.rpartition("://")
        host, _, port = hostport.rpartition(":")
        self.host, self.port = host.strip("[]") or "127.0.0.1", int(port)
        self.protocols = {"udp": ("udp",), "tcp": ("tcp",), "": ("udp", "tcp")}[scheme]
        self.name, self.stats = f"syslog:{address}", stats
        self.inbox = Inbox()
        self.idle_grace, self.silent_timeout, self.idle_timeout = IDLE_GRACE, SILENT_TIMEOUT, IDLE_TIMEOUT
        self._stop = threading.Event()
        self._wake_r: socket.socket | None = None  # with _wake_w, wakes the select loops at stop
        self._wake_w: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._connections: dict[socket.socket, _Connection] = {}
        self._lock = threading.Lock()
        self._warnings = Warnings()
        self._kernel_drops = 0

    def start(self, wake: threading.Event) -> None:
        self.inbox.wake = wake
        self._wake_r, self._wake_w = socket.socketpair()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for proto in self.protocols:
            sock = socket.socket(family, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
            self._sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            if self.port == 0:  # tests ask for any free port: both protocols share the first one
                self.port = sock.getsockname()[1]
            target: Callable[[socket.socket], None]
            if proto == "udp":
                self._enlarge(sock)
                self.stats.add(kernel_drops=0)
                target = self._udp
            else:
                sock.listen(socket.SOMAXCONN)
                target = self._accept
            self._spawn(target, sock, name=f"syslog-{proto}")
        log.info("syslog receiver on %s:%d (%s)", self.host, self.port, "+".join(self.protocols))

    def poll(self) -> Iterator[Lines]:
        return self.inbox.drain()

    def stop(self) -> None:
        self._stop.set()
        if self._wake_w is not None:
            self._wake_w.send(b"x")
        with self._lock:
            for conn in self._connections.values():
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
        while self._threads:
            self._threads.pop().join()
        for sock in (*self._sockets, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def _spawn(self, target: Callable[..., None], *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _woken(self) -> socket.socket:
        assert self._wake_r is not None  # made by start()
        return self._wake_r

    # UDP

    @staticmethod
    def _enlarge(sock: socket.socket) -> None:
        """A larger receive buffer rides out bursts; beyond net.core.rmem_max only with CAP_NET_ADMIN."""
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        try:
            sock.setsockopt(socket.SOL_SOCKET, force if force is not None else socket.SO_RCVBUF, RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        log.info("syslog UDP receive buffer: %d bytes", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    def _udp(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        inode = os.fstat(sock.fileno()).st_ino
        table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
        next_drops = 0.0
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(self._woken(), selectors.EVENT_READ)
            while not self._stop.is_set():
                selector.select(DROPS_EVERY)
                if self._stop.is_set():
                    return
                self._read_datagrams(sock)
                if time.monotonic() >= next_drops:
                    self._count_kernel_drops(table, inode)
                    next_drops = time.monotonic() + DROPS_EVERY

    def _read_datagrams(self, sock: socket.socket) -> None:
        """Every datagram waiting (up to a batch) as one chunk of lines."""
        lines, malformed = [], 0
        recv = sock.recv
        for _ in range(UDP_BATCH):
            try:
                data = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            line = to_line(data)
            if line is None:
                malformed += 1
            else:
                lines.append(line)
        if malformed:
            self.stats.add(malformed=malformed)
        if lines and not self.inbox.put(Lines(b"\n".join(lines) + b"\n"), block=False):
            self.stats.add(dropped=len(lines))
            self._warnings.warn("dropped", "%s: ingest queue full; %d UDP messages dropped", self.name, len(lines))

    def _count_kernel_drops(self, table: str, inode: int) -> None:
        drops = kernel_drops(table, inode)
        if drops is not None and drops > self._kernel_drops:
            self.stats.add(kernel_drops=drops - self._kernel_drops)
            self._warnings.warn("kernel", "%s: the kernel dropped %d UDP messages (receive buffer full)",
                                self.name, drops - self._kernel_drops)
            self._kernel_drops = drops

    # TCP

    def _accept(self, server: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(server, selectors.EVENT_READ)
            selector.register(self._woken(), selectors.EVENT_READ)
            while not self._stop.is_set():
                selector.select()
                if self._stop.is_set():
                    return
                try:
                    conn, address = server.accept()
                except OSError:
                    continue
                if self._admit(conn, address[0]):
                    self._spawn(self._serve, conn, name="syslog-tcp-connection")
                else:
                    self.stats.add(connections_refused=1)
                    self._warnings.warn("refused", "%s: connection limits reached (%d, %d per address); refusing %s",
                                        self.name, MAX_CONNECTIONS, MAX_PER_PEER, address[0])
                    conn.close()

    def _admit(self, conn: socket.socket, peer: str) -> bool:
        """Room for a new connection, made by closing the newest idle one at a cap if need be."""
        now = time.monotonic()
        with self._lock:
            if self._stop.is_set():
                return False
            same_peer = [c for c in self._connections.values() if c.peer == peer]
            for crowd, cap in ((same_peer, MAX_PER_PEER), (list(self._connections.values()), MAX_CONNECTIONS)):
                if len(crowd) < cap:
                    continue
                idle = [c for c in crowd if c.idle(now, self.idle_grace)]
                if not idle:
                    return False
                victim = max(idle, key=lambda c: c.accepted)
                del self._connections[victim.sock]
                with contextlib.suppress(OSError):
                    victim.sock.shutdown(socket.SHUT_RDWR)
                log.info("%s: idle connection from %s closed for a new sender", self.name, victim.peer)
            self._connections[conn] = _Connection(conn, peer, now)
            return True

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.silent_timeout)
        record = self._connections.get(conn)

        def malformed() -> None:
            self.stats.add(malformed=1)

        try:
            with conn.makefile("rb") as rfile:
                for batch in frames(rfile, malformed):
                    if record is not None:
                        record.last = time.monotonic()
                    conn.settimeout(self.idle_timeout)
                    lines = [line for m in batch if (line := self._line(m, malformed))]
                    if lines:
                        self._hand_over(Lines(b"\n".join(lines) + b"\n"))
        except (OSError, ValueError):
            pass  # closed, timed out, or given way to a new sender
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            conn.close()

    @staticmethod
    def _line(message: bytes, malformed: Callable[[], None]) -> bytes | None:
        line = to_line(message) if len(message) <= MAX_MESSAGE else None
        if line is None:
            malformed()
        return line

    def _hand_over(self, lines: Lines) -> None:
        """A stream waits while counting catches up (TCP pushes back on the sender), but not past a stop."""
        while not self.inbox.put(lines, timeout=0.5):
            if self._stop.is_set():
                return


def kernel_drops(table: str, inode: int) -> int | None:
    """The drops column of the socket with this inode in /proc/net/udp (or udp6); None if not found."""
    try:
        with open(table, encoding="ascii") as f:
            next(f, None)
            for row in f:
                fields = row.split()
                if len(fields) >= 13 and fields[9] == str(inode):
                    return int(fields[12])
    except (OSError, ValueError):
        return None
    return None
