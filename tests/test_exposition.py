"""The fast text exposition writes exactly what prometheus_client's generate_latest writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from smtp_reply_exporter.exposition import TextExposition
from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts, SmtpCollector

SAMPLES = Path(__file__).parent / "samples"


class Tricky(Collector):
    """Label values and help texts that need escaping, a timestamp, an info family, a counter with a
    _created sample (OpenMetrics only: the library moves it to a gauge of its own)."""

    def __init__(self, created: bool = False) -> None:
        self.created = created

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("tricky_gauge", 'help with \\ a backslash\nand a "newline"', labels=["a", "b"])
        g.add_metric(['quote " here', "back\\slash\nnew line"], 1.5)
        g.add_metric(["ünïcödé ✉", ""], float("inf"), timestamp=1764590400.123)
        g.add_metric(["x", "y"], -0.0)
        yield g
        info = InfoMetricFamily("tricky", "an info family")
        info.add_metric(["code"], {"meaning": "Service closing {transmission} channel"})
        yield info
        c = CounterMetricFamily("tricky_events", "a counter", labels=["k"], created=1.0 if self.created else None)
        c.add_metric(["v"], 12345678901234.0, created=1.0 if self.created else None)
        yield c


def registry_of_every_sample(extra: Collector) -> tuple[CollectorRegistry, Counts]:
    counts = Counts()
    ingest = Ingest(counts)
    for log in sorted(SAMPLES.glob("*.log")):
        ingest.feed(log.read_bytes(), counts.source(str(log)))
    registry = CollectorRegistry()
    registry.register(SmtpCollector(counts))
    registry.register(extra)
    return registry, counts


def test_the_text_format_is_byte_for_byte_the_librarys_from_the_first_scrape_to_later_ones():
    registry, counts = registry_of_every_sample(Tricky())
    text = TextExposition()
    first = text.render(registry)
    assert first == generate_latest(registry)
    assert b'smtp_replies_total{' in first and b"\\n" in first and b'\\"' in first
    assert text.render(registry) == generate_latest(registry)  # from the kept series texts
    Ingest(counts).feed((SAMPLES / "postfix.log").read_bytes(), counts.source("again"))  # values change
    assert text.render(registry) == generate_latest(registry)


def test_a_family_with_openmetrics_samples_is_written_by_the_library():
    registry, _ = registry_of_every_sample(Tricky(created=True))
    out = TextExposition().render(registry)
    assert out == generate_latest(registry)
    assert b"# TYPE tricky_events_created gauge" in out
