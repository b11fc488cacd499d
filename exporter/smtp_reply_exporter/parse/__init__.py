"""Line parsers, one module per MTA, chosen per line by the program name in the syslog header."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..reply import Parsed
from . import postfix, syslog


class MtaParser(NamedTuple):
    name: str
    claims: Callable[[str], bool]  # does this syslog program name belong to the MTA?
    parse: Callable[[str, str], Parsed]  # (program, message) -> Parsed


REGISTRY: dict[str, MtaParser] = {
    postfix.MTA: MtaParser(postfix.MTA, postfix.is_postfix, postfix.parse),
}
MTA_CHOICES = ("auto", *REGISTRY)


def line_parser(mta: str = "auto") -> Callable[[str], Parsed | None]:
    """A function from one log line to what it says, or None when no parser recognises it."""
    candidates = tuple(REGISTRY.values()) if mta == "auto" else (REGISTRY[mta],)
    split = syslog.split

    def parse_line(line: str) -> Parsed | None:
        head = split(line)
        if head is None:
            return None
        program, msg = head
        for parser in candidates:
            if parser.claims(program):
                return parser.parse(program, msg)
        return None

    return parse_line
