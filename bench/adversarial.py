"""Worst CPU per crafted line for every parser: log lines are written by strangers, so each parser
must take time linear in a line's length, and a 64 KiB line (the longest one read) only milliseconds.

Each family repeats one hostile unit behind a real syslog header of its MTA, after each of a few
openers that lead the line into one branch of the parser: the literals of every regular expression
in the parser's module (taken from the patterns themselves, so a new pattern is covered at once),
repeated fields (`said:`, `(in reply to `, `ruleset=`, `delivery `, `H=`, `C="`...), code-like
tokens, unbalanced quotes, parentheses and brackets, digits, and seeded mixtures of all of them.
One parse per line, timed with `time.process_time`, at a quarter of the size and at the size: a
ratio near 4 is linear, near 16 quadratic.

    python3 bench/adversarial.py [--size 65536] [--mta postfix] [--top 15] [--screen 4096 [--keep 3]]

`--screen` times every family on short lines first and only the slowest at full size: on code with
quadratic patterns the full run takes hours.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import NamedTuple

from smtp_reply_exporter.parse import exim, line_parser, opensmtpd, postfix, replytext, sendmail, syslog

SIZE = 1 << 16  # the longest line the exporter reads; longer ones are cut there
EXIM_PREFIX = "2026-11-28 12:01:11 1vPzAb-000ABC-12 "
HEADERS = {  # what puts a line in front of each parser
    "postfix": "Nov 28 12:01:11 mx postfix/smtp[1]: ",
    "exim": EXIM_PREFIX,
    "sendmail": "Nov 28 12:01:11 mx sm-mta[1]: 5ASC1BqZ001234: ",
    "opensmtpd": "Nov 28 12:01:11 mx smtpd[1]: 3b9c2a1f5c0e7d11 ",
    "syslog": "",  # no "]: " anywhere: the slow path through the header regexes
}
MODULES: dict[str, tuple[ModuleType, ...]] = {
    "postfix": (postfix, replytext),
    "exim": (exim, replytext),
    "sendmail": (sendmail, replytext),
    "opensmtpd": (opensmtpd, replytext),
    "syslog": (syslog,),
}
OPENERS = {  # each leads the line into one branch of its parser
    "postfix": (
        "",
        "NOQUEUE: reject: RCPT from x[1.2.3.4]: 550 5.1.1 ",
        "NOQUEUE: reject: RCPT from ",
        "A1B2C3: to=<a@b>, relay=x[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=4.0.0, status=deferred "
        "(host x[1.2.3.4] said: 450 4.2.0 busy ",
        "A1B2C3: to=<a@b>, relay=x, status=sent (250 2.0.0 ",
        "A1B2C3: host x[1.2.3.4] said: 450 ",
        "A1B2C3: lost connection: refused to talk to me: 421 ",
        "disconnect from x[1.2.3.4] ",
        "disconnect from x[1.2.3.4] quit=",
        "NOQUEUE: proxy-accept: END-OF-MESSAGE: 250 ",
    ),
    "exim": (
        "",
        "== a@b R=r T=t defer (-46) H=x [1.2.3.4]: SMTP error from remote mail server after ",
        "H=x [1.2.3.4]: LMTP error after RCPT TO:<a@b>",
        '=> a@b R=r T=t H=x [1.2.3.4] C="250 ',
        '-> a@b C="',
        'H=x [1.2.3.4] sender verify defer for <a@b>: response to "',
        "H=x [1.2.3.4] (EHLO response was: ",
        "login authenticator failed for x [1.2.3.4]: ",
        "H=x [1.2.3.4] F=<a@b> rejected RCPT <c@d>",
        "H=x [1.2.3.4] F=<a@b> temporarily rejected ",
        "SMTP connection from ",
        "<= a@b H=x P=esmtp ",
        "Nov 28 12:01:11 mx exim[1]: ",  # the same parser through syslog, after its own prefix
    ),
    "sendmail": (
        "",
        "reject= ",
        "ruleset=check_rcpt, arg1=<a@b>, relay=x, ",
        "Milter: to=<a@b>, ",
        "to=<a@b>, delay=00:00:01, mailer=esmtp, stat=Deferred: ",
        "to=<a@b>, dsn=5.0.0, stat=Service unavailable, reply=",
        "to=",
    ),
    "opensmtpd": (
        "",
        "mta delivery evpid=0123456789abcdef from=<a@b> to=<c@d> rcpt=<-> source=\"1.2.3.4\" delay=1s ",
        'mta delivery evpid=0123456789abcdef result="TempFail" stat="',
        'smtp failed-command command="',
        'smtp failed-command command="RCPT TO:<a@b>" result="550 ',
        'smtp bad-input result="',
        'smtp-in: Failed command on session 1: "',
        "smtp disconnected reason=",
    ),
    "syslog": (
        "",
        "Nov 28 12:01:11 ",
        "<13>Nov 28 12:01:11 mx ",
        "2026-11-28T12:01:11.123456+00:00 mx ",
        "mx ",
    ),
}
FIELDS = {  # repeated fields and pairs of literals, composed by hand from the patterns
    "postfix": (
        "(in reply to ", "(in reply to RCPT TO ", " said: ", "host x said: ", "host x[1.2.3.4] said: 450 ",
        "refused to talk to me: ", "SASL authentication failed; server x said: ", "from MTA(", "from MTA(x): ",
        "250 from MTA(x): ", "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): ", "a=1 ", "ehlo=1/", "rcpt=0/1 ",
        "status=", "status=sent (", "reject: ", "NOQUEUE: reject: RCPT from x: ", "proxy-accept: ",
    ),
    "exim": (
        "LMTP error after ", "SMTP error from remote mail server after a", ": host x [", ": host x [1.2.3.4]: ",
        ' C="', ' C="\\"', '\\"', 'response to "', 'response to "a" from b [', 'response to "a" was',
        "(a response was", "authenticator failed for ", "rejected RCPT ", "temporarily rejected RCPT ",
        "rejected connection ", "H=", "H=x [1.2.3.4]: ", "aaaaaa-", "aaaaaa-a-a ", "2026-11-28 12:01:11 ", "[1] ",
        " P=esmtp", " was: ", " error ",
    ),
    "sendmail": (
        "ruleset=a, ", "ruleset=", "ruleset=check_rcpt, reject=", "Milter: a ", "Milter a: b ", "Milter: ",
        "reject=", "stat=", "stat=Deferred: ", "reply=", "dsn=5.", "to=<a>,<b>", ">,<", ", delay=",
    ),
    "opensmtpd": (
        "delivery ", "mta delivery ", "delivery result=", 'result="', 'result="a" stat="', 'stat="',
        'smtp failed-command command="', 'smtp failed-command command="\\"', 'command="a" result=',
        'smtp bad-input result="', 'smtp-in: Failed command on session a: "', '" => ', "evpid=", " mta ",
    ),
    "syslog": ("a", "a ", "a[", "a[1", "[1]", "a[1] ", ": ", "a: ", "<1>", "<a.b> ", "Nov 28 12:01:11 "),
}
CODES = (
    "550 5.1.1 ", "550-5.1.1 ", "550-", "550 ", "5.1.1 ", "250 2.0.0 Ok\\n", "\\n550-5.1.1 ", "550-5.1.1",
    # multi-line replies that never end, each code once: every one may look for its last line to the end
    "".join(f"{code}-5.0.0 x " for code in range(200, 600)),
    "".join(f"{code}-x\\n" for code in range(200, 600)),
    "".join(f"{code}-x from MTA(a): " for code in range(200, 600)),
)
UNBALANCED = ('"', "(", ")", "[", "]", "<", ">", "\\", "\\n", ": ", ":", "=", ",", " ", "a", "\t")
DIGITS = ("1", "9", "0", "1/", "=1")
MIXES = 4  # seeded mixtures per MTA
GROUPS = ("keyword", "field", "code", "unbalanced", "digits", "mixed")


# What in a pattern is not literal text: classes, escapes of classes, repeats, group openers, operators.
_SYNTAX = re.compile(r"(?:\[(?:\\.|[^\]\\])*\]|\\[A-Za-z]|\{\d*,?\d*\}|\(\?<?[:=!>]|(?<!\\)[()|?*+.^$])+")


class Family(NamedTuple):
    mta: str
    group: str  # one of GROUPS
    unit: str
    opener: str

    def line(self, size: int) -> str:
        """The family's line of `size` characters: header, opener, then the unit again and again."""
        head = HEADERS[self.mta] + self.opener
        if self.mta == "exim" and self.opener.startswith("Nov "):
            head = self.opener
        fill = size - len(head)
        return head + (self.unit * (fill // len(self.unit) + 1))[:fill]


def literals(module: ModuleType) -> set[str]:
    """The literal runs of every compiled pattern of a module (what a hostile line repeats)."""
    out: set[str] = set()
    for value in vars(module).values():
        if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
            for run in _SYNTAX.split(value.pattern):
                run = re.sub(r"\\(.)", r"\1", run)
                if len(run.strip()) >= 2:
                    out.add(run)
    return out


def families(mtas: tuple[str, ...] = tuple(HEADERS)) -> Iterator[Family]:
    for mta in mtas:
        keywords = sorted(set().union(*(literals(m) for m in MODULES[mta])))
        groups = {
            "keyword": keywords + [k + " " for k in keywords],
            "field": list(FIELDS[mta]),
            "code": list(CODES),
            "unbalanced": list(UNBALANCED),
            "digits": list(DIGITS),
        }
        rng = random.Random(mta)
        tokens = [u for units in groups.values() for u in units]
        groups["mixed"] = ["".join(rng.choice(tokens) for _ in range(40)) for _ in range(MIXES)]
        for group, units in groups.items():
            for unit in units:
                for opener in OPENERS[mta]:
                    yield Family(mta, group, unit, opener)


def cpu_of(parse: Callable[[str], object], line: str) -> tuple[float, str]:
    """CPU seconds of one parse, and the exception it raised ("" when none: any is a bug)."""
    gc.collect()
    gc.disable()
    t0 = time.process_time()
    try:
        parse(line)
        return time.process_time() - t0, ""
    except Exception as err:  # reported, not raised: the other families still run
        return time.process_time() - t0, type(err).__name__
    finally:
        gc.enable()


class Row(NamedTuple):
    full: float  # CPU seconds at the size
    quarter: float  # at a quarter of it
    error: str
    family: Family


def measure(family: Family, size: int) -> Row:
    parse = line_parser()  # fresh per line: no state left by the lines before
    quarter, _ = cpu_of(parse, family.line(size // 4))
    full, error = cpu_of(line_parser(), family.line(size))
    return Row(full, quarter, error, family)


def screened(all_families: list[Family], size: int, keep: int) -> list[Family]:
    """The `keep` slowest families of each MTA and group at a small `size`: on code with quadratic
    patterns a full run at 64 KiB would take hours."""
    by_group: dict[tuple[str, str], list[Row]] = {}
    for family in all_families:
        by_group.setdefault((family.mta, family.group), []).append(measure(family, size))
    return [row.family for rows in by_group.values() for row in sorted(rows, key=lambda r: -r.full)[:keep]]


def report(rows: list[Row], mtas: tuple[str, ...], size: int, top: int) -> None:
    rows = sorted(rows, key=lambda row: -row.full)
    print(f"{len(rows)} lines of {size} characters; CPU ms of one parse at n/4 and n (ratio 4: linear)")
    print(f"{'mta':<10} {'group':<10} {'n/4':>8} {'n':>8} {'ratio':>6}  unit | opener")
    for row in rows[:top]:
        f = row.family
        ratio = f"{row.full / row.quarter:6.1f}" if row.quarter > 1e-4 else "     -"
        print(f"{f.mta:<10} {f.group:<10} {row.quarter * 1e3:8.2f} {row.full * 1e3:8.2f} {ratio}  "
              f"{f.unit[:40]!r} | {f.opener[:40]!r}")
    for row in rows:
        if row.error:
            print(f"RAISED {row.error}: {row.family.mta} {row.family.unit[:40]!r} | {row.family.opener[:40]!r}")
    worst: dict[tuple[str, str], float] = {}
    for row in rows:
        key = (row.family.mta, row.family.group)
        worst[key] = max(worst.get(key, 0.0), row.full)
    groups = [g for g in GROUPS if any(key[1] == g for key in worst)]
    print("\nworst per family (ms per line):")
    print(f"{'mta':<10}" + "".join(f"{g:>11}" for g in groups) + f"{'all':>11}")
    for mta in mtas:
        cells = [worst.get((mta, g), 0.0) for g in groups]
        print(f"{mta:<10}" + "".join(f"{c * 1e3:11.2f}" for c in cells) + f"{max(cells) * 1e3:11.2f}")
    f = rows[0].family
    print(f"\nworst overall: {rows[0].full * 1e3:.2f} ms ({f.mta}, {f.group}, unit {f.unit[:40]!r}, "
          f"opener {f.opener[:40]!r}); {sum(1 for r in rows if r.error)} raised")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--size", type=int, default=SIZE, help="characters per line (default 65536)")
    ap.add_argument("--mta", choices=tuple(HEADERS), action="append", help="only these (repeatable)")
    ap.add_argument("--top", type=int, default=15, help="how many of the worst lines to list")
    ap.add_argument("--screen", type=int, metavar="SIZE",
                    help="first time every family at SIZE, then only the slowest --keep of each group at --size")
    ap.add_argument("--keep", type=int, default=3)
    args = ap.parse_args(argv)
    mtas = tuple(args.mta or HEADERS)
    chosen = list(families(mtas))
    if args.screen:
        chosen = screened(chosen, args.screen, args.keep)
    report([measure(family, args.size) for family in chosen], mtas, args.size, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
