"""The syslog wire format: RFC 3164 and RFC 5424 messages, RFC 6587 framing on TCP.

Each message becomes one log line in the usual "timestamp host program[pid]: message" form; the
receiver (sockets, threads, limits) is `sources/syslog.py`. (The module keeps its old name for
`fuzz/fuzz_parsers.py`.)
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

MAX_MESSAGE = 1 << 16

_PRI = re.compile(rb"<(\d{1,3})>")
# RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]. Possessive:
# a field ends at its space and an SD element at its unescaped "]", so nothing is ever given back.
_RFC5424 = re.compile(rb"1 (\S++) (\S++) (\S++) (\S++) (\S++) (-|(?:\[(?:[^\]\\]++|\\.)*+\])++)(?: (.*))?", re.S)


def to_line(message: bytes) -> bytes | None:
    """One syslog message as a log line (without newline), or None when it is malformed."""
    message = message.rstrip(b"\r\n\x00")
    m = _PRI.match(message)
    if m is None or int(m.group(1)) > 191:
        return None
    rest = message[m.end():]
    if b"\n" in rest:
        rest = rest.replace(b"\r\n", b" ").replace(b"\n", b" ")
    v = _RFC5424.fullmatch(rest)
    if v is None:
        return rest if rest else None  # RFC 3164: "Mmm dd hh:mm:ss host tag[pid]: msg" as files have it
    stamp, host, app, procid, _msgid, _sd, msg = v.groups()
    msg = (msg or b"").removeprefix(b"\xef\xbb\xbf")
    pid = b"" if procid == b"-" else b"[" + procid + b"]"
    return b"%s %s %s%s: %s" % (stamp, host, app, pid, msg)


def frames(rfile: BinaryIO | io.BufferedIOBase, malformed: Callable[[], None]) -> Iterator[list[bytes]]:
    """Messages of a TCP stream, in batches: octet counting ("123 <34>1 ...") when a frame starts
    with a digit, else newline framing (RFC 6587). Over-long frames are skipped and counted."""
    while True:
        first = rfile.read(1)
        if not first:
            return
        if first.isdigit():
            digits = first
            while (c := rfile.read(1)).isdigit() and len(digits) < 7:
                digits += c
            if c != b" ":
                malformed()
                rfile.readline(MAX_MESSAGE)  # resynchronise on the next newline
                continue
            size = int(digits)
            if size > MAX_MESSAGE:
                malformed()
                _skip(rfile, size)
                continue
            message = rfile.read(size)
            if len(message) < size:
                return
            yield [message]
        else:
            line = first + rfile.readline(MAX_MESSAGE)
            if not line.endswith(b"\n") and len(line) > MAX_MESSAGE:
                malformed()
                while (rest := rfile.readline(MAX_MESSAGE)) and not rest.endswith(b"\n"):
                    pass
                continue
            yield [line]


def _skip(rfile: BinaryIO | io.BufferedIOBase, size: int) -> None:
    while size > 0:
        got = rfile.read(min(size, 1 << 16))
        if not got:
            return
        size -= len(got)
