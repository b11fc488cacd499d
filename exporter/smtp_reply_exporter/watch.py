"""Wake the ingest loop when a watched log directory changes; the loop's periodic poll is the safety net.

watchdog drops events when the kernel queue overflows, so events only shorten the wait; they are
never the only way a change is noticed.
"""

from __future__ import annotations

import logging
import os
import threading

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)


class _Wake(FileSystemEventHandler):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.event.set()


def start(directories: set[str], wake: threading.Event) -> BaseObserver | None:
    """An observer that sets `wake` on any change in `directories`; None when none could be watched."""
    observer = Observer()
    handler = _Wake(wake)
    watched = 0
    for directory in sorted(directories):
        if not os.path.isdir(directory):
            log.info("%s: not a directory yet; relying on polling for it", directory)
            continue
        try:
            observer.schedule(handler, directory, recursive=False)
            watched += 1
        except OSError as err:
            log.warning("cannot watch %s (%s); relying on polling", directory, err)
    if watched < len(directories):
        log.warning("file events for %d of %d log directories; the others are polled", watched, len(directories))
    if not watched:
        return None
    observer.daemon = True
    try:
        observer.start()
    except OSError as err:
        log.warning("cannot start the file watcher (%s); relying on polling", err)
        return None
    return observer
