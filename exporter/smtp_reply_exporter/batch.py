"""The counts of one chunk of lines, built by the ingest without locks and merged into the process's counts
(metrics.py) in one step. Nothing here knows the exposition library: the compiled hot path imports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .delays import BUCKETS
from .stats import SourceStats

ReplyKey = tuple[str, str, str, str, str]  # mta, role, command, code, enhanced_code
RemoteKey = tuple[str, str, str, str, str]  # mta, provider, command, code, enhanced_code (client role only)
SessionKey = tuple[str, str, str, str]  # mta, role, end, command


@dataclass
class Histogram:
    """Observations per bucket of delays.BUCKETS (the last one +Inf) and their sum; cumulated at scrape time."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, index: int, seconds: float, times: int = 1) -> None:
        self.counts[index] += times
        self.total += seconds * times

    def add(self, other: Histogram) -> None:
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.total += other.total

    def copy(self) -> Histogram:
        return Histogram(list(self.counts), self.total)


@dataclass
class Batch:
    """Counts of one chunk of lines and its line tallies, built without locks and merged in one step."""

    replies: dict[ReplyKey, int] = field(default_factory=dict)
    warnings: dict[ReplyKey, int] = field(default_factory=dict)
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    unparsed: dict[tuple[str, str], int] = field(default_factory=dict)  # (mta, program): lines, see unparsed.py
    remote: dict[RemoteKey, int] = field(default_factory=dict)  # client-role replies by provider, see details.py
    sessions: dict[SessionKey, int] = field(default_factory=dict)
    delays: dict[tuple[str, str], Histogram] = field(default_factory=dict)  # (mta, status)
    stages: dict[str, Histogram] = field(default_factory=dict)  # Postfix's delays=a/b/c/d, by stage
    lines: int = 0
    lines_unrecognised: int = 0
    lines_with_replies: int = 0
    bytes: int = 0


class Merges(Protocol):
    """Where a chunk's counts go (metrics.Counts)."""

    def merge(self, batch: Batch, stats: SourceStats) -> None: ...
