"""Benchmark: the real `serve` process catching up on a log, beside the Go postfix_exporter and mtail.

Method: start each exporter on an empty file, append the whole corpus at once, poll /metrics every
50 ms (start to start) until every line is counted; CPU seconds and peak RSS are read from /proc for
the exporter's process. A scrape's latency is timed as Prometheus times it: from the request to the
end of the response (this client's parsing of the text is not part of it).
Runs are interleaved (run 1 of every exporter, then run 2...) so that machine noise hits all alike;
medians are printed.

Ours runs in both of its variants, each from a virtual environment the bench builds from a clone of
the checkout at --rev (default HEAD; cached per source tree under $SMTP_REPLY_EXPORTER_BENCH_CACHE,
default /var/tmp/smtp-reply-exporter-bench): `pip install .` (the hot path compiled by mypyc) and the
same with SMTP_REPLY_EXPORTER_PURE=1 (pure Python). `--python PY` measures what PY has installed.

Two kinds of corpus:
- generated (bench/generate.py): a relay's mix, written from templates that count their own
  replies; our counts must equal the generator's exactly;
- replayed (bench/replay.py): the log a real Postfix wrote for the end-to-end test's traffic
  (bench/corpus/postfix-e2e.log), repeated with shifted queue ids and timestamps; our counts must
  equal `parse` of the original log (the e2e test proves it equals the wire) times the repetitions.
Any difference fails the run.

Debian's prometheus-postfix-exporter (the Go postfix_exporter) exports no line counter: on the
generated corpus its progress is the sum of the counters that each line shape increments exactly
once; on the replayed one it is first run on one copy of the original to learn the sum of its
counters, then awaited at repetitions x that sum. mtail runs Debian's own Postfix program (shipped
with the package); its progress is its line counter; on the generated corpus its reject counts are
checked against the generator's.
"""

from __future__ import annotations

import argparse
import hashlib
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

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).parent))
from generate import SESSIONS, generate
from replay import SOURCE, replay

TICK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SMTP_REPLY_EXPORTER_BENCH_CACHE", "/var/tmp/smtp-reply-exporter-bench"))
TIMEOUT = 900.0  # seconds for one exporter to count one corpus
# /metrics is polled on a fixed schedule, start to start, whatever a scrape takes: a scrape costs the exporter
# CPU, so polling again a fixed time after each answer would charge a faster /metrics with more scrapes.
POLL_EVERY = 0.05
Families = list[Metric]
Done = Callable[[Families], bool]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def scrape(port: int) -> Families:
    return list(text_string_to_metric_families(fetch(port)))


def lines_read(families: Families) -> float:
    return float(sum(s.value for f in families for s in f.samples if s.name == "smtp_exporter_lines_read_total"))


def counted(families: Families) -> Counter[str]:
    """Our replies by role, command, code and enhanced code, and our deliveries by status."""
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


# ---- our exporter, in its variants ----

class Ours(NamedTuple):
    name: str  # the row's label
    python: str  # the interpreter that runs it
    variant: str  # "compiled" or "pure", as the package found says
    where: str  # what was built or given


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SMTP_REPLY_EXPORTER_PURE")}
    return env | extra


# Which variant an interpreter has: the parsers are C extensions when compiled (tests/test_build_variant.py).
VARIANT_OF = ("from smtp_reply_exporter.parse import postfix; f = postfix.__file__ or ''; "
              "print('pure' if f.endswith('.py') else 'compiled', f)")


def variant_of(python: str) -> tuple[str, str]:
    """(variant, file of the Postfix parser) of the package `python` imports."""
    out = subprocess.run([python, "-c", VARIANT_OF], capture_output=True, text=True, check=True, cwd="/",
                         env=clean_env()).stdout.split(maxsplit=1)
    return out[0], out[1].strip()


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def build(variant: str, commit: str) -> Ours:
    """A virtual environment with the package of `commit` installed as `variant`, built once per source
    tree (exporter/, setup.py, pyproject.toml) from a clone, so the checkout is never touched."""
    key = hashlib.sha256(" ".join(git("rev-parse", f"{commit}:{p}") for p in
                                  ("exporter", "setup.py", "pyproject.toml")).encode()).hexdigest()[:12]
    home = CACHE / f"{key}-{variant}"
    python = home / "venv" / "bin" / "python"
    stamp = home / "built"
    if not stamp.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        src = home / "src"
        print(f"building the {variant} variant of {commit[:12]} in {home} ...", flush=True)
        subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(src)], check=True)
        subprocess.run(["git", "-C", str(src), "checkout", "-q", commit], check=True)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(home / "venv")], check=True)
        env = clean_env(**({"SMTP_REPLY_EXPORTER_PURE": "1"} if variant == "pure" else {}))
        t0 = time.monotonic()
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "."], cwd=src, env=env, check=True)
        seconds = time.monotonic() - t0
        found, where = variant_of(str(python))
        if found != variant or not where.startswith(str(home / "venv")):
            raise SystemExit(f"the {variant} build imports the {found} package at {where}")
        shutil.rmtree(src)
        stamp.write_text(f"{commit} {variant} installed in {seconds:.0f} s\n")
    found, where = variant_of(str(python))
    if found != variant:
        raise SystemExit(f"{python} runs the {found} package, not {variant}")
    return Ours(f"ours, {variant}", str(python), variant, stamp.read_text().strip())


