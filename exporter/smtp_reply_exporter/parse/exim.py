"""Exim: replies of remote servers in delivery lines (client role) and of our own daemon (server role).

Exim writes its mainlog directly ("2026-11-28 12:01:11 [pid] msgid ...") or through syslog
("exim[pid]: ..." with or without its own timestamp); both reach `EximParser` as the message.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Final, NamedTuple

from ..reply import COMMANDS, Parsed, Reply
from .limits import MAX_CACHED_TEXT, Implausible, remember
from .message import MessageParser
from .pattern import word
from .replytext import replies_at, replies_in

MTA: Final = "exim"
# Exim's own prefix: date, optional zone, optional [pid], optional message id: 1Ai79e-0000Dq-8i
# (before 4.97) or 1vPzAb-000ABC-1234 (4.97 and later).
_STAMP: Final = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?"
_PLAIN_STAMP: Final = "0000-00-00 00:00:00 "  # a "0": any ASCII digit; another character: itself
# The prefix as it may open a message: timestamp, [pid], message id (its length is checked after).
_PREFIX: Final = re.compile(rf"(?:({_STAMP}) )?(?:\[(\d+)\] )?(?:([^\W_]{{6}}-[^\W_]*-[^\W_]*) )?")
# A line without syslog header is Exim's in one of its own forms: its prefix, a message id, a client's H=,
# its session and queue-run lines.
_MESSAGE: Final = re.compile(
    rf"(?:{_STAMP} )?(?:\[\d++\] )?(?:[^\W_]{{6}}-[^\W_]++-[^\W_]++ |H=|SMTP (?:connection|call) from "
    r"|no (?:MAIL|host name) |Start queue run|End queue run|\w++ authenticator failed for )"
)
# "SMTP error from remote mail server after <phrase>: [host H [ip]: ]<reply>". The phrase may hold
# anything: its end is the first ": " after the first opening that a reply follows (an opening later
# could only find the same or none; one regex with ".+?" would try the gap again from each of them).
# A bracketed host holds no bracket, so that each try stops at the next one.
_REMOTE_ERROR: Final = re.compile(
    r"(?:(?:SMTP error from remote mail server|LMTP error|PRDR error) after |Malformed SMTP reply in response to )"
)
# replies after the message, one per recipient: never folded
_PER_RECIPIENT: Final[tuple[str, ...]] = ("LMTP error", "PRDR error")
_DURATION_AT_END: Final = re.compile(r" DT=[\d.smhdw]++$")  # +deliver_time on a ** line: after the reply
_REMOTE_REPLY: Final = re.compile(r": (?:host \S++ \[[^\[\]]++\]: )?(?=[2-5]\d\d(?:[ -]|$))")
# searched from its first " C=": Exim's field
_CONFIRMATION: Final = re.compile(word('C="') + r'([^"\\]*+(?:\\.[^"\\]*+)*+)"')
_CALLOUT: Final = re.compile(r'(?:response to "([^"]*+)"(?: from \S++ \[[^\[\]]++\])? was|\((\w++) response was): ')
# An ACL rejection is "rejected <command>", then no colon up to ": <code>". Found from the colon's side:
# each stretch between two colons is looked at once, however many "rejected" it holds.
_ACL_REJECTED: Final = re.compile(  # "temporarily rejected" too: its "rejected" starts a word
    word("rejected ") + r"(RCPT|MAIL|after DATA|DATA|EHLO|HELO|VRFY|EXPN|ETRN|AUTH|STARTTLS|BDAT"
    r"|connection)\b"
)
_COLON_REPLY: Final = re.compile(r": (?=[2-5]\d\d[ -])")  # also ends "authenticator failed for <anything>"
SAME_REPLY_SECONDS: Final = 2.0
_NO_TRY: Final = "retry time not reached"  # a == line of a queue run that skipped the message: no delivery attempt
_RECEIVED_BY_SMTP: Final = re.compile(r" P=e?smtps?a?\b")
_DELIVERY: Final = {"=>": "sent", "->": "sent", "*>": "sent", "==": "deferred", "**": "bounced"}
NOTHING: Final = Parsed(MTA)
IMPLAUSIBLE: Final = Parsed(MTA, implausible=True)
_QUIT: Final = Parsed(MTA, (Reply("server", "QUIT", "221", "", inferred=True),))
_RECEIVED: Final = {cmd: Parsed(MTA, (Reply("server", cmd, "250", "", inferred=True),)) for cmd in ("DATA", "BDAT")}


def _seconds(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp[:19]).timestamp()
    except ValueError:
        return None


def _parts(prefix: re.Match[str]) -> tuple[str, str, str, str]:
    """Timestamp, pid, message id and the rest of a line that _PREFIX matched ("" for what it lacks)."""
    stamp, pid, msgid = prefix.groups("")
    return stamp, pid, msgid, prefix.string[prefix.end() :]


def _plain_stamp(line: str) -> str:
    """The stamp `line` opens with when it is _STAMP without fraction or zone, then a space
    ("2026-11-28 12:01:11 "), else "" (also for other digits than ASCII ones: _PREFIX reads those lines).
    Read character by character, which compiles to integer compares: a regex's match costs ten times more."""
    if len(line) < 21 or line[20] == "+" or line[20] == "-":
        return ""
    for k in range(20):
        c, want = ord(line[k]), ord(_PLAIN_STAMP[k])
        if c != want and not (want == 48 and 48 <= c <= 57):
            return ""
    return line[:19]


