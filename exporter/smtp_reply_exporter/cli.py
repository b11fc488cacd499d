"""The command line: the only reader of argv; each subcommand is a thin call into one stage."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from . import __version__, describe
from .codes import CodeError
from .config import Config
from .metrics import DEFAULT_MAX_SERIES
from .providers import ProvidersError
from .webconfig import WebConfigError

DEFAULT_PORT = 10125  # outside the exhausted 9100-9999 exporter range, away from 10024-10026 (content filters)


def _explain(args: argparse.Namespace) -> int:
    queries = [describe.parse_query(code) for code in args.codes]
    if args.format == "json":
        for query in queries:
            print(json.dumps(describe.as_dict(query), ensure_ascii=False))
    else:
        print("\n\n".join(describe.explain_text(q) for q in queries))
    return 0


def _compare(args: argparse.Namespace) -> int:
    a, b = describe.parse_query(args.a), describe.parse_query(args.b)
    if args.format == "json":
        print(json.dumps(describe.compare_dict(a, b), ensure_ascii=False, indent=1))
    else:
        print(describe.compare_text(a, b))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smtp-reply-exporter",
        description="Count SMTP reply codes in mail logs, explain them, export them to Prometheus.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("explain", help="explain one or more codes (455, 4.5.3, X.5.3, '455 4.5.3')")
    p.add_argument("codes", nargs="+", metavar="CODE")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_explain)

    p = sub.add_parser("compare", help="compare two codes side by side")
    p.add_argument("a", metavar="CODE_A")
    p.add_argument("b", metavar="CODE_B")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_compare)

    _add_runtime_commands(sub)
    return parser


def _add_runtime_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands that read logs (`parse`, `serve`); kept apart from the knowledge-base ones."""
    from .parse import MTA_CHOICES

    p = sub.add_parser("serve", help="follow mail logs and serve Prometheus metrics")
    p.add_argument("--log.path", dest="log_path", action="append", default=[], metavar="PATH",
                   help="log file or glob to follow, '-' for standard input (repeatable); "
                   "with no source at all, a bundled sample log is served")
    p.add_argument("--syslog.listen-address", dest="syslog", action="append", default=[], metavar="[udp://|tcp://]HOST:PORT",
                   help="receive syslog (RFC 3164/5424) on UDP and TCP, or only one with a scheme (repeatable)")
    p.add_argument("--log.journal", dest="journal", action="store_true", help="read the systemd journal")
    p.add_argument("--log.journal.unit", dest="journal_units", action="append", default=[], metavar="UNIT",
                   help="only entries of this systemd unit (repeatable)")
    p.add_argument("--log.journal.identifier", dest="journal_identifiers", action="append", default=[],
                   metavar="ID", help="only entries with this syslog identifier (repeatable)")
    p.add_argument("--log.journal.directory", dest="journal_directory", metavar="DIR",
                   help="read the journal files in DIR (e.g. a node's /var/log/journal) instead of the system's")
    p.add_argument("--mta", choices=MTA_CHOICES, default="auto", help="which MTA wrote the log (default: per line)")
    _add_log_format_flag(p)
    p.add_argument("--web.listen-address", dest="listen", default=f":{DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"address to serve HTTP on (default :{DEFAULT_PORT}, all interfaces)")
    p.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics", metavar="PATH")
    p.add_argument("--web.config.file", dest="web_config", metavar="FILE",
                   help="TLS and basic auth, in the Prometheus exporter-toolkit format")
    p.add_argument("--tail.from-start", dest="from_start", action="store_true",
                   help="read existing files from their start instead of their end")
    p.add_argument("--tail.state-file", dest="state_file", metavar="FILE",
                   help="where to keep read positions so that a restart resumes without loss or double counts")
    p.add_argument("--tail.poll-interval", dest="poll_interval", type=_duration, default=1.0, metavar="DURATION",
                   help="stat check of every file even without watchdog events (default 1s)")
    p.add_argument("--tail.poll-only", dest="poll_only", action="store_true",
                   help="no file events, only the stat check every poll interval (NFS and other slow filesystems)")
    p.add_argument("--tail.state-interval", dest="state_interval", type=_duration, default=5.0, metavar="DURATION",
                   help="how often the state file is written (default 5s): after a crash, at most this much "
                   "of the log is read twice")
    p.add_argument("--series.max", dest="max_series", type=int, default=DEFAULT_MAX_SERIES, metavar="N",
                   help="cap on reply/delivery series; beyond it counts go to smtp_exporter_series_dropped_total")
    p.add_argument("--postfix.queue", dest="postfix_queue", metavar="DIR",
                   help="Postfix's queue directory (e.g. /var/spool/postfix): export the queue's size and age, "
                   "read from its public/showq service at each scrape (off by default)")
    p.add_argument("--exim.queue", dest="exim_queue", metavar="DIR",
                   help="Exim's spool directory (e.g. /var/spool/exim4): export the queue's size and age, "
                   "read from its input/ directory at each scrape (off by default)")
    _add_providers_flag(p)
    p.add_argument("--log.level", dest="log_level", choices=("debug", "info", "warn", "error"), default="info")
    p.set_defaults(func=_serve)

    p = sub.add_parser("parse", help="read log files once and print the replies found")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("jsonl", "table", "prometheus"), default="table")
    p.add_argument("--mta", choices=MTA_CHOICES, default="auto")
    _add_log_format_flag(p)
    p.add_argument("--unparsed", action="store_true",
                   help="print only the lines of a known MTA that look like replies but gave none (FILE:LINE:text)")
    _add_providers_flag(p)
    p.set_defaults(func=_parse)


