"""Postfix: every reply its smtpd sent (server role) and its smtp/lmtp clients received (client role).

Postfix logs as `<syslog_name>/<service>[pid]`; any syslog_name is accepted (postfix,
postfix-out, postfix/submission, ...) as long as the last component is a Postfix service.
"""

from __future__ import annotations

import re
from typing import Final

from ..reply import COMMANDS, DELIVERY_STATUSES, Parsed, Reply
from .limits import MAX_CACHED_TEXT, MAX_COUNTERS_TEXT, Implausible, count, remember
from .message import MessageParser
from .pattern import word
from .replytext import replies_in

MTA: Final = "postfix"
_MEMO: Final = 1024  # distinct texts remembered by the memos below
MAX_PROCESSES: Final = 4096  # smtp processes whose last reply to the transaction is remembered
MAX_DEFERRED: Final = 16384  # messages whose deferred recipients are remembered, the oldest half forgotten first
NOTHING: Final = Parsed(MTA)  # a Postfix line without replies or delivery: shared, not rebuilt per line
IMPLAUSIBLE: Final = Parsed(MTA, implausible=True)
SERVICES: Final[frozenset[str]] = frozenset({
    "smtpd", "smtp", "lmtp", "postscreen", "cleanup", "qmgr", "local", "virtual", "pipe", "error", "retry",
    "bounce", "discard", "pickup", "anvil", "tlsmgr", "tlsproxy", "proxymap", "trivial-rewrite", "master",
    "scache", "verify", "dnsblog", "flush", "showq", "spawn", "oqmgr", "postlogd", "postlog", "sendmail",
    "postdrop", "postqueue", "postsuper", "postmap", "postalias", "postfix", "smtp-sink", "postfix-script",
    "postmulti", "postconf", "postkick", "postlock", "qmqpd", "nqmgr",
})

# "NOQUEUE: reject: RCPT from host[1.2.3.4]: 550 ...", "<qid>: milter-reject: END-OF-MESSAGE from ...",
# postscreen "NOQUEUE: reject: RCPT from [1.2.3.4]:5678: 550 ..."
_REJECT: Final = re.compile(r"(?:NOQUEUE|\w+): (reject|milter-reject|reject_warning): ([A-Z-]+) from \S+: ")
# "proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok: queued as ..." (before-queue content filter)
_PROXY: Final = re.compile(r"(?:NOQUEUE|\w+): proxy-(?:accept|reject): ([A-Z-]+): ")
_SAID: Final = re.compile(
    r"(?:" + word("host ") + r"\S++ said|SASL authentication failed; server \S++ said|refused to talk to me): "
)
_COUNTER: Final = re.compile(r" ([a-z]++)=(\d++)")  # "rcpt=0/1": the accepted ones, before the slash
# Address verification probes ("status=deliverable (250 2.1.5 Ok)"): the remote's reply to RCPT, no delivery.
_PROBE_STATUSES: Final[tuple[str, ...]] = ("deliverable", "undeliverable")
_STATUS_WORDS: Final = {status: status for status in (*DELIVERY_STATUSES, *_PROBE_STATUSES)}
# qmgr defers a recipient of a destination it holds back without a try, quoting an earlier reply
_SUSPENDED: Final = "delivery temporarily suspended: "
# Replies to the session or the whole transaction: logged on the line of each recipient they hit
_PER_TRANSACTION: Final = frozenset({"CONNECT", "EHLO", "HELO", "LHLO", "STARTTLS", "AUTH", "XFORWARD", "XCLIENT",
                              "MAIL", "DATA", "BDAT"})
# A line without syslog header (`journalctl -o cat`) is Postfix's when a queue id or NOQUEUE opens one of its
# messages, or it is one of smtpd's, postscreen's or smtp's lines without queue id.
_MESSAGE: Final = re.compile(
    r"(?:NOQUEUE|[0-9A-Za-z]{6,20}): (?:to=<|from=<|orig_to=<|(?:milter-)?reject(?:_warning)?: "
    r"|proxy-(?:accept|reject): |host |SASL |client=|message-id=|removed$|sender (?:non-)?delivery"
    r"|lost connection |conversation with "
    r"|uid=|resent-message-id=|enabling PIX|(?:warning|info|discard|hold|redirect|filter|replace): )"
    r"|(?:dis)?connect from [^\s\[]*+\[|lost connection after |timeout after |too many errors after "
    r"|improper command pipelining after |warning: SASL authentication failed; server |statistics: "
    r"|(?:Anonymous|Untrusted|Trusted|Verified) TLS connection established |(?:CONNECT|PASS NEW|PASS OLD) "
    r"|DISCONNECT \[|PREGREET \d|HANGUP after |DNSBL rank \d"
)

