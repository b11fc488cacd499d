"""Reading SMTP reply text as MTAs log it: code, enhanced code, multi-line replies, relayed replies."""

from __future__ import annotations

import re
from functools import cache
from typing import Final, NamedTuple

from ..codes import BASIC_SYNTAX, ENHANCED_SYNTAX
from ..reply import Reply
from .limits import MAX_REPLIES, MAX_REPLY_TEXT, Implausible, remember

# A reply at the start of a text: "550 5.1.1 ...", "421-4.7.0 ...", "451 Try later".
_REPLY: Final = re.compile(rf"({BASIC_SYNTAX})([ -]|$)(?:({ENHANCED_SYNTAX})(?=[\s:;,\\]|$))?")
# A content filter passes the next hop's reply on: "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok".
# No parenthesis inside: each try stops at the next "from MTA(", so a line of them is read once.
_RELAYED: Final = re.compile(r"from MTA\([^()]*+\): ")
# _REPLY reads at most "599-5.999.999" and the character after it: that head decides the match.
_HEAD: Final = 14
_ENHANCED_AT: Final = re.compile(rf"{ENHANCED_SYNTAX}(?=[\s:;,\\]|$)")


# Memos of the two steps every reply takes, bounded (emptied when full): plain dictionaries, as a compiled
# lookup costs a tenth of a call through functools.lru_cache.
_MEMO: Final = 4096
_heads: Final[dict[str, tuple[str, str, str, int]]] = {}
_NO_REPLY: Final[tuple[str, str, str, int]] = ("", "", "", 0)
_replies: Final[dict[tuple[str, str, str, str], tuple[Reply]]] = {}


def _match_head(head: str) -> tuple[str, str, str, int]:
    """_REPLY on a reply's first characters (code "" when none); few distinct heads ("250 2.0.0 Ok: ")."""
    found = _heads.get(head)
    if found is None:
        m = _REPLY.match(head)
        found = _NO_REPLY if m is None else (m.group(1), m.group(2), m.group(3) or "", m.end())
        remember(_heads, head, found, _MEMO)
    return found


def _one(role: str, command: str, code: str, enhanced: str) -> tuple[Reply]:
    """One shared Reply per distinct value: a chunk tallies replies by identity first."""
    key = (role, command, code, enhanced)
    found = _replies.get(key)
    if found is None:
        found = remember(_replies, key, (Reply(role, command, code, enhanced),), _MEMO)
    return found


def reply_at(text: str, pos: int = 0) -> tuple[str, str, int] | None:
    """(code, enhanced, end) of the reply starting at `pos`; a multi-line reply counts once.

    Multi-line replies are joined by the MTA as "550-5.1.1 a 550-5.1.1 b 550 5.1.1 c"; the last line's
    enhanced code wins, so a reply whose last line alone carries one still gets it.
    """
    # Equal to _REPLY.match(text, pos): a head shorter than _HEAD is the text's end, where "$" matches.
    code, sep, enhanced, end = _match_head(text[pos : pos + _HEAD])
    if not code:
        return None
    end += pos
    if sep == "-":
        return (code, *_last_line(text, code, enhanced, end))
    return code, enhanced, end


class _Lines(NamedTuple):
    """The other lines of a multi-line reply: its code again after a space (Postfix joins the lines so)
    or a literal "\\n" (Exim). The code opens each pattern, so a search skips from one to the next
    instead of trying every character."""

    last: re.Pattern[str]  # the next last line, "<code> "
    latest: re.Pattern[str]  # matched at a position: the last "<code>-" line from there


@cache  # compiled when a code is first seen: 400 codes at most
def _lines(code: str) -> _Lines:
    line = rf"{code}(?<=(?:(?<!\S)|(?<=\\n)){code})"
    return _Lines(re.compile(rf"{line} "), re.compile(rf"(?s:.*){line}-"))


def _last_line(text: str, code: str, enhanced: str, end: int) -> tuple[str, int]:
    """(enhanced, end) of a multi-line reply whose first line ends at `end`. It ends with the next
    "<code> " line or, without one, with its last "<code>-" line (within MAX_REPLY_TEXT), and has the
    enhanced code of that line or else of its first. One search forward and one back, not a step per
    line: a hostile reply has thousands."""
    lines, stop = _lines(code), end + MAX_REPLY_TEXT
    last = lines.last.search(text, end, stop) or lines.latest.match(text, end, stop)
    if last is None:
        return enhanced, end
    given = _ENHANCED_AT.match(text, last.end())
    return (given.group(), given.end()) if given else (enhanced, last.end())


def replies_at(text: str, role: str, command: str, pos: int = 0) -> tuple[Reply, ...]:
    """Replies packed one after another with literal "\\n" between them (Exim's C="..."):
    a multi-line reply counts once, separate replies each count."""
    out: list[Reply] = []
    while (found := reply_at(text, pos)) is not None:
        if len(out) == MAX_REPLIES:
            raise Implausible("too many replies")
        code, enhanced, end = found
        out += _one(role, command, code, enhanced)
        nxt = text.find("\\n", end)
        if nxt < 0:
            break
        pos = nxt + 2
    return tuple(out)


def replies_in(text: str, role: str, command: str, pos: int = 0) -> tuple[Reply, ...]:
    """The reply at `pos` and any reply a content filter relayed inside it (client role)."""
    found = reply_at(text, pos)
    if found is None:
        return ()
    code, enhanced, end = found
    first = _one(role, command, code, enhanced)
    if "from MTA(" not in text:
        return first
    out = list(first)
    while (relayed := _RELAYED.search(text, end)) is not None and (found := reply_at(text, relayed.end())):
        if len(out) == MAX_REPLIES:
            raise Implausible("too many replies")
        code, enhanced, end = found
        out += _one("client", command, code, enhanced)
    return tuple(out)