def _message_id(text: str, at: int) -> tuple[str, str]:
    """(message id, the rest) of `text` from `at` as _PREFIX reads them: six letters or digits, then two runs
    of them (maybe empty) after a dash each, then a space; ("", the text from `at`) when it opens otherwise."""
    space = text.find(" ", at)
    if space > at + 7 and text[at + 6] == "-":
        parts = text[at:space].split("-")
        if (len(parts) == 3 and len(parts[0]) == 6 and parts[0].isalnum()
                and all(part.isalnum() for part in parts[1:] if part)):
            return text[at:space], text[space + 1 :]
    return "", text[at:]


def is_message(msg: str) -> bool:
    """Whether a line without syslog header has a shape Exim writes."""
    return _MESSAGE.match(msg) is not None


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


def _error_key(body: str, at: int) -> int:
    """The host's address (from "H=name [address]:port") and the error's text from `at`, without the fields
    that differ between the lines that repeat one reply."""
    host = body.rfind("H=", 0, at)
    opening = body.find("[", host, at) if host >= 0 else -1
    closing = body.find("]", opening, at) if opening >= 0 else -1
    dt = _DURATION_AT_END.search(body, at) if "DT=" in body else None
    return hash((body[opening : closing + 1] if closing >= 0 else "", body[at : dt.start() if dt else len(body)]))


def _acl_rejection(body: str, at: int) -> tuple[str, int] | None:
    """The command of the first ACL rejection from `at` and where its reply starts."""
    for reply in _COLON_REPLY.finditer(body, at):
        colon = reply.start()
        stretch = body.rfind(":", at, colon) + 1 or at  # "rejected <command>" and colon with none between
        rejected = _ACL_REJECTED.search(body, stretch, colon)
        if rejected is not None:
            return rejected.group(1), reply.end()
    return None


class _Seen(NamedTuple):
    """The last remote error logged for a message, by whom and when (hashes: a line's text is never kept)."""

    key: int  # the host's address and the error's text
    pid: int  # the Exim process that wrote it (+pid, or syslog's pid), 0 when the line does not say
    when: float | None  # its time, when the line says
    host_line: bool  # a host line ("msgid H=mx [ip]: SMTP error ..."), written by the transport's process


