"""Makes bench/corpus/postfix-e2e.log: the log a real Postfix writes for the end-to-end test's traffic.

It runs what `test_counters_equal_the_replies_on_the_wire` (tests/e2e/test_postfix_e2e.py) runs, a
private Postfix relaying to the SMTP sinks and one round of `traffic()`, waits until the log is quiet
and copies it; then it checks that `parse` of the copy counts exactly the replies said on the wire
(what our client received from Postfix's smtpd and what the sinks sent to Postfix's smtp client).
Needs root and Debian's postfix; run it under the e2e lock, as the tests are:

    flock /tmp/e2e.lock python3 bench/postfix_e2e_log.py [--out bench/corpus/postfix-e2e.log]

`bench/run.py` replays the file to 1M lines (queue ids and timestamps shifted per repetition).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "corpus" / "postfix-e2e.log"


def quiet(log: Path, seconds: float = 3.0, timeout: float = 60.0) -> None:
    """Wait until the log has not grown for `seconds` (qmgr's `removed` lines follow the deliveries)."""
    deadline, size, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = log.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.2)
    raise SystemExit(f"{log} still growing after {timeout:.0f} s")


def parsed(log: Path) -> Counter[tuple[str, str, str, str]]:
    out = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "jsonl", str(log)],
                         capture_output=True, text=True, check=True).stdout
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for line in out.splitlines():
        obj = json.loads(line)
        counts[(obj["role"], obj["command"], obj["code"], obj["enhanced_code"])] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    # The harness is test code (untyped, found through sys.path): imported by name.
    e2e_postfix: Any = importlib.import_module("e2e.postfix")
    smtp_sink: Any = importlib.import_module("e2e.smtp_sink")
    wire: Any = importlib.import_module("e2e.wire")
    test: Any = importlib.import_module("e2e.test_postfix_e2e")

    root = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-bench-postfix-"))
    os.chmod(root, 0o755)  # Postfix's unprivileged daemons must traverse the path
    sink = smtp_sink.SmtpSink().start()
    sink421 = smtp_sink.SmtpSink("421 4.7.0 Too many connections, slow down").start()
    postfix = e2e_postfix.Postfix(root, sink.port, sink421.port)
    try:
        postfix.start()
        client = test.Client()
        n, _ = test.traffic(postfix, client, 1)
        test.wait_for_deliveries(postfix, n)
        quiet(postfix.log)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(postfix.log, args.out)
        wire_counts = wire.server_expected(client.seen, None) + wire.client_expected(sink, sink421)
    finally:
        postfix.stop()
        sink.stop()
        sink421.stop()
        shutil.rmtree(root, ignore_errors=True)
    from_parse = parsed(args.out)
    if from_parse != wire_counts:
        raise SystemExit(f"parse differs from the wire:\n  missing {wire_counts - from_parse}\n"
                         f"  extra {from_parse - wire_counts}")
    lines = len(args.out.read_bytes().splitlines())
    print(f"{args.out}: {lines} lines, {sum(from_parse.values())} replies; parse equals the wire")


if __name__ == "__main__":
    main()
