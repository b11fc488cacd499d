"""Wires tail, parse and count: one ingest thread, woken by watchdog or by the poll interval."""

from __future__ import annotations

import glob
import logging
import os
import threading
import time

from . import state, watch
from .ingest import Ingest
from .metrics import Counts
from .tail import Follower, Position

log = logging.getLogger(__name__)


class Pipeline:
    """Follows every file matching the configured paths (or globs) and counts their lines."""

    def __init__(
        self,
        patterns: list[str],
        counts: Counts,
        mta: str = "auto",
        from_start: bool = False,
        state_file: str | None = None,
        poll_interval: float = 1.0,
        state_interval: float = 5.0,
    ) -> None:
        self.patterns = patterns
        self.counts = counts
        self.ingest = Ingest(counts, mta)
        self.from_start = from_start
        self.state_file = state_file
        self.poll_interval = poll_interval
        self.state_interval = state_interval
        self.followers: dict[str, tuple[str, Follower]] = {}  # path -> (source pattern, follower)
        self._resume = state.load(state_file)
        self._started = False
        self.wake = threading.Event()
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: object = None

    def start(self) -> None:
        dirs = {os.path.dirname(os.path.abspath(p)) for p in self.patterns}
        self._observer = watch.start(dirs, self.wake)
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join()
        observer = self._observer
        if observer is not None:
            observer.stop()  # type: ignore[attr-defined]
            observer.join()  # type: ignore[attr-defined]
        self.save_state()
        for _source, follower in self.followers.values():
            follower.close()

    def _run(self) -> None:
        last_save = time.monotonic()
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a bug must not silently stop counting: log, count, keep going
                self.counts.ingest_errors += 1
                log.exception("ingest pass failed; retrying at the next poll")
            self.ready.set()
            if time.monotonic() - last_save >= self.state_interval:
                self.save_state()
                last_save = time.monotonic()
            self.wake.wait(self.poll_interval)
            self.wake.clear()

    def poll(self) -> None:
        """One pass over every source: find new files, read what was written, follow rotations."""
        self._discover()
        for source, follower in list(self.followers.values()):
            stats = self.counts.source(source)
            for chunk in follower.poll():
                self.ingest.feed(chunk, stats)
        self._started = True

    def _discover(self) -> None:
        for pattern in self.patterns:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            for path in matches:
                if path in self.followers:
                    continue
                # Files present at start begin at their end (or the saved position); files that
                # appear later are new and read whole.
                stats = self.counts.source(pattern)
                follower = Follower(
                    path,
                    stats,
                    from_start=self.from_start or self._started,
                    resume=self._resume.pop(os.path.abspath(path), None),
                )
                self.followers[path] = (pattern, follower)

    def positions(self) -> dict[str, Position]:
        out = {}
        for path, (_source, follower) in self.followers.items():
            pos = follower.position
            if pos is not None:
                out[os.path.abspath(path)] = pos
        return out

    def save_state(self) -> None:
        if self.state_file:
            state.save(self.state_file, self.positions())
