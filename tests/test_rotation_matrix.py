"""mtail's habit: one test per rotation mode, each run on the log directly and through a symlink in
another directory, with file events and with polls alone (--tail.poll-only), each with exact counts.

With events, nothing polls but the events (the periodic check is an hour away): a mode whose events
do not arrive, e.g. for a symlink's target, times out. Poll-only polls where the test says. Either
way a last explicit poll then proves that nothing more comes (no line read twice).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from smtp_reply_exporter.sources.file import FileSource, Watcher
from smtp_reply_exporter.stats import SourceStats


class Tail:
    """A file source as the pipeline runs it, recording every line it hands over."""

    def __init__(self, pattern: Path, events: bool) -> None:
        self.events = events
        self.stats = SourceStats()
        self.wake, self._stop = threading.Event(), threading.Event()
        self.watcher = Watcher(self.wake) if events else None
        self.source = FileSource(str(pattern), self.stats, self.watcher)
        self.lines: list[bytes] = []
        if self.watcher is not None:
            self.watcher.start()
        self.source.start(self.wake)
        if self.watcher is not None:
            assert self.watcher.active, "no directory could be watched (inotify instances used up?)"
        self._thread: threading.Thread | None = None
        if events:
            self._thread = threading.Thread(target=self._on_events, name="tail-on-events")
            self._thread.start()
        else:
            self._pass()

    def _on_events(self) -> None:
        while True:
            self.wake.wait()
            if self._stop.is_set():
                return
            self.wake.clear()
            self._pass()

    def _pass(self) -> None:
        for lines in self.source.poll():
            self.lines += lines.data.split(b"\n")[:-1]

    def settle(self, count: int) -> None:
        """Poll-only: one poll. Events: until the events have brought `count` lines in all."""
        if self.events:
            try:
                wait_for(lambda: len(self.lines) >= count, timeout=10, what=f"{count} lines on file events")
            except AssertionError as err:
                raise AssertionError(f"{err}; got {self.lines}, {self.stats}") from None
        else:
            self._pass()

    def finish(self) -> list[bytes]:
        """Stop the event-driven reader and poll once more: everything it will ever hand over."""
        self._stop_thread()
        self._pass()
        return self.lines

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self.wake.set()
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self._stop_thread()
        self.source.stop()
        if self.watcher is not None:
            self.watcher.stop()
        self.source.close()


def write(path: Path, *lines: str, end: str = "\n") -> None:
    with open(path, "a") as f:
        f.write("".join(line + end for line in lines))


def numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i}" for i in range(n)]


def encoded(*groups: list[str]) -> list[bytes]:
    return [line.encode() for group in groups for line in group]


class Layout:
    """Where the log really is (`real/`) and the name the exporter is given: the same file, or a
    symlink to it in another directory (`links/`, as /var/log/containers/*.log are)."""

    def __init__(self, root: Path, via_link: bool) -> None:
        self.via_link = via_link
        self.real, self.links = root / "real", root / "links"
        self.real.mkdir()
        self.links.mkdir()

    def name(self, real_name: str) -> Path:
        """The path to follow for real/<real_name>, making its symlink when followed through one."""
        if not self.via_link:
            return self.real / real_name
        link = self.links / real_name
        link.symlink_to(self.real / real_name)
        return link


@pytest.fixture(params=[False, True], ids=["direct", "symlink"])
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> Layout:
    return Layout(tmp_path, request.param)


@pytest.fixture(params=[True, False], ids=["events", "poll-only"])
def tails(request: pytest.FixtureRequest) -> Iterator[object]:
    made: list[Tail] = []

    def make(pattern: Path) -> Tail:
        tail = Tail(pattern, events=request.param)
        made.append(tail)
        return tail

    yield make
    for tail in made:
        tail.close()


def followed_empty_log(layout: Layout, tails) -> tuple[Path, Tail]:  # type: ignore[no-untyped-def]
    """real/mail.log, empty, and a Tail following it (directly or through its symlink)."""
    log = layout.real / "mail.log"
    log.write_text("")
    return log, tails(layout.name("mail.log"))


def test_rename_and_create(layout, tails):
    log, t = followed_empty_log(layout, tails)
    write(log, *numbered("a", 3))
    t.settle(3)
    write(log, *numbered("a-late", 1))
    os.rename(log, layout.real / "mail.log.1")
    write(log, *numbered("b", 3))
    t.settle(7)
    assert t.finish() == encoded(numbered("a", 3), numbered("a-late", 1), numbered("b", 3))
    assert t.stats.rotations == 1


@pytest.mark.parametrize(("prefix", "count"), [("c", 2), ("c-longer-than-before", 20)],
                         ids=["copytruncate", "copytruncate-regrown-past-the-old-offset"])
def test_copytruncate(layout, tails, prefix, count):
    log, t = followed_empty_log(layout, tails)
    write(log, *numbered("a", 5))
    t.settle(5)
    write(log, *numbered("b", 2))  # with polls alone, unread when the copy is made
    shutil.copyfile(log, layout.real / "mail.log.1")
    os.truncate(log, 0)
    write(log, *numbered(prefix, count))  # regrown: with polls alone, the size never looked smaller
    t.settle(7 + count)
    assert t.finish() == encoded(numbered("a", 5), numbered("b", 2), numbered(prefix, count))
    assert t.stats.truncations == 1


def test_delete_and_recreate(layout, tails):
    log, t = followed_empty_log(layout, tails)
    write(log, *numbered("a", 2))
    t.settle(2)
    log.unlink()
    t.settle(2)
    write(log, *numbered("b", 2))
    t.settle(4)
    assert t.finish() == encoded(numbered("a", 2), numbered("b", 2))
    assert t.stats.rotations == 1


def test_symlink_flip(layout, tails):
    day1, day2 = layout.real / "2026-11-28.log", layout.real / "2026-11-29.log"
    day1.write_text("")
    day2.write_text("")
    current = layout.real / "current"
    current.symlink_to(day1)
    t = tails(layout.name("current"))  # through a symlink: links/current -> real/current -> the day's file
    write(day1, *numbered("a", 3))
    t.settle(3)
    write(day1, *numbered("late", 1))  # to the old day before the flip
    write(day2, *numbered("b", 2))
    (layout.real / "current.tmp").symlink_to(day2)
    os.replace(layout.real / "current.tmp", current)
    t.settle(6)
    assert t.finish() == encoded(numbered("a", 3), numbered("late", 1), numbered("b", 2))
    assert t.stats.rotations == 1


def test_deletion_of_a_globbed_file(layout, tails):
    for name in ("a.log", "b.log"):
        (layout.real / name).write_text("")
        layout.name(name)
    t = tails((layout.links if layout.via_link else layout.real) / "*.log")
    write(layout.real / "a.log", *numbered("a", 2))
    write(layout.real / "b.log", *numbered("b", 2))
    t.settle(4)
    (layout.real / "a.log").unlink()  # a pod goes: its log, and its symlink
    if layout.via_link:
        (layout.links / "a.log").unlink()
    write(layout.real / "b.log", *numbered("b-after", 1))
    t.settle(5)
    assert sorted(t.finish()) == sorted(encoded(numbered("a", 2), numbered("b", 2), numbered("b-after", 1)))
    assert [Path(p).name for p in t.source.followers] == ["b.log"]
    assert not [fd for fd in os.listdir("/proc/self/fd") if _deleted(fd, layout.real)]


def _deleted(fd: str, directory: Path) -> bool:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return target.startswith(str(directory)) and target.endswith(" (deleted)")


def test_partial_line_across_rotation(layout, tails):
    log, t = followed_empty_log(layout, tails)
    write(log, "a1\npar", end="")
    t.settle(1)
    write(log, "tial")  # the line is finished in the old file, then it is rotated
    os.rename(log, layout.real / "mail.log.1")
    write(log, "unfinished", end="")
    t.settle(2)
    os.rename(log, layout.real / "mail.log.2")  # rotated again without its newline: flushed as a line
    write(log, "b")
    t.settle(4)
    assert t.finish() == [b"a1", b"partial", b"unfinished", b"b"]
    assert t.stats.rotations == 2
