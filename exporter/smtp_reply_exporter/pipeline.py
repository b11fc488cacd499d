"""Wires sources, parse and count: one ingest thread polls every source, woken by file events, by
sources with threads of their own, or by the poll interval. Only this thread parses and counts.

One feed path for all sources; the state file is saved on the interval even in the middle of a
long catch-up, and once right after start (so a kill before the first interval loses nothing).
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from . import providers, state
from .config import Config
from .ingest import Ingest
from .metrics import Counts
from .sources import Lines, Source
from .sources.file import FileSource, Follower, Watcher
from .sources.journal import SOURCE as JOURNAL
from .sources.journal import JournalSource
from .sources.stdin import StdinSource
from .sources.syslog import SyslogSource
from .unwrap import Unwrapper

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, config: Config, counts: Counts) -> None:
        self.config = config
        self.counts = counts
        self.ingest = Ingest(counts, config.mta, providers.load(config.remote_providers), config.log_format)
        saved = state.load(config.state_file)
        self.cursors: dict[str, str] = dict(saved.cursors)
        self.wake = threading.Event()
        self.ready = threading.Event()
        self.passes = 0  # ingest passes over every source (tests count them)
        self.watcher = Watcher(self.wake) if config.files and not config.poll_only else None
        self.files = [FileSource(p, counts.source(p), self.watcher, config.from_start, saved.positions)
                      for p in config.files]
        self.sources: list[Source] = [*self.files]
        self.sources += [SyslogSource(a, counts.source(f"syslog:{a}")) for a in config.syslog_addresses]
        if config.stdin:
            self.sources.append(StdinSource(sys.stdin.buffer, counts.source("-")))
        if config.journal:
            self.sources.append(JournalSource(
                counts.source(JOURNAL), list(config.journal_units), list(config.journal_identifiers),
                config.journal_directory, self.cursors.get(JOURNAL), config.from_start))
        self.unwrappers: dict[str, Unwrapper] = {}  # container-format state by file or stream
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_save = time.monotonic()
        self._watch_lost_logged = False

    @property
    def followers(self) -> dict[str, Follower]:
        """Every followed file by path (over all file sources)."""
        return {path: f for source in self.files for path, f in source.followers.items()}

    def start(self) -> None:
        """Open every source (failing fast on a port that cannot be bound), save where reading begins,
        then start counting."""
        if self.watcher is not None:
            self.watcher.start()  # when it cannot, every file is polled
        started: list[Source] = []
        try:
            for source in self.sources:
                source.start(self.wake)
                started.append(source)
        except BaseException:
            for source in started:
                source.stop()
            self._close()
            raise
        self.counts.watch_active = self.watcher is not None and self.watcher.active
        self.save_state()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop counting, stop the sources, count what they handed over, save, let go of every file."""
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join()
        for source in self.sources:
            source.stop()
        if self._thread is not None:
            self.poll()
        self.save_state()
        self._close()

    def _close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for source in self.files:
            source.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            try:
                self.poll()
            except Exception:  # a bug must not silently stop counting: log, count, keep going
                self.counts.ingest_errors += 1
                log.exception("ingest pass failed; retrying at the next poll")
            self.ready.set()
            self._check_watcher()
            self._save_if_due()
            self.wake.wait(self.config.poll_interval)

    def _check_watcher(self) -> None:
        watcher = self.watcher
        self.counts.watch_active = watcher is not None and watcher.active
        if watcher is not None and not watcher.alive and not self._watch_lost_logged:
            self._watch_lost_logged = True
            log.warning("the file watcher stopped; counting goes on with the stat check alone")

    def poll(self) -> None:
        """One pass over every source: what was written, received or found since the last one."""
        for source in self.sources:
            for lines in source.poll():
                self._feed(source, lines)
        self.passes += 1
        if len(self.unwrappers) > len(self.followers) + 1:  # files let go of: their unwrapping state too
            live = self.followers
            self.unwrappers = {k: v for k, v in self.unwrappers.items() if k in live or k == "-"}

    def _feed(self, source: Source, lines: Lines) -> None:
        unwrap = None
        if lines.origin is not None:
            unwrap = self.unwrappers.get(lines.origin)
            if unwrap is None:
                unwrap = self.unwrappers[lines.origin] = Unwrapper()
        self.ingest.feed(lines.data, source.stats, unwrap=unwrap)
        if lines.cursor is not None:
            self.cursors[source.name] = lines.cursor
        self._save_if_due()

    def _save_if_due(self) -> None:
        """On the interval, whatever the load: a pass that catches up on gigabytes saves as it goes."""
        if self.config.state_file and time.monotonic() - self._last_save >= self.config.state_interval:
            self.save_state()

    def save_state(self) -> None:
        self._last_save = time.monotonic()
        if not self.config.state_file:
            return
        positions = {path: pos for source in self.files for path, pos in source.positions().items()}
        state.save(self.config.state_file, state.State(positions, dict(self.cursors)))
