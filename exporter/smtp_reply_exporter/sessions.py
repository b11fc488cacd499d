"""How SMTP sessions end: with QUIT, lost, timed out, after too many errors, or closed by a rejection.

A `quit` end is the 221 to QUIT already counted as a reply (Postfix `disconnect ... quit=1`, Exim
`closed by QUIT`, OpenSMTPD `reason=quit`), and `rejected` is a 421 (the reply that closes the channel)
or a 554 greeting from a remote server: both are read from a line's Parsed replies. The other ends
have no reply: they are read from the lines that say them, found in a chunk by a literal first, so
that the other lines cost one search of the chunk's text.
"""

from __future__ import annotations

import re
from typing import Final

from .parse import exim, opensmtpd, postfix, sendmail
from .parse.limits import remember
from .reply import COMMANDS, Reply

ENDS: Final[tuple[str, ...]] = ("quit", "lost", "timeout", "too_many_errors", "rejected")
End = tuple[str, str, str]  # role, end, command ("" when the log does not say)

# Literals that every line of a text-logged end holds, per MTA: a chunk without them has none.
NEEDLES: Final[dict[str, tuple[str, ...]]] = {
    postfix.MTA: (" after ",),  # smtpd: "lost connection after RCPT from", "timeout after", "too many errors after"
    exim.MTA: ("while reading ", "timeout", "dropped: too many", "closed by DROP"),
    sendmail.MTA: ("lost input channel", "timeout waiting for input"),
    opensmtpd.MTA: (" smtp disconnected reason=",),
}
# Postfix smtpd's state names: END-OF-MESSAGE is the reply after the message body
_POSTFIX_STATE: Final = {"END-OF-MESSAGE": "DATA", "UNKNOWN": ""}
_POSTFIX_SERVER: Final = re.compile(
    r"(lost connection|timeout|too many errors) after ([A-Z][A-Z-]{0,19})(?: \(\d++ bytes\))? from ")
_POSTFIX_ENDS: Final = {"lost connection": "lost", "timeout": "timeout", "too many errors": "too_many_errors"}
# smtp client, on a delivery line: "status=deferred (lost connection with mx[ip] while sending RCPT TO)"
_POSTFIX_CLIENT: Final = re.compile(r"status=\w++ \((?:lost connection with (\S++)|conversation with (\S++) timed out) "
                             r"while ([^()]{1,80})\)")
_POSTFIX_CLIENT_PHASES: Final = (  # Postfix's smtp_proto.c descriptions, by their opening words
    ("receiving the initial server greeting", "CONNECT"), ("performing the EHLO", "EHLO"),
    ("performing the HELO", "HELO"), ("performing the LHLO", "LHLO"), ("receiving the STARTTLS", "STARTTLS"),
    ("sending XFORWARD", "XFORWARD"), ("sending MAIL", "MAIL"), ("sending RCPT", "RCPT"), ("sending DATA", "DATA"),
    ("sending end of data", "DATA"), ("sending message body", "DATA"), ("sending final RSET", "RSET"),
    ("sending RSET", "RSET"), ("sending QUIT", "QUIT"), ("sending HELO", "HELO"),
)
# Exim's smtp_in.c wordings, as literals that the line holds (each pair in this order)
_EXIM: Final = (
    (("unexpected disconnection while reading SMTP command from ",), "lost", ""),
    (("unexpected disconnection while reading SMTP data",), "lost", "DATA"),
    (("SMTP connection from ", " lost while reading message data"), "lost", "DATA"),
    (("SMTP command timeout on ",), "timeout", ""),
    (("SMTP data timeout (message abandoned) on ",), "timeout", "DATA"),
    (("dropped: too many syntax or protocol errors",), "too_many_errors", "?"),
    (("dropped: too many unrecognized commands",), "too_many_errors", ""),
    (("SMTP connection from ", " closed by DROP in ACL"), "rejected", ""),
)
_EXIM_LAST_COMMAND: Final = re.compile(r'\(last command was "([A-Za-z]{1,10})')
_SENDMAIL_LOST: Final = re.compile(r"lost input channel from [^\n]{1,300}? to \S{1,64}+ after ([a-z]{1,10})\b")
_SENDMAIL_TIMEOUT: Final = re.compile(
    r"timeout waiting for input from \S++ during (server cmd read|message collect|client \S++)")
