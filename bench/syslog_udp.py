"""The UDP syslog rate counted without loss: `serve` with a UDP receiver on 127.0.0.1, a second process
sending datagrams at a fixed rate; every datagram must be counted, or show as dropped (queue full) or
as a kernel drop (receive buffer full). Prints one row per rate.

    python3 bench/syslog_udp.py [--rates 5000,10000,20000,40000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import cpu_seconds, free_port, scrape, wait_up

LINE = (b"<22>Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; "
        b"from=<a@b> to=<c@d> proto=ESMTP helo=<x>")


def send(port: int, rate: int, seconds: float) -> None:
    """Paced in 1 ms steps: the datagrams due so far, then a short sleep."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        start, sent, total = time.monotonic(), 0, int(rate * seconds)
        while sent < total:
            due = min(total, int((time.monotonic() - start) * rate)) - sent
            for _ in range(due):
                udp.sendto(LINE, ("127.0.0.1", port))
            sent += max(due, 0)
            time.sleep(0.001)


def value(families: list, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(sum(s.value for f in families for s in f.samples
                     if s.name == name and labels.items() <= s.labels.items()))


def measure(rate: int, seconds: float) -> tuple[float, float, float, float]:
    """(counted, dropped from the queue, dropped by the kernel, exporter CPU s) for one rate."""
    port = free_port()
    web = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "smtp_reply_exporter", "serve", "--syslog.listen-address",
                             f"udp://127.0.0.1:{port}", "--web.listen-address", f"127.0.0.1:{web}",
                             "--log.level", "error"])
    try:
        wait_up(web)
        cpu0 = cpu_seconds(proc.pid)
        sender = subprocess.Popen([sys.executable, __file__, "--send", str(port), "--rates", str(rate),
                                   "--seconds", str(seconds)])
        sender.wait()
        total = int(rate * seconds)
        deadline = time.monotonic() + 30
        while True:
            fams = scrape(web)
            counted = value(fams, "smtp_exporter_lines_read_total")
            dropped = value(fams, "smtp_exporter_lines_bad_total", reason="dropped")
            kernel = value(fams, "smtp_exporter_syslog_udp_kernel_drops_total")
            if counted + dropped + kernel >= total or time.monotonic() > deadline:
                return counted, dropped, kernel, cpu_seconds(proc.pid) - cpu0
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", default="5000,10000,20000,40000")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--send", type=int, help=argparse.SUPPRESS)  # the sending process
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    if args.send:
        send(args.send, rates[0], args.seconds)
        return
    print(f"{'datagrams/s':>12}{'sent':>10}{'counted':>10}{'queue drops':>13}{'kernel drops':>14}{'CPU s':>8}")
    for rate in rates:
        counted, dropped, kernel, cpu = measure(rate, args.seconds)
        sent = int(rate * args.seconds)
        print(f"{rate:>12,}{sent:>10,}{counted:>10,.0f}{dropped:>13,.0f}{kernel:>14,.0f}{cpu:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
