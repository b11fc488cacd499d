"""Log sources: files, standard input, the journal, a syslog receiver; one protocol, one hand-over type.

Every source hands over `Lines` when the ingest thread polls it: files are read right then, sources
with threads of their own (stdin, journal, syslog) hand over what they queued since. A source
writes only its own `SourceStats` (through `add`) and imports nothing of Prometheus.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import NamedTuple, Protocol

from ..stats import SourceStats


class Lines(NamedTuple):
    data: bytes  # complete lines, each ending with "\n"
    origin: str | None = None  # the file or stream they came from, unwrapped (CRI, Docker) per origin; None: never
    cursor: str | None = None  # where a resumable source stands after these lines (the journal)


class Source(Protocol):
    name: str  # the `source` label of its health metrics
    stats: SourceStats

    def start(self, wake: threading.Event) -> None:
        """Open (failing fast, e.g. on a port that cannot be bound); set `wake` when there is work."""

    def poll(self) -> Iterator[Lines]:
        """What arrived since the last poll; called on the ingest thread only."""

    def stop(self) -> None:
        """Stop producing and join its threads; what was handed over is still polled once more."""
