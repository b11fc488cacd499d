"""What one log line may make the parsers believe, keep or do: log lines are written by strangers.

Anyone who can reach syslog writes lines the parsers read. A line that goes beyond what any MTA writes
is implausible: the parser gives it no replies and it is counted in lines_bad{reason="implausible"}.
"""

from __future__ import annotations

from typing import Final, TypeVar

# The largest count one line may stand for: a number of commands in a session (Postfix's
# `disconnect ... rcpt=N`) or of recipients of one delivery line (Sendmail's `to=<a>,<b>`). Real lines
# stay below it: clients end a session long before (Postfix's smtp client reuses a connection for 300 s
# at most, Exim's for 500 messages) and Sendmail's to= list fits one syslog record (about 1 KiB). One
# line cannot add more than this to a series, nor a number that overflows a float at scrape time or
# that int() refuses.
MAX_COUNT: Final = 100_000
_MAX_DIGITS: Final = len(str(MAX_COUNT))
# The most replies one line may hold: a reply and those relayed inside it (a content filter's
# "250 ... from MTA(...): 250 ..."), or Exim's replies to pipelined commands in C="...\n...". MTAs
# write a few; a line of thousands would cost a step each.
MAX_REPLIES: Final = 100
# How far the lines of one multi-line reply may lie from its first line. Postfix keeps at most
# line_length_limit (2,048) characters of a reply's lines; the bound keeps the search for the last
# line of each reply short however many the line holds.
MAX_REPLY_TEXT: Final = 8192
# The longest counters of a Postfix disconnect line ("ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"):
# smtpd writes at most 17 of them.
MAX_COUNTERS_TEXT: Final = 512
# Texts longer than this are parsed but never kept as cache or dictionary keys (a cache of 1,024
# lines of 64 KiB would hold 64 MiB).
MAX_CACHED_TEXT: Final = 256


class Implausible(Exception):
    """Raised while reading a line that no MTA writes; each parser turns it into its implausible outcome."""


def count(digits: str) -> int:
    """The count that the decimal `digits` spell, if a real line can hold it."""
    if len(digits) > _MAX_DIGITS or (n := int(digits)) > MAX_COUNT:
        raise Implausible(f"count of {len(digits)} digits")
    return n


K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, cap: int) -> V:
    """Store `value` under `key` in a memo of at most `cap` entries, emptied when full (cheaper than keeping
    an order, and a memo refills from the lines that follow); returns `value`."""
    if len(memo) >= cap:
        memo.clear()
    memo[key] = value
    return value
