"""The mail queue, read at scrape time: Postfix through its showq service, Exim from its spool.

Postfix: the `public/showq` socket under the queue directory, the service `postqueue -j` reads
(world-accessible, so no root and no Postfix binary is needed). It sends records of NUL-terminated
name/value pairs, each record closed by an empty name, the list by an empty record. Exim: one
`-H` file per message under `input/` of its spool (flat or split into one-letter directories),
whose fourth line holds the arrival time; a `-frozen` line marks a frozen message.

Each read has a deadline; what the last good read found is served when a read fails or another
scrape is reading, and failures are counted. Only totals are kept: memory does not grow with the queue.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
POSTFIX_QUEUES = ("active", "deferred", "hold", "incoming", "maildrop")
EXIM_QUEUES = ("queued", "frozen")
TIMEOUT = 5.0  # seconds a scrape waits for the queue at most
CHUNK = 65536


class QueueError(Exception):
    """The queue could not be read (the service refused, timed out, or spoke another protocol)."""


@dataclass
class QueueTotals:
    """Messages, bytes and the oldest arrival (Unix time) of one queue."""

    messages: int = 0
    size: int = 0
    oldest: float | None = None

    def add(self, arrival: float, size: int) -> None:
        self.messages += 1
        self.size += size
        if self.oldest is None or arrival < self.oldest:
            self.oldest = arrival


@dataclass
class Snapshot:
    queues: dict[str, QueueTotals] = field(default_factory=dict)
    taken: float = 0.0


def _tokens(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """NUL-terminated tokens from a byte stream cut anywhere."""
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        raise QueueError("showq output ends inside a token")


def showq_totals(chunks: Iterable[bytes], queues: tuple[str, ...] = POSTFIX_QUEUES) -> dict[str, QueueTotals]:
    """Totals per queue from showq's record stream (its protocol announcement first)."""
    totals = {q: QueueTotals() for q in queues}
    tokens = _tokens(chunks)
    record: dict[bytes, bytes] = {}
    first = True
    for name in tokens:
        if name:
            value = next(tokens, None)
            if value is None:
                raise QueueError("showq output ends inside a record")
            if name in (b"queue_name", b"time", b"size", b"protocol"):  # recipients and reasons are not kept
                record[name] = value
            continue
        if first:  # the announcement: "protocol" = "mail_queue_list_protocol"
            if record.get(b"protocol") != b"mail_queue_list_protocol":
                raise QueueError(f"not the showq protocol: {record!r:.200}")
            first, record = False, {}
            continue
        if not record:  # the empty record: end of list
            return totals
        queue = record.get(b"queue_name", b"").decode("ascii", "replace")
        try:
            arrival, size = float(record[b"time"]), int(record[b"size"])
        except (KeyError, ValueError) as err:
            raise QueueError(f"showq record without a valid time or size: {record!r:.200}") from err
        totals.setdefault(queue, QueueTotals()).add(arrival, size)
        record = {}
    raise QueueError("showq output ends before its end-of-list record")


def read_showq(socket_path: str, timeout: float = TIMEOUT) -> dict[str, QueueTotals]:
    deadline = time.monotonic() + timeout

    def chunks(sock: socket.socket) -> Iterator[bytes]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QueueError(f"showq did not finish within {timeout:g} s")
            sock.settimeout(left)
            data = sock.recv(CHUNK)
            if not data:
                return
            yield data

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            return showq_totals(chunks(sock))
    except OSError as err:  # refused, missing, permission denied, timed out
        raise QueueError(f"{socket_path}: {err}") from err


def read_exim_spool(spool: str) -> dict[str, QueueTotals]:
    """Totals of Exim's queue from its header files, sized as `exim -bp` sizes a message."""
    totals = {q: QueueTotals() for q in EXIM_QUEUES}
    base = Path(spool) / "input"
    try:
        folders = [base, *(p for p in base.iterdir() if p.is_dir() and len(p.name) == 1)]
    except OSError as err:
        raise QueueError(f"{base}: {err}") from err
    for folder in folders:
        for header in folder.glob("*-H"):
            try:
                text = header.read_bytes()
                with open(header.with_name(header.name[:-1] + "D"), "rb") as data:
                    first = len(data.readline())  # "<id>-D\n": not part of the message
                    body = os.fstat(data.fileno()).st_size - first + 1
            except OSError:  # delivered meanwhile
                continue
            parsed = _exim_header(text)
            if parsed is not None:
                arrival, headers, frozen = parsed
                totals["frozen" if frozen else "queued"].add(arrival, headers + body)
    return totals


