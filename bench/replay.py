"""A real MTA log repeated to any length: each repetition with its own queue ids and later timestamps.

The source is a log a real Postfix wrote (bench/corpus/postfix-e2e.log, made by the end-to-end
harness: see bench/postfix_e2e_log.py). Repetition r maps every queue id of the source to an id of
the same length and alphabet that no other repetition uses, and moves every timestamp by r times the
source's span plus one second, so that no message, delivery or "same reply again" filter of one
repetition meets another's. Process ids are left as they are (a real log reuses them too).
Counting the result must give the counts of the source times the repetitions, exactly.

    python3 bench/replay.py OUT [--lines 1000000] [--source bench/corpus/postfix-e2e.log]
"""

from __future__ import annotations

import argparse
import datetime
import re
from pathlib import Path

SOURCE = Path(__file__).parent / "corpus" / "postfix-e2e.log"
STAMP = re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")  # BSD syslog, as Postfix's maillog_file writes it
# A Postfix queue id opening a message (short ids: hex; long ids: base 52 with a 'z' or 'y'...).
QUEUE_ID = re.compile(r"\]: ([0-9A-Za-z]{6,20}): ")
YEAR = 2026  # BSD stamps carry none; only used to step across days


def parse_stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(f"{YEAR} {text.strip()}", "%Y %b %d %H:%M:%S")


def templates(text: str) -> tuple[str, list[str], list[datetime.datetime]]:
    """The source as a str.format template: {sN} for its distinct timestamps, {qN} for its queue ids."""
    ids = list(dict.fromkeys(QUEUE_ID.findall(text)))
    stamps = list(dict.fromkeys(m.group() for line in text.splitlines() if (m := STAMP.match(line))))
    out = []
    for line in text.replace("{", "{{").replace("}", "}}").splitlines():
        m = STAMP.match(line)
        if not m:
            raise SystemExit(f"a line without a BSD timestamp: {line[:80]!r}")
        rest = line[m.end():]
        if ids:
            rest = re.sub(r"\b(" + "|".join(map(re.escape, ids)) + r")\b",
                          lambda q: "{q" + str(ids.index(q.group(1))) + "}", rest)
        out.append("{s" + str(stamps.index(m.group())) + "}" + rest)
    return "\n".join(out) + "\n", ids, [parse_stamp(s) for s in stamps]


def new_id(original: str, n: int) -> str:
    """Id number n in the shape of `original`: its first character, then n in as many digits of its
    alphabet as it has after that (hex stays upper-case hex). Distinct n give distinct ids."""
    alphabet = "0123456789ABCDEF" if re.fullmatch(r"[0-9A-F]+", original) else (
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    base, digits = len(alphabet), []
    for _ in original[1:]:
        n, d = divmod(n, base)
        digits.append(alphabet[d])
    if n:
        raise SystemExit(f"too many repetitions for queue ids of {len(original)} characters")
    return original[0] + "".join(reversed(digits))


def replay(out: Path, lines: int, source: Path = SOURCE) -> int:
    """Writes whole repetitions of `source` until at least `lines` lines; returns the repetitions."""
    text = source.read_text()
    per = text.count("\n")
    template, ids, stamps = templates(text)
    span = max(stamps) - min(stamps) + datetime.timedelta(seconds=1)
    reps = -(-lines // per)
    with open(out, "w") as f:
        for r in range(reps):
            shift = r * span
            values = {f"s{i}": (s + shift).strftime("%b %d %H:%M:%S ") for i, s in enumerate(stamps)}
            # ids numbered across repetitions: repetition r, id i -> number r * len(ids) + i
            values.update({f"q{i}": new_id(q, r * len(ids) + i) for i, q in enumerate(ids)})
            f.write(template.format(**values))
    return reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--source", type=Path, default=SOURCE)
    args = ap.parse_args()
    reps = replay(args.out, args.lines, args.source)
    print(f"{args.out}: {reps:,} repetitions of {args.source.name}")


if __name__ == "__main__":
    main()
