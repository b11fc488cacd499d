from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from smtp_reply_exporter.sources.file import Follower
from smtp_reply_exporter.stats import SourceStats


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Reader:
    """A follower of one log, started as the daemon starts it (opened, and standing at the end unless
    told otherwise), then polled; `lines` keeps every line it yielded. Closed at the end of the test."""

    made: ClassVar[list[Reader]] = []

    def __init__(self, path: Path, **kw) -> None:  # type: ignore[no-untyped-def]
        self.stats = SourceStats()
        self.follower = Follower(str(path), self.stats, **kw)
        self.lines: list[bytes] = []
        Reader.made.append(self)
        self.poll()

    def close(self) -> None:
        self.follower.close()

    def poll(self) -> list[bytes]:
        """The complete lines this poll read, split at LF only (a CR alone does not end a line)."""
        new = b"".join(self.follower.poll()).split(b"\n")[:-1]
        self.lines += new
        return new


def reader_of_empty(path: Path) -> Reader:
    """An empty log, created now, and a Reader of it."""
    path.write_text("")
    return Reader(path)


class Exporter:
    """`smtp-reply-exporter serve` as a real process on 127.0.0.1."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smtp_reply_exporter", "serve", "--web.listen-address",
             f"127.0.0.1:{self.port}", "--tail.poll-interval", "200ms", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        wait_for(lambda: self.get("/-/ready")[0] == 200, what="exporter ready")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, ""
        except OSError:
            return 0, ""

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Samples of one metric (the sample name, e.g. smtp_replies_total) by sorted label pairs."""
        status, text = self.get("/metrics")
        assert status == 200
        return samples_in(text, name)

    def value(self, name: str, **labels: str) -> float:
        return sum(v for k, v in self.samples(name).items() if labels.items() <= dict(k).items())

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return out


def samples_in(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric in an exposition text, by sorted label pairs."""
    return {tuple(sorted(s.labels.items())): s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name == name}


def wait_listening(port: int, what: str, diagnose=lambda: "", proc=None, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until something accepts connections on 127.0.0.1:port; on timeout say what and why. With the
    server's `proc`, fail at once if it exits first, with its exit status and `diagnose()` (its stderr, its log)."""
    def listening() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening on {port}:\n"
                               f"{diagnose()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        wait_for(listening, timeout=timeout, what=f"{what} listening on {port}")
    except AssertionError as err:
        raise AssertionError(f"{err}\n{diagnose()}") from None


def wait_for(check, timeout: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def exporter() -> Iterator[type[Exporter]]:
    started: list[Exporter] = []

    class Tracked(Exporter):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for e in started:
        e.stop()


def _descriptors() -> dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed already
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keeps each phase's report on the test item, for `no_leaks`."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that leaves a thread running or a file descriptor open (as watchdog's suite does);
    threads and descriptors have a few seconds to end, polled, after the test's own fixtures are gone.
    A test that failed already is not charged: its traceback still holds what it opened."""
    threads, fds = set(threading.enumerate()), _descriptors()
    yield
    for reader in Reader.made:
        reader.close()
    Reader.made.clear()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        return
    deadline = time.monotonic() + 10
    while True:
        new_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        now = _descriptors()
        new_fds = {fd: target for fd, target in now.items() if fds.get(fd) != target}
        if not (new_threads or new_fds) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not new_threads, f"threads left running: {new_threads}"
    assert not new_fds, f"file descriptors left open: {new_fds}"


def have_postfix() -> bool:
    return shutil.which("postfix") is not None


FIXTURES = Path(__file__).parent / "fixtures"