_EXIM_HEADER = re.compile(rb"(?m)^(\d{3,6})(.) ")  # "213P Received: ...": length, type, the header


def _exim_header(text: bytes) -> tuple[float, int, bool] | None:
    """Arrival time, bytes of the live headers, frozen flag; None for a file being written or not Exim's.
    Line 4 holds the arrival time, flag lines ("-frozen <time>") follow, the headers follow the first
    empty line, each with its length and a type (`*` marks one deleted, not sent)."""
    lines = text.split(b"\n", 4)
    envelope, sep, head = text.partition(b"\n\n")
    try:
        arrival = float(lines[3].split()[0])
    except (IndexError, ValueError):
        return None
    if not sep:
        return None
    flags = itertools.takewhile(lambda line: line.startswith(b"-"), envelope.split(b"\n")[4:])
    frozen = any(flag.startswith(b"-frozen") for flag in flags)
    size = sum(int(m[1]) for m in _EXIM_HEADER.finditer(head) if m[2] != b"*")
    return arrival, size, frozen


class QueueCollector(Collector):
    """smtp_queue_* gauges per MTA and queue, read at scrape time with a deadline, the last good read
    served on failure (and while another scrape is reading)."""

    def __init__(self, readers: dict[str, Callable[[], dict[str, QueueTotals]]],
                 clock: Callable[[], float] = time.time) -> None:
        self.readers = readers  # mta -> reader
        self.clock = clock
        self._last: dict[str, Snapshot] = {mta: Snapshot() for mta in readers}
        self._errors = dict.fromkeys(readers, 0)
        self._locks = {mta: threading.Lock() for mta in readers}

    def _read(self, mta: str) -> Snapshot:
        lock = self._locks[mta]
        if not lock.acquire(blocking=False):
            return self._last[mta]
        try:
            self._last[mta] = Snapshot(self.readers[mta](), self.clock())
        except QueueError as err:
            self._errors[mta] += 1
            log.warning("queue of %s not read: %s", mta, err)
        finally:
            lock.release()
        return self._last[mta]

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        messages = GaugeMetricFamily("smtp_queue_messages", "Messages in the MTA's queue.", labels=["mta", "queue"])
        size = GaugeMetricFamily("smtp_queue_size_bytes", "Bytes of the messages in the MTA's queue.",
                                 labels=["mta", "queue"])
        age = GaugeMetricFamily("smtp_queue_oldest_message_age_seconds",
                                "Age of the oldest message in the queue (0 when empty).", labels=["mta", "queue"])
        errors = CounterMetricFamily("smtp_exporter_queue_scrape_errors", "Reads of the queue that failed.",
                                     labels=["mta"])
        for mta in self.readers:
            snap = self._read(mta)
            for queue, t in snap.queues.items():
                messages.add_metric([mta, queue], t.messages)
                size.add_metric([mta, queue], t.size)
                age.add_metric([mta, queue], max(0.0, snap.taken - t.oldest) if t.oldest is not None else 0.0)
            errors.add_metric([mta], self._errors[mta])
        yield from (messages, size, age, errors)


def collector(postfix_queue: str | None, exim_spool: str | None) -> QueueCollector | None:
    """The collector for the queues the flags name (`--postfix.queue`, `--exim.queue`), or None."""
    readers: dict[str, Callable[[], dict[str, QueueTotals]]] = {}
    if postfix_queue:
        showq = os.path.join(postfix_queue, "public", "showq")
        readers["postfix"] = lambda: read_showq(showq)
    if exim_spool:
        readers["exim"] = lambda: read_exim_spool(exim_spool)
    return QueueCollector(readers) if readers else None
