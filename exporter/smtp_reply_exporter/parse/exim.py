"""Exim: replies of remote servers in delivery lines (client role) and of our own daemon (server role).

Exim writes its mainlog directly ("2026-11-28 12:01:11 [pid] msgid ...") or through syslog
("exim[pid]: ..." with or without its own timestamp); both reach `EximParser` as the message.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

from ..reply import COMMANDS, Parsed, Reply
from .limits import MAX_CACHED_TEXT, Implausible
from .pattern import word
from .replytext import replies_at, replies_in

MTA = "exim"
# Exim's own prefix: date, optional zone, optional [pid], optional message id: 1Ai79e-0000Dq-8i
# (before 4.97) or 1vPzAb-000ABC-1234 (4.97 and later).
_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?"
# The prefix as it may open a message: timestamp, [pid], message id (its length is checked after).
_PREFIX = re.compile(rf"(?:({_STAMP}) )?(?:\[\d+\] )?(?:([^\W_]{{6}}-[^\W_]*-[^\W_]*) )?")
# "SMTP error from remote mail server after <phrase>: [host H [ip]: ]<reply>". The phrase may hold
# anything: its end is the first ": " after the first opening that a reply follows (an opening later
# could only find the same or none; one regex with ".+?" would try the gap again from each of them).
# A bracketed host holds no bracket, so that each try stops at the next one.
_REMOTE_ERROR = re.compile(r"(?:SMTP error from remote mail server|LMTP error|PRDR error) after ")
_REMOTE_REPLY = re.compile(r": (?:host \S++ \[[^\[\]]++\]: )?(?=[2-5]\d\d(?:[ -]|$))")
_CONFIRMATION = re.compile(word('C="') + r'([^"\\]*+(?:\\.[^"\\]*+)*+)"')  # searched from its first " C=": Exim's field
_CALLOUT = re.compile(r'(?:response to "([^"]*+)"(?: from \S++ \[[^\[\]]++\])? was|\((\w++) response was): ')
# An ACL rejection is "rejected <command>", then no colon up to ": <code>". Found from the colon's side:
# each stretch between two colons is looked at once, however many "rejected" it holds.
_ACL_REJECTED = re.compile(  # "temporarily rejected" too: its "rejected" starts a word
    word("rejected ") + r"(RCPT|MAIL|after DATA|DATA|EHLO|HELO|VRFY|EXPN|ETRN|AUTH|STARTTLS|BDAT"
    r"|connection)\b"
)
_COLON_REPLY = re.compile(r": (?=[2-5]\d\d[ -])")  # also ends "authenticator failed for <anything>"
SAME_REPLY_SECONDS = 2.0
_RECEIVED_BY_SMTP = re.compile(r" P=e?smtps?a?\b")
_DELIVERY = {"=>": "sent", "->": "sent", "*>": "sent", "==": "deferred", "**": "bounced"}
NOTHING = Parsed(MTA)
IMPLAUSIBLE = Parsed(MTA, implausible=True)
_QUIT = Parsed(MTA, (Reply("server", "QUIT", "221", "", inferred=True),))
_RECEIVED = {cmd: Parsed(MTA, (Reply("server", cmd, "250", "", inferred=True),)) for cmd in ("DATA", "BDAT")}


def _seconds(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp[:19]).timestamp()
    except ValueError:
        return None


def is_exim(program: str) -> bool:
    return program == "exim" or program.startswith(("exim4", "exim-"))


def command_of(phrase: str) -> str:
    """The command label for the phrase Exim logs ("RCPT", "RCPT TO:<a@b>", "end of data"); cached, as
    the phrases of its ACL rejections repeat on every line (unless long: a cache of hostile lines)."""
    return _command_of(phrase) if len(phrase) <= MAX_CACHED_TEXT else _command_of.__wrapped__(phrase)


@lru_cache(maxsize=1024)
def _command_of(phrase: str) -> str:
    words = phrase.split()
    if words and words[0] == "pipelined":
        words = words[1:]
    if not words:
        return ""
    if words[0] in ("initial", "connection"):
        return "CONNECT"
    if words[0] == "end" or phrase.startswith("after DATA"):
        return "DATA"
    command = words[0].split(":", 1)[0].upper()
    return command if command in COMMANDS else ""


def _acl_rejection(body: str, at: int) -> tuple[str, int] | None:
    """The command of the first ACL rejection from `at` and where its reply starts."""
    for reply in _COLON_REPLY.finditer(body, at):
        colon = reply.start()
        stretch = body.rfind(":", at, colon) + 1 or at  # "rejected <command>" and colon with none between
        rejected = _ACL_REJECTED.search(body, stretch, colon)
        if rejected is not None:
            return rejected.group(1), reply.end()
    return None


class EximParser:
    """Counts a reply that Exim logs several times once.

    `->` lines repeat the C= reply of their `=>` line. A remote error is logged on a host line
    ("H=mx [ip]: SMTP error ...") when it is temporary, then again on the `==` or `**` line of each
    recipient it hit. Lines of one message within two seconds, naming the same host and the same
    reply, are one reply on the wire (a retry comes minutes later).
    """

    MAX_MESSAGES = 4096

    def __init__(self) -> None:
        # message id (at most 23 characters) -> hash of what was seen: a line's text is never kept
        self._last_confirmation: dict[str, int] = {}  # -> C= text of its last => line
        self._last_remote_error: dict[str, tuple[float | None, int]] = {}  # -> (when, host + reply)

    def __call__(self, program: str, pid: str, msg: str) -> Parsed:
        prefix = _PREFIX.match(msg)
        assert prefix is not None  # every part of _PREFIX is optional
        try:
            return self._parse(prefix)
        except Implausible:
            return IMPLAUSIBLE

    def own_line(self, line: str) -> Parsed | None:
        """A line of Exim's own mainlog, which opens with its timestamp; None for any other line."""
        m = _PREFIX.match(line)
        if m is None or m.group(1) is None:
            return None
        try:
            return self._parse(m)
        except Implausible:
            return IMPLAUSIBLE

    def _parse(self, prefix: re.Match[str]) -> Parsed:
        stamp, msgid = prefix.groups("")
        if msgid and not 16 <= len(msgid) <= 23:  # shaped like a message id, but too short or long
            msgid, body = "", prefix.string[prefix.start(2) :]
        else:
            body = prefix.string[prefix.end() :]
        flag = body[:2]
        delivery = _DELIVERY.get(flag) if body[2:3] == " " else None
        if delivery == "bounced" and "retry timeout exceeded" in body:
            delivery = "expired"
        replies: tuple[Reply, ...] = ()
        err = _REMOTE_ERROR.search(body) if " error " in body else None
        if err is not None and (said := _REMOTE_REPLY.search(body, err.end() + 1)) is not None:
            replies = replies_in(body, "client", command_of(body[err.end() : said.start()]), said.end())
            host = body.rfind("H=", 0, err.start())
            replies = self._remote_once(msgid, stamp, body[host if host >= 0 else err.start() :], replies)
            return Parsed(MTA, replies, delivery)
        if delivery is not None:
            at = body.find(' C="')
            if at >= 0 and (conf := _CONFIRMATION.search(body, at)) is not None:
                replies = self._confirmation(flag, msgid, conf.group(1))
            return Parsed(MTA, replies, delivery)
        if " was: " in body and (call := _CALLOUT.search(body)) is not None:
            command = command_of(call.group(1) or call.group(2))
            return Parsed(MTA, replies_in(body, "client", command, call.end()))
        at = body.find("authenticator failed for ")
        if at >= 0 and (auth := _COLON_REPLY.search(body, at + 25)) is not None:
            return Parsed(MTA, replies_in(body, "server", "AUTH", auth.end()))
        at = body.find("rejected ")
        if at >= 0 and (acl := _acl_rejection(body, at)) is not None:
            command, end = acl
            return Parsed(MTA, replies_in(body, "server", command_of(command), end))
        if body.startswith("SMTP connection from ") and body.endswith(" closed by QUIT"):
            return _QUIT
        if flag == "<=" and _RECEIVED_BY_SMTP.search(body):
            # logged once the message is safe on disk, right before "250 OK id=..." is sent
            return _RECEIVED["BDAT" if " K " in body else "DATA"]
        return NOTHING

    def _confirmation(self, flag: str, msgid: str, text: str) -> tuple[Reply, ...]:
        replies = replies_at(text, "client", "DATA")
        if not replies:
            return ()
        if flag == "->":
            return self._once(self._last_confirmation, msgid, hash(text), replies)
        self._remember(self._last_confirmation, msgid, hash(text))
        return replies

    def _remote_once(self, msgid: str, stamp: str, text: str, replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
        when = _seconds(stamp)
        previous = self._last_remote_error.get(msgid)
        if previous is not None and previous[1] == hash(text) and (
            when is None or previous[0] is None or abs(when - previous[0]) <= SAME_REPLY_SECONDS
        ):
            return ()
        if len(self._last_remote_error) >= self.MAX_MESSAGES:
            self._last_remote_error.clear()
        self._last_remote_error[msgid] = (when, hash(text))
        return replies

    def _once(self, last: dict[str, int], msgid: str, key: int, replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
        if last.get(msgid) == key:
            return ()
        self._remember(last, msgid, key)
        return replies

    def _remember(self, last: dict[str, int], msgid: str, key: int) -> None:
        if len(last) >= self.MAX_MESSAGES:
            last.clear()
        last[msgid] = key