class EximParser(MessageParser):
    """Counts a reply that Exim logs several times once.

    `->` lines repeat the C= reply of their `=>` line. A remote error is logged on a host line
    ("msgid H=mx [ip]: SMTP error ...") each time a host refused us or failed the message temporarily,
    then on the `==` or `**` line of each recipient it hit; a permanent error after DATA only on each
    recipient's line. A host line is a reply of its own. A recipient's line repeats the message's last
    error when it names the same host address and text (the fields around them vary: I=, DT=, a * after
    the port) and belongs to the same try: that of the host line (within two seconds), else of the last
    recipient's line, told by the process (+pid, syslog's pid) or, without pids, by being within two
    seconds (a retry comes minutes later); a line with neither is taken for a repeat. LMTP and PRDR
    answer each recipient: never folded.
    """

    MAX_MESSAGES = 4096

    def __init__(self) -> None:
        # message id (at most 23 characters) -> hash of what was seen: a line's text is never kept
        self._last_confirmation: dict[str, int] = {}  # -> C= text of its last => line
        self._last_remote_error: dict[str, _Seen] = {}  # -> its last remote error

    def parse(self, program: str, pid: str, msg: str) -> Parsed:
        try:
            if msg[:1] == "[" or (msg[4:5] == "-" and msg[:4].isdigit()):  # a timestamp or [pid] first
                prefix = _PREFIX.match(msg)
                assert prefix is not None  # every part of _PREFIX is optional
                stamp, own_pid, msgid, body = _parts(prefix)
                return self._parse(stamp, own_pid, msgid, body, pid)
            msgid, body = _message_id(msg, 0)  # what _PREFIX finds here, without a regex
            return self._parse("", "", msgid, body, pid)
        except Implausible:
            return IMPLAUSIBLE

    def own_line(self, line: str) -> Parsed | None:
        """A line of Exim's own mainlog, which opens with its timestamp; None for any other line."""
        try:
            stamp = _plain_stamp(line)
            if stamp:  # "2026-11-28 12:01:11 " without fraction or zone: read without a regex
                pid, at = "", 20
                if line[20:21] == "[":
                    close = line.find("] ", 21)
                    if close > 21 and line[21:close].isdecimal():
                        pid, at = line[21:close], close + 2
                msgid, body = _message_id(line, at)
                return self._parse(stamp, pid, msgid, body, "")
            m = _PREFIX.match(line)
            if m is None or m.group(1) is None:
                return None
            stamp, pid, msgid, body = _parts(m)
            return self._parse(stamp, pid, msgid, body, "")
        except Implausible:
            return IMPLAUSIBLE

    def _parse(self, stamp: str, pid: str, msgid: str, body: str, syslog_pid: str) -> Parsed:
        if msgid and not 16 <= len(msgid) <= 23:  # shaped like a message id, but too short or long
            msgid, body = "", msgid + " " + body
        flag = body[:2]
        delivery = _DELIVERY.get(flag) if body[2:3] == " " else None
        if delivery == "bounced" and "retry timeout exceeded" in body:
            delivery = "expired"
        elif delivery == "deferred" and _NO_TRY in body:
            delivery = None
        replies: tuple[Reply, ...] = ()
        err = _REMOTE_ERROR.search(body) if " error " in body or "Malformed SMTP" in body else None
        if err is not None and (said := _REMOTE_REPLY.search(body, err.end() + 1)) is not None:
            replies = replies_in(body, "client", command_of(body[err.end() : said.start()]), said.end())
            if replies and not body.startswith(_PER_RECIPIENT, err.start()):
                host_line = delivery is None and body.startswith("H=")
                seen = _Seen(_error_key(body, err.start()), hash(pid or syslog_pid) if pid or syslog_pid else 0,
                             _seconds(stamp), host_line)
                replies = self._remote_once(msgid, seen, replies)
                if not replies:
                    return Parsed(MTA, (), delivery, folded=True)
            return Parsed(MTA, replies, delivery)
        if delivery is not None:
            at = body.find(' C="')
            if at >= 0 and (conf := _CONFIRMATION.search(body, at)) is not None:
                confirmed = replies_at(conf.group(1), "client", "DATA")
                replies = self._confirmation(flag, msgid, conf.group(1), confirmed) if confirmed else ()
                if confirmed and not replies:
                    return Parsed(MTA, (), delivery, folded=True)
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

    def _confirmation(self, flag: str, msgid: str, text: str, replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
        if flag == "->":
            return self._once(self._last_confirmation, msgid, hash(text), replies)
        remember(self._last_confirmation, msgid, hash(text), self.MAX_MESSAGES)
        return replies

    def _remote_once(self, msgid: str, seen: _Seen, replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
        last = self._last_remote_error.get(msgid)
        remember(self._last_remote_error, msgid, seen, self.MAX_MESSAGES)
        if seen.host_line or last is None or last.key != seen.key:
            return replies
        if not last.host_line and seen.pid and last.pid:
            return () if seen.pid == last.pid else replies
        if seen.when is not None and last.when is not None and abs(seen.when - last.when) > SAME_REPLY_SECONDS:
            return replies
        return ()

    def _once(self, last: dict[str, int], msgid: str, key: int, replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
        if last.get(msgid) == key:
            return ()
        remember(last, msgid, key, self.MAX_MESSAGES)
        return replies
