"""Following one log file by name across rotation and truncation, yielding complete lines only.

Rotation is a new inode under the watched name: drain the old descriptor to its end, then read the
new file from offset 0. Truncation is a size below our offset: read again from 0. A partial last
line is held until its newline arrives. No watchdog here: callers decide when to poll.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .stats import SourceStats

log = logging.getLogger(__name__)
READ_SIZE = 1 << 18
MAX_LINE = 1 << 16  # longer lines are cut here and counted as too_long (the rest is skipped)
HEAD = 1024  # bytes compared to recognise a rotated copy of the file being read


class LineSplitter:
    """Complete lines out of a byte stream: holds a partial last line, cuts over-long ones."""

    def __init__(self, stats: SourceStats, name: str) -> None:
        self.stats = stats
        self.name = name
        self.pending = b""
        self._skipping = False  # inside an over-long line, dropping bytes until its newline

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
        self.stats.bad_lines["too_long"] += 1
        log.warning("%s: line longer than %d bytes cut and counted", self.name, MAX_LINE)


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


@dataclass(frozen=True)
class Position:
    """Where reading stopped: the file's identity and the offset after the last complete line."""

    dev: int
    ino: int
    offset: int


class Follower:
    def __init__(self, path: str, stats: SourceStats, from_start: bool = False, resume: Position | None = None):
        self.path = path
        self.stats = stats
        self._fd: int | None = None
        self._id: tuple[int, int] = (0, 0)
        self._read_pos = 0  # file offset after the last read; the resume offset excludes pending bytes
        self.lines = LineSplitter(stats, path)
        self._first_open = True
        self._from_start = from_start
        self._resume = resume
        self._missing_logged = False
        self._seen: set[tuple[int, int]] = set()  # inodes read whole after a missed rotation
        self._this_poll = self._previous_poll = time.time()

    @property
    def position(self) -> Position | None:
        if self._fd is None:
            return None
        return Position(self._id[0], self._id[1], self._read_pos - len(self.lines.pending))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _siblings(self, rotated_only: bool) -> Iterator[tuple[str, os.stat_result]]:
        """Files beside the log (only those named after it, like mail.log.1, when rotated_only)."""
        directory = os.path.dirname(self.path) or "."
        prefixes = (os.path.basename(self.path) + ".", os.path.basename(self.path) + "-")
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            if rotated_only and not name.startswith(prefixes):
                continue
            path = os.path.join(directory, name)
            try:
                yield path, os.stat(path)
            except OSError:
                continue

    def _missed_rotations(self, current: tuple[int, int], old_head: bytes) -> Iterator[Iterator[bytes]]:
        """Files that were rotated in and out again between two polls (two rotations before we woke).

        They are siblings named after the log (mail.log.1, mail.log-20261128, .gz too), with an inode
        we never read, changed since our previous poll, and not a (compressed) copy of the file we
        were reading: that one starts with the same bytes. Oldest first.
        """
        found = []
        for sibling, st in self._siblings(rotated_only=True):
            ident = (st.st_dev, st.st_ino)
            if ident in (self._id, current) or ident in self._seen or st.st_mtime < self._previous_poll - 1.0:
                continue
            head = _head(sibling)
            if head is None or not head or (old_head and head[: len(old_head)] == old_head[: len(head)]):
                continue
            found.append((st.st_mtime, sibling, ident))
        for _mtime, sibling, ident in sorted(found):
            log.warning("%s: rotated twice between two polls; reading %s whole", self.path, sibling)
            self._seen.add(ident)
            self.stats.rotations += 1
            yield read_whole(sibling, self.stats)

    def poll(self) -> Iterator[bytes]:
        """Yield chunks of complete lines written since the last poll, following rotation."""
        self._previous_poll, self._this_poll = self._this_poll, time.time()
        if self._resume is not None:
            yield from self._resume_rotated()
        if self._fd is None and not self._open():
            return
        yield from self._drain()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # rotated away and not yet re-created: keep the old descriptor
        except OSError as err:
            self._error("stat", err)
            return
        if (st.st_dev, st.st_ino) != self._id:
            yield from self._drain()  # whatever the writer added before it let go of the old file
            if self.lines.pending:
                yield self.lines.flush()
            assert self._fd is not None
            old_head = os.pread(self._fd, HEAD, 0)
            self.close()
            self.stats.rotations += 1
            log.info("%s: rotated, reading the new file from the start", self.path)
            for missed in self._missed_rotations((st.st_dev, st.st_ino), old_head):
                yield from missed
            if self._open(rotated=True):
                yield from self._drain()
        elif st.st_size < self._read_pos:
            self.stats.truncations += 1
            log.info("%s: truncated, reading again from the start", self.path)
            self._read_pos = 0
            self.lines.reset()
            assert self._fd is not None
            os.lseek(self._fd, 0, os.SEEK_SET)
            yield from self._drain()

    def _resume_rotated(self) -> Iterator[bytes]:
        """After a restart, if the file we were reading was rotated meanwhile, finish it first.

        The old file is found by its inode among its siblings (mail.log.1, ...); a compressed or
        deleted one cannot be found, and then the new file is read from its start.
        """
        resume = self._resume
        assert resume is not None
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == (resume.dev, resume.ino):
                return
        except OSError:
            pass
        self._resume = None
        self._first_open = False  # the current file is new since we stopped: read it whole
        for old, st in self._siblings(rotated_only=False):
            if (st.st_dev, st.st_ino) == (resume.dev, resume.ino) and resume.offset <= st.st_size:
                log.info("%s: rotated while stopped; finishing %s first", self.path, old)
                sibling = Follower(old, self.stats, resume=resume)
                yield from sibling.poll_once()
                if sibling.lines.pending:
                    yield sibling.lines.flush()
                sibling.close()
                self.stats.rotations += 1
                return

    def poll_once(self) -> Iterator[bytes]:
        """Read what is there now, without rotation checks (for a file no longer written)."""
        if self._fd is None and not self._open():
            return
        yield from self._drain()

    def _open(self, rotated: bool = False) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if not self._missing_logged:
                log.info("%s: does not exist yet, waiting for it", self.path)
                self._missing_logged = True
            self._first_open = False  # a file that appears later is new: read it whole
            return False
        except OSError as err:
            self._error("open", err)
            return False
        st = os.fstat(fd)
        self._fd, self._id = fd, (st.st_dev, st.st_ino)
        self._missing_logged = False
        self.lines.reset()
        offset = 0
        resume, self._resume = self._resume, None
        if resume is not None and (resume.dev, resume.ino) == self._id and resume.offset <= st.st_size:
            offset = resume.offset
        elif self._first_open and not rotated and not self._from_start and resume is None:
            offset = st.st_size
        self._first_open = False
        self._read_pos = offset
        os.lseek(fd, offset, os.SEEK_SET)
        return True

    def _drain(self) -> Iterator[bytes]:
        assert self._fd is not None
        while True:
            try:
                data = os.read(self._fd, READ_SIZE)
            except OSError as err:
                self._error("read", err)
                return
            if not data:
                return
            self._read_pos += len(data)
            chunk = self.lines.feed(data)
            if chunk:
                yield chunk

    def _error(self, what: str, err: OSError) -> None:
        self.stats.open_errors += 1
        log.warning("%s: cannot %s: %s", self.path, what, err)


def _open_log(path: str) -> BinaryIO:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def _head(path: str) -> bytes | None:
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
        stats.open_errors += 1
        log.warning("%s: cannot read: %s", path, err)
    if last := splitter.flush():
        yield last
