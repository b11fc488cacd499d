"""Instructions per line of Ingest.feed, counted by valgrind (callgrind): a figure that does not move with
the machine's load, unlike CPU seconds on a shared VM (which varied 1.5x from run to run here).

The corpus is fed in chunks of what the tailer reads at once (--chunk to change it). The program runs
twice under callgrind, once feeding the corpus and once only loading it; the difference over the lines
is the figure. It measures the
package the interpreter imports (run it with a variant's interpreter, as bench/shapes.py). Needs valgrind
(`apt-get install valgrind`); slow (about 50x), so the corpora are small:

    python3 bench/instructions.py                      # generated Postfix, 50,000 lines
    python3 bench/instructions.py --replayed           # bench/corpus/postfix-e2e.log replayed
    python3 bench/instructions.py --mta exim --shape delivery   # one line shape (see shapes.py)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from shapes import SHAPES, by_shape, chunks_of, ingest, write_corpus
from smtp_reply_exporter.tail import READ_SIZE


def run(corpus: Path, mta: str, shape: str | None, feed: bool, chunk: int) -> None:
    """The child: load the corpus (lines of `shape` only), and feed it unless told not to."""
    lines = corpus.read_bytes().split(b"\n")[:-1]
    if shape:
        lines = by_shape(lines, mta)[shape]
    print(len(lines), file=sys.stderr)
    chunks = chunks_of(lines, chunk)
    if feed:
        ingest(chunks)


def counted(args: list[str]) -> tuple[int, int]:
    """(instructions, lines) of one run of this script's child under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                               sys.executable, __file__, *args],
                              capture_output=True, text=True, check=True)
    total = re.search(r"Collected : (\d+)", proc.stderr)
    lines = next(line for line in proc.stderr.splitlines() if line.isdigit())
    assert total is not None
    return int(total.group(1)), int(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=50_000)
    ap.add_argument("--mta", choices=tuple(SHAPES), default="postfix")
    ap.add_argument("--replayed", action="store_true")
    ap.add_argument("--chunk", type=int, default=READ_SIZE, help="bytes fed at once (default: what the tailer reads)")
    ap.add_argument("--shape", help="only lines of this shape (bench/shapes.py's, by MTA), or 'other'")
    ap.add_argument("--child", nargs=2, metavar=("CORPUS", "FEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run(Path(args.child[0]), args.mta, args.shape, args.child[1] == "feed", args.chunk)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.log"
        write_corpus(corpus, args.lines, args.mta, args.replayed)
        shape = ["--mta", args.mta, "--chunk", str(args.chunk), *(["--shape", args.shape] if args.shape else [])]
        fed, n = counted(["--child", str(corpus), "feed", *shape])
        loaded, _ = counted(["--child", str(corpus), "load", *shape])
    kind = "replayed" if args.replayed else f"generated {args.mta}"
    print(f"{(fed - loaded) / n:,.0f} instructions a line: {kind}, {args.shape or 'every'} line shape, {n:,} lines")


if __name__ == "__main__":
    main()
