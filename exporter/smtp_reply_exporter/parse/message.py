"""What every MTA's parser is: a syslog message, with the program and pid that wrote it, to what it says."""

from __future__ import annotations

from ..reply import Parsed


class MessageParser:
    """A base class rather than a Callable: compiled code calls `parse` directly, not through Python's
    call protocol (a few hundred instructions a line). Some keep a little state across lines."""

    def parse(self, program: str, pid: str, msg: str) -> Parsed:
        raise NotImplementedError
