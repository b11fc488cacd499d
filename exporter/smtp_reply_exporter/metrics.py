"""The counts, owned in one place, and the collector that turns them into metric families at scrape time.

Counting is plain dict arithmetic on a batch, merged under one lock; no `labels().inc()` per line.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .codes import knowledge_base
from .stats import SourceStats as SourceStats  # re-exported: ingest.py imports it from here

ReplyKey = tuple[str, str, str, str, str]  # mta, role, command, code, enhanced_code
DEFAULT_MAX_SERIES = 10_000
# Why a count was not exported: "unregistered" when a series with a code outside the knowledge base
# found its share of the cap full, "cap" when the whole cap was.
SERIES_DROP_REASONS = ("unregistered", "cap")


@dataclass
class Batch:
    """Counts of one chunk of lines and its line tallies, built without locks and merged in one step."""

    replies: dict[ReplyKey, int] = field(default_factory=dict)
    warnings: dict[ReplyKey, int] = field(default_factory=dict)
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    unparsed: dict[tuple[str, str], int] = field(default_factory=dict)  # (mta, program): lines, see unparsed.py
    lines: int = 0
    lines_unrecognised: int = 0
    lines_with_replies: int = 0
    bytes: int = 0


class Snapshot(NamedTuple):
    """Everything a scrape shows, taken at one instant: the chunks it counts are the same in all of it."""

    replies: dict[ReplyKey, int]
    warnings: dict[ReplyKey, int]
    deliveries: dict[tuple[str, str], int]
    series_dropped: dict[str, int]  # by reason
    unparsed: dict[tuple[str, str], int]  # by (mta, program)
    sources: list[tuple[str, SourceStats]]  # copies, sorted by source name


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
            stats.add(lines=batch.lines, lines_unrecognised=batch.lines_unrecognised,
                      lines_with_replies=batch.lines_with_replies, bytes=batch.bytes)

    def _add_replies(self, target: dict[ReplyKey, int], part: dict[ReplyKey, int]) -> None:
        for key, n in part.items():
            self._add(target, *bounded(key), n)

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
                            sorted(sources, key=lambda item: item[0]))

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
            "Counts not exported because the series cap was reached: by the whole cap (cap), or by the "
            "half of it open to codes outside the knowledge base and the registry (unregistered).",
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
            "smtp_exporter_build_info", "Build information.", labels=["version", "python_version"]
        )
        info.add_metric([__version__, platform.python_version()], 1)
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


def _reply_family(name: str, documentation: str, counts: dict[ReplyKey, int]) -> Metric:
    fam = CounterMetricFamily(
        name, documentation, labels=["mta", "role", "command", "code", "class", "enhanced_code"]
    )
    for (mta, role, command, code, enhanced), n in sorted(counts.items()):
        fam.add_metric([mta, role, command, code, code[0] + "xx", enhanced], n)
    return fam


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
