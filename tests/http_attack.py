"""Hostile HTTP clients for the exporter's web server (issue 13), shared by tests/test_http_limits.py and
runnable by hand to measure a running exporter:

    python3 tests/http_attack.py --measure [--nofile 1024]

Every attack goes to 127.0.0.1 only, is bounded in connections and time, and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

HEADER_LINE = b"X-Pad: " + b"a" * (64 * 1024 - 9) + b"\r\n"  # one 64 KiB header line


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ValueError(f"no {field} for {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_connections(port: int, n: int, timeout: float = 3.0, pace: float = 0.0) -> list[socket.socket]:
    """Up to n connections to 127.0.0.1:port that send nothing (the caller closes them), one every `pace`
    seconds (so that a short backlog does not hide them behind SYN cookies); it stops at the first
    connection that cannot be made within `timeout`."""
    out: list[socket.socket] = []
    for _ in range(n):
        time.sleep(pace)
        try:
            out.append(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        except OSError:
            break
    return out


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


@contextlib.contextmanager
def header_flood(port: int, connections: int = 150, lines: int = 99, seconds: float = 8.0) -> Iterator[dict[str, int]]:
    """Stalled requests whose heads never end: each connection sends a request line and up to `lines`
    header lines of 64 KiB, then waits. Yields while the attack is under way (a thread keeps pushing
    until every connection has sent its lines, been closed by the server, or `seconds` have passed);
    the dict counts connections `closed` by the server, `finished` (closed or every line sent) and
    `bytes` sent."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    stats = {"closed": 0, "finished": 0, "bytes": 0}
    stop = threading.Event()
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE, [b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + HEADER_LINE, lines - 1])

    def push() -> None:
        deadline = time.monotonic() + seconds
        while sel.get_map() and not stop.is_set() and time.monotonic() < deadline:
            for key, _ in sel.select(0.2):
                state = key.data
                try:
                    sent = key.fileobj.send(state[0])  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    stats["closed"] += 1
                    stats["finished"] += 1
                    sel.unregister(key.fileobj)
                    continue
                stats["bytes"] += sent
                state[0] = state[0][sent:]
                if not state[0]:
                    if state[1] == 0:
                        stats["finished"] += 1
                        sel.unregister(key.fileobj)  # all lines sent, no blank line: stalled
                    else:
                        state[0], state[1] = HEADER_LINE, state[1] - 1

    pusher = threading.Thread(target=push, name="header-flood", daemon=True)
    pusher.start()
    try:
        yield stats
    finally:
        stop.set()
        pusher.join()
        sel.close()
        close_all(socks)


