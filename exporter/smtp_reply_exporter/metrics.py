"""The counts, owned in one place, and the collector that turns them into metric families at scrape time.

Counting is plain dict arithmetic on a batch, merged under one lock; no `labels().inc()` per line.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterator
from functools import lru_cache
from importlib.machinery import EXTENSION_SUFFIXES
from typing import Any, NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from . import __version__, parse
from .batch import Batch, Histogram, RemoteKey, ReplyKey, SessionKey
from .codes import knowledge_base
from .delays import BUCKETS, STAGES
from .stats import SourceStats as SourceStats  # re-exported

# setup.py compiles the parsers with mypyc when it can: the package then holds them as extension modules
VARIANT = "compiled" if parse.__file__ is not None and parse.__file__.endswith(tuple(EXTENSION_SUFFIXES)) else "pure"

DEFAULT_MAX_SERIES = 10_000
# Why a count was not exported: "unregistered" when a series with a code outside the knowledge base
# found its share of the cap full, "cap" when the whole cap was, "remote_cap" when a remote reply's
# provider-labelled copy found max_series such copies (its reply is exported all the same).
SERIES_DROP_REASONS = ("unregistered", "cap", "remote_cap")


class Snapshot(NamedTuple):
    """Everything a scrape shows, taken at one instant: the chunks it counts are the same in all of it."""

    replies: dict[ReplyKey, int]
    warnings: dict[ReplyKey, int]
    deliveries: dict[tuple[str, str], int]
    series_dropped: dict[str, int]  # by reason
    unparsed: dict[tuple[str, str], int]  # by (mta, program)
    sources: list[tuple[str, SourceStats]]  # copies, sorted by source name
    remote: dict[RemoteKey, int]
    sessions: dict[SessionKey, int]
    delays: dict[tuple[str, str], Histogram]
    stages: dict[str, Histogram]


class Counts:
    """All counters of the process; series beyond `max_series` are dropped and counted.

    Series with a reply code outside the knowledge base or an enhanced code outside the registry may
    take only half of the cap, so that a flood of invented codes cannot push out the registered ones.
    """

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES) -> None:
        self._lock = threading.Lock()
        self.max_series = max_series
        self.max_unregistered = max_series // 2
        self._unregistered = 0  # series counted against max_unregistered
        self.replies: dict[ReplyKey, int] = {}
        self.warnings: dict[ReplyKey, int] = {}
        self.deliveries: dict[tuple[str, str], int] = {}
        self.unparsed: dict[tuple[str, str], int] = {}  # mta and program: closed sets, never capped
        self.remote: dict[RemoteKey, int] = {}  # capped with the replies: its code labels are as open
        self.sessions: dict[SessionKey, int] = {}  # closed sets: never capped
        self.delays: dict[tuple[str, str], Histogram] = {}  # (mta, status): closed sets
        self.stages: dict[str, Histogram] = {}
        self.sources: dict[str, SourceStats] = {}
        self.series_dropped = dict.fromkeys(SERIES_DROP_REASONS, 0)
        self.ingest_errors = 0  # unexpected exceptions in the ingest loop (a bug if ever non-zero)
        self.watch_active = False  # file events from watchdog; when off, only the periodic stat check

    def source(self, name: str) -> SourceStats:
        with self._lock:
            return self.sources.setdefault(name, SourceStats())

    def merge(self, batch: Batch, stats: SourceStats) -> None:
        """One chunk's counts and its line tallies in one step: a scrape never shows a line as read
        before the replies in it are counted."""
        with self._lock:
            self._add_replies(self.replies, batch.replies)
            self._add_replies(self.warnings, batch.warnings)
            for dkey, n in batch.deliveries.items():  # mta and status: closed sets
                self._add(self.deliveries, dkey, True, n)
            for ukey, n in batch.unparsed.items():
                self.unparsed[ukey] = self.unparsed.get(ukey, 0) + n
            self._add_remote(batch.remote)
            for skey, n in batch.sessions.items():
                self.sessions[skey] = self.sessions.get(skey, 0) + n
            _add_histograms(self.delays, batch.delays)
            _add_histograms(self.stages, batch.stages)
            stats.add(lines=batch.lines, lines_unrecognised=batch.lines_unrecognised,
                      lines_with_replies=batch.lines_with_replies, bytes=batch.bytes)

    def _add_replies(self, target: dict[ReplyKey, int], part: dict[ReplyKey, int]) -> None:
        for key, n in part.items():
            self._add(target, *bounded(key), n)

    def _add_remote(self, part: dict[RemoteKey, int]) -> None:
        """A remote reply is a copy of a client-role reply with its provider: kept only when that reply's series
        is exported, and at most max_series of them (the provider label multiplies, the cap does not)."""
        for key, n in part.items():
            (mta, provider, command, code, enhanced), _registered = bounded(key)
            folded = (mta, provider, command, code, enhanced)
            if folded in self.remote:
                self.remote[folded] += n
            elif (mta, "client", command, code, enhanced) not in self.replies:
                continue  # the reply itself was dropped, and counted as such
            elif len(self.remote) >= self.max_series:
                self.series_dropped["remote_cap"] += n
            else:
                self.remote[folded] = n

    def _add(self, target: dict[Any, int], key: Any, registered: bool, n: int) -> None:
        if key in target:
            target[key] += n
        elif not registered and self._unregistered >= self.max_unregistered:
            self.series_dropped["unregistered"] += n
        elif self._series() >= self.max_series:
            self.series_dropped["cap"] += n
        else:
            target[key] = n
            self._unregistered += not registered

    def _series(self) -> int:
        return len(self.replies) + len(self.warnings) + len(self.deliveries)

    def snapshot(self) -> Snapshot:
        with self._lock:
            sources = [(name, stats.copy()) for name, stats in self.sources.items()]
            return Snapshot(dict(self.replies), dict(self.warnings), dict(self.deliveries), dict(self.series_dropped),
                            dict(self.unparsed),
                            sorted(sources, key=lambda item: item[0]),
                            dict(self.remote), dict(self.sessions),
                            {k: h.copy() for k, h in self.delays.items()},
                            {k: h.copy() for k, h in self.stages.items()})

    def codes_seen(self) -> dict[str, int]:
        """Total replies per basic code, for the landing page."""
        out: dict[str, int] = {}
        for (_mta, _role, _cmd, code, _enh), n in self.snapshot().replies.items():
            out[code] = out.get(code, 0) + n
        return out


class SmtpCollector(Collector):
    """Yields fresh metric families from `Counts` on every scrape."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        snap = self.counts.snapshot()
        yield _reply_family(
            "smtp_replies", "SMTP replies found in the mail log, by role, command and code.", snap.replies
        )
        yield _reply_family(
            "smtp_reject_warnings",
            "Rejections the MTA logged but did not send (Postfix reject_warning, warn_if_reject).",
            snap.warnings,
        )
        fam = CounterMetricFamily(
            "smtp_deliveries",
            "Delivery attempts by outcome (sent, deferred, bounced, expired).",
            labels=["mta", "status"],
        )
        for (mta, status), n in sorted(snap.deliveries.items()):
            fam.add_metric([mta, status], n)
        yield fam
        yield from _lifecycle(snap)
        yield from _code_info()
        yield from self._health(snap)

    def _health(self, snap: Snapshot) -> Iterator[Metric]:
        sources = snap.sources
        simple = (
            ("lines_read", "Log lines read.", "lines"),
            ("lines_with_replies", "Log lines that held at least one SMTP reply.", "lines_with_replies"),
            ("lines_unrecognised", "Log lines no MTA parser recognised.", "lines_unrecognised"),
            ("bytes_read", "Bytes read from the log.", "bytes"),
            ("rotations", "Log rotations followed (a new file under the watched name).", "rotations"),
            ("truncations", "Log truncations followed (copytruncate).", "truncations"),
            ("open_errors", "Failed attempts to open or read the log.", "open_errors"),
            ("connections_refused", "Syslog TCP connections refused over the connection limit.",
             "connections_refused"),
        )
        for name, doc, attr in simple:
            fam = CounterMetricFamily(f"smtp_exporter_{name}", doc, labels=["source"])
            for source, stats in sources:
                fam.add_metric([source], getattr(stats, attr))
            yield fam
        fam = CounterMetricFamily(
            "smtp_exporter_syslog_udp_kernel_drops",
            "UDP syslog datagrams the kernel dropped before the receiver read them (its socket's drops).",
            labels=["source"],
        )
        for source, stats in sources:
            if stats.kernel_drops is not None:
                fam.add_metric([source], stats.kernel_drops)
        yield fam
        fam = CounterMetricFamily(
            "smtp_exporter_lines_bad",
            "Bad log lines: invalid UTF-8 or NUL (sanitised, still parsed), cut for length, malformed "
            "container or syslog records, or dropped because the ingest queue was full (UDP syslog).",
            labels=["source", "reason"],
        )
        for source, stats in sources:
            for reason, n in stats.bad_lines.items():
                fam.add_metric([source, reason], n)
        yield fam
        gauge = GaugeMetricFamily(
            "smtp_exporter_last_line_timestamp_seconds",
            "When the last log line was read (Unix time); the exporter's start time until then.",
            labels=["source"],
        )
        for source, stats in sources:
            gauge.add_metric([source], stats.last_line_time)
        yield gauge
        drift = CounterMetricFamily(
            "smtp_exporter_lines_unparsed",
            "Lines of a known MTA that hold something shaped like a reply (a code opening text, or an enhanced "
            "code) from which no reply was taken: a wording the parsers do not know yet.",
            labels=["mta", "program"],
        )
        for (mta, program), n in sorted(snap.unparsed.items()):
            drift.add_metric([mta, program], n)
        yield drift
        dropped = CounterMetricFamily(
            "smtp_exporter_series_dropped",
            "Counts not exported because the series cap was reached: by the whole cap (cap), by the "
            "half of it open to codes outside the knowledge base and the registry (unregistered), or by the "
            "cap on smtp_remote_replies_total series (remote_cap: the reply itself is exported).",
            labels=["reason"],
        )
        for reason, n in snap.series_dropped.items():
            dropped.add_metric([reason], n)
        yield dropped
        yield CounterMetricFamily(
            "smtp_exporter_ingest_errors",
            "Unexpected errors in the ingest loop (logged with a traceback; counting goes on).",
            value=self.counts.ingest_errors,
        )
        yield GaugeMetricFamily(
            "smtp_exporter_file_watch_active",
            "1 when file events wake the reader; 0 when it relies on the periodic stat check alone.",
            value=1 if self.counts.watch_active else 0,
        )
        info = GaugeMetricFamily(
            "smtp_exporter_build_info", "Build information; variant: the hot path compiled by mypyc, or pure Python.",
            labels=["version", "python_version", "variant"],
        )
        info.add_metric([__version__, platform.python_version(), VARIANT], 1)
        yield info


