"""Line parsers, one module per MTA, chosen per line by the program name in the syslog header."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..reply import Parsed
from . import postfix, syslog


class MtaParser(NamedTuple):
    name: str
    claims: Callable[[str], bool]  # does this syslog program name belong to the MTA?
    new: Callable[[], Callable[[str, str, str], Parsed]]  # a fresh parser: (program, pid, message) -> Parsed


REGISTRY: dict[str, MtaParser] = {
    postfix.MTA: MtaParser(postfix.MTA, postfix.is_postfix, postfix.PostfixParser),
}
MTA_CHOICES = ("auto", *REGISTRY)


def line_parser(mta: str = "auto") -> Callable[[str], Parsed | None]:
    """A function from one log line to what it says, or None when no parser recognises it."""
    chosen = tuple(REGISTRY.values()) if mta == "auto" else (REGISTRY[mta],)
    candidates = tuple((p.claims, p.new()) for p in chosen)
    split = syslog.split

    def parse_line(line: str) -> Parsed | None:
        head = split(line)
        if head is None:
            return None
        program, pid, msg = head
        for claims, parse in candidates:
            if claims(program):
                return parse(program, pid, msg)
        return None

    return parse_line
