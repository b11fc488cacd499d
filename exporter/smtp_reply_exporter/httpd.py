"""The connection side of the web server, hardened against hostile clients.

One thread reads every request head without blocking (TLS handshakes included), under a size cap and a
deadline counted from accept, so a stalled or slow client costs a socket and at most one head of
memory, never a thread. Only complete heads reach a small pool of workers, which build the response
and send it under a deadline of its own. Beyond `max_connections` the oldest connection still
waiting for its head gives way; accept errors such as EMFILE back off instead of spinning.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Respond = Callable[[bytes, tuple[str, int]], bytes]
"""Builds the whole response to one request head (bytes up to and including the blank line)."""

ACCEPT_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
DESCRIPTOR_RESERVE = 192  # logs, state file, inotify, journalctl, 64 syslog TCP connections, spare


@dataclass(frozen=True)
class Limits:
    """What one client may cost; far below Go's 1 MB of headers, since scrapes send a few hundred bytes."""

    max_head_bytes: int = 32 * 1024  # request line and headers together
    max_head_lines: int = 64
    head_timeout: float = 10.0  # from accept to the end of the head, TLS handshake included
    write_timeout: float = 10.0  # the whole response
    linger: float = 1.0  # after the response, read what the client still sends so it sees no reset,
    linger_bytes: int = 64 * 1024  # but no more than this
    max_connections: int = 512
    workers: int = 8


def connection_cap(nofile: int, most: int = 512) -> int:
    """Connections allowed with `nofile` descriptors: what is left after the reserve, at most `most`."""
    return max(8, min(most, nofile - DESCRIPTOR_RESERVE))


class Refusals:
    """What the limits refused, by reason, for smtp_exporter_http_refused_total: an attack shows."""

    REASONS = ("head_too_large", "head_timeout", "evicted", "accept_failed", "auth_busy")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.REASONS, 0)

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


HANDSHAKE, HEAD, LINGER = "handshake", "head", "linger"
ACTIVE = 0.01  # seconds a connection accepted or read from counts as a request on its way (see serving())


class _Conn:
    __slots__ = ("address", "buf", "deadline", "discarded", "sock", "state")

    def __init__(self, sock: socket.socket, address: tuple[str, int], state: str, deadline: float) -> None:
        self.sock, self.address, self.state, self.deadline = sock, address, state, deadline
        self.buf = bytearray()
        self.discarded = 0


def _status(code: int, reason: str) -> bytes:
    return (f"HTTP/1.0 {code} {reason}\r\nServer: smtp-reply-exporter\r\nConnection: close\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(reason) + 1}\r\n\r\n{reason}\n").encode()


TOO_LARGE = _status(431, "Request Header Fields Too Large")
TIMED_OUT = _status(408, "Request Timeout")


def head_end(buf: bytearray, start: int) -> int:
    """Where the head ends (just after its blank line), searching from `start`; -1 if not yet."""
    start = max(0, start - 3)
    ends = [i for i in (buf.find(b"\r\n\r\n", start), buf.find(b"\n\n", start)) if i >= 0]
    if not ends:
        return -1
    i = min(ends)
    return i + (4 if buf.startswith(b"\r\n\r\n", i) else 2)