def bounded(key: ReplyKey) -> tuple[ReplyKey, bool]:
    """The key with an unregistered enhanced code folded ("4.5.x"), and whether it is registered: a known
    reply code, and an enhanced code of the registry and of the same class, or none."""
    mta, role, command, code, enhanced = key
    label = _enhanced_label(enhanced)
    registered = label == enhanced and enhanced[:1] in ("", code[0]) and knowledge_base().is_known(code)
    return (mta, role, command, code, label), registered


@lru_cache(maxsize=4096)
def _enhanced_label(enhanced: str) -> str:
    return knowledge_base().enhanced_label(enhanced)


def _reply_family(name: str, documentation: str, counts: dict[ReplyKey, int], second: str = "role") -> Metric:
    fam = CounterMetricFamily(
        name, documentation, labels=["mta", second, "command", "code", "class", "enhanced_code"]
    )
    for (mta, role, command, code, enhanced), n in sorted(counts.items()):
        fam.add_metric([mta, role, command, code, code[0] + "xx", enhanced], n)
    return fam


def _add_histograms(target: dict[Any, Histogram], part: dict[Any, Histogram]) -> None:
    for key, hist in part.items():
        if key in target:
            target[key].add(hist)
        else:
            target[key] = hist.copy()


_BOUNDS = [*map(floatToGoString, BUCKETS), "+Inf"]  # as prometheus_client's own histograms write "le"


