"""Lines out of bytes: complete lines only, over-long ones cut; whole (rotated, gzipped) files read.

Shared by the file follower, standard input and `parse`.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Iterator
from typing import BinaryIO

from .stats import SourceStats

log = logging.getLogger(__name__)
READ_SIZE = 1 << 16  # a chunk is counted with the GIL held throughout (compiled code never yields it): 64 KiB
# keeps that under ~2 ms, so that a scrape waits little while a backlog is read
MAX_LINE = 1 << 16  # longer lines are cut here and counted as too_long (the rest is skipped)
HEAD = 1024  # bytes compared to recognise a rotated copy of a file
WARN_EVERY = 60.0  # seconds between two warnings of one kind about one file


class Warnings:
    """At most one warning per kind per WARN_EVERY seconds for one file; the rest go to debug.

    A file that cannot be read is retried at every poll: without a limit, an exporter whose own log
    lands in the watched directory wakes itself with every warning it writes."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        level = logging.DEBUG if last is not None and now - last < WARN_EVERY else logging.WARNING
        if level == logging.WARNING:
            self._last[kind] = now
        log.log(level, message, *args)


class LineSplitter:
    """Complete lines out of a byte stream: holds a partial last line, cuts over-long ones."""

    def __init__(self, stats: SourceStats, name: str) -> None:
        self.stats = stats
        self.name = name
        self.pending = b""
        self._skipping = False  # inside an over-long line, dropping bytes until its newline
        self.warnings = Warnings()

    def reset(self) -> None:
        self.pending, self._skipping = b"", False

    def feed(self, data: bytes) -> bytes:
        """The complete lines that `data` finishes, each ending with a newline."""
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return b""
            self._skipping = False
            data = data[nl + 1 :]
        buf = self.pending + data if self.pending else data
        cut = buf.rfind(b"\n") + 1
        complete, self.pending = buf[:cut], buf[cut:]
        if len(self.pending) > MAX_LINE:
            self._count_too_long()
            complete += self.pending[:MAX_LINE] + b"\n"
            self.pending, self._skipping = b"", True
        if len(complete) > MAX_LINE and has_long_line(complete):
            complete = self._cut_long_lines(complete)
        return complete

    def flush(self) -> bytes:
        """The partial last line as a line of its own, for a stream that will never complete it."""
        line, self.pending = (self.pending + b"\n" if self.pending else b""), b""
        return line

    def _cut_long_lines(self, chunk: bytes) -> bytes:
        """Complete lines longer than MAX_LINE that arrived whole in one read are cut too."""
        out = []
        for line in chunk.split(b"\n"):
            if len(line) > MAX_LINE:
                self._count_too_long()
                line = line[:MAX_LINE]
            out.append(line)
        return b"\n".join(out)

    def _count_too_long(self) -> None:
        self.stats.add(too_long=1)
        self.warnings.warn("too_long", "%s: line longer than %d bytes cut and counted", self.name, MAX_LINE)


def has_long_line(chunk: bytes) -> bool:
    """Does a line of `chunk` (which ends with a newline) exceed MAX_LINE? Checked a window of
    MAX_LINE bytes at a time, so a chunk of short lines costs a few searches, not a split."""
    start = 0
    while len(chunk) - start > MAX_LINE:
        nl = chunk.rfind(b"\n", start, start + MAX_LINE + 1)
        if nl < 0:
            return True
        start = nl + 1
    return False


def _open_log(path: str) -> BinaryIO:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def head_of(path: str) -> bytes | None:
    """The first bytes of a log file's content (gunzipped), to tell copies of a file apart."""
    try:
        with _open_log(path) as f:
            return f.read(HEAD)
    except (OSError, EOFError):
        return None


def read_whole(path: str, stats: SourceStats) -> Iterator[bytes]:
    """Complete lines of a whole file, gunzipped when its name says so."""
    splitter = LineSplitter(stats, path)
    try:
        with _open_log(path) as f:
            while data := f.read(READ_SIZE):
                if chunk := splitter.feed(data):
                    yield chunk
    except (OSError, EOFError) as err:
        stats.add(open_errors=1)
        log.warning("%s: cannot read: %s", path, err)
    if last := splitter.flush():
        yield last
