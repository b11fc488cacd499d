"""`--log.path -`: lines from standard input, for `kubectl logs -f`, `docker logs -f` and pipelines."""

from __future__ import annotations

import logging
import threading
from typing import BinaryIO

from .inbox import Chunk, Inbox
from .stats import SourceStats
from .tail import LineSplitter

log = logging.getLogger(__name__)
SOURCE = "-"


class StdinReader:
    def __init__(self, stream: BinaryIO, inbox: Inbox, stats: SourceStats) -> None:
        self.stream = stream
        self.inbox = inbox
        self.eof = threading.Event()
        self._lines = LineSplitter(stats, "standard input")
        self._thread = threading.Thread(target=self._run, name="stdin", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        read = getattr(self.stream, "read1", self.stream.read)
        while data := read(1 << 16):
            if complete := self._lines.feed(data):
                self.inbox.put(Chunk(SOURCE, complete))
        if last := self._lines.flush():
            self.inbox.put(Chunk(SOURCE, last))
        log.info("standard input closed; metrics stay served")
        self.eof.set()
