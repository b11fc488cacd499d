"""Sendmail: rejections by its rulesets and milters (server role), and remote replies in `stat=` (client role)."""

from __future__ import annotations

import re
from typing import Final

from ..reply import Parsed
from .limits import MAX_COUNT, Implausible
from .message import MessageParser
from .pattern import word
from .replytext import replies_in

MTA: Final = "sendmail"
_RULESET_COMMANDS: Final = {
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
_MILTER_COMMANDS: Final = {"connect": "CONNECT", "helo": "HELO", "from": "MAIL", "to": "RCPT", "data": "DATA",
                    "eoh": "DATA", "eom": "DATA"}
# "ruleset=check_rcpt, ... reject=550 ...": the first ruleset= or Milter that names something is followed
# by the reject= field or by none (a search for ".*?reject=" would scan again from every later one).
_RULESET: Final = re.compile(word("ruleset=") + r"(\w++),")
_MILTER: Final = re.compile(word("Milter") + r"(?: \w++)?: (\w++)")
_REJECT: Final = re.compile(word("reject="))
_STAT: Final = re.compile(word("stat=") + r"(\w++)(?::? (.*))?")
_REPLY: Final = re.compile(word("reply="))
_PERMANENT_DSN: Final = re.compile(word("dsn=5."))
NOTHING: Final = Parsed(MTA)
IMPLAUSIBLE: Final = Parsed(MTA, implausible=True)


def is_message(msg: str) -> bool:
    """Whether a line without syslog header has the shape of a Sendmail message that may hold a reply or a
    delivery: a queue id (or none) opening a ruleset's or milter's verdict, or a delivery line (`stat=`)."""
    queue_id, sep, rest = msg.partition(": ")
    body = rest if sep and 7 <= len(queue_id) <= 20 and queue_id.isalnum() else msg
    return body.startswith(("ruleset=", "Milter")) or (body.startswith("to=") and ", stat=" in body)


def is_sendmail(program: str) -> bool:
    return program == "sendmail" or program.startswith("sm-")


class SendmailParser(MessageParser):
    """Sendmail's lines each stand alone: no state."""

    def parse(self, program: str, pid: str, msg: str) -> Parsed:
        return parse_message(msg)


def parse_message(msg: str) -> Parsed:
    try:
        # Each search starts where its literal first occurs: the same match as searching the whole message.
        if "reject=" in msg:
            at = msg.find("ruleset=")
            m = _RULESET.search(msg, at) if at >= 0 else None
            if m is not None and (reject := _REJECT.search(msg, m.end())) is not None:
                return Parsed(MTA, replies_in(msg, "server", _RULESET_COMMANDS.get(m.group(1), ""), reject.end()))
            at = msg.find("Milter")
            m = _MILTER.search(msg, at) if at >= 0 else None
            if m is not None and (reject := _REJECT.search(msg, m.end())) is not None:
                command = _MILTER_COMMANDS.get(m.group(1).lower(), "")
                return Parsed(MTA, replies_in(msg, "server", command, reject.end()))
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
                    raise Implausible("too many recipients")
                if status == "sent":  # stat=Sent carries the remote's text, not its code
                    return Parsed(MTA, (), status, deliveries=recipients)
                # the remote's reply: in reply= (newer Sendmail), else in the text of stat=Deferred
                at = msg.find("reply=")
                said = _REPLY.search(msg, at) if at >= 0 else None
                replies = replies_in(msg, "client", "", said.end()) if said else replies_in(rest, "client", "")
                return Parsed(MTA, replies, status, deliveries=recipients)
        return NOTHING
    except Implausible:
        return IMPLAUSIBLE


def _recipients(msg: str) -> int:
    """A delivery line names every recipient of one attempt: "to=<a>,<b>,<c>, delay=..."."""
    start = msg.find("to=")
    end = msg.find(", delay=", start)
    if start < 0 or end < 0:
        return 1
    return msg.count(">,<", start, end) + 1