# Postfix's own phrases for the command a remote server replied to, and smtpd's state names.
_COMMAND_PHRASES: Final = {
    "end of DATA": "DATA",
    "MAIL FROM": "MAIL",
    "RCPT TO": "RCPT",
    "END-OF-MESSAGE": "DATA",  # the reply after the message body (DATA or the last BDAT)
    "initial server greeting": "CONNECT",
}

# smtpd's disconnect line counts successful commands ("rcpt=1/2": one of two accepted); each
# success proves exactly this reply was sent. Failures are logged (and counted) on their own lines.
INFERRED_FROM_COUNTER: Final = {
    "ehlo": ("EHLO", "250"),
    "helo": ("HELO", "250"),
    "mail": ("MAIL", "250"),
    "rcpt": ("RCPT", "250"),
    "data": ("DATA", "250"),
    "bdat": ("BDAT", "250"),
    "rset": ("RSET", "250"),
    "noop": ("NOOP", "250"),
    "starttls": ("STARTTLS", "220"),
    "auth": ("AUTH", "235"),
    "quit": ("QUIT", "221"),
}


_commands: Final[dict[str, str]] = {}  # phrase -> command: a few phrases make every line, so remembered (bounded)


def command_of(phrase: str) -> str:
    """The SMTP command label for a logged phrase; "" when it is not one we know."""
    command = _commands.get(phrase)
    if command is None:
        words = phrase.strip()
        command = _COMMAND_PHRASES.get(words) or words.split(" ", 1)[0].upper()
        command = command if command in COMMANDS else ""
        if len(phrase) <= MAX_CACHED_TEXT:
            remember(_commands, phrase, command, _MEMO)
    return command


def is_message(msg: str) -> bool:
    """Whether a line without syslog header has the shape of a Postfix message."""
    return _MESSAGE.match(msg) is not None


def is_postfix(program: str) -> bool:
    head, slash, service = program.rpartition("/")
    return bool(slash) and bool(head) and service in SERVICES


class PostfixParser(MessageParser):
    """Parses Postfix messages; remembers just enough to count a shared reply once.

    A reply to the session or the transaction (at the greeting, to EHLO, MAIL, the end of DATA) covers
    every recipient of the transaction, yet Postfix's smtp client logs it on each recipient's status
    line. Consecutive lines of one smtp process (without pid: of one queue id) for one queue id with
    the same delays and the same reply are therefore one reply on the wire (a retry has other delays).
    A reply to RCPT is each recipient's own; LMTP also answers each recipient after DATA (an lmtp line
    without its header is known by its relay).
    Postfix gives up on a message in one qmgr line (`status=expired`); it stands for each recipient
    seen deferred last (1 if none was seen).
    """

    def __init__(self) -> None:
        # hashes, as a line's text is never kept: of the smtp pid (without one, of the queue id) -> of
        # "queue id|delays|reply text"; of a queue id -> of the recipients whose last status was deferred
        self._last_data_reply: dict[int, int] = {}
        # in two generations: when the newer holds half of MAX_DEFERRED, the older is forgotten at once (O(1);
        # dropping a dictionary's oldest key one at a time walks over the holes earlier deletions left)
        self._deferred: dict[int, set[int]] = {}
        self._older_deferred: dict[int, set[int]] = {}

    def parse(self, program: str, pid: str, msg: str) -> Parsed:
        try:
            if msg.startswith("disconnect from "):  # one in ten lines: settled before scanning for the rest
                counters = msg[msg.find(" ", 16) + 1 :]
                if len(counters) <= MAX_CACHED_TEXT:
                    return _disconnect(counters)
                if len(counters) > MAX_COUNTERS_TEXT:
                    raise Implausible("disconnect counters")
                return _read_counters(counters)
            if "reject" in msg:
                m = _REJECT.match(msg)
                if m is not None:
                    replies = replies_in(msg, "server", command_of(m.group(2)), m.end())
                    if m.group(1) == "reject_warning":
                        return Parsed(MTA, warnings=replies)
                    return Parsed(MTA, replies)
            at = msg.find("status=")
            if at >= 0:
                status, text = _status(msg, at + 7)
                if status is not None:
                    return self._status_line(program, pid, msg, status, text)
            if " said: " in msg or "refused to talk to me: " in msg:
                return Parsed(MTA, _client_replies(msg))
            if "proxy-" in msg:
                m = _PROXY.match(msg)
                if m is not None:
                    return Parsed(MTA, replies_in(msg, "server", command_of(m.group(1)), m.end()))
            return NOTHING
        except Implausible:
            return IMPLAUSIBLE

    def _status_line(self, program: str, pid: str, msg: str, status: str, text: str) -> Parsed:
        if text.startswith(_SUSPENDED):  # no try: the reply it quotes was counted when it was said
            self._note(msg, "deferred")
            return NOTHING
        probe = status in _PROBE_STATUSES
        replies = _client_replies(text, "RCPT" if probe else "DATA") if text else ()
        if probe:
            return Parsed(MTA, replies)
        folded = False
        if replies and replies[0].command in _PER_TRANSACTION and not (
            replies[0].command in ("DATA", "BDAT") and _lmtp(program, msg)
        ):
            replies = self._once_per_transaction(pid, msg, text, replies)
            folded = not replies
        if status == "expired":
            queue_id = hash(msg[: msg.find(":")])
            waited = len(self._deferred.pop(queue_id, set()) | self._older_deferred.pop(queue_id, set())) or 1
            return Parsed(MTA, replies, status, deliveries=waited, folded=folded)
        self._note(msg, status)
        return Parsed(MTA, replies, status, folded=folded)

    def _note(self, msg: str, status: str) -> None:
        """Remember the recipient of a deferral until it is sent, bounced or expired."""
        start = msg.find("to=<")
        if start < 0:
            return
        queue_id, recipient = hash(msg[: msg.find(":")]), hash(msg[start + 4 : msg.find(">", start)])
        waiting = self._deferred.get(queue_id)
        if waiting is None:
            waiting = self._older_deferred.get(queue_id)
        if status == "deferred":
            if waiting is None:
                if len(self._deferred) >= MAX_DEFERRED // 2:
                    self._older_deferred, self._deferred = self._deferred, {}
                waiting = self._deferred[queue_id] = set()
            waiting.add(recipient)
        elif waiting is not None:
            waiting.discard(recipient)

    def _once_per_transaction(self, pid: str, msg: str, reply: str, replies: tuple[Reply, ...]) -> tuple[Reply, ...]:
        delay = msg.find(" delay=")
        queue_id = msg[: msg.find(":")]
        key = hash(queue_id + "|" + msg[delay : msg.find(",", msg.find("delays=", delay))] + "|" + reply)
        process = hash(pid or queue_id)
        if self._last_data_reply.get(process) == key:
            return ()
        remember(self._last_data_reply, process, key, MAX_PROCESSES)
        return replies


