"""The value types that join the stages: what one log line says about SMTP replies."""

from __future__ import annotations

from typing import NamedTuple

ROLES = ("server", "client")  # server: our MTA replied to a client; client: a remote server replied to us
DELIVERY_STATUSES = ("sent", "deferred", "bounced", "expired")
COMMANDS = frozenset({
    "CONNECT", "EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "QUIT", "RSET", "NOOP",
    "AUTH", "STARTTLS", "VRFY", "EXPN", "ETRN", "XCLIENT", "XFORWARD", "HELP",
})


class Reply(NamedTuple):
    """One SMTP reply, `times` times (a disconnect line proves several at once)."""

    role: str
    command: str  # one of COMMANDS, or "" when the line does not say
    code: str  # validated basic code, e.g. "455"
    enhanced: str  # validated enhanced code, e.g. "4.5.3", or ""
    inferred: bool = False  # proven by another field of the line, not written as a number
    times: int = 1


class Parsed(NamedTuple):
    """What a recognised line holds; an unrecognised line has no Parsed at all."""

    mta: str
    replies: tuple[Reply, ...] = ()
    delivery: str | None = None
    warnings: tuple[Reply, ...] = ()  # logged as a rejection but not sent (Postfix reject_warning)
    deliveries: int = 1  # recipients the delivery outcome stands for (Sendmail lists several per line)
    implausible: bool = False  # a number in the line is beyond any real session: counted as a bad line, no replies
