"""Line parsers, one module per MTA, chosen per line by the program name in the syslog header, or by the
shape of a message that comes without one (`journalctl -o cat`, a shipper that keeps the message field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

from ..reply import Parsed
from . import exim, opensmtpd, postfix, sendmail, syslog
from .limits import MAX_CACHED_TEXT, remember
from .message import MessageParser


class MtaParser(NamedTuple):
    name: str
    claims: Callable[[str], bool]  # does this syslog program name belong to the MTA?
    new: Callable[[], MessageParser]  # a fresh parser (some keep a little state across lines)
    message: Callable[[str], bool]  # does a line without syslog header have a shape this MTA writes?
    # (parser, line) -> what a line without syslog header says if it is this MTA's own log, else None
    bare: Callable[[Any, str], Parsed | None] | None = None


# In the order messages without header are tried: the most distinctive shapes first.
REGISTRY: Final[dict[str, MtaParser]] = {
    opensmtpd.MTA: MtaParser(opensmtpd.MTA, opensmtpd.is_opensmtpd, opensmtpd.OpenSmtpdParser, opensmtpd.is_message),
    exim.MTA: MtaParser(exim.MTA, exim.is_exim, exim.EximParser, exim.is_message, exim.EximParser.own_line),
    sendmail.MTA: MtaParser(sendmail.MTA, sendmail.is_sendmail, sendmail.SendmailParser, sendmail.is_message),
    postfix.MTA: MtaParser(postfix.MTA, postfix.is_postfix, postfix.PostfixParser, postfix.is_message),
}
MTA_CHOICES: Final[tuple[str, ...]] = ("auto", *REGISTRY)
# auto: a syslog header names the program; a line without one is read as a bare message. syslog: lines
# without header are not recognised (but Exim's own mainlog). message: no line has a header.
LOG_FORMATS: Final[tuple[str, ...]] = ("auto", "syslog", "message")
MAX_PROGRAMS: Final = 1024


class LineParser:
    """One log line to what it says, or None when no parser recognises it. Keeps each MTA's parser (their
    state across lines) and the parser of each program name seen."""

    def __init__(self, mta: str = "auto", log_format: str = "auto") -> None:
        chosen = tuple(REGISTRY.values()) if mta == "auto" else (REGISTRY[mta],)
        parsers = {p.name: p.new() for p in chosen}
        self._candidates = [(p.claims, parsers[p.name]) for p in chosen]
        self._bare = [(p.bare, parsers[p.name]) for p in chosen if p.bare is not None]
        # With one MTA named, every message is its own; else the first whose shape it has.
        self._shapes = [(p.message, parsers[p.name]) for p in chosen] if mta == "auto" else []
        self._only = parsers[mta] if mta != "auto" else None
        self._log_format = log_format
        self._programs: dict[str, MessageParser | None] = {}  # program name -> its MTA's parser, learnt once

    def __call__(self, line: str) -> Parsed | None:
        return self.parse(line)

    def parse(self, line: str) -> Parsed | None:
        if self._log_format == "message":
            return self._message(line)
        # Fast path for "... host program[pid]: message": find the header by its "]: " instead of a
        # regex; the few lines it does not fit (Exim's own log, headers without pid) take the slow path.
        end = line.find("]: ")
        if end >= 0:
            start = line.rfind(" ", 0, end) + 1
            bracket = line.find("[", start, end)
            if bracket >= 0:
                pid = line[bracket + 1 : end]
                if pid.isdigit():
                    program = line[start:bracket]
                    parser = self._programs.get(program, self)  # self: not learnt yet
                    if parser is self:
                        parser = self._parser_of(program)
                    if isinstance(parser, MessageParser):
                        return parser.parse(program, pid, line[end + 3 :])
        if self._bare and line[4:5] == "-" and line[10:11] == " ":  # "2026-11-28 12:01:11 ...": Exim's own log
            for own_line, own in self._bare:
                parsed = own_line(own, line)
                if parsed is not None:
                    return parsed
        header = syslog.split(line) or syslog.split_hostless(line)
        if header is not None:
            program, pid, msg = header
            for claims, parser in self._candidates:
                if claims(program):
                    return parser.parse(program, pid, msg)
            return None
        return self._message(line) if self._log_format == "auto" else None

    def _message(self, line: str) -> Parsed | None:
        if self._only is not None:
            return self._only.parse("", "", line)
        for shaped, parser in self._shapes:
            if shaped(line):
                return parser.parse("", "", line)
        return None

    def _parser_of(self, program: str) -> MessageParser | None:
        found = next((parser for claims, parser in self._candidates if claims(program)), None)
        if len(program) <= MAX_CACHED_TEXT:  # a hostile line's 64 KiB "program" is not kept
            remember(self._programs, program, found, MAX_PROGRAMS)
        return found


def line_parser(mta: str = "auto", log_format: str = "auto") -> LineParser:
    """A function from one log line to what it says, or None when no parser recognises it."""
    return LineParser(mta, log_format)