def _add_log_format_flag(p: argparse.ArgumentParser) -> None:
    from .parse import LOG_FORMATS

    p.add_argument("--log.format", dest="log_format", choices=LOG_FORMATS, default="auto",
                   help="auto: a line without syslog header is read as a bare message (journalctl -o cat, a "
                   "shipper's message field), its MTA known by its shape or from --mta; syslog: such lines are "
                   "not recognised; message: no line has a header (default: auto)")


def _add_providers_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--remote.providers", dest="remote_providers", metavar="FILE",
                   help="mailbox providers by the host-name suffixes of their servers, for the provider label of "
                   "smtp_remote_replies_total (JSON, or YAML with PyYAML installed; default: the packaged list)")


def _duration(text: str) -> float:
    """Seconds from "1s", "250ms", "2m" or a plain number."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            text, factor = text[: -len(suffix)], scale
            break
    else:
        factor = 1.0
    try:
        value = float(text) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("duration must be positive")
    return value


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise CodeError(f"--web.listen-address must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _serve(args: argparse.Namespace) -> int:
    from .serve import serve

    logging.basicConfig(
        level={"warn": "WARNING"}.get(args.log_level, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    paths, from_start = args.log_path, args.from_start
    if not (paths or args.syslog or args.journal):
        paths, from_start = [sample_log()], True
        logging.getLogger("smtp_reply_exporter").warning(
            "no --log.path given: serving the bundled sample %s (give --log.path to follow your MTA's log)", paths[0]
        )
    for address in args.syslog:
        _listen_address(address.rpartition("://")[2])
    config = Config(
        paths=tuple(paths),
        syslog_addresses=tuple(args.syslog),
        journal=args.journal,
        journal_units=tuple(args.journal_units),
        journal_identifiers=tuple(args.journal_identifiers),
        journal_directory=args.journal_directory,
        mta=args.mta,
        log_format=args.log_format,
        from_start=from_start,
        state_file=args.state_file,
        poll_interval=args.poll_interval,
        poll_only=args.poll_only,
        state_interval=args.state_interval,
        max_series=args.max_series,
        postfix_queue=args.postfix_queue,
        exim_queue=args.exim_queue,
        remote_providers=args.remote_providers,
    )
    try:
        return serve(config, _listen_address(args.listen), telemetry_path=args.telemetry_path,
                     web_config=args.web_config)
    except (OSError, WebConfigError, ProvidersError) as err:
        print(f"smtp-reply-exporter: error: {err}", file=sys.stderr)
        return 1


def _parse(args: argparse.Namespace) -> int:
    from .oneshot import run

    try:
        return run(args.files, args.format, args.mta, sys.stdout, sys.stderr, unparsed=args.unparsed,
                   log_format=args.log_format,
                   remote_providers=args.remote_providers)
    except ProvidersError as err:
        print(f"smtp-reply-exporter: error: {err}", file=sys.stderr)
        return 1


def sample_log() -> str:
    from importlib import resources

    return str(resources.files(__package__).joinpath("samples/postfix.log"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except CodeError as err:
        print(f"smtp-reply-exporter: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
