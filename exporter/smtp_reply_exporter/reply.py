"""The value types that join the stages: what one log line says about SMTP replies.

Plain classes rather than NamedTuples: compiled by mypyc, building one and reading its fields are direct
struct operations (a NamedTuple is built by a Python-level __new__, some thousand instructions a line).
Both compare and hash by value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

# server: our MTA replied to a client; client: a remote server replied to us
ROLES: Final[tuple[str, ...]] = ("server", "client")
DELIVERY_STATUSES: Final[tuple[str, ...]] = ("sent", "deferred", "bounced", "expired")
COMMANDS: Final = frozenset({
    "CONNECT", "EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "QUIT", "RSET", "NOOP",
    "AUTH", "STARTTLS", "VRFY", "EXPN", "ETRN", "XCLIENT", "XFORWARD", "HELP",
})


class Reply:
    """One SMTP reply, `times` times (a disconnect line proves several at once)."""

    __slots__ = ("_hash", "code", "command", "enhanced", "inferred", "role", "times")

    def __init__(self, role: str, command: str, code: str, enhanced: str, inferred: bool = False,
                 times: int = 1) -> None:
        self.role = role
        self.command = command  # one of COMMANDS, or "" when the line does not say
        self.code = code  # validated basic code, e.g. "455"
        self.enhanced = enhanced  # validated enhanced code, e.g. "4.5.3", or ""
        self.inferred = inferred  # proven by another field of the line, not written as a number
        self.times = times
        self._hash = hash(self._key())  # replies are dictionary keys of every chunk's tally

    def _key(self) -> tuple[str, str, str, str, bool, int]:
        return self.role, self.command, self.code, self.enhanced, self.inferred, self.times

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and self._key() == other._key()

    def __hash__(self) -> int:
        return self._hash

    def __iter__(self) -> Iterator[str | bool | int]:
        """role, command, code, enhanced, inferred, times: a reply reads as the record it is."""
        return iter(self._key())

    def __repr__(self) -> str:
        return "Reply({!r}, {!r}, {!r}, {!r}, inferred={!r}, times={!r})".format(*self._key())


class Parsed:
    """What a recognised line holds; an unrecognised line has no Parsed at all."""

    __slots__ = ("deliveries", "delivery", "folded", "implausible", "mta", "replies", "warnings")

    def __init__(self, mta: str, replies: tuple[Reply, ...] = (), delivery: str | None = None,
                 warnings: tuple[Reply, ...] = (), deliveries: int = 1, implausible: bool = False,
                 folded: bool = False) -> None:
        self.mta = mta
        self.replies = replies
        self.delivery = delivery
        self.warnings = warnings  # logged as a rejection but not sent (Postfix reject_warning)
        self.deliveries = deliveries  # recipients the delivery outcome stands for (Sendmail lists several per line)
        # a number in the line is beyond any real session: counted as a bad line, no replies
        self.implausible = implausible
        # its replies were counted on an earlier line that logged the same reply on the wire
        self.folded = folded

    def _key(self) -> tuple[str, tuple[Reply, ...], str | None, tuple[Reply, ...], int, bool, bool]:
        return (self.mta, self.replies, self.delivery, self.warnings, self.deliveries, self.implausible,
                self.folded)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Parsed) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Parsed({!r}, {!r}, {!r}, warnings={!r}, deliveries={!r}, implausible={!r}, folded={!r})".format(
            *self._key())
