"""`parse`: read log files once, through the same ingest path as the daemon, and print what was found."""

from __future__ import annotations

import json
import os
import time
from typing import TextIO

from prometheus_client import CollectorRegistry, generate_latest

from . import providers
from .codes import knowledge_base
from .ingest import Ingest, OnParsed, OnUnparsed
from .metrics import Counts, SmtpCollector
from .reply import Parsed
from .tail import read_whole
from .unwrap import Unwrapper


def run(files: list[str], fmt: str, mta: str, out: TextIO, err: TextIO, unparsed: bool = False,
        remote_providers: str | None = None, log_format: str = "auto") -> int:
    """Print what `fmt` asks for; with `unparsed`, only the lines counted in smtp_exporter_lines_unparsed_total."""
    fmt = "unparsed" if unparsed else fmt
    counts = Counts(max_series=1 << 62)
    ingest = Ingest(counts, mta, providers.load(remote_providers), log_format)
    progress = _Progress(err) if err.isatty() else None
    status = 0
    for path in files:
        stats = counts.source(path)
        on_parsed = _jsonl_writer(path, out) if fmt == "jsonl" else None
        on_unparsed = _line_writer(path, out) if fmt == "unparsed" else None
        size = _size(path)
        unwrap = Unwrapper()
        for chunk in read_whole(path, stats):  # gunzipped when the name ends in .gz, as rotated logs do
            ingest.feed(chunk, stats, on_parsed, unwrap, on_unparsed)
            if progress is not None:
                progress.show(path, stats.bytes, size)
        if stats.open_errors:
            err.write(f"smtp-reply-exporter: error: cannot read {path}\n")
            status = 1
    if progress is not None:
        progress.done()
    if fmt == "prometheus":
        registry = CollectorRegistry(auto_describe=True)
        registry.register(SmtpCollector(counts))
        out.write(generate_latest(registry).decode())
    elif fmt == "table":
        out.write(_table(counts))
    return status


def _size(path: str) -> int:
    """The bytes there are to read; 0 (no percentage shown) when unknown, as for a .gz file."""
    if path.endswith(".gz"):
        return 0
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _line_writer(path: str, out: TextIO) -> OnUnparsed:
    """FILE:LINE:text, as grep -Hn prints it."""
    def write(line_no: int, line: str) -> None:
        out.write(f"{path}:{line_no}:{line}\n")

    return write


def _jsonl_writer(path: str, out: TextIO) -> OnParsed:
    def write(line_no: int, parsed: Parsed) -> None:
        for r in parsed.replies:
            obj = {
                "file": path,
                "line": line_no,
                "mta": parsed.mta,
                "role": r.role,
                "command": r.command,
                "code": r.code,
                "enhanced_code": r.enhanced,
                "class": r.code[0] + "xx",
                "delivery_status": parsed.delivery,
                "inferred": r.inferred,
            }
            text = json.dumps(obj) + "\n"
            out.write(text * r.times)

    return write


def _table(counts: Counts) -> str:
    """A summary for a person: replies by role, class and code, with meanings; then deliveries."""
    kb = knowledge_base()
    snap = counts.snapshot()
    replies, warnings, deliveries = snap.replies, snap.warnings, snap.deliveries
    by_code: dict[tuple[str, str], int] = {}
    for (_mta, role, _cmd, code, _enh), n in replies.items():
        by_code[(role, code)] = by_code.get((role, code), 0) + n
    lines = [f"{'ROLE':<7} {'CLASS':<5} {'CODE':<4} {'COUNT':>9}  {'WEIGHT':<19} MEANING"]
    for (role, code), n in sorted(by_code.items(), key=lambda kv: (kv[0][0] != "server", kv[0][1])):
        entry = kb.basic(code)
        lines.append(f"{role:<7} {entry.klass:<5} {code:<4} {n:>9}  {entry.weight:<19} {entry.meaning}")
    if len(lines) == 1:
        lines.append("(no SMTP replies found)")
    total_lines = sum(s.lines for _, s in snap.sources)
    unrec = sum(s.lines_unrecognised for _, s in snap.sources)
    lines.append("")
    lines.append("Deliveries: " + (", ".join(f"{status}={n}" for (_m, status), n in sorted(deliveries.items()))
                                    or "none"))
    if warnings:
        lines.append(f"Reject warnings (logged, not sent): {sum(warnings.values())}")
    drift = sum(snap.unparsed.values())
    lines.append(f"Lines: {total_lines} read, {unrec} not recognised"
                 + (f", {drift} with a reply no rule took (see parse --unparsed)" if drift else ""))
    return "\n".join(lines) + "\n"


class _Progress:
    """One self-overwriting status line on a terminal, at most a few times a second."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.last = 0.0

    def show(self, path: str, done: int, size: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last = now
        pct = f" {100 * done / size:5.1f}%" if size else ""
        self.err.write(f"\r{os.path.basename(path)}: {done / 1e6:.1f} MB{pct}\x1b[K")
        self.err.flush()

    def done(self) -> None:
        self.err.write("\r\x1b[K")
        self.err.flush()
