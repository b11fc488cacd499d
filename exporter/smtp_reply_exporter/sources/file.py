"""Files as a source: each log followed by name, globs discovered, and file events to wake the reader.

A follower reads one name across rotation and truncation. Rotation is a new inode under the name:
drain the old descriptor to its end, then read the new file from offset 0. Truncation is a size
below our offset, or other bytes before it than the ones we read: read again from 0. A partial
last line is held until its newline arrives.

File events (watchdog) only shorten the wait: the kernel queue overflows and drops them, so every
file is also checked at each poll. Events for files that are not followed cause no work.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from ..stats import SourceStats
from ..tail import HEAD, READ_SIZE, LineSplitter, Warnings, head_of, read_whole
from . import Lines

log = logging.getLogger(__name__)
TAIL = 512  # bytes before the read offset compared at each poll to notice a truncation and regrowth
KNOWN_FILES = 64  # files read to their end that a missed-rotation search must not read again
MTIME_SLACK = 1.0  # seconds: coarse file times on some filesystems
AWAY_GRACE = 10.0  # seconds a file renamed away is kept open while its name has not come back
MAX_LINKS = 40  # symlinks followed in a chain, as the kernel does
MAX_SEPARATE_DIRS = 4  # directories watched one by one; more are watched from their common parent
MAX_TARGET_DIRS = 32  # beyond, when they share no parent below /x/y, the poll finds changes


@dataclass(frozen=True)
class Position:
    """Where reading stopped: the file's identity, the offset after the last complete line, and
    fingerprints of its first bytes and of the bytes before the offset (what was read)."""

    dev: int
    ino: int
    offset: int
    head: str = ""
    tail: str = ""


def fingerprint(data: bytes) -> str:
    return f"{len(data)}:{hashlib.blake2b(data, digest_size=16).hexdigest()}"


def _size(fp: str) -> int:
    return int(fp.partition(":")[0] or 0)


def _matches(fd: int, fp: str, end: int) -> bool:
    """Do the bytes of `fd` before `end` have the fingerprint `fp` (empty: nothing to check)?"""
    size = _size(fp)
    return not fp or (size <= end and fingerprint(os.pread(fd, size, end - size)) == fp)


class Follower:
    """One log by name (through symlinks too). Files are told apart by (device, inode) and by what
    was read from them, never by recency alone."""

    def __init__(self, path: str, stats: SourceStats, from_start: bool = False, resume: Position | None = None):
        self.path = path
        self.stats = stats
        self._fd: int | None = None
        self._id: tuple[int, int] = (0, 0)
        self._read_pos = 0  # file offset after the last read; the resume offset excludes pending bytes
        self._head = b""  # the open file's first bytes, to recognise its copies
        self._tail = b""  # the bytes before _read_pos: when they change, the file was truncated and regrown
        self.lines = LineSplitter(stats, path)
        self._at_end = not from_start  # only the very first attempt to open starts at the end
        self._resume = resume
        self._known: OrderedDict[tuple[int, int], bytes] = OrderedDict()  # files read to their end: head
        self._away_since: float | None = None
        self.gone = False  # deleted (or renamed away for good): read to its end and closed
        self.warnings = Warnings()
        self.chain = link_chain(path)  # the name, its symlinks and their target: where events come from
        self._this_poll = self._previous_poll = time.time()

    @property
    def identity(self) -> tuple[int, int] | None:
        return self._id if self._fd is not None else None

    @property
    def known(self) -> set[tuple[int, int]]:
        return set(self._known)

    @property
    def position(self) -> Position | None:
        if self._fd is None:
            return self._resume  # not reopened yet after a restart: what was saved still holds
        offset = self._read_pos - len(self.lines.pending)
        tail = os.pread(self._fd, TAIL, max(0, offset - TAIL))[: offset - max(0, offset - TAIL)]
        return Position(self._id[0], self._id[1], offset, fingerprint(self._head[:offset]), fingerprint(tail))

    def start(self) -> None:
        """Stand where reading begins (its end, its start or the saved offset), so that this can be
        saved before anything is read; a file rotated while we were stopped waits for the first poll."""
        if self._resume is None or self._identity() == (self._resume.dev, self._resume.ino):
            self._open()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _siblings(self, rotated_only: bool) -> Iterator[tuple[str, os.stat_result]]:
        """Regular files beside the log, and beside its symlink's target (only those named after it,
        like mail.log.1, when rotated_only)."""
        places = {(os.path.dirname(self.path) or ".", os.path.basename(self.path))}
        real = os.path.realpath(self.path)
        places.add((os.path.dirname(real), os.path.basename(real)))
        seen: set[str] = set()
        for directory, base in sorted(places):
            prefixes = (base + ".", base + "-")
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                if (rotated_only and not name.startswith(prefixes)) or path in seen:
                    continue
                seen.add(path)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield path, st

    def _remember(self, ident: tuple[int, int], head: bytes) -> None:
        """A file read to its end: never to be read again as a missed rotation."""
        self._known[ident] = head
        self._known.move_to_end(ident)
        while len(self._known) > KNOWN_FILES:
            self._known.popitem(last=False)

    def _is_known(self, head: bytes) -> bool:
        """Read already: a file we read to its end (whatever its inode now), or a compressed copy of
        one; both start with the same bytes."""
        return any(k and head[: len(k)] == k[: len(head)] for k in self._known.values())

    def _missed_rotations(self, current: tuple[int, int] | None) -> Iterator[Iterator[bytes]]:
        """Files that were rotated in and out again between two polls (two rotations before we woke):
        siblings named after the log (mail.log.1, mail.log-20261128, .gz too), written since our
        previous poll, that we never read. Oldest first."""
        found = []
        for sibling, st in self._siblings(rotated_only=True):
            ident = (st.st_dev, st.st_ino)
            if ident == current or st.st_mtime < self._previous_poll - MTIME_SLACK:
                continue
            head = head_of(sibling)
            if not head or ident in self._known or self._is_known(head):
                continue
            found.append((st.st_mtime, sibling, ident, head))
        for _mtime, sibling, ident, head in sorted(found):
            log.warning("%s: rotated twice between two polls; reading %s whole", self.path, sibling)
            self._remember(ident, head)
            self.stats.add(rotations=1)
            yield read_whole(sibling, self.stats)

    def poll(self) -> Iterator[bytes]:
        """Yield chunks of complete lines written since the last poll, following rotation."""
        self._previous_poll, self._this_poll = self._this_poll, time.time()
        if self._resume is not None:
            yield from self._resume_rotated()
        if self._fd is None and not self._open():
            return
        yield from self._check_truncated()
        yield from self._drain()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            yield from self._away()
            return
        except OSError as err:
            self._error("stat", err)
            return
        self._away_since = None
        if (st.st_dev, st.st_ino) != self._id:
            yield from self._let_go()  # also whatever the writer added before it let go of the old file
            self.stats.add(rotations=1)
            log.info("%s: rotated, reading the new file from the start", self.path)
            # Opened before the search: the file seen by stat() may itself have been rotated away since,
            # and is then one of the missed ones.
            opened = self._open(rotated=True)
            for missed in self._missed_rotations(self._id if opened else None):
                yield from missed
            if opened:
                yield from self._drain()

    def _check_truncated(self) -> Iterator[bytes]:
        """copytruncate: the size fell below our offset, or the bytes before it are no longer the ones
        we read (truncated and written again up to or past the old size). Lines written after our last
        read and before the copy are in the copy: read them first, then the file from its start."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size >= self._read_pos and (not self._tail or self._at(self._fd, self._read_pos) == self._tail):
            return
        self.stats.add(truncations=1)
        log.info("%s: truncated, reading again from the start", self.path)
        copy = self._copy()
        if copy is not None:
            yield from copy
            if self.lines.pending:
                yield self.lines.flush()
        self.lines.reset()
        self._read_pos, self._head, self._tail = 0, b"", b""
        os.lseek(self._fd, 0, os.SEEK_SET)

    def _at(self, fd: int, offset: int) -> bytes:
        return os.pread(fd, len(self._tail), offset - len(self._tail))

    def _copy(self) -> Iterator[bytes] | None:
        """The rest, beyond our offset, of the newest copy of the file we were reading."""
        best: tuple[float, str, tuple[int, int]] | None = None
        for sibling, st in self._siblings(rotated_only=True):
            ident = (st.st_dev, st.st_ino)
            if ident == self._id or ident in self._known or st.st_size < self._read_pos or sibling.endswith(".gz"):
                continue
            try:
                fd = os.open(sibling, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                same = os.pread(fd, len(self._head), 0) == self._head and self._at(fd, self._read_pos) == self._tail
            finally:
                os.close(fd)
            if same and (best is None or st.st_mtime > best[0]):
                best = (st.st_mtime, sibling, ident)
        if best is None:
            return None
        _mtime, sibling, ident = best
        self._remember(ident, self._head)
        log.info("%s: reading what only the copy %s holds", self.path, sibling)
        return self._read_rest(sibling, self._read_pos)

    def _read_rest(self, path: str, offset: int) -> Iterator[bytes]:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                while data := f.read(READ_SIZE):
                    if chunk := self.lines.feed(data):
                        yield chunk
        except OSError as err:
            self._error("read", err)

    def _away(self) -> Iterator[bytes]:
        """The name is gone. A deleted file is read to its end and let go at once (its disk space is
        freed); one renamed away is kept a while, as its writer may still add to it before the new
        file appears."""
        assert self._fd is not None
        if os.fstat(self._fd).st_nlink > 0:
            now = time.monotonic()
            if self._away_since is None:
                self._away_since = now
            if now - self._away_since < AWAY_GRACE:
                return
        yield from self._let_go()
        self.gone = True
        log.info("%s: gone; read to its end and closed", self.path)

    def _let_go(self) -> Iterator[bytes]:
        yield from self._drain()
        if self.lines.pending:
            yield self.lines.flush()
        self._remember(self._id, self._head)
        self.close()
        self._away_since = None

    def _resume_rotated(self) -> Iterator[bytes]:
        """After a restart, if the file we were reading was rotated meanwhile, finish it first.

        The old file is found by its inode among its siblings (mail.log.1, ...); a compressed or
        deleted one cannot be found, and then the new file is read from its start.
        """
        resume = self._resume
        assert resume is not None
        if self._identity() in (None, (resume.dev, resume.ino)):
            return
        for old, st in self._siblings(rotated_only=False):
            if (st.st_dev, st.st_ino) == (resume.dev, resume.ino) and resume.offset <= st.st_size:
                log.info("%s: rotated while stopped; finishing %s first", self.path, old)
                sibling = Follower(old, self.stats, resume=resume)
                yield from sibling.poll_once()
                if sibling.lines.pending:
                    yield sibling.lines.flush()
                self._remember((resume.dev, resume.ino), sibling._head)
                sibling.close()
                self.stats.add(rotations=1)
                self._resume, self._at_end = None, False
                return

    def poll_once(self) -> Iterator[bytes]:
        """Read what is there now, without rotation checks (for a file no longer written)."""
        if self._fd is None and not self._open():
            return
        yield from self._drain()

    def _open(self, rotated: bool = False) -> bool:
        at_end, self._at_end = self._at_end, False  # a file that appears or becomes readable later is new
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not block
        except FileNotFoundError:
            self.warnings.warn("missing", "%s: does not exist yet, waiting for it", self.path)
            return False
        except OSError as err:
            self._error("open", err)
            return False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self.warnings.warn("irregular", "%s: not a regular file; skipped until it is one", self.path)
            return False
        self._fd, self._id = fd, (st.st_dev, st.st_ino)
        self.chain = link_chain(self.path)
        if self.gone:  # deleted, and now a new file under the name: a rotation
            self.gone = False
            self.stats.add(rotations=1)
        self.lines.reset()
        resume, self._resume = self._resume, None
        if resume is not None:
            offset = self._resumed_offset(resume, fd, st)
        else:
            offset = st.st_size if at_end and not rotated else 0
        self._head = os.pread(fd, HEAD, 0)
        self._read_pos = offset
        self._tail = os.pread(fd, TAIL, max(0, offset - TAIL))[: offset - max(0, offset - TAIL)]
        os.lseek(fd, offset, os.SEEK_SET)
        return True

    def _resumed_offset(self, resume: Position, fd: int, st: os.stat_result) -> int:
        """The saved offset when the state file describes this file (its inode, or failing that its
        bytes), else 0, said in the log: never a silent re-read."""
        same_inode = (st.st_dev, st.st_ino) == (resume.dev, resume.ino)
        same_bytes = (resume.offset <= st.st_size and _matches(fd, resume.tail, resume.offset)
                      and _matches(fd, resume.head, _size(resume.head)))
        if same_inode and same_bytes:
            return resume.offset
        if same_inode:
            why = "past its end" if resume.offset > st.st_size else "not what was read"
            log.warning("%s: the saved offset is %s (truncated while stopped); reading it from the start",
                        self.path, why)
        elif same_bytes and resume.head and resume.tail:
            log.info("%s: the same bytes under a new inode; resuming at the saved offset", self.path)
            return resume.offset
        else:
            log.warning("%s: not the file the state file describes (rotated while stopped?); reading it from "
                        "the start", self.path)
        return 0

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
            self._tail = data[-TAIL:] if len(data) >= TAIL else (self._tail + data)[-TAIL:]
            if len(self._head) < HEAD:
                self._head = os.pread(self._fd, HEAD, 0)
            chunk = self.lines.feed(data)
            if chunk:
                yield chunk

    def _error(self, what: str, err: OSError) -> None:
        self.stats.add(open_errors=1)
        self.warnings.warn(what, "%s: cannot %s: %s", self.path, what, err)


def link_chain(path: str) -> list[str]:
    """The absolute path, every symlink it goes through, and the file it ends at."""
    chain = [os.path.abspath(path)]
    while len(chain) <= MAX_LINKS:
        try:
            target = os.readlink(chain[-1])
        except OSError:
            break
        chain.append(os.path.normpath(os.path.join(os.path.dirname(chain[-1]), target)))
    return chain


def _static_root(pattern: str) -> str:
    """The deepest directory of a glob that has no wildcard in it."""
    parts = os.path.abspath(pattern).split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or os.sep


class FileSource:
    """One `--log.path` (a file or a glob): its followers, and the directories to watch for them."""

    def __init__(self, pattern: str, stats: SourceStats, watcher: Watcher | None = None, from_start: bool = False,
                 saved: dict[str, Position] | None = None) -> None:
        self.name, self.stats = pattern, stats
        self.pattern = os.path.abspath(pattern)
        self.is_glob = glob.has_magic(pattern)
        self.followers: dict[str, Follower] = {}
        self._watcher = watcher
        self._from_start = from_start
        self._saved = saved if saved is not None else {}
        self._started = False  # files found after the first discovery are new: read whole
        self._skipped: set[str] = set()  # not regular files, warned about once
        self._names: frozenset[str] = frozenset()  # paths whose events wake the reader (read by the watcher)

    def start(self, wake: threading.Event) -> None:
        self._discover()
        for follower in self.followers.values():
            follower.start()
        self._started = True
        self._rewatch()

    def poll(self) -> Iterator[Lines]:
        self._discover()
        self._started = True
        for path, follower in list(self.followers.items()):
            for chunk in follower.poll():
                yield Lines(chunk, path)
            if follower.gone and self.is_glob:
                follower.close()
                del self.followers[path]
        self._rewatch()

    def stop(self) -> None:
        """Events stop here; descriptors stay open for a last poll until `close`."""
        if self._watcher is not None:
            self._watcher.forget(self)

    def close(self) -> None:
        for follower in self.followers.values():
            follower.close()

    def positions(self) -> dict[str, Position]:
        out = {}
        for path, follower in self.followers.items():
            if (pos := follower.position) is not None:
                out[os.path.abspath(path)] = pos
        return out

    def _discover(self) -> None:
        if not self.is_glob:
            if not self.followers:
                self._add(self.name)
            return
        matches = set(glob.glob(self.name))
        self._skipped &= matches
        for path in sorted(matches - self.followers.keys()):
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone again, or a dangling symlink
            if not stat.S_ISREG(st.st_mode):
                if path not in self._skipped:
                    self._skipped.add(path)
                    log.warning("%s: not a regular file; skipped", path)
                continue
            self._add(path, self._read_already(st))

    def _read_already(self, st: os.stat_result) -> bool:
        """Is this file (renamed into the glob, e.g. mail.log.1 for 'mail.log*') one a follower read?"""
        ident = (st.st_dev, st.st_ino)
        return any(f.identity == ident or ident in f.known for f in self.followers.values())

    def _add(self, path: str, at_end: bool = False) -> None:
        from_start = (self._from_start or self._started) and not at_end
        resume = self._saved.pop(os.path.abspath(path), None)
        self.followers[path] = Follower(path, self.stats, from_start=from_start, resume=resume)

    def _rewatch(self) -> None:
        """Watch the directories where the followed files, their symlinks and their targets live (and,
        for a glob, its fixed root and everything under it, where new files appear)."""
        if self._watcher is None:
            return
        names = {self.pattern}
        dirs: set[tuple[str, bool]] = set()
        if self.is_glob:
            dirs.add((_static_root(self.name), glob.has_magic(os.path.dirname(self.pattern))))
        targets: set[str] = set()
        for follower in self.followers.values():
            names.update(follower.chain)
            targets.update(os.path.dirname(p) for p in follower.chain)
        targets = {t for t in targets if not any(r and t.startswith(root + os.sep) for root, r in dirs)}
        if len(targets) > MAX_SEPARATE_DIRS:
            # watchdog spends an inotify instance (128 per user by default) on each watched directory:
            # many symlink targets (/var/log/pods/<pod>/<container>) are watched from their common parent
            common = os.path.commonpath(sorted(targets))
            if common.count(os.sep) >= 2:
                dirs.add((common, True))
                targets = set()
            else:
                targets = set(sorted(targets)[:MAX_TARGET_DIRS])
        dirs.update((d, False) for d in targets)
        self._names = frozenset(names)
        self._watcher.watch(self, dirs)

    def wanted(self, event: FileSystemEvent) -> bool:
        """Does this event concern a followed file, or a file or directory a glob may match?"""
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for path in paths:
            if not path:
                continue
            path = os.fsdecode(path)
            if path in self._names:
                return True
            if self.is_glob and (fnmatch.fnmatch(path, self.pattern)
                                 or (event.is_directory and event.event_type in ("created", "moved"))):
                return True  # a file the glob matches, or a directory where one may appear
        return False


class _Wake(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # our own reads
        if any(source.wanted(event) for source in list(self.watcher.sources)):
            self.watcher.wake.set()


class Watcher:
    """One watchdog observer for every file source: schedules the directories they ask for, and wakes
    the reader only for events they want."""

    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake
        self.sources: list[FileSource] = []
        self._wanted: dict[int, set[tuple[str, bool]]] = {}
        self._watches: dict[tuple[str, bool], ObservedWatch] = {}
        self._failed: set[tuple[str, bool]] = set()
        self._handler = _Wake(self)
        self._observer: BaseObserver = Observer()
        self._observer.daemon = True
        self._started = False

    def start(self) -> bool:
        try:
            self._observer.start()
        except OSError as err:
            log.warning("cannot start the file watcher (%s); relying on polling", err)
            return False
        self._started = True
        return True

    @property
    def active(self) -> bool:
        """Events wake the reader for at least one directory."""
        return self._started and self._observer.is_alive() and bool(self._watches)

    @property
    def alive(self) -> bool:
        return self._started and self._observer.is_alive()

    def watch(self, source: FileSource, dirs: set[tuple[str, bool]]) -> None:
        if source not in self.sources:
            self.sources.append(source)
        self._wanted[id(source)] = dirs
        self._sync()

    def forget(self, source: FileSource) -> None:
        if source in self.sources:
            self.sources.remove(source)
            self._wanted.pop(id(source), None)
            self._sync()

    def _sync(self) -> None:
        if not self._started:
            return
        wanted = set().union(*self._wanted.values()) if self._wanted else set()
        for key in list(self._watches):
            if key not in wanted or not os.path.isdir(key[0]):
                watch = self._watches.pop(key)
                with contextlib.suppress(KeyError, OSError):  # a deleted directory's watch has ended already
                    self._observer.unschedule(watch)
        for key in wanted - self._watches.keys():
            directory, recursive = key
            if not os.path.isdir(directory):
                continue
            try:
                self._watches[key] = self._observer.schedule(self._handler, directory, recursive=recursive)
                self._failed.discard(key)
            except OSError as err:
                if key not in self._failed:
                    self._failed.add(key)
                    log.warning("cannot watch %s (%s); it is polled", directory, err)

    def stop(self) -> None:
        if self._started:
            self._observer.stop()
            self._observer.join()
