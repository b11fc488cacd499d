"""Line parsers, one module per MTA, chosen per line by the program name in the syslog header."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..reply import Parsed
from . import exim, opensmtpd, postfix, sendmail, syslog

ParseFn = Callable[[str, str, str], Parsed]  # (program, pid, message) -> Parsed


class MtaParser(NamedTuple):
    name: str
    claims: Callable[[str], bool]  # does this syslog program name belong to the MTA?
    new: Callable[[], ParseFn]  # a fresh parser (some keep a little state across lines)
    bare: Callable[[str], bool] | None = None  # a line without syslog header that is this MTA's own log


def _stateless(fn: ParseFn) -> Callable[[], ParseFn]:
    return lambda: fn


REGISTRY: dict[str, MtaParser] = {
    postfix.MTA: MtaParser(postfix.MTA, postfix.is_postfix, postfix.PostfixParser),
    exim.MTA: MtaParser(exim.MTA, exim.is_exim, exim.EximParser, exim.is_mainlog),
    sendmail.MTA: MtaParser(sendmail.MTA, sendmail.is_sendmail, _stateless(sendmail.parse)),
    opensmtpd.MTA: MtaParser(opensmtpd.MTA, opensmtpd.is_opensmtpd, opensmtpd.OpenSmtpdParser),
}
MTA_CHOICES = ("auto", *REGISTRY)


def line_parser(mta: str = "auto") -> Callable[[str], Parsed | None]:
    """A function from one log line to what it says, or None when no parser recognises it."""
    chosen = tuple(REGISTRY.values()) if mta == "auto" else (REGISTRY[mta],)
    parsers = {p.name: p.new() for p in chosen}
    candidates = tuple((p.claims, parsers[p.name]) for p in chosen)
    bare = tuple((p.bare, parsers[p.name]) for p in chosen if p.bare is not None)
    split, split_hostless = syslog.split, syslog.split_hostless

    def by_program(head: tuple[str, str, str] | None) -> Parsed | None:
        if head is not None:
            program, pid, msg = head
            for claims, parse in candidates:
                if claims(program):
                    return parse(program, pid, msg)
        return None

    def parse_line(line: str) -> Parsed | None:
        parsed = by_program(split(line))
        if parsed is not None:
            return parsed
        for is_own, parse in bare:
            if is_own(line):
                return parse("", "", line)
        return by_program(split_hostless(line))

    return parse_line
