"""The web server against hostile clients (issue 13, items 4 to 6): huge and slow request heads,
descriptor exhaustion, idle connections, and basic auth that is abused or merely unusual."""

from __future__ import annotations

import base64
import http.client
import logging
import resource
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import bcrypt
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, wait_for
from http_attack import (
    close_all,
    cpu_share,
    header_flood,
    open_connections,
    rss_kib,
    scrape,
)
from smtp_reply_exporter import webconfig
from smtp_reply_exporter.http import make_server, serve_in_thread
from smtp_reply_exporter.httpd import Limits
from smtp_reply_exporter.metrics import Counts
from smtp_reply_exporter.webconfig import Verdict, WebConfig

CHART_MEMORY_LIMIT_KIB = 128 * 1024


class Process:
    """`serve` as a process on 127.0.0.1, its RLIMIT_NOFILE set to (soft, hard) before it starts."""

    def __init__(self, tmp_path: Path, nofile: tuple[int, int] | None = None, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.log = tmp_path / "mail.log"
        self.log.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smtp_reply_exporter", "serve", "--log.path", str(self.log),
             "--web.listen-address", f"127.0.0.1:{self.port}", "--tail.poll-interval", "200ms", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, nofile)) if nofile else None)
        wait_for(lambda: scrape(self.port, "/-/ready", 2) == 200, what="exporter ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


@pytest.fixture
def stopped_after() -> Iterator[Callable[[S], S]]:
    """Pass a server through it to have it stopped when the test ends, however it ends."""
    made: list[Stoppable] = []

    def track(server: S) -> S:
        made.append(server)
        return server

    yield track
    for server in reversed(made):
        server.stop()


def metric(port: int, name: str, headers: dict[str, str] | None = None, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`, as /metrics shows them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", headers=headers or {})
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and labels.items() <= s.labels.items())


def refused(port: int, reason: str, headers: dict[str, str] | None = None) -> float:
    return metric(port, "smtp_exporter_http_refused_total", headers, reason=reason)


def descriptors_settled(pid: int) -> None:
    """Wait until a process's count of open descriptors has not changed for a second."""
    seen: list[int] = []

    def steady() -> bool:
        seen.append(len(list(Path(f"/proc/{pid}/fd").iterdir())))
        return len(seen) >= 20 and len(set(seen[-20:])) == 1

    wait_for(steady, what="descriptors settled")


# ---- item 4: request heads ---------------------------------------------------------------------------

def test_a_flood_of_huge_stalled_request_heads_keeps_rss_under_the_chart_limit_and_scrapes_working(process):
    exp = process()
    with header_flood(exp.port, connections=150, lines=99, seconds=25) as flood:
        assert scrape(exp.port) == 200  # while the heads are arriving
        wait_for(lambda: flood["finished"] == 150, what="every connection sent all or was refused")
        assert rss_kib(exp.proc.pid, "VmHWM") < CHART_MEMORY_LIMIT_KIB  # the peak, not just now
        assert scrape(exp.port) == 200  # while the stalled connections are still open
        assert flood["closed"] == 150  # every oversized head was refused, and counted
        assert refused(exp.port, "head_too_large") == 150


class InProcess:
    """make_server on 127.0.0.1 in this process, with a tiny registry and the given limits and auth."""

    def __init__(self, limits: Limits | None = None, web: WebConfig | None = None) -> None:
        registry = CollectorRegistry()
        Counter("smtp_test", "a counter for the test", registry=registry).inc()
        self.server = make_server(("127.0.0.1", 0), registry, Counts(), lambda: True, "/metrics", web, limits)
        self.port = self.server.server_address[1]
        self.thread = serve_in_thread(self.server)

    def request(self, method: str = "GET", path: str = "/metrics",
                headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response

    def raw(self, data: bytes) -> bytes:
        """Send bytes as they are and read the answer until the server closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(data)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            return answer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def served(stopped_after) -> Callable[..., InProcess]:  # type: ignore[no-untyped-def]
    return lambda *args, **kw: stopped_after(InProcess(*args, **kw))


@pytest.fixture
def process(stopped_after, tmp_path) -> Callable[..., Process]:  # type: ignore[no-untyped-def]
    return lambda **kw: stopped_after(Process(tmp_path, **kw))


def test_a_request_head_over_the_byte_cap_is_answered_431(served):
    srv = served(Limits(max_head_bytes=8192))
    answer = srv.raw(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 431 ")
    assert srv.request().status == 200
    assert refused(srv.port, "head_too_large") == 1


def test_a_request_head_over_the_line_cap_is_answered_431(served):
    srv = served(Limits(max_head_lines=16))
    answer = srv.raw(b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 17 + b"\r\n")
    assert answer.startswith(b"HTTP/1.0 431 ")
    assert srv.raw(b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 16 + b"\r\n").startswith(b"HTTP/1.0 200 ")


def test_a_head_dripped_slower_than_the_deadline_is_cut_off_although_bytes_keep_coming(served):
    srv = served(Limits(head_timeout=0.5))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")

        def answered_408() -> bool:
            try:
                s.sendall(b"X")  # a byte every poll: no read ever waits long, only a deadline can end it
                return s.recv(4096, socket.MSG_DONTWAIT).startswith(b"HTTP/1.0 408 ")
            except BlockingIOError:
                return False

        wait_for(answered_408, timeout=20, what="the slow head refused with 408")
    assert refused(srv.port, "head_timeout") == 1


def test_a_head_arriving_in_pieces_within_the_deadline_is_answered(served):
    srv = served()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        for piece in (b"GET /-/he", b"althy HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
            s.sendall(piece)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.0 200 ")


# ---- item 5: descriptors, idle connections, backlog --------------------------------------------------

def test_the_soft_descriptor_limit_is_raised_to_the_hard_limit_at_start(process):
    exp = process(nofile=(256, 4096))
    limits = Path(f"/proc/{exp.proc.pid}/limits").read_text()
    assert [line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")] == [
        ["4096", "4096"]]


def test_idle_connections_beyond_the_cap_neither_block_a_scrape_nor_spin_the_cpu(process):
    exp = process(nofile=(256, 256))  # room for 64 HTTP connections beside the reserve
    idle = open_connections(exp.port, 400, pace=0.002)  # paced, so a short backlog could not hide them
    try:
        assert len(idle) == 400
        descriptors_settled(exp.proc.pid)
        assert cpu_share(exp.proc.pid, 2.0) < 0.5  # a resource bound: an accept loop spinning on EMFILE is ~1.0
        assert scrape(exp.port) == 200
        assert refused(exp.port, "evicted") >= 400 - 64
    finally:
        close_all(idle)


REJECT = ("Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: "
          "455 4.5.3 Busy; from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")


def test_a_log_rotated_while_idle_connections_fill_the_cap_is_reopened_and_the_state_file_written(process, tmp_path):
    state = tmp_path / "state.json"
    exp = process(nofile=(256, 256), args=("--tail.state-file", str(state), "--tail.state-interval", "200ms"))
    idle = open_connections(exp.port, 400, pace=0.002)
    try:
        assert len(idle) == 400
        descriptors_settled(exp.proc.pid)
        exp.log.rename(tmp_path / "mail.log.1")
        exp.log.write_text(REJECT * 3)  # a new file: the descriptor reserve must let the exporter open it
        wait_for(lambda: metric(exp.port, "smtp_replies_total", code="455") == 3, what="the new log counted")
        inode = str(exp.log.stat().st_ino)
        wait_for(lambda: state.exists() and inode in state.read_text(), what="the new log in the state file")
    finally:
        close_all(idle)


SERVER_AT_FEW_DESCRIPTORS = """
import resource, sys, threading
from smtp_reply_exporter.httpd import HttpServer, Limits
resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
ok = b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n"
server = HttpServer(("127.0.0.1", 0), lambda head, client: ok, limits=Limits(max_connections=1000))
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
"""


def test_accept_failing_for_want_of_descriptors_backs_off_instead_of_spinning_and_still_serves():
    # The cap is set above the descriptor limit on purpose, so that accept() itself fails with EMFILE.
    proc = subprocess.Popen([sys.executable, "-c", SERVER_AT_FEW_DESCRIPTORS], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        idle = open_connections(port, 200)
        try:
            descriptors_settled(proc.pid)
            assert cpu_share(proc.pid, 2.0) < 0.5
            assert scrape(port, "/") == 200
        finally:
            close_all(idle)
    finally:
        proc.communicate("", timeout=30)


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a listener's backlog")
def test_the_listen_backlog_is_the_system_one(served):
    srv = served()
    # For a listening socket, ss shows the backlog in the Send-Q column.
    out = subprocess.run(["ss", "-Hlnt", f"sport = :{srv.port}"], capture_output=True, text=True, check=True).stdout
    assert [line.split()[2] for line in out.splitlines()] == [str(socket.SOMAXCONN)]


# ---- item 6: basic auth, HEAD, Server ----------------------------------------------------------------

def basic(user: str, password: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()


def config_for(**passwords: str) -> WebConfig:
    return WebConfig(users={u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)) for u, p in passwords.items()})


class CountingBcrypt:
    """bcrypt.checkpw wrapped to count calls, the hashes it was given and the most run at once; with
    `hold` set, each call waits for `release` so that a test can pile checks up."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold: bool = False) -> None:
        self.calls: list[bytes] = []
        self.running = self.most = 0
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._lock = threading.Lock()
        real = bcrypt.checkpw

        def checkpw(password: bytes, hashed: bytes) -> bool:
            with self._lock:
                self.calls.append(hashed)
                self.running += 1
                self.most = max(self.most, self.running)
            self.release.wait(30)
            try:
                return bool(real(password, hashed))
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(bcrypt, "checkpw", checkpw)


def test_a_correct_password_over_72_bytes_is_refused_with_a_warning_never_an_exception(caplog):
    long = "p" * 100
    config = WebConfig(users={"alice": bcrypt.hashpw(long[:72].encode(), bcrypt.gensalt(rounds=4))})
    with caplog.at_level(logging.WARNING, logger="smtp_reply_exporter.webconfig"):
        assert config.check(basic("alice", long)) is Verdict.DENIED
    assert "over 72 bytes" in caplog.text
    assert config.check(basic("alice", long[:72])) is Verdict.ALLOWED


def test_a_password_over_72_bytes_gets_401_and_the_connection_is_not_dropped(served):
    srv = served(web=config_for(alice="s3cret"))
    assert srv.request(headers={"Authorization": basic("alice", "x" * 200)}).status == 401
    assert srv.request(headers={"Authorization": basic("alice", "s3cret")}).status == 200


def test_an_unknown_user_costs_one_bcrypt_check_at_the_same_cost_as_a_known_one(monkeypatch):
    config = config_for(alice="s3cret")
    counting = CountingBcrypt(monkeypatch)
    assert config.check(basic("alice", "wrong")) is Verdict.DENIED
    assert config.check(basic("mallory", "wrong")) is Verdict.DENIED
    assert config.check(basic("mallory", "p" * 100)) is Verdict.DENIED
    known, unknown, unknown_long = counting.calls
    assert unknown != known and unknown[:7] == known[:7] == b"$2b$04$"  # a dummy hash of the same cost
    assert unknown_long == unknown


def test_a_successful_check_is_cached_and_a_failed_one_is_not(monkeypatch):
    config = config_for(alice="s3cret")
    counting = CountingBcrypt(monkeypatch)
    for _ in range(3):
        assert config.check(basic("alice", "s3cret")) is Verdict.ALLOWED
        assert config.check(basic("alice", "wrong")) is Verdict.DENIED
    assert len(counting.calls) == 1 + 3
    config.users["alice"] = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4))  # a new hash: checked again
    assert config.check(basic("alice", "s3cret")) is Verdict.ALLOWED
    assert len(counting.calls) == 5


def test_password_checks_run_one_at_a_time_and_a_pile_up_is_answered_busy(monkeypatch):
    config = config_for(alice="s3cret")
    counting = CountingBcrypt(monkeypatch, hold=True)
    results: list[Verdict] = []
    threads = [threading.Thread(target=lambda: results.append(config.check(basic("alice", "wrong"))))
               for _ in range(webconfig.BCRYPT_QUEUED)]
    for t in threads:
        t.start()
    wait_for(lambda: config._queued == webconfig.BCRYPT_QUEUED, what="checks queued")
    assert config.check(basic("bob", "guess")) is Verdict.BUSY
    counting.release.set()
    for t in threads:
        t.join()
    assert results == [Verdict.DENIED] * webconfig.BCRYPT_QUEUED
    assert counting.most == 1


def test_a_scrape_with_cached_credentials_is_answered_while_password_checks_pile_up(monkeypatch, served):
    config = config_for(alice="s3cret")
    srv = served(web=config)
    right = {"Authorization": basic("alice", "s3cret")}
    assert srv.request(headers=right).status == 200  # now cached
    counting = CountingBcrypt(monkeypatch, hold=True)
    statuses: list[int] = []

    def guess(i: int) -> None:
        statuses.append(srv.request(headers={"Authorization": basic("alice", f"guess{i}")}).status)

    guesses = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for g in guesses:
        g.start()
    try:
        wait_for(lambda: config._queued == webconfig.BCRYPT_QUEUED, what="password checks piled up")
        assert srv.request(headers=right).status == 200
        assert srv.request(headers={"Authorization": basic("eve", "x")}).status == 429
    finally:
        counting.release.set()
        for g in guesses:
            g.join()
    assert len(statuses) == 12 and statuses.count(401) >= webconfig.BCRYPT_QUEUED
    assert statuses.count(401) + statuses.count(429) == 12
    assert refused(srv.port, "auth_busy", right) == statuses.count(429) + 1
    assert counting.most == 1


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC", "bAsIc"])
def test_the_basic_scheme_is_case_insensitive(scheme):
    assert config_for(alice="s3cret").check(basic("alice", "s3cret", scheme)) is Verdict.ALLOWED


@pytest.mark.parametrize("header", ["", "Bearer abc", "Basic", "Basic !!!",
                                    "Basic " + base64.b64encode(b"\xff").decode(),
                                    "Basic " + base64.b64encode(b"alice").decode()])
def test_malformed_authorization_headers_are_denied(header):
    assert config_for(alice="s3cret").check(header) is Verdict.DENIED


@pytest.mark.parametrize("path", ["/metrics", "/", "/-/healthy", "/nope"])
def test_head_answers_like_get_without_a_body(served, path):
    srv = served()
    got, head = srv.request("GET", path), srv.request("HEAD", path)
    assert head.status == got.status
    assert head.getheader("Content-Type") == got.getheader("Content-Type")
    assert head.getheader("Content-Length") == got.getheader("Content-Length")
    assert srv.raw(f"HEAD {path} HTTP/1.0\r\n\r\n".encode()).endswith(b"\r\n\r\n")  # nothing after the head


def test_head_is_refused_without_credentials_like_get(served):
    srv = served(web=config_for(alice="s3cret"))
    assert srv.request("HEAD").status == 401
    assert srv.request("HEAD", headers={"Authorization": basic("alice", "s3cret")}).status == 200


def test_the_server_header_names_no_versions(served):
    srv = served()
    for method, path in (("GET", "/metrics"), ("HEAD", "/"), ("POST", "/metrics"), ("GET", "/nope")):
        assert srv.request(method, path).getheader("Server") == "smtp-reply-exporter"
