"""Sendmail: rejections by its rulesets and milters (server role), and remote replies in `stat=` (client role)."""

from __future__ import annotations

import re

from ..reply import Parsed
from .limits import MAX_COUNT
from .replytext import replies_in

MTA = "sendmail"
_RULESET_COMMANDS = {
    "check_relay": "CONNECT",
    "check_mail": "MAIL",
    "check_rcpt": "RCPT",
    "check_data": "DATA",
    "check_eoh": "DATA",
    "check_eom": "DATA",
    "check_etrn": "ETRN",
    "check_vrfy": "VRFY",
    "check_expn": "EXPN",
}
_MILTER_COMMANDS = {"connect": "CONNECT", "helo": "HELO", "from": "MAIL", "to": "RCPT", "data": "DATA",
                    "eoh": "DATA", "eom": "DATA"}
_RULESET = re.compile(r"\bruleset=(\w+),.*?\breject=")
_MILTER = re.compile(r"\bMilter(?: \w+)?: (\w+)\b.*?\breject=")
_STAT = re.compile(r"\bstat=(\w+)(?::? (.*))?")
_REPLY = re.compile(r"\breply=")
_PERMANENT_DSN = re.compile(r"\bdsn=5\.")
NOTHING = Parsed(MTA)
IMPLAUSIBLE = Parsed(MTA, implausible=True)


def is_sendmail(program: str) -> bool:
    return program == "sendmail" or program.startswith("sm-")


def parse(program: str, pid: str, msg: str) -> Parsed:
    # Each search starts where its literal first occurs: the same match as searching the whole message.
    if "reject=" in msg:
        at = msg.find("ruleset=")
        m = _RULESET.search(msg, at) if at >= 0 else None
        if m is not None:
            return Parsed(MTA, replies_in(msg, "server", _RULESET_COMMANDS.get(m.group(1), ""), m.end()))
        at = msg.find("Milter")
        m = _MILTER.search(msg, at) if at >= 0 else None
        if m is not None:
            command = _MILTER_COMMANDS.get(m.group(1).lower(), "")
            return Parsed(MTA, replies_in(msg, "server", command, m.end()))
    at = msg.find("stat=")
    if at >= 0:
        m = _STAT.search(msg, at)
        if m is not None:
            stat, rest = m.group(1), m.group(2) or ""
            status = "sent" if stat == "Sent" else "deferred" if stat == "Deferred" else None
            if status is None and _PERMANENT_DSN.search(msg):
                status = "bounced"
            if status is None:
                return NOTHING
            recipients = _recipients(msg)
            if recipients > MAX_COUNT:
                return IMPLAUSIBLE
            if status == "sent":  # stat=Sent carries the remote's text, not its code
                return Parsed(MTA, (), status, deliveries=recipients)
            # the remote's reply: in reply= (newer Sendmail), else in the text of stat=Deferred
            at = msg.find("reply=")
            said = _REPLY.search(msg, at) if at >= 0 else None
            replies = replies_in(msg, "client", "", said.end()) if said else replies_in(rest, "client", "")
            return Parsed(MTA, replies, status, deliveries=recipients)
    return NOTHING


def _recipients(msg: str) -> int:
    """A delivery line names every recipient of one attempt: "to=<a>,<b>,<c>, delay=..."."""
    start = msg.find("to=")
    end = msg.find(", delay=", start)
    if start < 0 or end < 0:
        return 1
    return msg.count(">,<", start, end) + 1
