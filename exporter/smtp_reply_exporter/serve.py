"""The daemon: pipeline plus HTTP server, stopped cleanly by SIGTERM or SIGINT (state saved)."""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import threading
from types import FrameType

from prometheus_client import CollectorRegistry

from . import __version__, queues, webconfig
from .config import Config
from .http import make_server, serve_in_thread
from .httpd import Limits, connection_cap
from .metrics import Counts, SmtpCollector
from .pipeline import Pipeline

log = logging.getLogger(__name__)
SWITCH_INTERVAL = 0.0002


def raise_nofile_limit() -> int:
    """Raise the soft limit on open files to the hard one, as Go's runtime does: the usual soft 1,024
    is a relic of select(). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            return soft
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as err:
            log.debug("cannot raise RLIMIT_NOFILE from %d to %d: %s", soft, target, err)
    return soft


def serve(config: Config, address: tuple[str, int], telemetry_path: str = "/metrics",
          web_config: str | None = None) -> int:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        log.warning("running as root: the exporter only needs read access to the logs; run it unprivileged")
    # The ingest thread is CPU-bound while catching up, and its compiled code lets go of the GIL only at
    # each read (every 1-2 ms). A thread waiting for the GIL asks for it after a switch interval, but each
    # of those releases restarts its wait: with the interval longer than the time between reads, a scrape
    # waited on luck (up to 490 ms on Sendmail's shorter lines). 0.2 ms is shorter than any chunk's time.
    sys.setswitchinterval(SWITCH_INTERVAL)
    nofile = raise_nofile_limit()
    limits = Limits(max_connections=connection_cap(nofile))
    log.debug("RLIMIT_NOFILE %d: at most %d HTTP connections", nofile, limits.max_connections)
    counts = Counts(config.max_series)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SmtpCollector(counts))
    queue_collector = queues.collector(config.postfix_queue, config.exim_queue)
    if queue_collector is not None:
        registry.register(queue_collector)
    pipeline = Pipeline(config, counts)
    web = webconfig.load(web_config) if web_config else None
    server = make_server(address, registry, counts, pipeline.ready.is_set, telemetry_path, web, limits)
    pipeline.ingest.give_way = server.serving  # compiled parsing holds the GIL: a scrape goes first
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pipeline.start()
    serve_in_thread(server)
    host, port = server.server_address[:2]
    sources = [*config.paths, *(f"syslog {a}" for a in config.syslog_addresses)]
    sources += ["journal"] if config.journal else []
    log.info("smtp-reply-exporter %s listening on %s:%s%s, reading %s", __version__, host, port,
             telemetry_path, ", ".join(sources))
    stop.wait()
    server.shutdown()
    server.server_close()
    pipeline.stop()
    log.info("stopped; state saved" if config.state_file else "stopped")
    return 0