def _lmtp(program: str, msg: str) -> bool:
    """An lmtp client's line: by its program, or without one by its relay, a socket ("relay=h[private/x]")
    or LMTP's port 24 (an LMTP server on another TCP port cannot be told from an SMTP one)."""
    if program:
        return program.endswith("/lmtp")
    at = msg.find(", relay=")
    end = msg.find(", ", at + 8)
    relay = msg[at + 8 : end] if at >= 0 and end >= 0 else ""
    return "/" in relay or relay.endswith("]:24")


def _status(msg: str, at: int) -> tuple[str | None, str]:
    """The delivery (or probe) status after "status=" (a whole word) and the text in the parentheses that
    follow it."""
    end, size = at, len(msg)
    while end < size and msg[end].isalnum():
        end += 1
    status = _STATUS_WORDS.get(msg[at:end])
    if status is None:
        return None, ""
    if msg.find(" (", end, end + 2) == end:
        return status, msg[end + 2 : msg.rfind(")")]
    return status, ""


def _client_replies(text: str, bare: str = "DATA") -> tuple[Reply, ...]:
    """Replies of a remote server: after "said:" or "refused to talk to me:", or a bare reply
    as in `status=sent (250 2.0.0 Ok)`, the final reply to DATA (to RCPT for a probe: `bare`)."""
    said = _SAID.search(text) if " said: " in text or "refused to talk to me: " in text else None
    if said is not None:
        start, end = said.span()  # one call: each method of a match costs as much as a short search
        opening = text[start]
        if opening == "r":  # "refused to talk to me: "
            command = "CONNECT"
        elif opening == "S":  # "SASL authentication failed; server ... said: "
            command = "AUTH"
        else:
            # "(in reply to <phrase> command)": the first opening and the first close after it
            at = text.find("(in reply to ", end)
            close = text.find(" command)", at + 14) if at >= 0 else -1
            command = command_of(text[at + 13 : close]) if close >= 0 else ""
        return replies_in(text, "client", command, end)
    return replies_in(text, "client", bare)


_disconnects: Final[dict[str, Parsed]] = {}  # counters -> what they prove: few distinct strings (bounded)


def _disconnect(counters: str) -> Parsed:
    """Replies proven by "ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"; few distinct strings, so remembered
    (the caller keeps texts longer than MAX_CACHED_TEXT out)."""
    found = _disconnects.get(counters)
    if found is None:
        found = remember(_disconnects, counters, _read_counters(counters), _MEMO)
    return found


def _read_counters(counters: str) -> Parsed:
    out = []
    for name, digits in _COUNTER.findall(" " + counters):
        inferred = INFERRED_FROM_COUNTER.get(name)
        if inferred is not None and (ok := count(digits)) > 0:
            command, code = inferred
            out.append(Reply("server", command, code, "", inferred=True, times=ok))
    return Parsed(MTA, tuple(out))
