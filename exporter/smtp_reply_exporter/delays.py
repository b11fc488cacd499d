"""Delivery delays as each MTA logs them on its delivery lines, counted into fixed histogram buckets.

The delay is the time from the message's arrival to this delivery attempt: Postfix `delay=` (and its
four stages in `delays=a/b/c/d`), Exim `QT=` (log_selector +queue_time), Sendmail `delay=[d+]hh:mm:ss`,
OpenSMTPD `delay=1d2h3m4s`. Counting is a bucket index and a sum per line; the collector builds the
histogram at scrape time.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import lru_cache
from typing import Final

from .parse import exim, opensmtpd, postfix, sendmail

# Upper bounds in seconds, from a local delivery (0.1 s) to the usual queue lifetime (5 days).
BUCKETS: Final[tuple[float, ...]] = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
    14400.0, 43200.0, 86400.0, 172800.0, 432000.0,
)
# Postfix's delays=a/b/c/d, in order (postconf(5), "delays")
STAGES: Final[tuple[str, ...]] = ("before_queue_manager", "in_queue_manager", "connection_setup", "transmission")
MAX_SECONDS: Final = 10 * 365 * 86400.0  # beyond any queue lifetime: a line that says more is not believed

_SECONDS: Final = r"\d{1,10}(?:\.\d{1,9})?"
_POSTFIX: Final = re.compile(rf" delay=({_SECONDS})(?:, delays=({_SECONDS})/({_SECONDS})/({_SECONDS})/({_SECONDS}))?")
# Exim's readconf_printtime (1w2d3h4m5s), or "1.234s" under +millisec; "-" when the clock went back
_EXIM: Final = re.compile(r" QT=(?:(\d{1,6})w)?(?:(\d{1,2})d)?(?:(\d{1,2})h)?(?:(\d{1,2})m)?"
                   r"(?:(\d{1,10}(?:\.\d{1,3})?)s)?")
_SENDMAIL: Final = re.compile(r", delay=(?:(\d{1,6})\+)?(\d{2,6}):(\d\d):(\d\d)")
_OPENSMTPD: Final = re.compile(r" delay=(?:(\d{1,9})d)?(?:(\d{1,2})h)?(?:(\d{1,2})m)?(?:(\d{1,2})s)?")
_UNITS_EXIM: Final[tuple[float, ...]] = (604800.0, 86400.0, 3600.0, 60.0, 1.0)
_UNITS_OPENSMTPD: Final[tuple[float, ...]] = (86400.0, 3600.0, 60.0, 1.0)


def bucket(seconds: float) -> int:
    """Index of the first bucket whose upper bound holds `seconds` (len(BUCKETS) for +Inf)."""
    return bisect_left(BUCKETS, seconds)


def delay_of(mta: str, line: str) -> tuple[float | None, tuple[float, float, float, float] | None]:
    """The delay of a delivery line, and Postfix's four stages; None where the line has none."""
    return parse_field(mta, field_of(mta, line))


# Where each MTA's delay field starts and what follows it on the line: Postfix's delays= is followed by dsn=,
# Sendmail's delay= by xdelay=, OpenSMTPD's by result=; Exim's QT= by a space or the end of the line.
_FIELDS: Final = {postfix.MTA: (" delay=", ", dsn="), sendmail.MTA: (", delay=", ", xdelay="),
           opensmtpd.MTA: (" delay=", " result="), exim.MTA: (" QT=", " ")}


def field_of(mta: str, line: str) -> str:
    """The delay field of a delivery line as written: a short text that repeats from line to line, parsed once
    by `observations`. A line without the field gets "" or a slice that parses to nothing; a field longer than
    any real one is cut (it is a cache key) and then not believed."""
    spec = _FIELDS.get(mta)
    if spec is None:
        return ""
    opening, follows = spec
    if mta == exim.MTA:  # its field may end the line, and opens with the separator: look past the opening
        line += " "
        start = line.find(opening)
        return line[start : line.find(follows, start + 1)][: _FIELD_MAX + 1]
    start = line.find(opening)
    return line[start : line.find(follows, start)][: _FIELD_MAX + 1]


_FIELD_MAX: Final = 120  # longer than any real field: a longer one is cut, and then not believed


@lru_cache(maxsize=4096)
def parse_field(mta: str, field: str) -> tuple[float | None, tuple[float, float, float, float] | None]:
    """Seconds (and Postfix's stages) in a field that field_of cut out."""
    if not field or (len(field) > _FIELD_MAX and mta != postfix.MTA):  # Postfix's is read from its start
        return None, None
    if mta == postfix.MTA:
        m = _POSTFIX.match(field)  # Postfix before 2.3 wrote no delays=: the field runs on to dsn=
        if m is None:
            return None, None
        stages = None if m.group(2) is None else (
            float(m.group(2)), float(m.group(3)), float(m.group(4)), float(m.group(5)))
        return _plausible(float(m.group(1))), stages if stages is not None and max(stages) <= MAX_SECONDS else None
    if mta == exim.MTA:
        m = _EXIM.fullmatch(field)
        return (_sum(m, _UNITS_EXIM) if m is not None and m.group(0) != " QT=" else None), None
    if mta == sendmail.MTA:
        m = _SENDMAIL.fullmatch(field)
        if m is None:
            return None, None
        days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
        return _plausible(days * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds), None
    if mta == opensmtpd.MTA:
        m = _OPENSMTPD.fullmatch(field)
        return (_sum(m, _UNITS_OPENSMTPD) if m is not None and m.group(0) != " delay=" else None), None
    return None, None


@lru_cache(maxsize=8192)
def observations(mta: str, field: str) -> tuple[float, ...]:
    """What a delay field adds to the histograms, flat: bucket index and seconds of the delay, then of each of
    Postfix's stages; () when the field says nothing."""
    seconds, stages = parse_field(mta, field)
    if seconds is None:
        return ()
    out: list[float] = [bucket(seconds), seconds]
    for value in stages or ():
        out += [bucket(value), value]
    return tuple(out)


def _sum(m: re.Match[str], units: tuple[float, ...]) -> float | None:
    return _plausible(sum(float(g) * unit for g, unit in zip(m.groups(), units, strict=True) if g))


def _plausible(seconds: float) -> float | None:
    return seconds if seconds <= MAX_SECONDS else None
