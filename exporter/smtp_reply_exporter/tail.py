"""Following one log file by name across rotation and truncation, yielding complete lines only.

Rotation is a new inode under the watched name: drain the old descriptor to its end, then read the
new file from offset 0. Truncation is a size below our offset: read again from 0. A partial last
line is held until its newline arrives. No watchdog here: callers decide when to poll.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .metrics import SourceStats

log = logging.getLogger(__name__)
READ_SIZE = 1 << 18
MAX_LINE = 1 << 16  # longer lines are cut here and counted as too_long (the rest is skipped)


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
        if len(complete) > MAX_LINE and max(map(len, complete.split(b"\n"))) > MAX_LINE:
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

    @property
    def position(self) -> Position | None:
        if self._fd is None:
            return None
        return Position(self._id[0], self._id[1], self._read_pos - len(self.lines.pending))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def poll(self) -> Iterator[bytes]:
        """Yield chunks of complete lines written since the last poll, following rotation."""
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
            self.close()
            self.stats.rotations += 1
            log.info("%s: rotated, reading the new file from the start", self.path)
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
        directory = os.path.dirname(self.path) or "."
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            old = os.path.join(directory, name)
            try:
                st = os.stat(old)
            except OSError:
                continue
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

