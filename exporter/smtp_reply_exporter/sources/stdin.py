"""`--log.path -`: lines from standard input, for `kubectl logs -f`, `docker logs -f` and pipelines."""

from __future__ import annotations

import logging
import threading
from typing import BinaryIO

from ..stats import SourceStats
from ..tail import LineSplitter
from . import Lines
from .inbox import Queued

log = logging.getLogger(__name__)
SOURCE = "-"


class StdinSource(Queued):
    def __init__(self, stream: BinaryIO, stats: SourceStats) -> None:
        super().__init__("stdin")
        self.name, self.stats = SOURCE, stats
        self.stream = stream
        self.eof = threading.Event()
        self._lines = LineSplitter(stats, "standard input")

    def stop(self) -> None:
        """A read of standard input cannot be interrupted: the thread is joined only once it has ended."""
        if self.eof.is_set():
            self._thread.join()

    def _run(self) -> None:
        read = getattr(self.stream, "read1", self.stream.read)
        while data := read(1 << 16):
            if complete := self._lines.feed(data):
                self.inbox.put(Lines(complete, SOURCE))
        if last := self._lines.flush():
            self.inbox.put(Lines(last, SOURCE))
        log.info("standard input closed; metrics stay served")
        self.eof.set()
