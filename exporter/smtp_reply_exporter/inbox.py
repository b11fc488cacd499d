"""The hand-over from push sources (stdin, syslog, journal) to the one ingest thread.

Bounded, so memory stays flat when input outruns counting: stream sources wait, a UDP receiver
drops and counts instead (a datagram cannot be held back).
"""

from __future__ import annotations

import queue
import threading
from typing import NamedTuple

MAX_CHUNKS = 256


class Chunk(NamedTuple):
    source: str
    data: bytes  # complete lines, each ending with "\n"
    cursor: str | None = None  # where a resumable source is after these lines (journal)


class Inbox:
    def __init__(self, wake: threading.Event, max_chunks: int = MAX_CHUNKS) -> None:
        self._queue: queue.Queue[Chunk] = queue.Queue(max_chunks)
        self._wake = wake

    def put(self, chunk: Chunk, block: bool = True, timeout: float | None = None) -> bool:
        """Hand a chunk over; False when it could not be queued (full and not blocking)."""
        try:
            self._queue.put(chunk, block, timeout)
        except queue.Full:
            return False
        self._wake.set()
        return True

    def drain(self) -> list[Chunk]:
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out
