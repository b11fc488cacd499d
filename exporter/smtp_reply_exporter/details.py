"""What a chunk's lines say beyond their replies: delivery delays, how sessions end, which provider replied.

Each is looked for only where it can be. The chunk's distinct Parsed outcomes give the quit and rejected
ends and say whether any line has a delivery or a client-role reply; the lines that do are picked by one
comprehension, and their fields are cut out of all of them at once by C loops (map, compress, Counter),
so a delivery line costs no Python statement of its own. Ends logged in words are found by each present
MTA's literals in the chunk's text: a quiet line costs the search of its bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from functools import partial
from itertools import compress, repeat
from operator import attrgetter, eq
from typing import TypeVar

from . import delays, providers, sessions
from .metrics import Batch, Histogram
from .reply import Parsed

K = TypeVar("K")
_MTA, _STATUS, _RECIPIENTS, _REPLIES = (attrgetter(a) for a in ("mta", "delivery", "deliveries", "replies"))


class Details:
    """Adds a chunk's delays, session ends and provider-labelled remote replies to its Batch. Called from
    the one ingest thread; keeps a little state across chunks (see SessionEnds)."""

    MAX_HOSTS = 4096

    def __init__(self, mapping: providers.ProviderMap) -> None:
        self.providers = mapping
        self.ends = sessions.SessionEnds()
        self._provider_of: dict[str | None, str] = {}  # remote host -> provider, as the relays repeat

    def add(self, lines: list[str], outcomes: list[Parsed | None], kinds: Iterable[tuple[Parsed | None, int]],
            batch: Batch, text: str | None = None) -> None:
        """`kinds`: each distinct outcome of the chunk with the number of lines that had it; `text`: the lines
        joined by newlines, when the caller has it already."""
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
            for i in lines_with("\n".join(lines) if text is None else text, needles):
                parsed = outcomes[i]
                if parsed is not None and (end := self.ends.in_text(parsed.mta, lines[i])) is not None:
                    self._end(batch, parsed.mta, end)

    def _deliveries_and_remote_replies(self, lines: list[str], outcomes: list[Parsed | None], batch: Batch) -> None:
        """Column by column (this runs on every delivery line the MTA writes: CPU per line counts)."""
        # a line's client replies come first or last (a proxy line: our smtpd's reply, then the one it relays);
        # tests/test_providers.py sees a sum short if a parser ever writes them elsewhere
        hot = [i for i, p in enumerate(outcomes) if p is not None and (p.delivery is not None or (
            p.replies and (p.replies[0].role == "client" or p.replies[-1].role == "client")))]
        if not hot:
            return
        parsed: list[Parsed] = list(map(outcomes.__getitem__, hot))  # type: ignore[arg-type]
        texts = list(map(lines.__getitem__, hot))
        mtas = list(map(_MTA, parsed))
        present = set(mtas)
        for mta in present:
            if len(present) == 1:
                self._one_mta(batch, mta, parsed, texts)
            else:
                keep = list(map(mta.__eq__, mtas))
                self._one_mta(batch, mta, list(compress(parsed, keep)), list(compress(texts, keep)))

    def _one_mta(self, batch: Batch, mta: str, parsed: list[Parsed], texts: list[str]) -> None:
        statuses: list[str | None] = list(map(_STATUS, parsed))
        recipients = list(map(_RECIPIENTS, parsed))
        observed = list(map(partial(delays.observations, mta), delays.fields_of(mta, texts)))
        if max(recipients) == 1:  # one recipient a line (all but Sendmail): group by status alone
            for status in {s for s in set(statuses) if s is not None}:
                _count(batch, mta, status, 1, list(compress(observed, map(eq, statuses, repeat(status)))))
        else:
            kinds = list(zip(statuses, recipients, strict=True))
            for kind in set(kinds):
                if kind[0] is not None:
                    _count(batch, mta, kind[0], kind[1], list(compress(observed, map(eq, kinds, repeat(kind)))))
        for line in compress(texts, map(eq, statuses, repeat("deferred"))):
            if (end := self.ends.on_delivery(mta, line)) is not None:
                self._end(batch, mta, end)
        hosts = providers.hosts_of(mta, texts)
        for (replies, host), times in Counter(zip(map(_REPLIES, parsed), hosts, strict=True)).items():
            provider = None
            for r in replies:
                if r.role == "client":
                    provider = provider or self._provider(host)
                    key = (mta, provider, r.command, r.code, r.enhanced)
                    batch.remote[key] = batch.remote.get(key, 0) + r.times * times

    def _provider(self, host: str | None) -> str:
        provider = self._provider_of.get(host)
        if provider is None:
            if len(self._provider_of) >= self.MAX_HOSTS:
                self._provider_of.clear()
            provider = self._provider_of[host] = self.providers.of_host(host)
        return provider

    @staticmethod
    def _end(batch: Batch, mta: str, end: sessions.End) -> None:
        key = (mta, *end)
        batch.sessions[key] = batch.sessions.get(key, 0) + 1


def _count(batch: Batch, mta: str, status: str, recipients: int, observed: list[tuple[float, ...]]) -> None:
    """Delays of one kind of delivery line: the combinations of bucket indices counted, the seconds summed,
    column by column (a line with stages has 10 columns, one without 2, one without a delay none)."""
    widths = set(map(len, observed))
    for width in widths - {0}:
        rows = observed if widths == {width} else [row for row in observed if len(row) == width]
        columns = list(zip(*rows, strict=True))  # delay bucket, delay seconds, then each of Postfix's stages
        hists = [_hist(batch.delays, (mta, status)),
                 *(_hist(batch.stages, stage) for stage in delays.STAGES)][: width // 2]
        for indices, n in Counter(zip(*columns[::2], strict=True)).items():
            for hist, index in zip(hists, indices, strict=True):
                hist.counts[int(index)] += n * recipients
        for hist, seconds in zip(hists, columns[1::2], strict=True):
            hist.total += math.fsum(seconds) * recipients


def _hist(hists: dict[K, Histogram], key: K) -> Histogram:
    hist = hists.get(key)
    if hist is None:
        hist = hists[key] = Histogram()
    return hist


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