class HttpServer:
    """Accepts on one address and answers each request with `respond`, within `limits`."""

    def __init__(self, address: tuple[str, int], respond: Respond, tls: ssl.SSLContext | None = None,
                 limits: Limits | None = None, refusals: Refusals | None = None) -> None:
        self.respond, self.tls, self.limits = respond, tls, limits or Limits()
        self.refusals = refusals or Refusals()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(socket.SOMAXCONN)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self._conns: dict[_Conn, None] = {}  # waiting in this thread, oldest first
        self._busy = 0  # handed to workers
        self._active_until = 0.0  # see serving()
        self._jobs: queue.SimpleQueue[tuple[_Conn, bytes] | None] = queue.SimpleQueue()
        self._done: collections.deque[tuple[_Conn, bool]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._listening = False
        self._resume_at = 0.0  # when accept may be tried again after an error
        self._backoff = 0.0
        self._warned: dict[str, float] = {}
        self._next_sweep = 0.0
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._workers: list[threading.Thread] = []

    def serve_forever(self) -> None:
        self._stopped.clear()
        self._workers = [threading.Thread(target=self._work, name=f"http-worker-{i}", daemon=True)
                         for i in range(self.limits.workers)]
        for w in self._workers:
            w.start()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._listen(True)
        try:
            while not self._stop.is_set():
                self._tick()
        finally:
            for _ in self._workers:
                self._jobs.put(None)
            for w in self._workers:
                w.join(self.limits.write_timeout + 1)
            for conn in [*self._conns, *(c for c, _ in self._done)]:
                conn.sock.close()
            self._conns.clear()
            self._sel.close()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serve_forever and wait for it (and the workers) to finish."""
        self._stop.set()
        self._wake()
        self._stopped.wait()

    def server_close(self) -> None:
        self._sel.close()
        self.socket.close()
        self._wake_r.close()
        self._wake_w.close()

    def _tick(self) -> None:
        timeout: float | None = None  # nothing to time out: sleep until a client or a worker wakes us
        if self._conns or not self._listening:
            timeout = 0.25
            if not self._listening and self._resume_at:
                timeout = max(0.0, min(0.25, self._resume_at - time.monotonic()))
        for key, _ in self._sel.select(timeout):
            if key.data is None:
                self._drain_wake()
            elif key.fileobj is self.socket:
                self._accept()
            else:
                self._step(key.data)
        now = time.monotonic()
        self._collect_done()
        if now >= self._next_sweep:
            self._next_sweep = now + 0.1
            self._expire(now)
        if not self._listening and now >= self._resume_at and self._room():
            self._listen(True)

    def serving(self) -> bool:
        """Whether a request is on its way: with a worker, or a connection accepted or read from in the last
        ACTIVE seconds. The ingest steps aside meanwhile (Ingest.parse); a lingering one does not count."""
        return self._busy > 0 or time.monotonic() < self._active_until

    def _room(self) -> bool:
        return len(self._conns) + self._busy < self.limits.max_connections

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self._sel.register(self.socket, selectors.EVENT_READ, self)
        elif not on and self._listening:
            self._sel.unregister(self.socket)
        self._listening = on

    def _accept(self) -> None:
        self._active_until = time.monotonic() + ACTIVE
        for _ in range(64):  # then let the other connections have a turn
            if not self._room() and not self._evict_oldest("at the connection cap"):
                self._resume_at = 0.0
                self._listen(False)  # every slot is with a worker: wait for one to come back
                return
            try:
                sock, address = self.socket.accept()
            except BlockingIOError:
                self._backoff = 0.0
                return
            except OSError as err:
                if err.errno not in ACCEPT_ERRORS:
                    log.debug("accept failed: %s", err)
                    continue
                # Out of descriptors or memory: free the oldest waiting connection and pause accept,
                # doubling the pause up to 1 s as Go's net/http does, instead of retrying at once.
                self._backoff = min(1.0, max(0.005, self._backoff * 2))
                self.refusals.add("accept_failed")
                self._warn("accept", f"accept failed ({err.strerror}); pausing accept for {self._backoff:.3f} s")
                self._evict_oldest("out of descriptors")
                self._resume_at = time.monotonic() + self._backoff
                self._listen(False)
                return
            self._backoff = 0.0
            self._admit(sock, address)

    def _admit(self, sock: socket.socket, address: tuple[str, int]) -> None:
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = HEAD
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except (ssl.SSLError, OSError) as err:
                log.debug("TLS with %s failed: %s", address, err)
                sock.close()
                return
            state = HANDSHAKE
        conn = _Conn(sock, address, state, time.monotonic() + self.limits.head_timeout)
        self._conns[conn] = None
        self._sel.register(sock, selectors.EVENT_READ, conn)
        self._step(conn)

    def _step(self, conn: _Conn) -> None:
        """Move one connection as far as its socket allows without blocking."""
        try:
            if conn.state == HANDSHAKE:
                assert isinstance(conn.sock, ssl.SSLSocket)
                conn.sock.do_handshake()
                conn.state = HEAD
                self._sel.modify(conn.sock, selectors.EVENT_READ, conn)
            if conn.state == HEAD:
                self._active_until = time.monotonic() + ACTIVE
                self._read_head(conn)
            elif conn.state == LINGER:
                self._discard(conn)
        except ssl.SSLWantReadError:
            self._sel.modify(conn.sock, selectors.EVENT_READ, conn)
        except ssl.SSLWantWriteError:
            self._sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
        except (BlockingIOError, InterruptedError):
            pass
        except (ssl.SSLError, OSError) as err:
            log.debug("connection from %s failed: %s", conn.address, err)
            self._close(conn)

    def _read_head(self, conn: _Conn) -> None:
        limit = self.limits.max_head_bytes
        while True:
            before = len(conn.buf)
            chunk = conn.sock.recv(min(16384, limit + 1 - before))  # raises when nothing is waiting
            if not chunk:
                self._close(conn)
                return
            conn.buf += chunk
            end = head_end(conn.buf, before)
            if end > limit or (end < 0 and len(conn.buf) > limit):
                self._refuse(conn, TOO_LARGE, "head_too_large", f"request head over {limit} bytes")
                return
            if end >= 0:
                head = bytes(conn.buf[:end])
                if head.count(b"\n") - 2 > self.limits.max_head_lines:  # less the request line and the end
                    self._refuse(conn, TOO_LARGE, "head_too_large", f"over {self.limits.max_head_lines} header lines")
                    return
                del self._conns[conn]
                self._sel.unregister(conn.sock)
                conn.buf = bytearray()
                self._busy += 1
                self._jobs.put((conn, head))
                return

    def _refuse(self, conn: _Conn, response: bytes, reason: str, why: str) -> None:
        """Answer an error without a worker, then linger so that the client can read it."""
        log.debug("refused %s: %s", conn.address, why)
        self.refusals.add(reason)
        try:
            conn.sock.send(response)  # a few hundred bytes: fits any socket buffer
        except (ssl.SSLError, OSError):
            self._close(conn)
            return
        self._start_linger(conn)

    def _start_linger(self, conn: _Conn) -> None:
        conn.buf = bytearray()
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # on TLS this drops to the plain socket: fine for discarding
        except OSError:
            self._close(conn)
            return
        conn.state, conn.deadline = LINGER, time.monotonic() + self.limits.linger
        self._conns.pop(conn, None)
        self._conns[conn] = None  # lingering connections go to the back: they are the newest
        self._sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def _discard(self, conn: _Conn) -> None:
        while True:
            chunk = conn.sock.recv(16384)  # raises when nothing is waiting
            conn.discarded += len(chunk)
            if not chunk or conn.discarded > self.limits.linger_bytes:
                self._close(conn)
                return

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(conn, 0) is None:
            self._sel.unregister(conn.sock)
        conn.sock.close()

    def _expire(self, now: float) -> None:
        for conn in [c for c in self._conns if c.deadline <= now]:
            if conn.state == HEAD:
                why = f"no complete request head within {self.limits.head_timeout} s"
                self._refuse(conn, TIMED_OUT, "head_timeout", why)
                continue
            if conn.state == HANDSHAKE:
                self.refusals.add("head_timeout")
            self._close(conn)

    def _evict_oldest(self, why: str) -> bool:
        """Close the connection that has waited longest in this thread; False if there is none."""
        conn = next(iter(self._conns), None)
        if conn is None:
            return False
        if conn.state != LINGER:  # a lingering one has had its answer: closing it refuses nothing
            self.refusals.add("evicted")
            self._warn("evict", f"closing the oldest idle HTTP connections ({why}, {self.limits.max_connections}"
                                f" connections allowed)")
        self._close(conn)
        return True

    def _warn(self, what: str, message: str) -> None:
        """At most one warning a minute per kind: a flood of clients must not flood the log."""
        now = time.monotonic()
        if now - self._warned.get(what, -60.0) >= 60.0:
            self._warned[what] = now
            log.warning("%s", message)
        else:
            log.debug("%s", message)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            conn, head = job
            try:
                response = self.respond(head, conn.address)
            except Exception:
                log.exception("error answering %s", conn.address)
                response = _status(500, "Internal Server Error")
            ok = self._send(conn, response)
            self._done.append((conn, ok))
            self._wake()

    def _send(self, conn: _Conn, data: bytes) -> bool:
        """Send the whole response by one deadline (a per-call timeout would let a slow reader renew it)."""
        deadline = time.monotonic() + self.limits.write_timeout
        view = memoryview(data)
        try:
            while view:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.debug("response to %s not read within %.0f s", conn.address, self.limits.write_timeout)
                    return False
                conn.sock.settimeout(left)
                view = view[conn.sock.send(view[:65536]):]
            conn.sock.setblocking(False)
            return True
        except (ssl.SSLError, OSError) as err:
            log.debug("sending to %s failed: %s", conn.address, err)
            return False

    def _collect_done(self) -> None:
        while self._done:
            conn, ok = self._done.popleft()
            self._busy -= 1
            if ok:
                self._conns[conn] = None
                self._sel.register(conn.sock, selectors.EVENT_READ, conn)
                self._start_linger(conn)
            else:
                conn.sock.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed (shutting down)
            self._wake_w.send(b"\0")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