def scrape(port: int, path: str = "/metrics", timeout: float = 20.0) -> int:
    """The status of one GET (0 when the connection failed)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def concurrent_scrapes(port: int, threads: int = 32, per_thread: int = 20) -> tuple[list[float], int]:
    """`threads` scrapers, each scraping /metrics `per_thread` times back to back: (latencies, failures)."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def scraper() -> None:
        start.wait()
        for _ in range(per_thread):
            t0 = time.perf_counter()
            ok = scrape(port) == 200
            took = time.perf_counter() - t0
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    failures[0] += 1

    workers = [threading.Thread(target=scraper) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sorted(latencies), failures[0]


def quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else float("nan")


def limit_nofile(n: int) -> Callable[[], None]:
    """A preexec_fn that gives the child a soft and hard RLIMIT_NOFILE of n."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def cpu_share(pid: int, seconds: float) -> float:
    """The share of one core a process used over the next `seconds` (wall time measured, not assumed)."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        threading.Event().wait(end - time.monotonic())
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


@contextlib.contextmanager
def slow_heads(port: int, connections: int = 200, every: float = 0.5) -> Iterator[dict[str, int]]:
    """Slowloris: connections that send a request line, then one header byte every `every` seconds, so
    that no read ever waits long; yields while they drip, counting those `closed` by the server."""
    socks = open_connections(port, connections)
    stats = {"closed": 0}
    stop = threading.Event()

    def drip() -> None:
        live = list(socks)
        for s in live:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        while live and not stop.wait(every):
            for s in list(live):
                try:
                    s.sendall(b"x")
                except OSError:
                    stats["closed"] += 1
                    live.remove(s)

    dripper = threading.Thread(target=drip, name="slow-heads", daemon=True)
    dripper.start()
    try:
        yield stats
    finally:
        stop.set()
        dripper.join()
        close_all(socks)


def timed_scrape(port: int, path: str = "/metrics", headers: dict[str, str] | None = None) -> str:
    t0 = time.perf_counter()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            r.read()
            status = int(r.status)
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError:
        status = 0
    return f"scrape {status} in {time.perf_counter() - t0:.2f} s"


def wait_seconds(seconds: float) -> None:
    threading.Event().wait(seconds)


def settle(pid: int, seconds: float = 25.0) -> None:
    """Let a server take what the kernel still holds back (SYN cookies behind a short backlog): wait
    until its descriptor count has not changed for 2 s, `seconds` at most."""
    counts, end = [-1], time.monotonic() + seconds
    while time.monotonic() < end and (len(counts) < 10 or len(set(counts[-10:])) > 1):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        wait_seconds(0.2)


def measure(command: list[str], port: int, nofile: int, auth: tuple[str, str] | None) -> None:
    """Run the server, then each attack in turn against it, printing what it cost and how a scrape fared."""
    proc = subprocess.Popen(command, preexec_fn=limit_nofile(nofile), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pid = proc.pid
    try:
        while scrape(port, "/metrics", 2) not in (200, 401):
            wait_seconds(0.05)
        if auth is None:
            t0 = time.perf_counter()
            lat, failed = concurrent_scrapes(port)
            rate = len(lat) / (time.perf_counter() - t0)
            print(f"32 concurrent scrapers x 20 ({rate:.0f}/s): p50 {quantile(lat, .5) * 1e3:.1f} ms, "
                  f"p99 {quantile(lat, .99) * 1e3:.1f} ms, worst {lat[-1] * 1e3:.1f} ms, failed {failed}")
            idle = open_connections(port, nofile + 100, pace=0.003)
            try:
                settle(pid)
                share = cpu_share(pid, 2.0)
                print(f"{len(idle)} idle connections (RLIMIT_NOFILE {nofile}, {len(os.listdir(f'/proc/{pid}/fd'))}"
                      f" descriptors open): CPU {share:.0%} of a core over 2 s, {timed_scrape(port)}")
            finally:
                close_all(idle)
            with slow_heads(port) as stats:
                wait_seconds(3)
                share = cpu_share(pid, 2.0)
                print(f"200 slow heads (a byte every 0.5 s): CPU {share:.0%}, {timed_scrape(port)}, "
                      f"{stats['closed']} closed by the server after 5 s")
            with header_flood(port) as stats:
                during = timed_scrape(port)
                wait_seconds(8)
                print(f"header flood (150 connections x 99 lines of 64 KiB, {stats['bytes'] >> 20} MiB sent, "
                      f"{stats['closed']} closed by the server): {during}, "
                      f"RSS {rss_kib(pid) >> 10} MiB, peak {rss_kib(pid, 'VmHWM') >> 10} MiB")
        else:
            import base64

            def header(password: str) -> dict[str, str]:
                return {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{password}".encode()).decode()}

            print(f"correct password, first: {timed_scrape(port, headers=header(auth[1]))}; "
                  f"again: {timed_scrape(port, headers=header(auth[1]))}")
            stop = threading.Event()

            def guess(i: int) -> None:
                n = 0
                while not stop.is_set():
                    scrape_with = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                                         headers=header(f"guess{i}-{n}"))
                    with contextlib.suppress(OSError):
                        urllib.request.urlopen(scrape_with, timeout=30).read()
                    n += 1

            guessers = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
            for g in guessers:
                g.start()
            try:
                wait_seconds(1)
                share = cpu_share(pid, 3.0)
                lat = []
                for _ in range(10):
                    t0 = time.perf_counter()
                    scrape_with = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=header(auth[1]))
                    urllib.request.urlopen(scrape_with, timeout=30).read()
                    lat.append(time.perf_counter() - t0)
                print(f"16 threads of wrong passwords: CPU {share:.0%} of a core; scrapes with the right one: "
                      f"median {sorted(lat)[5] * 1e3:.1f} ms, worst {max(lat) * 1e3:.1f} ms")
            finally:
                stop.set()
                for g in guessers:
                    g.join()
    finally:
        proc.terminate()
        proc.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", action="store_true", required=True)
    parser.add_argument("--nofile", type=int, default=1024, help="RLIMIT_NOFILE (soft and hard) of the server")
    parser.add_argument("--auth", action="store_true", help="basic auth (a cost-10 bcrypt hash): the password flood")
    parser.add_argument("--server", help="another server to measure instead: a command with {port} in it")
    args = parser.parse_args()
    port = free_port()
    with contextlib.ExitStack() as cleanup:
        if args.server:
            command = [part.format(port=port) for part in args.server.split()]
        else:
            import tempfile

            tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory()))
            (tmp / "mail.log").write_text("")
            command = [sys.executable, "-m", "smtp_reply_exporter", "serve", "--log.path", str(tmp / "mail.log"),
                       "--web.listen-address", f"127.0.0.1:{port}"]
            if args.auth:
                import bcrypt

                hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode()
                (tmp / "web.yml").write_text(f"basic_auth_users:\n  alice: '{hashed}'\n")
                command += ["--web.config.file", str(tmp / "web.yml")]
        measure(command, port, args.nofile, ("alice", "s3cret") if args.auth else None)
