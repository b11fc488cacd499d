"""Splitting a syslog-style line into program and message, whatever the timestamp format."""

from __future__ import annotations

import re
from typing import Final

# BSD ("Nov 28 12:01:11", "Jan  1 00:00:00"), RFC 3339 ("2026-11-28T12:01:11.123456+00:00"),
# optionally followed by more fields before the host; then "host program[pid]: message".
# Possessive: host and program end where the next character cannot continue them, so giving characters
# back could never let the rest match; without it a long word costs a step back per character.
HEADER: Final = re.compile(
    r"(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} ++\d{1,2} \d\d:\d\d:\d\d(?:\.\d++)?"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d++)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?:<[\w.]++> )?(?:\S++ )?([^\s\[\]:]++)(?:\[(\d++)\])?: "
)
# Shippers that drop the timestamp: "host program[pid]: message". Tried last, pid required.
HOSTLESS: Final = re.compile(r"(?:\S++ )?([^\s\[\]:]++)\[(\d++)\]: ")


def split(line: str) -> tuple[str, str, str] | None:
    """(program, pid, message) of a syslog line, or None when the line has no such header."""
    m = HEADER.match(line)
    if m is None:
        return None
    return m.group(1), m.group(2) or "", line[m.end():]


def split_hostless(line: str) -> tuple[str, str, str] | None:
    """(program, pid, message) of a line without timestamp, e.g. "mx exim[12]: ..."."""
    m = HOSTLESS.match(line)
    if m is None:
        return None
    return m.group(1), m.group(2), line[m.end():]
