"""Where the CPU goes: the exporter's parse-and-count cost per line shape, in process, beside two yardsticks.

`run.py` measures the real daemon end to end; this script explains its figure. It feeds the same
generated corpus to `Ingest.feed` in 256 KiB chunks, as the tailer does, once whole and once per line
shape, and prints CPU microseconds per line. The yardsticks are what a line costs at the least in
CPython: decoding and splitting the chunk, a plain loop with one regex search per line, and the
cheapest exact way found to learn every line's syslog program (one regex findall per chunk, counted
in C): what `smtp_exporter_lines_unrecognised_total` needs at the least.

It measures the package the interpreter imports: run it with a variant's interpreter (bench/run.py
builds them, and prints where) to see that variant, e.g.
`/var/tmp/smtp-reply-exporter-bench/*-compiled/venv/bin/python bench/shapes.py --replayed`.
`--replayed` uses the corpus replayed from the real Postfix log (bench/replay.py) instead of a
generated one.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import generate
from replay import SOURCE, replay
from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts
from smtp_reply_exporter.parse import postfix

CHUNK = 1 << 18
SHAPES = {  # for this report only: the substring that marks each of the generator's line shapes
    "postfix": (("status", "status="), ("disconnect", "disconnect from "), ("reject", ": reject: ")),
    "exim": (("delivery", " => "), ("reject", " rejected "), ("received", " <= ")),
    "sendmail": (("delivery", " stat="), ("reject", " reject=")),
    "opensmtpd": (("delivery", " mta delivery "), ("reject", " failed-command "), ("quit", "smtp disconnected ")),
}


def chunks_of(lines: list[bytes]) -> list[bytes]:
    out, buf, size = [], [], 0
    for line in lines:
        buf.append(line)
        size += len(line) + 1
        if size >= CHUNK:
            out.append(b"\n".join(buf) + b"\n")
            buf, size = [], 0
    if buf:
        out.append(b"\n".join(buf) + b"\n")
    return out


def cpu(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def ingest(chunks: list[bytes]) -> None:
    counts = Counts()
    feed, stats = Ingest(counts).feed, counts.source("bench")
    for chunk in chunks:
        feed(chunk, stats)


def split_only(chunks: list[bytes]) -> None:
    for chunk in chunks:
        chunk.decode().split("\n")


ONE_REGEX = re.compile(r" ([2-5]\d\d) ([245]\.\d{1,3}\.\d{1,3})\b")


def one_regex_loop(chunks: list[bytes]) -> None:
    n = 0
    for chunk in chunks:
        for line in chunk.decode().split("\n"):
            if ONE_REGEX.search(line):
                n += 1


# Each line's syslog program, one match per line (the pattern eats the line), found in C for a whole chunk.
PROGRAM_PER_LINE = re.compile(r"[^\n]*? ([^ \n\[\]]+)\[\d+\]: [^\n]*\n|[^\n]*\n")


def programs_per_chunk(chunks: list[bytes]) -> None:
    for chunk in chunks:
        Counter(PROGRAM_PER_LINE.findall(chunk.decode()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--mta", choices=tuple(SHAPES), default="postfix")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    ap.add_argument("--replayed", action="store_true", help=f"{SOURCE.name} replayed instead of a generated corpus")
    args = ap.parse_args()
    if args.replayed and args.mta != "postfix":
        ap.error("the replayed corpus is Postfix's")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.log"
        if args.replayed:
            replay(path, args.lines)
        else:
            generate(str(path), args.lines, mta=args.mta)
        lines = path.read_bytes().split(b"\n")[:-1]
    groups: dict[str, list[bytes]] = {name: [] for name, _ in SHAPES[args.mta]}
    groups["other"] = []
    for line in lines:
        name = next((name for name, mark in SHAPES[args.mta] if mark.encode() in line), "other")
        groups[name].append(line)
    whole = chunks_of(lines)
    variant = "pure" if (postfix.__file__ or "").endswith(".py") else "compiled"
    kind = f"replayed from {SOURCE.name}" if args.replayed else "generated"
    where = Path(postfix.__file__ or "").parent.parent
    print(f"corpus: {len(lines):,} {args.mta} lines, {kind}; package: {variant} ({where})")
    print(f"CPU µs per line, fastest of {args.repeat}")
    print(f"{'':<34}{'lines':>10} {'µs/line':>9} {'share of CPU':>13}")
    total = cpu(partial(ingest, whole), args.repeat)
    print(f"{'exporter, whole corpus':<34}{len(lines):>10,} {1e6 * total / len(lines):>9.2f} {'100%':>13}")
    for name, group in groups.items():
        part = chunks_of(group)
        seconds = cpu(partial(ingest, part), args.repeat)
        print(f"{'  ' + name + ' lines':<34}{len(group):>10,} {1e6 * seconds / max(1, len(group)):>9.2f} "
              f"{100 * seconds / total:>12.0f}%")
    for label, fn in (
        ("yardstick: decode and split", split_only),
        ("yardstick: loop, one regex/line", one_regex_loop),
        ("yardstick: program of each line", programs_per_chunk),
    ):
        seconds = cpu(partial(fn, whole), args.repeat)
        print(f"{label:<34}{len(lines):>10,} {1e6 * seconds / len(lines):>9.2f}")


if __name__ == "__main__":
    main()
