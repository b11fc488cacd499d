"""The bounded queue between a source's own thread and the ingest thread.

Bounded, so memory stays flat when input outruns counting: stream sources wait, a UDP receiver
drops and counts instead (a datagram cannot be held back).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from . import Lines

MAX_CHUNKS = 256


class Inbox:
    def __init__(self, max_chunks: int = MAX_CHUNKS) -> None:
        self._queue: queue.Queue[Lines] = queue.Queue(max_chunks)
        self.wake = threading.Event()  # replaced by the pipeline's at start

    def put(self, lines: Lines, block: bool = True, timeout: float | None = None) -> bool:
        """Hand lines over; False when they could not be queued (full, and not blocking or timed out)."""
        try:
            self._queue.put(lines, block, timeout)
        except queue.Full:
            return False
        self.wake.set()
        return True

    def drain(self) -> Iterator[Lines]:
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return


class Queued:
    """A source with a thread of its own (`_run`): what it queues is handed over at each poll."""

    def __init__(self, thread_name: str) -> None:
        self.inbox = Inbox()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self, wake: threading.Event) -> None:
        self.inbox.wake = wake
        self._thread.start()

    def poll(self) -> Iterator[Lines]:
        return self.inbox.drain()

    def _run(self) -> None:
        raise NotImplementedError
