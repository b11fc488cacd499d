"""What a chunk's lines say beyond their replies: delivery delays, how sessions end, which provider replied.

Each is looked for only where it can be. The Parsed outcomes of the chunk (counted once per distinct
outcome) give the quit and rejected ends and say whether any line has a delivery or a client-role
reply; only then are the lines walked, and only those lines are read again. Ends logged in words are
found by each present MTA's literals in the chunk's text, so a quiet line costs a search of its bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from . import delays, sessions
from .metrics import Batch, Histogram
from .providers import ProviderMap, remote_host
from .reply import Parsed

K = TypeVar("K")


class Details:
    """Adds a chunk's delays, session ends and provider-labelled remote replies to its Batch. Called from
    the one ingest thread; keeps a little state across chunks (see SessionEnds)."""

    def __init__(self, providers: ProviderMap) -> None:
        self.providers = providers
        self.ends = sessions.SessionEnds()

    def add(self, lines: list[str], outcomes: list[Parsed | None], kinds: Iterable[tuple[Parsed | None, int]],
            batch: Batch) -> None:
        """`kinds`: each distinct outcome of the chunk with the number of lines that had it."""
        mtas: set[str] = set()
        walk = False
        for parsed, times in kinds:
            if parsed is None:
                continue
            mtas.add(parsed.mta)
            for (role, how, command), n in sessions.from_replies(parsed):
                key = (parsed.mta, role, how, command)
                batch.sessions[key] = batch.sessions.get(key, 0) + n * times
            walk = walk or parsed.delivery is not None or any(r.role == "client" for r in parsed.replies)
        if walk:
            self._deliveries_and_remote_replies(lines, outcomes, batch)
        needles = [needle for mta in sorted(mtas) for needle in sessions.NEEDLES.get(mta, ())]
        if needles:
            for i in lines_with("\n".join(lines), needles):
                parsed = outcomes[i]
                if parsed is not None and (end := self.ends.in_text(parsed.mta, lines[i])) is not None:
                    self._end(batch, parsed.mta, end)

    def _deliveries_and_remote_replies(self, lines: list[str], outcomes: list[Parsed | None], batch: Batch) -> None:
        for line, parsed in zip(lines, outcomes, strict=True):
            if parsed is None or (parsed.delivery is None and not parsed.replies):
                continue
            mta = parsed.mta
            if parsed.delivery is not None:
                seconds, stages = delays.delay_of(mta, line)
                if seconds is not None:
                    _observe(batch.delays, (mta, parsed.delivery), seconds, parsed.deliveries)
                if stages is not None:
                    for stage, value in zip(delays.STAGES, stages, strict=True):
                        _observe(batch.stages, stage, value, parsed.deliveries)
                if parsed.delivery == "deferred" and (end := self.ends.on_delivery(mta, line)) is not None:
                    self._end(batch, mta, end)
            client = [r for r in parsed.replies if r.role == "client"]
            if client:
                provider = self.providers.of_host(remote_host(mta, line))
                for r in client:
                    key = (mta, provider, r.command, r.code, r.enhanced)
                    batch.remote[key] = batch.remote.get(key, 0) + r.times

    @staticmethod
    def _end(batch: Batch, mta: str, end: sessions.End) -> None:
        key = (mta, *end)
        batch.sessions[key] = batch.sessions.get(key, 0) + 1


def _observe(hists: dict[K, Histogram], key: K, seconds: float, times: int) -> None:
    hist = hists.get(key)
    if hist is None:
        hist = hists[key] = Histogram()
    hist.observe(delays.bucket(seconds), seconds, times)


def lines_with(text: str, needles: Iterable[str]) -> list[int]:
    """Sorted indices of the lines of `text` (lines joined by newlines) that hold any of `needles`; each
    needle is searched for in C, and a line is counted once however often it holds one."""
    found: set[int] = set()
    for needle in needles:
        at = text.find(needle)
        line = last = 0
        while at >= 0:
            line += text.count("\n", last, at)
            found.add(line)
            end = text.find("\n", at)
            if end < 0:
                break
            line, last = line + 1, end + 1
            at = text.find(needle, last)
    return sorted(found)