_OPENSMTPD: Final = re.compile(r' smtp disconnected reason=(disconnect|timeout|"io-error)')
_OPENSMTPD_ENDS: Final = {"disconnect": "lost", "timeout": "timeout", '"io-error': "lost"}
_POSTFIX_DELIVERY: Final = re.compile(r"\[(\d++)\]: (\w++): ")  # pid and queue id of a delivery line


def _command(word: str) -> str:
    word = word.upper()
    return word if word in COMMANDS else ""


def from_reply(r: Reply) -> End | None:
    """The end a reply proves (`r.times` times): 221 to QUIT, 421 anywhere, a remote's 554 greeting."""
    if r.code == "221" and r.command == "QUIT" and r.role == "server":
        return "server", "quit", "QUIT"
    if r.code == "421" or (r.code == "554" and r.command == "CONNECT" and r.role == "client"):
        return r.role, "rejected", r.command
    return None


class SessionEnds:
    """Reads the ends that lines say in words. Postfix's smtp client writes one lost session on the line
    of each recipient it was delivering: consecutive lines of one process and queue id with the same
    text are one session (as the parser does for the reply to DATA)."""

    MAX_PROCESSES = 4096

    def __init__(self) -> None:
        self._last_client_end: dict[str, str] = {}  # smtp pid -> "queue id|text"

    def in_text(self, mta: str, line: str) -> End | None:
        """The end a quiet line of `mta` says, found by one of its NEEDLES."""
        if mta == postfix.MTA:
            if "/smtpd[" not in line:
                return None
            m = _POSTFIX_SERVER.search(line)
            if m is None:
                return None
            state = m.group(2)
            return "server", _POSTFIX_ENDS[m.group(1)], _POSTFIX_STATE.get(state, _command(state))
        if mta == exim.MTA:
            for (first, *then), end, command in _EXIM:
                at = line.find(first)
                if at >= 0 and all(line.find(literal, at) >= 0 for literal in then):
                    if command == "?":
                        m = _EXIM_LAST_COMMAND.search(line, at)
                        command = _command(m.group(1)) if m is not None else ""
                    return "server", end, command
            return None
        if mta == sendmail.MTA:
            m = _SENDMAIL_LOST.search(line)
            if m is not None:
                return "server", "lost", "CONNECT" if m.group(1) == "startup" else _command(m.group(1))
            m = _SENDMAIL_TIMEOUT.search(line)
            if m is None:
                return None
            phase = m.group(1)
            if phase == "server cmd read":
                return "server", "timeout", ""
            if phase == "message collect":
                return "server", "timeout", "DATA"
            command = phase[7:]
            return "client", "timeout", "CONNECT" if command == "greeting" else _command(command)
        if mta == opensmtpd.MTA:
            m = _OPENSMTPD.search(line)
            return None if m is None else ("server", _OPENSMTPD_ENDS[m.group(1)], "")
        return None

    def on_delivery(self, mta: str, line: str) -> End | None:
        """A remote server that dropped or stalled our client, from a deferred delivery line (Postfix)."""
        if mta != postfix.MTA or ("lost connection with " not in line and "timed out while " not in line):
            return None
        m = _POSTFIX_CLIENT.search(line)
        if m is None:
            return None
        head = _POSTFIX_DELIVERY.search(line)
        if head is not None:
            key = head.group(2) + "|" + m.group(0)
            pid = head.group(1)
            if self._last_client_end.get(pid) == key:
                return None
            remember(self._last_client_end, pid, key, self.MAX_PROCESSES)
        phase = m.group(3)
        command = next((c for opening, c in _POSTFIX_CLIENT_PHASES if phase.startswith(opening)), "")
        return "client", "lost" if m.group(1) else "timeout", command
