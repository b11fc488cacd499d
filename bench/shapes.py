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
from smtp_reply_exporter import unparsed
from smtp_reply_exporter.batch import Batch
from smtp_reply_exporter.ingest import Ingest, tally
from smtp_reply_exporter.metrics import Counts
from smtp_reply_exporter.parse import postfix

CHUNK = 1 << 18
SHAPES = {  # for this report only: the substring that marks each of the generator's line shapes
    "postfix": (("status", "status="), ("disconnect", "disconnect from "), ("reject", ": reject: ")),
    "exim": (("delivery", " => "), ("reject", " rejected "), ("received", " <= ")),
    "sendmail": (("delivery", " stat="), ("reject", " reject=")),
    "opensmtpd": (("delivery", " mta delivery "), ("reject", " failed-command "), ("quit", "smtp disconnected ")),
}


def chunks_of(lines: list[bytes], chunk: int = CHUNK) -> list[bytes]:
    out, buf, size = [], [], 0
    for line in lines:
        buf.append(line)
        size += len(line) + 1
        if size >= chunk:
            out.append(b"\n".join(buf) + b"\n")
            buf, size = [], 0
    if buf:
        out.append(b"\n".join(buf) + b"\n")
    return out


def write_corpus(path: Path, lines: int, mta: str, replayed: bool) -> None:
    """A generated corpus of `mta`, or the real Postfix log replayed."""
    if replayed:
        replay(path, lines)
    else:
        generate(str(path), lines, mta=mta)


def by_shape(lines: list[bytes], mta: str) -> dict[str, list[bytes]]:
    """The lines of each of SHAPES[mta] (a line goes to the first whose mark it holds), and "other"."""
    groups: dict[str, list[bytes]] = {name: [] for name, _ in SHAPES[mta]}
    groups["other"] = []
    for line in lines:
        groups[next((name for name, mark in SHAPES[mta] if mark.encode() in line), "other")].append(line)
    return groups


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


STAGES = ("parse", "details", "unparsed", "rest")


def stages(chunks: list[bytes]) -> dict[str, float]:
    """CPU seconds of each stage of Ingest.feed over `chunks`: the line parsers, Details.add (delays, session
    ends, providers) and the format-drift search (unparsed.find), each timed apart on the same chunks with a
    fresh Ingest in the same state as feed's; "rest" is decoding, splitting, tallying and merging, what is
    left of the feed's time (the stages are measured apart, so noise can make it a little low, even negative)."""
    counts = Counts()
    ing, stats = Ingest(counts), counts.source("bench")
    t0 = time.process_time()
    for chunk in chunks:
        ing.feed(chunk, stats)
    total = time.process_time() - t0
    spent = dict.fromkeys(STAGES, 0.0)
    apart = Ingest(Counts())
    for chunk in chunks:
        lines = chunk.decode().split("\n")[:-1]
        t0 = time.process_time()
        outcomes = [apart.parser.parse(line) for line in lines]
        t1 = time.process_time()
        tallied = tally(outcomes, Batch())
        t2 = time.process_time()
        apart.details.add(lines, outcomes, tallied.wanted, tallied.said, Batch(), chunk.decode())
        t3 = time.process_time()
        unparsed.find(lines, outcomes, set(tallied.said))
        t4 = time.process_time()
        spent["parse"] += t1 - t0
        spent["details"] += t3 - t2
        spent["unparsed"] += t4 - t3
    spent["rest"] = total - sum(spent.values())
    return spent


def only(name: str, chunks: list[bytes], repeat: int, profile: bool) -> None:
    n = sum(chunk.count(b"\n") for chunk in chunks)
    if profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            for _ in range(repeat):
                ingest(chunks)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    seconds = cpu(partial(ingest, chunks), repeat)
    print(f"{name}: {n:,} lines, {1e6 * seconds / max(1, n):.2f} µs/line, fastest of {repeat}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--mta", choices=tuple(SHAPES), default="postfix")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    ap.add_argument("--replayed", action="store_true", help=f"{SOURCE.name} replayed instead of a generated corpus")
    ap.add_argument("--only", metavar="SHAPE", help="only this line shape ('whole': the corpus), fed --repeat times: "
                    "what to run under a profiler (perf record -g -- python bench/shapes.py --only status)")
    ap.add_argument("--stages", action="store_true",
                    help="CPU per line of each stage of the ingest, per line shape (of the fastest of --repeat runs)")
    ap.add_argument("--profile", action="store_true", help="with --only: cProfile's top functions (pure Python "
                    "only: compiled code shows as one call)")
    args = ap.parse_args()
    if args.replayed and args.mta != "postfix":
        ap.error("the replayed corpus is Postfix's")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.log"
        write_corpus(path, args.lines, args.mta, args.replayed)
        lines = path.read_bytes().split(b"\n")[:-1]
    groups = by_shape(lines, args.mta)
    whole = chunks_of(lines)
    if args.only:
        only(args.only, whole if args.only == "whole" else chunks_of(groups[args.only]), args.repeat, args.profile)
        return
    variant = "pure" if (postfix.__file__ or "").endswith(".py") else "compiled"
    kind = f"replayed from {SOURCE.name}" if args.replayed else "generated"
    where = Path(postfix.__file__ or "").parent.parent
    print(f"corpus: {len(lines):,} {args.mta} lines, {kind}; package: {variant} ({where})")
    print(f"CPU µs per line, fastest of {args.repeat}")
    if args.stages:
        print(f"{'':<34}{'lines':>10}" + "".join(f"{stage:>9}" for stage in STAGES) + f"{'total':>9}")
        for name, group in {"whole corpus": lines, **groups}.items():
            spent = min((stages(chunks_of(group)) for _ in range(args.repeat)), key=lambda run: sum(run.values()))
            print(f"{name:<34}{len(group):>10,}" + "".join(
                f"{1e6 * spent[stage] / max(1, len(group)):>9.2f}" for stage in STAGES)
                  + f"{1e6 * sum(spent.values()) / max(1, len(group)):>9.2f}")
        return
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
