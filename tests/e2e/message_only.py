"""A real log without its headers, as `journalctl -o cat` or a shipper that keeps only the message field
gives it: it must count what the log with headers counts."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from smtp_reply_exporter.parse import syslog

_COUNTED = ("smtp_replies_total{", "smtp_deliveries_total{")
# Exim's own prefix: its timestamp (kept in what it sends to syslog unless syslog_timestamp is false)
# and, with +pid, "[pid] "
_EXIM_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? (?=\[\d+\] )")


def messages(lines: list[str]) -> list[str]:
    """The message of each line, its syslog header cut off."""
    out = []
    for line in lines:
        head = syslog.split(line) or syslog.split_hostless(line)
        out.append(line if head is None else head[2])
    return out


def exim_without_timestamps(lines: list[str]) -> list[str]:
    """Exim's mainlog lines as it sends them to syslog with `syslog_timestamp = false` (and +pid)."""
    return [_EXIM_STAMP.sub("", line, count=1) for line in lines]


def counted(lines: list[str], *args: str) -> tuple[list[str], float]:
    """The reply and delivery series `parse --format prometheus` gives for `lines`, and the lines it did
    not recognise."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "mail.log"
        log.write_text("".join(line + "\n" for line in lines))
        out = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "prometheus",
                              *args, str(log)], capture_output=True, text=True, check=True).stdout
    series = sorted(line for line in out.splitlines() if line.startswith(_COUNTED))
    unrecognised = sum(float(line.rsplit(" ", 1)[1]) for line in out.splitlines()
                       if line.startswith("smtp_exporter_lines_unrecognised_total{"))
    return series, unrecognised


def assert_counts_equal_without_headers(with_headers: list[str], without: list[str], mta: str) -> None:
    """`without` counts the same as `with_headers`, found by its messages' shape and with `--mta` and
    `--log.format message`, where every line is the MTA's."""
    assert without != with_headers
    full, _ = counted(with_headers)
    assert any(line.startswith("smtp_replies_total{") for line in full)
    assert counted(without)[0] == full
    bare, unrecognised = counted(without, "--mta", mta, "--log.format", "message")
    assert (bare, unrecognised) == (full, 0)
