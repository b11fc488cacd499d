"""Reading SMTP reply text as MTAs log it: code, enhanced code, multi-line replies, relayed replies."""

from __future__ import annotations

import re
from functools import lru_cache

from ..codes import BASIC_SYNTAX, ENHANCED_SYNTAX
from ..reply import Reply

# A reply at the start of a text: "550 5.1.1 ...", "421-4.7.0 ...", "451 Try later".
_REPLY = re.compile(rf"({BASIC_SYNTAX})([ -]|$)(?:({ENHANCED_SYNTAX})(?=[\s:;,\\]|$))?")
# A content filter passes the next hop's reply on: "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok".
_RELAYED = re.compile(r"from MTA\([^)]*\): ")
# _REPLY reads at most "599-5.999.999" and the character after it: that head decides the match.
_HEAD = 14


@lru_cache(maxsize=4096)
def _match_head(head: str) -> tuple[str, str, str, int] | None:
    """_REPLY on a reply's first characters; few distinct heads ("250 2.0.0 Ok: "), so cached."""
    m = _REPLY.match(head)
    return None if m is None else (m.group(1), m.group(2), m.group(3) or "", m.end())


@lru_cache(maxsize=4096)
def _one(role: str, command: str, code: str, enhanced: str) -> tuple[Reply]:
    return (Reply(role, command, code, enhanced),)


def reply_at(text: str, pos: int = 0) -> tuple[str, str, int] | None:
    """(code, enhanced, end) of the reply starting at `pos`; a multi-line reply counts once.

    Multi-line replies are joined by the MTA as "550-5.1.1 a 550-5.1.1 b 550 5.1.1 c"; the last
    enhanced code seen wins, so a reply whose last line alone carries one still gets it.
    """
    # Equal to _REPLY.match(text, pos): a head shorter than _HEAD is the text's end, where "$" matches.
    found = _match_head(text[pos : pos + _HEAD])
    if found is None:
        return None
    code, sep, enhanced, end = found
    end += pos
    if sep == "-":
        # continuation lines follow a space (Postfix joins them) or a literal "\n" (Exim)
        cont = re.compile(rf"(?:(?<!\S)|(?<=\\n)){code}([ -])(?:({ENHANCED_SYNTAX})(?=[\s:;,\\]|$))?")
        for c in cont.finditer(text, end):
            enhanced = c.group(2) or enhanced
            end = c.end()
            if c.group(1) == " ":
                break
    return code, enhanced, end


def replies_at(text: str, role: str, command: str, pos: int = 0) -> tuple[Reply, ...]:
    """Replies packed one after another with literal "\\n" between them (Exim's C="..."):
    a multi-line reply counts once, separate replies each count."""
    out: list[Reply] = []
    while (found := reply_at(text, pos)) is not None:
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
    out = _one(role, command, code, enhanced)
    relayed = _RELAYED.search(text, end) if "from MTA(" in text else None
    if relayed is not None:
        return out + replies_in(text, "client", command, relayed.end())
    return out