def given(python: str) -> Ours:
    found, where = variant_of(python)
    return Ours(f"ours, {found} ({Path(python).name})", python, found, where)


def our_command(ours: Ours, log: Path, level: str = "error") -> list[str]:
    return [ours.python, "-m", "smtp_reply_exporter", "serve", "--log.path", str(log),
            "--web.listen-address", "127.0.0.1:{port}", "--log.level", level]


# ---- the other exporters ----

GO_EXPORTER = "/usr/bin/prometheus-postfix-exporter"
# One increment per line of each shape the generator writes (a status line observes 4 delay stages).
GO_LINE_COUNTERS = {
    "postfix_smtpd_connects_total": 1, "postfix_smtpd_disconnects_total": 1,
    "postfix_smtpd_messages_processed_total": 1, "postfix_cleanup_messages_processed_total": 1,
    "postfix_qmgr_messages_inserted_receipients_count": 1, "postfix_qmgr_messages_removed_total": 1,
    "postfix_smtpd_messages_rejected_total": 1, "postfix_unsupported_log_entries_total": 1,
    "postfix_smtp_delivery_delay_seconds_count": 4,
}


def go_lines(families: Families) -> float:
    return float(sum(s.value / GO_LINE_COUNTERS[s.name]
                     for f in families for s in f.samples if s.name in GO_LINE_COUNTERS))


def go_sum(families: Families) -> float:
    """Every count the Go exporter keeps: its counters and its histograms' observations."""
    return float(sum(s.value for f in families if f.name.startswith("postfix_") for s in f.samples
                     if (f.type == "counter" and s.name.endswith("_total"))
                     or (f.type == "histogram" and s.name.endswith("_count"))))


def go_command(log: Path) -> list[str]:
    return [GO_EXPORTER, f"--postfix.logfile_path={log}", "--web.listen-address=127.0.0.1:{port}",
            "--postfix.showq_path=/nonexistent"]


def go_learn(one_copy: Path, work: Path) -> float:
    """The sum of the Go exporter's counts after one copy of a log (stable for half a second)."""
    seen: list[float] = []

    def settled(families: Families) -> bool:
        seen.append(go_sum(families))
        return len(seen) >= 25 and seen[-1] > 0 and len(set(seen[-25:])) == 1

    run_exporter(go_command(work / "go.log"), work / "go.log", one_copy, settled)
    return seen[-1]


MTAIL = "/usr/bin/mtail"
# Debian's mtail package ships this Postfix program (ported from the same kumina postfix_exporter rules).
MTAIL_POSTFIX_PROGRAM = Path("/usr/share/doc/mtail/examples/postfix.mtail")


def mtail_read(families: Families) -> float:
    return float(sum(s.value for f in families for s in f.samples if s.name == "mtail_log_lines_total"))


def mtail_done(families: Families, expected: dict[str, int]) -> bool:
    """mtail counts every line it reads; once all are read, its reject counter must match the generator's."""
    if mtail_read(families) < expected["lines"]:
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


def mtail_command(log: Path, work: Path) -> list[str]:
    progs = work / "mtail-progs"
    progs.mkdir(exist_ok=True)
    shutil.copy(MTAIL_POSTFIX_PROGRAM, progs)
    return [MTAIL, "--progs", str(progs), "--logs", str(log), "--address", "127.0.0.1", "--port", "{port}"]


# ---- one measured run ----

