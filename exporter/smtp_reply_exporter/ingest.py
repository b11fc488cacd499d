"""From chunks of complete log lines (bytes) to counts: decode, parse, count in one batch per chunk."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from . import providers, unparsed
from .batch import Batch, Merges
from .details import Details, remote
from .parse import LineParser
from .reply import Parsed, Reply
from .stats import SourceStats
from .unwrap import Unwrapper

log = logging.getLogger(__name__)
YIELD_MASK: Final = 127  # while a request is served, the ingest steps aside every 128 lines (~0.3 ms)
OnParsed = Callable[[int, Parsed], None]  # (1-based line number in the source, what it held)
OnUnparsed = Callable[[int, str], None]  # (1-based line number, a line with a reply-shaped token but no reply)


class Ingest:
    """Counts what every line says. One instance per process; called from one thread at a time."""

    def __init__(self, counts: Merges, mta: str = "auto", remote_providers: providers.ProviderMap | None = None,
                 log_format: str = "auto") -> None:
        self.counts = counts
        self.parser = LineParser(mta, log_format)
        self.details = Details(remote_providers or providers.load())
        self.give_way: Callable[[], bool] | None = None  # whether a request waits for this thread's GIL

    def feed(
        self, data: bytes, stats: SourceStats, on_parsed: OnParsed | None = None, unwrap: Unwrapper | None = None,
        on_unparsed: OnUnparsed | None = None,
    ) -> None:
        """Count the lines of `data`, which ends with a newline (the tail holds partial lines)."""
        joined: str | None = None  # the lines joined by newlines, when the chunk is exactly that
        bad: dict[str, int] = {}  # bad-line reasons of this chunk, added to the source's stats under its lock
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            lines = self._sanitise(data.split(b"\n")[:-1], bad, stats.lines)
        else:
            lines = text.split("\n")
            lines.pop()
            if "\x00" in text:
                lines = self._strip_nul(lines, bad)
            else:
                joined = text
        read = len(lines)
        if unwrap is not None and unwrap.mode != "plain":
            joined = None
            before = unwrap.malformed
            lines = unwrap.lines(lines)
            bad["malformed"] = unwrap.malformed - before
        outcomes = self.parse(lines)
        batch = Batch(lines=read, bytes=len(data))
        tallied = tally(outcomes, batch)
        if tallied.implausible:
            bad["implausible"] = tallied.implausible
        self.details.add(lines, outcomes, tallied.wanted, tallied.said, batch, joined)
        first = stats.lines
        # format drift, in quiet lines only
        for i, mta, program in unparsed.find(lines, outcomes, set(tallied.said)):
            batch.unparsed[mta, program] = batch.unparsed.get((mta, program), 0) + 1
            if on_unparsed is not None:
                on_unparsed(first + i + 1, lines[i])
        if on_parsed is not None:
            for i, parsed in enumerate(outcomes):
                if parsed is not None:
                    on_parsed(first + i + 1, parsed)
        if bad:
            stats.add(**bad)
        self.counts.merge(batch, stats)

    def parse(self, lines: list[str]) -> list[Parsed | None]:
        """What each line says. Compiled code holds the GIL until it returns: while `give_way` says a request is
        being served, this steps off the CPU every 128 lines (YIELD_MASK), so that the serving thread takes the
        GIL at once. time.sleep(0) does (it waits for a timer, ~70 µs here; every 128 lines at all times it
        idled the ingest 0.5 s in 1M lines); os.sched_yield() would take the GIL back before the other
        thread wakes."""
        parser, give_way = self.parser, self.give_way
        outcomes: list[Parsed | None] = []
        for k, line in enumerate(lines):
            if k & YIELD_MASK == YIELD_MASK and give_way is not None and give_way():
                time.sleep(0)
            outcomes.append(parser.parse(line))
        return outcomes

    @staticmethod
    def _sanitise(raw: list[bytes], bad: dict[str, int], first: int) -> list[str]:
        """Decode line by line; bad bytes become U+FFFD and the line is counted, then still parsed
        (codes and labels are ASCII and validated, so a stray byte elsewhere cannot leak into a label)."""
        out: list[str] = []
        for chunk in raw:
            try:
                line = chunk.decode("utf-8")
            except UnicodeDecodeError:
                line = chunk.decode("utf-8", "replace")
                bad["invalid_utf8"] = bad.get("invalid_utf8", 0) + 1
                log.debug("invalid UTF-8 in line %d", first + len(out) + 1)
            out.append(line)
        return Ingest._strip_nul(out, bad) if any("\x00" in line for line in out) else out

    @staticmethod
    def _strip_nul(lines: list[str], bad: dict[str, int]) -> list[str]:
        out: list[str] = []
        for line in lines:
            if "\x00" in line:
                bad["nul_bytes"] = bad.get("nul_bytes", 0) + 1
                line = line.replace("\x00", "")
            out.append(line)
        return out


class Tallied:
    """What tallying a chunk's outcomes leaves for the later stages."""

    def __init__(self) -> None:
        self.said: dict[str, dict[Reply, int]] = {}  # replies by MTA, then by the (shared) Reply object
        self.wanted: list[int] = []  # lines with a delivery or a remote server's reply, for the details
        self.implausible = 0


def tally(outcomes: list[Parsed | None], batch: Batch) -> Tallied:
    """Add the chunk's replies, warnings, deliveries and line tallies to `batch`. Tallied by MTA, then by the
    Reply itself (replies are shared objects with a stored hash, so a lookup is mostly an identity check)
    and by delivery status; labelled keys are built once per chunk."""
    out = Tallied()
    warnings = batch.warnings
    delivered_by: dict[str, dict[str, int]] = {}
    said: dict[Reply, int] = {}
    delivered: dict[str, int] = {}
    wanted = out.wanted
    mta = ""
    unrecognised = with_replies = 0
    for i, parsed in enumerate(outcomes):  # compiled: a quiet line costs a few field reads
        if parsed is None:
            unrecognised += 1
            continue
        if parsed.mta is not mta:  # one MTA a log, mostly: its tallies are seldom looked up
            mta = parsed.mta
            said = out.said.setdefault(mta, {})
            delivered = delivered_by.setdefault(mta, {})
        if parsed.replies:
            with_replies += 1
            for r in parsed.replies:
                said[r] = said.get(r, 0) + r.times
            if remote(parsed):
                wanted.append(i)
        if parsed.delivery is not None:
            delivered[parsed.delivery] = delivered.get(parsed.delivery, 0) + parsed.deliveries
            if not wanted or wanted[-1] != i:
                wanted.append(i)
        for r in parsed.warnings:
            key = (mta, r.role, r.command, r.code, r.enhanced)
            warnings[key] = warnings.get(key, 0) + r.times
        if parsed.implausible:
            out.implausible += 1
    replies, deliveries = batch.replies, batch.deliveries
    for mta, tallied in out.said.items():
        for r, n in tallied.items():
            key = (mta, r.role, r.command, r.code, r.enhanced)
            replies[key] = replies.get(key, 0) + n
    for mta, by_status in delivered_by.items():
        for status, n in by_status.items():
            deliveries[mta, status] = deliveries.get((mta, status), 0) + n
    batch.lines_unrecognised, batch.lines_with_replies = unrecognised, with_replies
    return out
