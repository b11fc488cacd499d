"""OpenSMTPD: its `smtp` replies to clients (server role) and `mta` replies of remote servers (client role)."""

from __future__ import annotations

import re
from typing import Final

from ..reply import COMMANDS, Parsed, Reply
from .limits import Implausible, remember
from .message import MessageParser
from .pattern import word
from .replytext import replies_in

MTA: Final = "opensmtpd"
_FAILED: Final = re.compile(word('smtp failed-command command="') + r'([^"\\]*+(?:\\.[^"\\]*+)*+)" result="')
_BAD_INPUT: Final = re.compile(word('smtp bad-input result="'))
# "mta delivery ... result=...": the first result= after the first "delivery " (a search for
# "delivery .*?result=" would scan again from every later "delivery ").
_DELIVERY: Final = re.compile(r"\b(?:mta|mda|lka)? ?delivery ")
_RESULT: Final = re.compile(word("result=") + r'"?(\w++)"?(?: stat="([^"\n]*+)")?')
_OLD_FAILED: Final = re.compile(r'smtp-in: Failed command on session \w++: "([^"]*+)" => ')
_EVPID: Final = re.compile(word("evpid=") + r"([0-9a-f]{8})")
_RESULTS: Final = {"Ok": "sent", "TempFail": "deferred", "PermFail": "bounced", "Loop": "bounced"}
NOTHING: Final = Parsed(MTA)
IMPLAUSIBLE: Final = Parsed(MTA, implausible=True)
_QUIT: Final = Parsed(MTA, (Reply("server", "QUIT", "221", "", inferred=True),))
# A line without syslog header: a session id (16 hex digits) and the process that logs (6.4 and later), or
# the older "smtp-in: ..." and "mta-out: ..." prefixes.
_MESSAGE: Final = re.compile(r"[0-9a-f]{16} (?:smtp|mta|mda|lka|delivery) |smtp-in: |mta-out: ")


def is_message(msg: str) -> bool:
    """Whether a line without syslog header has the shape of an OpenSMTPD message."""
    return _MESSAGE.match(msg) is not None


def is_opensmtpd(program: str) -> bool:
    return program in ("smtpd", "opensmtpd")


def _command(text: str) -> str:
    word = text.strip().split(" ", 1)[0].split(":", 1)[0].upper()
    if not word:
        return "CONNECT"
    return word if word in COMMANDS else ""


class OpenSmtpdParser(MessageParser):
    """Counts the reply to DATA once although OpenSMTPD logs it on each recipient's delivery line, and infers
    no 221 for a session our server closed itself.

    Consecutive `mta delivery` lines of one session and one message with the same result and reply
    are one reply on the wire. OpenSMTPD does not log which command a reply answered, so two
    recipients refused at RCPT with exactly the same text in a row are counted once too (texts
    usually name the recipient, which keeps them apart).
    `smtp disconnected reason=quit` follows a client's QUIT (answered 221) and also a session that smtpd
    closed: after a 421, a reply in place of the greeting (a filter's `disconnect`) or bad input. A quit
    after such a reply of its session proves no 221.
    """

    MAX_SESSIONS = 4096

    def __init__(self) -> None:
        self._last: dict[int, int] = {}  # hash of the session id -> hash of message id + result + reply
        self._closed: dict[int, bool] = {}  # hash of a session id whose server closed it -> True

    def parse(self, program: str, pid: str, msg: str) -> Parsed:
        try:
            parsed = parse_message(msg)
        except Implausible:
            return IMPLAUSIBLE
        if parsed is _QUIT:
            return NOTHING if self._closed.pop(_session(msg), False) else _QUIT
        if parsed.replies and _closes(parsed.replies[0], msg):
            remember(self._closed, _session(msg), True, self.MAX_SESSIONS)
        elif parsed.replies and " mta delivery " in msg:
            session = _session(msg)
            evpid = _EVPID.search(msg)
            key = hash((evpid.group(1) if evpid else "") + "|" + msg[msg.find(" result=") :])
            if self._last.get(session) == key:
                return Parsed(MTA, (), parsed.delivery, folded=True)
            remember(self._last, session, key, self.MAX_SESSIONS)
        return parsed


def _session(msg: str) -> int:
    """Hash of the session id a message opens with (OpenSMTPD 6.4 and later)."""
    return hash(msg.split(" ", 1)[0])


def _closes(reply: Reply, msg: str) -> bool:
    """Whether smtpd closes the session after this reply of its own: a 421, a reply at the greeting, bad input."""
    return reply.role == "server" and (reply.code == "421" or reply.command == "CONNECT" or " smtp bad-input " in msg)


def parse_message(msg: str) -> Parsed:
    # Each search starts where its literal first occurs (or the few characters a match may open
    # with before it): the same match as searching the whole message, without scanning every line.
    at = msg.find("smtp failed-command ")
    if at >= 0 and (m := _FAILED.search(msg, at)) is not None:
        return Parsed(MTA, replies_in(msg, "server", _command(m.group(1)), m.end()))
    at = msg.find("smtp bad-input ")
    if at >= 0 and (m := _BAD_INPUT.search(msg, at)) is not None:
        return Parsed(MTA, replies_in(msg, "server", "", m.end()))
    if (
        " delivery " in msg
        and (d := _DELIVERY.search(msg, max(0, msg.find("delivery ") - 4))) is not None
        and (m := _RESULT.search(msg, d.end())) is not None
    ):
        status = _RESULTS.get(m.group(1))
        stat = m.group(2) or ""
        command = "DATA" if status == "sent" else ""
        return Parsed(MTA, replies_in(stat, "client", command) if " mta " in f" {msg}" else (), status)
    if "smtp-in: " in msg and (m := _OLD_FAILED.search(msg)) is not None:
        return Parsed(MTA, replies_in(msg, "server", _command(m.group(1)), m.end()))
    if msg.endswith("smtp disconnected reason=quit"):
        return _QUIT
    return NOTHING
