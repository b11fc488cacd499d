"""Health counters of one log source, kept apart from Prometheus so that sources need not import it.

Sources write from their own threads (syslog receivers, the journal reader) while the ingest thread
counts lines and a scrape copies them: every write goes through `add`, under the one lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

BAD_LINE_REASONS = ("invalid_utf8", "nul_bytes", "too_long", "malformed", "dropped", "implausible")


@dataclass
class SourceStats:
    lines: int = 0
    lines_with_replies: int = 0
    lines_unrecognised: int = 0
    bad_lines: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BAD_LINE_REASONS, 0))
    bytes: int = 0
    rotations: int = 0
    truncations: int = 0
    open_errors: int = 0
    connections_refused: int = 0  # syslog receiver: TCP connections over the limit
    kernel_drops: int | None = None  # UDP syslog: datagrams the kernel dropped (None: not a UDP source)
    last_line_time: float = field(default_factory=time.time)  # start time until the first line
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to counters by name: a field above or a bad-line reason. Safe from any thread."""
        with self._lock:
            for name, n in counts.items():
                if name in self.bad_lines:
                    self.bad_lines[name] += n
                else:
                    setattr(self, name, (getattr(self, name) or 0) + n)
            if counts.get("lines"):
                self.last_line_time = time.time()

    def copy(self) -> SourceStats:
        with self._lock:
            return replace(self, bad_lines=dict(self.bad_lines))