def _histogram_family(name: str, documentation: str, labels: list[str], hists: dict[Any, Histogram]) -> Metric:
    fam = HistogramMetricFamily(name, documentation, labels=labels)
    for key, hist in sorted(hists.items()):
        cumulative, running = [], 0
        for bound, n in zip(_BOUNDS, hist.counts, strict=True):
            running += n
            cumulative.append((bound, running))
        fam.add_metric(list(key) if isinstance(key, tuple) else [key], cumulative, sum_value=hist.total)
    return fam


def _lifecycle(snap: Snapshot) -> Iterator[Metric]:
    """Remote replies by provider, session ends and delivery delays (see details.py)."""
    yield _reply_family(
        "smtp_remote_replies",
        "Replies of remote servers to our MTA (client role), by the mailbox provider the server belongs to "
        "(from its host name; other when not listed).", snap.remote, second="provider")
    fam = CounterMetricFamily(
        "smtp_sessions", "SMTP sessions by how they ended: quit, lost, timeout, too_many_errors, rejected (a 421, "
        "or a remote's 554 greeting); command is the last one the log names.", labels=["mta", "role", "end", "command"])
    for key, n in sorted(snap.sessions.items()):
        fam.add_metric(list(key), n)
    yield fam
    yield _histogram_family(
        "smtp_delivery_delay_seconds",
        "Time from a message's arrival to each delivery attempt, per recipient, by outcome (Postfix delay=, "
        "Exim QT=, Sendmail and OpenSMTPD delay=).", ["mta", "status"], snap.delays)
    yield _histogram_family(
        "smtp_delivery_stage_delay_seconds",
        "Postfix's delays=a/b/c/d per delivery attempt: before_queue_manager, in_queue_manager, "
        "connection_setup, transmission.", ["stage"], {s: snap.stages[s] for s in STAGES if s in snap.stages})


def _code_info() -> Iterator[Metric]:
    """`smtp_reply_code_info` = 1 per known basic code, to join meaning and weight onto any series."""
    fam = GaugeMetricFamily(
        "smtp_reply_code_info",
        "Meaning, operational weight and how to fix each known SMTP reply code (always 1).",
        labels=["code", "class", "category", "weight", "meaning", "fix"],
    )
    for entry in knowledge_base().basic_codes():
        fam.add_metric([entry.code, entry.klass, entry.category, entry.weight, entry.meaning, entry.fix], 1)
    yield fam
