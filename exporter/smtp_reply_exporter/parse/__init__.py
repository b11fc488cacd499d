"""Line parsers, one module per MTA, chosen per line by the program name in the syslog header, or by the
shape of a message that comes without one (`journalctl -o cat`, a shipper that keeps the message field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..reply import Parsed
from . import exim, opensmtpd, postfix, sendmail, syslog
from .limits import MAX_CACHED_TEXT

ParseFn = Callable[[str, str, str], Parsed]  # (program, pid, message) -> Parsed


class MtaParser(NamedTuple):
    name: str
    claims: Callable[[str], bool]  # does this syslog program name belong to the MTA?
    new: Callable[[], ParseFn]  # a fresh parser (some keep a little state across lines)
    message: Callable[[str], bool]  # does a line without syslog header have a shape this MTA writes?
    # (parser, line) -> what a line without syslog header says if it is this MTA's own log, else None
    bare: Callable[[Any, str], Parsed | None] | None = None


def _stateless(fn: ParseFn) -> Callable[[], ParseFn]:
    return lambda: fn


# In the order messages without header are tried: the most distinctive shapes first.
REGISTRY: dict[str, MtaParser] = {
    opensmtpd.MTA: MtaParser(opensmtpd.MTA, opensmtpd.is_opensmtpd, opensmtpd.OpenSmtpdParser, opensmtpd.is_message),
    exim.MTA: MtaParser(exim.MTA, exim.is_exim, exim.EximParser, exim.is_message, exim.EximParser.own_line),
    sendmail.MTA: MtaParser(sendmail.MTA, sendmail.is_sendmail, _stateless(sendmail.parse), sendmail.is_message),
    postfix.MTA: MtaParser(postfix.MTA, postfix.is_postfix, postfix.PostfixParser, postfix.is_message),
}
MTA_CHOICES = ("auto", *REGISTRY)
# auto: a syslog header names the program; a line without one is read as a bare message. syslog: lines
# without header are not recognised (but Exim's own mainlog). message: no line has a header.
LOG_FORMATS = ("auto", "syslog", "message")
MAX_PROGRAMS = 1024


def line_parser(mta: str = "auto", log_format: str = "auto") -> Callable[[str], Parsed | None]:
    """A function from one log line to what it says, or None when no parser recognises it."""
    chosen = tuple(REGISTRY.values()) if mta == "auto" else (REGISTRY[mta],)
    parsers = {p.name: p.new() for p in chosen}
    candidates = tuple((p.claims, parsers[p.name]) for p in chosen)
    bare = tuple((p.bare, parsers[p.name]) for p in chosen if p.bare is not None)
    split, split_hostless = syslog.split, syslog.split_hostless
    # With one MTA named, every message is its own; else the first whose shape it has.
    shapes = tuple((p.message, parsers[p.name]) for p in chosen) if mta == "auto" else None
    only = parsers[mta] if mta != "auto" else None

    def message(line: str) -> Parsed | None:
        if only is not None:
            return only("", "", line)
        for shaped, parse in shapes or ():
            if shaped(line):
                return parse("", "", line)
        return None

    if log_format == "message":
        return message

    def by_program(head: tuple[str, str, str] | None) -> Parsed | None:
        if head is not None:
            program, pid, msg = head
            for claims, parse in candidates:
                if claims(program):
                    return parse(program, pid, msg)
        return None

    programs: dict[str, ParseFn | None] = {}  # program name -> its MTA's parser, learnt once

    def parser_of(program: str) -> ParseFn | None:
        found = next((parse for claims, parse in candidates if claims(program)), None)
        if len(program) <= MAX_CACHED_TEXT:  # a hostile line's 64 KiB "program" is not kept
            if len(programs) >= MAX_PROGRAMS:
                programs.clear()
            programs[program] = found
        return found

    def parse_line(line: str) -> Parsed | None:
        # Fast path for "... host program[pid]: message": find the header by its "]: " instead of a
        # regex; the few lines it does not fit (Exim's own log, headers without pid) take the slow path.
        head, found, msg = line.partition("]: ")
        if found:
            program, bracket, pid = head[head.rfind(" ") + 1 :].partition("[")
            if bracket and pid.isdigit():
                try:
                    parse = programs[program]
                except KeyError:
                    parse = parser_of(program)
                if parse is not None:
                    return parse(program, pid, msg)
        if bare and line[4:5] == "-" and line[10:11] == " ":  # "2026-11-28 12:01:11 ...": Exim's own log
            for own_line, parser in bare:
                parsed = own_line(parser, line)
                if parsed is not None:
                    return parsed
        header = split(line) or split_hostless(line)
        if header is not None:
            return by_program(header)
        return message(line) if log_format == "auto" else None

    return parse_line
