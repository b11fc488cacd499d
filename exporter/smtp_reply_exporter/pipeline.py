"""Wires sources, parse and count: one ingest thread, woken by watchdog, by push sources or by the poll interval.

Files are pulled by followers on this thread; stdin, syslog and the journal push complete lines
through a bounded inbox from their own threads. Only this thread parses and counts.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import threading
import time
from typing import Protocol

from watchdog.observers.api import BaseObserver

from . import state, watch
from .config import Config
from .inbox import Inbox
from .ingest import Ingest
from .journal import SOURCE as JOURNAL
from .journal import JournalReader
from .metrics import Counts
from .stdin import SOURCE as STDIN
from .stdin import StdinReader
from .syslog_server import SyslogServer
from .tail import Follower
from .unwrap import Unwrapper

log = logging.getLogger(__name__)


class PushSource(Protocol):
    def start(self) -> None: ...


class Pipeline:
    def __init__(self, config: Config, counts: Counts) -> None:
        self.config = config
        self.counts = counts
        self.ingest = Ingest(counts, config.mta)
        self.followers: dict[str, tuple[str, Follower]] = {}  # path -> (source pattern, follower)
        self.unwrappers: dict[str, Unwrapper] = {}  # by file path or push source
        self._saved = state.load(config.state_file)
        self.cursors: dict[str, str] = dict(self._saved.cursors)
        self._started = False
        self.wake = threading.Event()
        self.ready = threading.Event()
        self.inbox = Inbox(self.wake)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        self.syslog: list[SyslogServer] = []
        self.journal: JournalReader | None = None
        self._push: list[PushSource] = []

    def start(self) -> None:
        """Open every source (failing fast on a port that cannot be bound), then start counting."""
        config = self.config
        for address in config.syslog_addresses:
            server = SyslogServer(address, self.inbox, self.counts.source(f"syslog:{address}"), f"syslog:{address}")
            server.start()
            self.syslog.append(server)
        if config.stdin:
            self._push.append(StdinReader(sys.stdin.buffer, self.inbox, self.counts.source(STDIN)))
        if config.journal:
            self.journal = JournalReader(
                self.inbox, self.counts.source(JOURNAL), list(config.journal_units),
                list(config.journal_identifiers), config.journal_directory, self.cursors.get(JOURNAL),
                config.from_start,
            )
            self._push.append(self.journal)
        dirs = {os.path.dirname(os.path.abspath(p)) for p in config.files}
        self._observer = watch.start(dirs, self.wake) if dirs and not config.poll_only else None
        self.counts.watch_active = self._observer is not None
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()
        for source in self._push:
            source.start()

    def stop(self) -> None:
        for server in self.syslog:
            server.stop()
        if self.journal is not None:
            self.journal.stop()
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join()
        self._drain_inbox()  # what push sources handed over before they stopped
        observer = self._observer
        if observer is not None:
            observer.stop()
            observer.join()
        self.save_state()
        for _source, follower in self.followers.values():
            follower.close()

    def _run(self) -> None:
        last_save = time.monotonic()
        while not self._stop.is_set():
            self.wake.clear()
            try:
                self.poll()
            except Exception:  # a bug must not silently stop counting: log, count, keep going
                self.counts.ingest_errors += 1
                log.exception("ingest pass failed; retrying at the next poll")
            self.ready.set()
            if self.counts.watch_active and self._observer is not None and not self._observer.is_alive():
                self.counts.watch_active = False
                log.warning("the file watcher stopped; counting goes on with the stat check alone")
            if time.monotonic() - last_save >= self.config.state_interval:
                self.save_state()
                last_save = time.monotonic()
            self.wake.wait(self.config.poll_interval)

    def poll(self) -> None:
        """One pass over every source: find new files, read what was written, follow rotations."""
        self._discover()
        for path, (source, follower) in list(self.followers.items()):
            stats = self.counts.source(source)
            unwrap = self._unwrapper(path)
            for chunk in follower.poll():
                self.ingest.feed(chunk, stats, unwrap=unwrap)
        self._drain_inbox()
        self._started = True

    def _drain_inbox(self) -> None:
        for chunk in self.inbox.drain():
            self.ingest.feed(chunk.data, self.counts.source(chunk.source), unwrap=self._unwrapper(chunk.source))
            if chunk.cursor is not None:
                self.cursors[chunk.source] = chunk.cursor

    def _unwrapper(self, key: str) -> Unwrapper:
        """The container-format state of one file or push source, made when it is first read."""
        unwrap = self.unwrappers.get(key)
        if unwrap is None:
            unwrap = self.unwrappers[key] = Unwrapper()
        return unwrap

    def _discover(self) -> None:
        for pattern in self.config.files:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            for path in matches:
                if path in self.followers:
                    continue
                # Files present at start begin at their end (or the saved position); files that
                # appear later are new and read whole.
                follower = Follower(
                    path,
                    self.counts.source(pattern),
                    from_start=self.config.from_start or self._started,
                    resume=self._saved.positions.pop(os.path.abspath(path), None),
                )
                self.followers[path] = (pattern, follower)

    def save_state(self) -> None:
        if not self.config.state_file:
            return
        positions = {}
        for path, (_source, follower) in self.followers.items():
            pos = follower.position
            if pos is not None:
                positions[os.path.abspath(path)] = pos
        state.save(self.config.state_file, state.State(positions, dict(self.cursors)))