def run_exporter(cmd: list[str], log: Path, corpus: Path, done: Done,
                 stderr: int | None = subprocess.DEVNULL, env: dict[str, str] | None = None) -> dict[str, float]:
    """One exporter measured: started on an empty file, the whole corpus appended at once, /metrics
    polled until `done` says every line is counted. "{port}" in `cmd` becomes a free port."""
    log.write_text("")
    port = free_port()
    proc = subprocess.Popen([arg.replace("{port}", str(port)) for arg in cmd], cwd=log.parent,
                            stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    try:
        wait_up(port)
        time.sleep(0.5)  # some open the file after they start serving: let them reach its end first
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        with open(corpus, "rb") as src, open(log, "ab") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        scrapes = []
        while True:
            s0 = time.monotonic()
            body = fetch(port)  # timed as Prometheus times a scrape: the request and the whole response
            scrapes.append(time.monotonic() - s0)
            families = list(text_string_to_metric_families(body))  # this client's own parsing is not
            if done(families):
                break
            if s0 - t0 > TIMEOUT:
                raise SystemExit(f"{Path(cmd[0]).name}: not every line counted after {TIMEOUT:.0f} s")
            time.sleep(max(0.0, s0 + POLL_EVERY - time.monotonic()))
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


# ---- corpora ----

class Corpus(NamedTuple):
    title: str  # what it is and what the counts were checked against
    path: Path
    lines: int
    expected: dict[str, int]  # our exact counts ("lines" too)
    go_done: Done | None  # None: the Go exporter and mtail do not read this corpus
    mtail_done: Done | None


def our_done(expected: dict[str, int], against: str) -> Done:
    """Every line read, and then the counts must equal the expected ones exactly."""
    want = Counter({k: v for k, v in expected.items() if k != "lines"})

    def done(families: Families) -> bool:
        if lines_read(families) < expected["lines"]:
            return False
        got = counted(families)
        if got != want:
            raise SystemExit(f"COUNTS DIFFER from {against}:\n  missing {want - got}\n  extra {got - want}")
        return True

    return done


def generated(work: Path, mta: str, lines: int, rfc3339: bool = False) -> Corpus:
    path = work / f"generated-{mta}-{lines}.log"
    expected = generate(str(path), lines, rfc3339=rfc3339, mta=mta)
    n = expected["lines"]
    title = (f"generated: {n:,} {mta} lines ({'RFC 3339' if rfc3339 else 'BSD'} timestamps); "
             "counts checked against the generator's")
    if mta != "postfix":
        return Corpus(title, path, n, expected, None, None)
    return Corpus(title, path, n, expected, lambda fams: go_lines(fams) >= n,
                  lambda fams: mtail_done(fams, expected))


def parsed(python: str, log: Path) -> dict[str, int]:
    """What `parse` of `log` counts, as `serve` would export it."""
    out = subprocess.run([python, "-m", "smtp_reply_exporter", "parse", "--format", "prometheus", str(log)],
                         capture_output=True, text=True, check=True, cwd="/", env=clean_env()).stdout
    families = list(text_string_to_metric_families(out))
    return dict(counted(families))


def replayed(work: Path, lines: int, ours: list[Ours], go: bool) -> Corpus:
    path = work / f"replayed-{lines}.log"
    reps = replay(path, lines, SOURCE)
    per = SOURCE.read_bytes().count(b"\n")
    once: dict[str, int] = {}
    for o in ours:  # every variant's `parse` of the original must agree
        counts = parsed(o.python, SOURCE)
        if once and counts != once:
            raise SystemExit(f"`parse` of {SOURCE.name} differs between variants: {once} != {counts} ({o.name})")
        once = counts
    expected = {k: v * reps for k, v in once.items()} | {"lines": reps * per}
    n = reps * per
    go_done: Done | None = None
    if go:
        (work / "one-copy.log").write_bytes(SOURCE.read_bytes())
        target = reps * go_learn(work / "one-copy.log", work)
        go_done = lambda fams: go_sum(fams) >= target  # noqa: E731
    title = (f"replayed: {n:,} lines, {SOURCE.relative_to(ROOT)} ({per} lines of a real Postfix) x {reps:,}; "
             "counts checked against its `parse` x repetitions")
    return Corpus(title, path, n, expected, go_done, lambda fams: mtail_read(fams) >= n)


# ---- comparisons ----

GO = "go postfix_exporter"
MTAIL_NAME = "mtail (postfix.mtail)"
Runner = Callable[[Corpus, Path], dict[str, float]]


class Result(NamedTuple):
    lines: int
    medians: dict[str, tuple[float, float, float]]  # exporter -> (wall s, CPU s, peak RSS MiB)
    scrape_p99: dict[str, float]  # ours -> worst p99 of /metrics while catching up

    def lines_per_second(self, name: str) -> float:
        return self.lines / self.medians[name][0]

    def ratios(self, name: str, other: str) -> tuple[float, float]:
        """(throughput name / other, CPU per line name / other)."""
        (w1, c1, _), (w2, c2, _) = self.medians[name], self.medians[other]
        return w2 / w1, c1 / c2


def our_runner(ours: Ours) -> Runner:
    def run(corpus: Corpus, work: Path) -> dict[str, float]:
        log = work / "ours.log"
        against = "the generator's" if corpus.title.startswith("generated") else "parse x repetitions"
        return run_exporter(our_command(ours, log), log, corpus.path, our_done(corpus.expected, against),
                            stderr=None, env=clean_env())

    return run


def compare(corpus: Corpus, ours: list[Ours], runs: int, go: bool = True, mtail: bool = True) -> Result:
    """Every exporter on one corpus, interleaved run by run; prints the table."""
    runners: dict[str, Runner] = {o.name: our_runner(o) for o in ours}
    if corpus.go_done is not None and go and os.path.exists(GO_EXPORTER):
        go_done = corpus.go_done
        runners[GO] = lambda c, work: run_exporter(go_command(work / "go.log"), work / "go.log", c.path, go_done)
    if corpus.mtail_done is not None and mtail and os.path.exists(MTAIL) and MTAIL_POSTFIX_PROGRAM.exists():
        mtail_ok = corpus.mtail_done
        runners[MTAIL_NAME] = lambda c, work: run_exporter(mtail_command(work / "mtail.log", work),
                                                          work / "mtail.log", c.path, mtail_ok)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):  # interleaved, so that machine noise hits all alike
            for name, run in runners.items():
                rows[name].append(run(corpus, Path(tmp)))
    n = corpus.lines
    print(f"\n{corpus.title}: equal in every run; median of {runs} run{'s' if runs > 1 else ''}")
    print(f"{'':<26}{'lines/s':>11} {'wall s':>7} {'CPU s':>7} {'CPU us/line':>12} {'peak RSS MiB':>13}")
    medians = {}
    for name, results in rows.items():
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        rss = max(r["rss"] for r in results)
        medians[name] = (wall, cpu, rss)
        print(f"{name:<26}{n / wall:>11,.0f} {wall:>7.2f} {cpu:>7.2f} {1e6 * cpu / n:>12.2f} {rss:>13.1f}")
    result = Result(n, medians, {o.name: max(r["scrape_p99"] for r in rows[o.name]) for o in ours})
    for o in ours:
        for other in (GO, MTAIL_NAME):
            if other in medians:
                throughput, cpu_ratio = result.ratios(o.name, other)
                print(f"{o.name} / {other}: throughput {throughput:.2f}x, CPU per line {cpu_ratio:.2f}x")
    print("/metrics p99 while catching up: " + ", ".join(f"{name} {1000 * v:.1f} ms"
                                                       for name, v in result.scrape_p99.items()), flush=True)
    return result


