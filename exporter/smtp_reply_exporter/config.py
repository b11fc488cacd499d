"""What the daemon was asked to do, validated once by the CLI and passed down frozen."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    paths: tuple[str, ...] = ()  # files or globs; "-" is standard input
    syslog_addresses: tuple[str, ...] = ()  # "host:port" (UDP and TCP), "udp://..." or "tcp://..."
    journal: bool = False
    journal_units: tuple[str, ...] = ()
    journal_identifiers: tuple[str, ...] = ()
    journal_directory: str | None = None
    mta: str = "auto"
    log_format: str = "auto"  # auto | syslog | message: whether lines carry a syslog header
    from_start: bool = False
    state_file: str | None = None
    poll_interval: float = 1.0
    poll_only: bool = False  # no file events: for slow or network filesystems where they are unreliable
    state_interval: float = 5.0
    max_series: int = 10_000
    postfix_queue: str | None = None  # queue directory: its public/showq is read at scrape time
    exim_queue: str | None = None  # spool directory: its input/ is read at scrape time
    remote_providers: str | None = None  # mapping of host-name suffixes to providers; None: the packaged one

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(p for p in self.paths if p != "-")

    @property
    def stdin(self) -> bool:
        return "-" in self.paths
