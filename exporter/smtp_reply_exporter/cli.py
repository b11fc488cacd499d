"""The command line: the only reader of argv; each subcommand is a thin call into one stage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__, describe
from .codes import CodeError


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
