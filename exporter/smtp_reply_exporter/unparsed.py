"""Format drift: lines of a known MTA that look as if they carry a reply, yet gave none.

A new wording in an MTA's log would otherwise be a quiet drop in counts. Only lines whose Parsed holds
no reply are looked at, so a line with replies costs nothing more.
"""

from __future__ import annotations

import re
from typing import Final

from .parse import exim, opensmtpd, postfix, sendmail, syslog
from .parse.pattern import lines_matching
from .reply import Parsed

# A reply as MTAs log it: a code that opens text where the MTA writes replies ("said: 451 Try",
# "(250 2.0.0", 'result="550-', "reject=550 5.7.1"), or an enhanced code alone there (": 5.7.1 Blocked");
# never a number inside a word, an address, a port, another key=value (dsn=4.0.0, size=250) or a
# duration ("after 300 seconds"). One pattern per opening literal, so that a pass over a chunk is a fast
# literal search (a pattern opening with a character class, or with a lone space, costs several times
# more), and per MTA only the openings it writes replies after. Linear: no nested repetition.
_BASIC: Final = r"[2-5][0-9][0-9][ -](?!(?:seconds?|secs?|minutes?|hours?|days?|bytes|ms)\b)(?:[A-Za-z<]|[245]\.[0-9])"
_ENHANCED: Final = r"[245]\.[0-9]{1,3}\.[0-9]{1,3}(?![\w.])"
_OPENINGS: Final = {
    postfix.MTA: (": ", r"\("),  # "said: 550 ...", "status=sent (250 ...)"
    exim.MTA: (": ", '"'),  # "after RCPT TO:<a@b>: 550 ...", 'C="250 ..."'
    sendmail.MTA: (": ", "re(?:ject|ply)="),  # "stat=Deferred: 451 ...", "reject=550 ...", "reply=550 ..."
    opensmtpd.MTA: (": ", '"'),  # 'result="550 ..."', 'stat="250 ..."'
}
_ANY_MTA: Final = tuple(sorted({opening for openings in _OPENINGS.values() for opening in openings}))
REPLY_SHAPED: Final = {mta: tuple(re.compile(rf"{opening}(?:{_BASIC}|{_ENHANCED})") for opening in openings)
                for mta, openings in {**_OPENINGS, "": _ANY_MTA}.items()}
# Lines that hold a reply-shaped token which is not a reply on the wire, by MTA (searched on the message).
_VERSION: Final = r"\bversion [0-9]"  # startup banners ("daemon started -- version 2.11.3")
KNOWN_NOT_REPLIES: Final[dict[str, re.Pattern[str]]] = {
    # anvil's rate figure ("rate limit exceeded: 334 from"); cleanup's milter and header/body actions,
    # which log only the enhanced code of the reply smtpd sends; qmgr quoting the reply that made it hold
    # a destination back (no try)
    postfix.MTA: re.compile(
        r"rate limit exceeded: |delivery temporarily suspended: "
        r"|^\w+: (?:milter-)?(?:reject|discard|hold|redirect|filter|warning|info): "
        rf"(?:END-OF-MESSAGE|header|body|CONNECT|DATA) |{_VERSION}"
    ),
    exim.MTA: re.compile(_VERSION),
    # stat=Sent carries the remote's text, not its reply code: a delivery, not a reply (see parse/sendmail.py)
    sendmail.MTA: re.compile(rf"\bstat=Sent \(|{_VERSION}"),
    opensmtpd.MTA: re.compile(_VERSION),
}
# The `program` label: a closed set per MTA (Postfix by its service, whatever its syslog_name), else "other".
PROGRAMS: Final[dict[str, frozenset[str]]] = {
    postfix.MTA: postfix.SERVICES,
    exim.MTA: frozenset({"exim", "exim4"}),
    sendmail.MTA: frozenset({"sendmail", "sm-mta", "sm-msp-queue"}),
    opensmtpd.MTA: frozenset({"smtpd", "opensmtpd"}),
}
OTHER: Final = "other"


def find(lines: list[str], outcomes: list[Parsed | None], mtas: set[str]) -> list[tuple[int, str, str]]:
    """(index, mta, program) of the lines of a known MTA that hold a reply-shaped token but gave no reply;
    `mtas`: those of the chunk's lines. The chunk's quiet lines are searched
    as one text, so a line costs a search of its bytes and only a line with a hit is looked at again."""
    quiet = [i for i, parsed in enumerate(outcomes)
             if parsed is not None and not (parsed.replies or parsed.warnings or parsed.implausible or parsed.folded)]
    if not quiet:
        return []
    text = "\n".join([lines[i] for i in quiet])
    out: list[tuple[int, str, str]] = []
    for k in lines_matching(text, {p for mta in mtas for p in _patterns(mta)}):
        i = quiet[k]
        line, parsed = lines[i], outcomes[i]
        assert parsed is not None
        if any(pattern.search(line) for pattern in _patterns(parsed.mta)) and not _known(line, parsed.mta):
            out.append((i, parsed.mta, program_label(parsed.mta, line)))
    return out


def _patterns(mta: str) -> tuple[re.Pattern[str], ...]:
    return REPLY_SHAPED.get(mta) or REPLY_SHAPED[""]


def _known(line: str, mta: str) -> bool:
    """A known form that is not a reply on the wire (a reply folded into an earlier line is never looked at:
    its parser marks it)."""
    head = _header(line)
    known = KNOWN_NOT_REPLIES.get(mta)
    return known is not None and known.search(line if head is None else head[2]) is not None


def program_label(mta: str, line: str) -> str:
    """The line's program, bounded to its MTA's closed set."""
    head = _header(line)
    if head is None:
        return mta if mta == exim.MTA else OTHER  # Exim's own mainlog has no header
    program = head[0].rpartition("/")[2] if mta == postfix.MTA else head[0]
    return program if program in PROGRAMS.get(mta, ()) else OTHER


def _header(line: str) -> tuple[str, str, str] | None:
    return syslog.split(line) or syslog.split_hostless(line)
