"""What a chunk's lines say beyond their replies: delivery delays, how sessions end, which provider replied.

Each is looked for only where it can be. The chunk's reply tallies give the quit and rejected ends, once
per distinct reply; the lines the tally listed (a delivery, a remote server's reply) are read again in
one compiled loop, and their delay fields and remote hosts are tallied so that each distinct one is
parsed once per chunk. Ends logged in words are found by each present MTA's literals in the chunk's text:
a quiet line costs the search of its bytes.
"""

from __future__ import annotations

from typing import TypeVar

from . import delays, providers, sessions
from .batch import Batch, Histogram
from .parse.limits import remember
from .parse.pattern import lines_matching
from .reply import Parsed, Reply

K = TypeVar("K")
DelayKey = tuple[str, str, int, str]  # mta, delivery status, recipients the line stands for, its delay field


class Details:
    """Adds a chunk's delays, session ends and provider-labelled remote replies to its Batch. Called from
    the one ingest thread; keeps a little state across chunks (see SessionEnds)."""

    MAX_HOSTS = 4096

    def __init__(self, mapping: providers.ProviderMap) -> None:
        self.providers = mapping
        self.ends = sessions.SessionEnds()
        self._provider_of: dict[str | None, str] = {}  # remote host -> provider, as the relays repeat

    def add(self, lines: list[str], outcomes: list[Parsed | None], wanted: list[int],
            said: dict[str, dict[Reply, int]], batch: Batch, text: str | None = None) -> None:
        """`wanted`: the indices of the lines with a delivery or a remote server's reply; `said`: the chunk's
        replies tallied by MTA; `text`: the lines joined by newlines, when the caller has it."""
        for mta, tally in said.items():  # the ends replies prove, once per distinct reply of the chunk
            for r, n in tally.items():
                end = sessions.from_reply(r)
                if end is not None:
                    skey = (mta, *end)
                    batch.sessions[skey] = batch.sessions.get(skey, 0) + n
        fields: dict[DelayKey, int] = {}
        for i in wanted:  # compiled: one loop over the lines that need reading again
            parsed = outcomes[i]
            assert parsed is not None
            mta, status = parsed.mta, parsed.delivery
            if status is not None:
                key = (mta, status, parsed.deliveries, delays.field_of(mta, lines[i]))
                fields[key] = fields.get(key, 0) + 1
                if status == "deferred" and (end := self.ends.on_delivery(mta, lines[i])) is not None:
                    self._end(batch, mta, end)
            if remote(parsed):
                provider = self._provider(providers.host_of(mta, lines[i]))
                for r in parsed.replies:
                    if r.role == "client":
                        rkey = (mta, provider, r.command, r.code, r.enhanced)
                        batch.remote[rkey] = batch.remote.get(rkey, 0) + r.times
        for (mta, status, recipients, field), n in fields.items():
            observed = delays.observations(mta, field)  # delay bucket, seconds, then each of Postfix's stages
            hists = [_hist(batch.delays, (mta, status)), *(_hist(batch.stages, stage) for stage in delays.STAGES)]
            for k in range(0, len(observed), 2):
                hists[k // 2].observe(int(observed[k]), observed[k + 1], n * recipients)
        needles = [needle for mta in sorted(said) for needle in sessions.NEEDLES.get(mta, ())]
        if needles:
            for i in lines_matching("\n".join(lines) if text is None else text, needles):
                parsed = outcomes[i]
                if parsed is not None and (end := self.ends.in_text(parsed.mta, lines[i])) is not None:
                    self._end(batch, parsed.mta, end)

    def _provider(self, host: str | None) -> str:
        provider = self._provider_of.get(host)
        if provider is None:
            provider = remember(self._provider_of, host, self.providers.of_host(host), self.MAX_HOSTS)
        return provider

    @staticmethod
    def _end(batch: Batch, mta: str, end: sessions.End) -> None:
        key = (mta, *end)
        batch.sessions[key] = batch.sessions.get(key, 0) + 1


def remote(parsed: Parsed) -> bool:
    """Whether a line holds a remote server's reply: a line's client replies come first or last (a proxy line:
    our smtpd's reply, then the one it relays); tests/test_providers.py sees a sum short if a parser ever
    writes them elsewhere."""
    replies = parsed.replies
    return bool(replies) and (replies[0].role == "client" or replies[-1].role == "client")


def _hist(hists: dict[K, Histogram], key: K) -> Histogram:
    hist = hists.get(key)
    if hist is None:
        hist = hists[key] = Histogram()
    return hist