def run_live(ours: Ours, workdir: Path, seconds: float = 10.0, rate: int = 1000,
             symlink: bool = False) -> dict[str, float]:
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
    cmd = [a.replace("{port}", str(port)) for a in our_command(ours, followed, level="error")]
    proc = subprocess.Popen(cmd, cwd=workdir, env=clean_env())
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
        latencies: list[float] = []
        seen = 0
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


def live(ours: Ours, symlink: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        measured = run_live(ours, Path(tmp), symlink=symlink)
    through = " through a symlink" if symlink else ""
    print(f"{ours.name}: latency{through} at 1,000 lines/s ({measured['lines']:,.0f} lines): "
          f"p50 {1000 * measured['p50']:.1f} ms, p99 {1000 * measured['p99']:.1f} ms; "
          f"idle CPU {100 * measured['idle']:.2f}% of a core", flush=True)
    return measured


# ---- the targets ----

Row = tuple[str, dict[str, tuple[str, bool]]]  # target -> per variant: (measured, met)


def targets(ours: list[Ours], runs: int, lines: int = 1_000_000) -> list[Row]:
    """The performance issues' matrix, then each target per variant with what was measured and whether it is met."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gen = compare(generated(work, "postfix", lines), ours, runs)
        rep = compare(replayed(work, lines, ours, go=os.path.exists(GO_EXPORTER)), ours, runs)
        for f in work.iterdir():
            f.unlink()
        measured = {o.name: live(o) for o in ours}
        big = compare(generated(work, "postfix", 5 * lines), ours, 1, go=False, mtail=False)
        (work / f"generated-postfix-{5 * lines}.log").unlink()
        others = {"RFC 3339": compare(generated(work, "postfix", lines, rfc3339=True), ours, runs, go=False,
                                      mtail=False)}
        for mta in ("exim", "sendmail", "opensmtpd"):
            others[mta] = compare(generated(work, mta, lines), ours, runs)
    rows: list[Row] = []
    for label, result in (("generated", gen), ("replayed", rep)):
        if GO in result.medians:
            ratios = {o.name: result.ratios(o.name, GO) for o in ours}
            rows += [(f"{label}: throughput >= 10x the Go exporter's",
                      {k: (f"{t:.2f}x", t >= 10) for k, (t, _) in ratios.items()}),
                     (f"{label}: CPU per line <= 1/10 of the Go exporter's",
                      {k: (f"{c:.3f}x", c <= 0.1) for k, (_, c) in ratios.items()})]

    def rss(name: str) -> tuple[str, bool]:
        one, five = max(gen.medians[name][2], rep.medians[name][2]), big.medians[name][2]
        return f"{one:.1f} -> {five:.1f} MiB", max(one, five) <= 40 and five <= one * 1.1

    scrape_p99 = {o.name: max(gen.scrape_p99[o.name], rep.scrape_p99[o.name]) for o in ours}
    rows += [
        ("peak RSS <= 40 MiB, flat from 1M to 5M lines", {o.name: rss(o.name) for o in ours}),
        ("latency p99 <= 100 ms at 1,000 lines/s",
         {o.name: (f"{1000 * measured[o.name]['p99']:.1f} ms", measured[o.name]["p99"] <= 0.1) for o in ours}),
        ("idle CPU < 1% of a core",
         {o.name: (f"{100 * measured[o.name]['idle']:.2f}%", measured[o.name]["idle"] < 0.01) for o in ours}),
        ("/metrics p99 < 50 ms while catching up",
         {o.name: (f"{1000 * scrape_p99[o.name]:.1f} ms", scrape_p99[o.name] < 0.05) for o in ours}),
    ]
    for name, result in others.items():
        slower = {o.name: gen.lines_per_second(o.name) / result.lines_per_second(o.name) for o in ours}
        rows.append((f"{name}: at most 2x slower than Postfix (BSD)",
                     {k: (f"{v:.2f}x", v <= 2) for k, v in slower.items()}))
    print(f"\n{'target':<52}" + "".join(f"{o.name:>24}" for o in ours))
    for target, by_variant in rows:
        print(f"{target:<52}" + "".join(
            f"{by_variant[o.name][0]:>19} {'yes' if by_variant[o.name][1] else ' NO':>4}" for o in ours))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--variant", action="append", choices=("compiled", "pure"),
                    help="our variant(s) to build and measure (repeatable; default both, or none with --python)")
    ap.add_argument("--python", action="append", default=[], metavar="PY",
                    help="also measure the package this interpreter has installed, as it is (repeatable)")
    ap.add_argument("--rev", default="HEAD", help="the commit the variants are built from (default HEAD)")
    ap.add_argument("--replayed", action="store_true",
                    help="the corpus replayed from the real Postfix log instead of a generated one")
    ap.add_argument("--rfc3339", action="store_true", help="RFC 3339 timestamps instead of BSD syslog ones")
    ap.add_argument("--no-go", action="store_true", help="skip the Go postfix_exporter even when installed")
    ap.add_argument("--no-mtail", action="store_true", help="skip mtail even when installed")
    ap.add_argument("--no-live", action="store_true", help="skip the latency and idle-CPU measurement")
    ap.add_argument("--mta", choices=tuple(SESSIONS), default="postfix",
                    help="the generated corpus's MTA (the Go exporter and mtail's shipped program read Postfix only)")
    ap.add_argument("--targets", action="store_true",
                    help="the whole matrix (both corpora; 5M lines, RFC 3339, every MTA) and every target judged")
    ap.add_argument("--live-only", action="store_true", help="only the latency and idle-CPU measurement")
    ap.add_argument("--symlink", action="store_true", help="latency through a symlink to a log in another directory")
    args = ap.parse_args()
    variants = args.variant if args.variant is not None else ([] if args.python else ["compiled", "pure"])
    commit = git("rev-parse", f"{args.rev}^{{commit}}")
    ours = [build(v, commit) for v in variants] + [given(p) for p in args.python]
    for o in ours:
        print(f"{o.name}: {o.python} [{o.where}]")
    if args.live_only:
        for o in ours:
            live(o, args.symlink)
        return
    if args.targets:
        targets(ours, args.runs, args.lines)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = (replayed(work, args.lines, ours, go=not args.no_go and os.path.exists(GO_EXPORTER))
                  if args.replayed else generated(work, args.mta, args.lines, args.rfc3339))
        compare(corpus, ours, args.runs, go=not args.no_go, mtail=not args.no_mtail)
    if not args.no_live:
        for o in ours:
            live(o, args.symlink)


if __name__ == "__main__":
    main()
