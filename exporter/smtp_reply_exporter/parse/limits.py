"""What one log line may make the parsers believe or keep: log lines are written by strangers.

Anyone who can reach syslog writes lines the parsers read, so a number in a line is believed only up
to a bound, and text is cached only when it is short.
"""

from __future__ import annotations

# The largest count one line may stand for: a number of commands in a session (Postfix's
# `disconnect ... rcpt=N`) or of recipients of one delivery line (Sendmail's `to=<a>,<b>`). Real lines
# stay below it: clients end a session long before (Postfix's smtp client reuses a connection for 300 s
# at most, Exim's for 500 messages) and Sendmail's to= list fits one syslog record (about 1 KiB). Above
# it a line is implausible (counted in lines_bad{reason="implausible"}, no replies): one line cannot add
# more than this to a series, nor a number that overflows a float at scrape time or that int() refuses.
MAX_COUNT = 100_000
_MAX_DIGITS = len(str(MAX_COUNT))
# Texts longer than this are parsed but never kept as cache or dictionary keys (a cache of 1,024
# lines of 64 KiB would hold 64 MiB).
MAX_CACHED_TEXT = 256


def count(digits: str) -> int | None:
    """The count that the decimal `digits` spell, or None when no real line holds it."""
    if len(digits) > _MAX_DIGITS:
        return None
    n = int(digits)
    return n if n <= MAX_COUNT else None
