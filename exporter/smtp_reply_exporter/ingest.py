"""From chunks of complete log lines (bytes) to counts: decode, parse, count in one batch per chunk."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from . import providers, unparsed
from .details import Details
from .metrics import Batch, Counts, SourceStats
from .parse import line_parser
from .reply import Parsed
from .unwrap import Unwrapper

log = logging.getLogger(__name__)
OnParsed = Callable[[int, Parsed], None]  # (1-based line number in the source, what it held)
OnUnparsed = Callable[[int, str], None]  # (1-based line number, a line with a reply-shaped token but no reply)


class Ingest:
    """Counts what every line says. One instance per process; called from one thread at a time."""

    def __init__(self, counts: Counts, mta: str = "auto", remote_providers: providers.ProviderMap | None = None,
                 log_format: str = "auto") -> None:
        self.counts = counts
        self.parse_line = line_parser(mta, log_format)
        self.details = Details(remote_providers or providers.load())

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
        # Equal outcomes collapse: a chunk of thousands of lines holds a few dozen distinct Parsed
        # values (every quiet Postfix line is the same one), so counting is one hash per line in C.
        outcomes = list(map(self.parse_line, lines))
        batch = Batch(lines=read, bytes=len(data))
        replies, warnings, deliveries = batch.replies, batch.warnings, batch.deliveries
        tally = Counter(outcomes)
        for parsed, times in tally.items():
            if parsed is None:
                batch.lines_unrecognised = times
                continue
            mta = parsed.mta
            if parsed.implausible:
                bad["implausible"] = bad.get("implausible", 0) + times
            if parsed.replies:
                batch.lines_with_replies += times
                for r in parsed.replies:
                    key = (mta, r.role, r.command, r.code, r.enhanced)
                    replies[key] = replies.get(key, 0) + r.times * times
            if parsed.delivery is not None:
                dkey = (mta, parsed.delivery)
                deliveries[dkey] = deliveries.get(dkey, 0) + parsed.deliveries * times
            for r in parsed.warnings:
                key = (mta, r.role, r.command, r.code, r.enhanced)
                warnings[key] = warnings.get(key, 0) + r.times * times
        self.details.add(lines, outcomes, tally.items(), batch, joined)  # delays, session ends, providers
        first = stats.lines
        for i, mta, program in unparsed.find(lines, outcomes, tally):  # format drift, in quiet lines only
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
