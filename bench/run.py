"""Benchmark: the real `serve` process catching up on a generated log; prints lines/s, CPU s, peak RSS.

Method: start the exporter on an empty file, append the whole corpus at once, poll /metrics until
every line is counted. CPU seconds and peak RSS are read from /proc for the exporter process.
The counts on /metrics must equal the generator's own count exactly, or the run fails.
When Debian's prometheus-postfix-exporter (the Go postfix_exporter) is installed, it is measured the
same way on the same file, and the ratios are printed. It exports no line counter, so its progress is
the sum of the counters that each of the generator's line shapes increments exactly once.
When mtail is installed, it runs Debian's own Postfix program (shipped with the package) the same way;
its progress is its own line counter, and its reject counts are checked against the generator's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).parent))
from generate import SESSIONS, generate

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> list:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return list(text_string_to_metric_families(r.read().decode()))


def lines_read(families: list) -> float:  # type: ignore[type-arg]
    return float(sum(s.value for f in families for s in f.samples if s.name == "smtp_exporter_lines_read_total"))


def counted(families: list) -> Counter[str]:  # type: ignore[type-arg]
    out: Counter[str] = Counter()
    for f in families:
        for s in f.samples:
            if s.name == "smtp_replies_total":
                key = " ".join(x for x in (s.labels["role"], s.labels["command"], s.labels["code"],
                                           s.labels["enhanced_code"]) if x)
                out[key] += int(s.value)
            elif s.name == "smtp_deliveries_total":
                out[f"delivery {s.labels['status']}"] += int(s.value)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_live(workdir: Path, seconds: float = 10.0, rate: int = 1000, symlink: bool = False) -> dict[str, float]:
    """Latency at `rate` lines/s (append to visible on /metrics) and idle CPU afterwards; with `symlink`,
    the exporter follows a symlink in another directory (as /var/log/containers/*.log are)."""
    log = workdir / "live.log"
    log.write_text("")
    followed = log
    if symlink:
        (workdir / "links").mkdir()
        followed = workdir / "links" / "live.log"
        followed.symlink_to(log)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "smtp_reply_exporter", "serve", "--log.path", str(followed),
                             "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "error"])
    line = (b"Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; "
            b"from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")
    try:
        wait_up(port)
        written: list[float] = []  # time each line was written
        stop = threading.Event()

        def writer() -> None:
            with open(log, "ab", buffering=0) as f:
                start = time.monotonic()
                while not stop.is_set() and time.monotonic() - start < seconds:
                    due = int((time.monotonic() - start) * rate) - len(written)
                    if due > 0:
                        f.write(line * due)
                        now = time.monotonic()
                        written.extend([now] * due)
                    time.sleep(0.001)

        thread = threading.Thread(target=writer)
        thread.start()
        latencies, seen = [], 0
        while thread.is_alive() or seen < len(written):
            count = int(lines_read(scrape(port)))
            now = time.monotonic()
            latencies += [now - t for t in written[seen:count]]
            seen = max(seen, count)
            time.sleep(0.002)
        thread.join()
        cpu0 = cpu_seconds(proc.pid)
        time.sleep(10)
        idle = (cpu_seconds(proc.pid) - cpu0) / 10
        return {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "idle": idle,
                "lines": len(written)}
    finally:
        proc.terminate()
        proc.wait(30)


def counted_all(families: list, expected: dict[str, int]) -> bool:  # type: ignore[type-arg]
    """Every line read, and then the counts must equal the generator's exactly."""
    if lines_read(families) < expected["lines"]:
        return False
    got = counted(families)
    want = Counter({k: v for k, v in expected.items() if k != "lines"})
    if got != want:
        raise SystemExit(f"COUNTS DIFFER from the generator's:\n  missing {want - got}\n  extra {got - want}")
    return True


def run_once(corpus: Path, expected: dict[str, int], workdir: Path) -> dict[str, float]:
    log = workdir / "mail.log"
    cmd = [sys.executable, "-m", "smtp_reply_exporter", "serve", "--log.path", str(log),
           "--web.listen-address", "127.0.0.1:{port}", "--log.level", "warn"]
    return run_exporter(cmd, log, corpus, lambda fams: counted_all(fams, expected), stderr=None)


GO_EXPORTER = "/usr/bin/prometheus-postfix-exporter"
# One increment per line of each shape the generator writes (a status line observes 4 delay stages).
GO_LINE_COUNTERS = {
    "postfix_smtpd_connects_total": 1, "postfix_smtpd_disconnects_total": 1,
    "postfix_smtpd_messages_processed_total": 1, "postfix_cleanup_messages_processed_total": 1,
    "postfix_qmgr_messages_inserted_receipients_count": 1, "postfix_qmgr_messages_removed_total": 1,
    "postfix_smtpd_messages_rejected_total": 1, "postfix_unsupported_log_entries_total": 1,
    "postfix_smtp_delivery_delay_seconds_count": 4,
}


def go_lines(families: list) -> float:  # type: ignore[type-arg]
    return float(sum(s.value / GO_LINE_COUNTERS[s.name]
                     for f in families for s in f.samples if s.name in GO_LINE_COUNTERS))


def run_go(corpus: Path, lines: int, workdir: Path) -> dict[str, float]:
    log = workdir / "go.log"
    cmd = [GO_EXPORTER, f"--postfix.logfile_path={log}", "--web.listen-address=127.0.0.1:{port}",
           "--postfix.showq_path=/nonexistent"]
    return run_exporter(cmd, log, corpus, lambda fams: go_lines(fams) >= lines)


MTAIL = "/usr/bin/mtail"
# Debian's mtail package ships this Postfix program (ported from the same kumina postfix_exporter rules).
MTAIL_POSTFIX_PROGRAM = Path("/usr/share/doc/mtail/examples/postfix.mtail")


def mtail_done(families: list, expected: dict[str, int]) -> bool:  # type: ignore[type-arg]
    """mtail counts every line it reads; once all are read, its reject counter must match the generator's."""
    read = sum(s.value for f in families for s in f.samples if s.name == "mtail_log_lines_total")
    if read < expected["lines"]:
        return False
    rejects = Counter({s.labels["code"]: int(s.value) for f in families for s in f.samples
                       if s.name == "postfix_smtpd_messages_rejected_total"})
    want: Counter[str] = Counter()
    for key, n in expected.items():
        if key.startswith("server RCPT ") and key.split()[2][0] in "45":
            want[key.split()[2]] += n
    if rejects != want:
        raise SystemExit(f"mtail's reject counts differ from the generator's: {rejects} != {want}")
    return True


def run_mtail(corpus: Path, expected: dict[str, int], workdir: Path) -> dict[str, float]:
    log, progs = workdir / "mtail.log", workdir / "mtail-progs"
    progs.mkdir(exist_ok=True)
    shutil.copy(MTAIL_POSTFIX_PROGRAM, progs)
    cmd = [MTAIL, "--progs", str(progs), "--logs", str(log), "--address", "127.0.0.1", "--port", "{port}"]
    return run_exporter(cmd, log, corpus, lambda fams: mtail_done(fams, expected))


def run_exporter(cmd: list[str], log: Path, corpus: Path, done: Callable[[list], bool],  # type: ignore[type-arg]
                 stderr: int | None = subprocess.DEVNULL) -> dict[str, float]:
    """One exporter measured: started on an empty file, the whole corpus appended at once, /metrics
    polled until `done` says every line is counted. "{port}" in `cmd` becomes a free port."""
    log.write_text("")
    port = free_port()
    proc = subprocess.Popen([arg.replace("{port}", str(port)) for arg in cmd],
                            stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_up(port)
        time.sleep(0.5)  # some open the file after they start serving: let them reach its end first
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        with open(corpus, "rb") as src, open(log, "ab") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        scrapes = []
        while True:
            s0 = time.monotonic()
            families = scrape(port)
            scrapes.append(time.monotonic() - s0)
            if done(families):
                break
            time.sleep(0.02)
        return {"wall": time.monotonic() - t0, "cpu": cpu_seconds(proc.pid) - cpu0, "rss": peak_rss_mib(proc.pid),
                "scrape_p99": percentile(scrapes, 0.99)}
    finally:
        proc.terminate()
        proc.wait(30)


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            scrape(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


OURS = "smtp-reply-exporter"
Runner = Callable[[Path, dict[str, int], Path], dict[str, float]]


class Result(NamedTuple):
    lines: int
    medians: dict[str, tuple[float, float, float]]  # exporter -> (wall s, CPU s, peak RSS MiB)
    scrape_p99: float

    def lines_per_second(self, name: str = OURS) -> float:
        return self.lines / self.medians[name][0]

    def ratios(self, other: str) -> tuple[float, float]:
        """(throughput ours / other, CPU per line ours / other)."""
        (w1, c1, _), (w2, c2, _) = self.medians[OURS], self.medians[other]
        return w2 / w1, c1 / c2


def compare(mta: str, lines: int, runs: int, rfc3339: bool = False, go: bool = True, mtail: bool = True) -> Result:
    """Every available exporter on one generated corpus, interleaved run by run; prints the table."""
    runners: dict[str, Runner] = {OURS: run_once}
    if mta == "postfix":
        if go and os.path.exists(GO_EXPORTER):
            runners["go postfix_exporter"] = lambda corpus, expected, work: run_go(corpus, expected["lines"], work)
        if mtail and os.path.exists(MTAIL) and MTAIL_POSTFIX_PROGRAM.exists():
            runners["mtail (postfix.mtail)"] = run_mtail
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "corpus.log"
        expected = generate(str(corpus), lines, rfc3339=rfc3339, mta=mta)
        for _ in range(runs):  # interleaved, so that machine noise hits all alike
            for name, run in runners.items():
                rows[name].append(run(corpus, expected, work))
    n = expected["lines"]
    print(f"corpus: {n:,} {mta} lines ({'RFC 3339' if rfc3339 else 'BSD'} timestamps), "
          f"median of {runs} runs; counts equal the generator's: yes")
    print(f"{'':<22}{'lines/s':>12} {'wall s':>8} {'CPU s':>8} {'CPU us/line':>12} {'peak RSS MiB':>13}")
    medians = {}
    for name, results in rows.items():
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        rss = max(r["rss"] for r in results)
        medians[name] = (wall, cpu, rss)
        print(f"{name:<22}{n / wall:>12,.0f} {wall:>8.2f} {cpu:>8.2f} {1e6 * cpu / n:>12.2f} {rss:>13.1f}")
    result = Result(n, medians, max(r["scrape_p99"] for r in rows[OURS]))
    for name in medians:
        if name != OURS:
            throughput, cpu_ratio = result.ratios(name)
            print(f"ratio (ours / {name}): throughput {throughput:.2f}x, CPU per line {cpu_ratio:.2f}x")
    print(f"/metrics while catching up: p99 {1000 * result.scrape_p99:.1f} ms", flush=True)
    return result


def live(symlink: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        measured = run_live(Path(tmp), symlink=symlink)
    through = " through a symlink" if symlink else ""
    print(f"latency{through} at 1,000 lines/s ({measured['lines']:,.0f} lines): p50 {1000 * measured['p50']:.1f} ms, "
          f"p99 {1000 * measured['p99']:.1f} ms; idle CPU {100 * measured['idle']:.2f}% of a core", flush=True)
    return measured


def targets(runs: int) -> None:
    """The performance issue's matrix, then each target with what was measured and whether it is met."""
    base = compare("postfix", 1_000_000, runs)
    measured = live()
    big = compare("postfix", 5_000_000, 1, go=False, mtail=False)
    others = {"RFC 3339": compare("postfix", 1_000_000, runs, rfc3339=True, go=False, mtail=False)}
    for mta in ("exim", "sendmail", "opensmtpd"):
        others[mta] = compare(mta, 1_000_000, runs)
    rows: list[tuple[str, str, bool]] = []
    go = "go postfix_exporter"
    if go in base.medians:
        throughput, cpu_ratio = base.ratios(go)
        rows += [("catch-up throughput >= 10x the Go exporter", f"{throughput:.2f}x", throughput >= 10),
                 ("CPU per line <= 1/10 of the Go exporter's", f"{cpu_ratio:.2f}x", cpu_ratio <= 0.1)]
    rss_1m, rss_5m = base.medians[OURS][2], big.medians[OURS][2]
    rows += [
        ("peak RSS <= 40 MiB, flat from 1M to 5M lines", f"{rss_1m:.1f} -> {rss_5m:.1f} MiB",
         max(rss_1m, rss_5m) <= 40 and rss_5m <= rss_1m * 1.1),
        ("latency p99 <= 100 ms at 1,000 lines/s", f"{1000 * measured['p99']:.1f} ms", measured["p99"] <= 0.1),
        ("idle CPU < 1% of a core", f"{100 * measured['idle']:.2f}%", measured["idle"] < 0.01),
        ("/metrics p99 < 50 ms while catching up", f"{1000 * base.scrape_p99:.1f} ms", base.scrape_p99 < 0.05),
    ]
    for name, result in others.items():
        slower = base.lines_per_second() / result.lines_per_second()
        rows.append((f"{name}: at most 2x slower than Postfix (BSD)", f"{slower:.2f}x", slower <= 2))
    print(f"\n{'target':<50}{'measured':>20}  met")
    for target, value, met in rows:
        print(f"{target:<50}{value:>20}  {'yes' if met else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rfc3339", action="store_true", help="RFC 3339 timestamps instead of BSD syslog ones")
    ap.add_argument("--no-go", action="store_true", help="skip the Go postfix_exporter even when installed")
    ap.add_argument("--no-mtail", action="store_true", help="skip mtail even when installed")
    ap.add_argument("--no-live", action="store_true", help="skip the latency and idle-CPU measurement")
    ap.add_argument("--mta", choices=tuple(SESSIONS), default="postfix",
                    help="the corpus's MTA (the Go exporter and mtail's shipped program read Postfix only)")
    ap.add_argument("--targets", action="store_true",
                    help="run the whole matrix (1M and 5M lines, RFC 3339, every MTA) and judge each target")
    ap.add_argument("--live-only", action="store_true", help="only the latency and idle-CPU measurement")
    ap.add_argument("--symlink", action="store_true", help="latency through a symlink to a log in another directory")
    args = ap.parse_args()
    if args.live_only:
        live(args.symlink)
        return
    if args.targets:
        targets(args.runs)
        return
    compare(args.mta, args.lines, args.runs, args.rfc3339, go=not args.no_go, mtail=not args.no_mtail)
    if not args.no_live:
        live(args.symlink)


if __name__ == "__main__":
    main()
