"""Coverage-guided fuzzing (atheris) of every parser, the ingest path, the container unwrapping and
the syslog framing. Not part of CI: run it by hand, e.g. for ten minutes per target:

    python3 fuzz/fuzz_parsers.py -max_total_time=600 -only_ascii=0 TARGET

TARGET is one of: postfix, exim, sendmail, opensmtpd, auto, syslog, linear. Any exception is a finding;
so is a parse that yields a label value outside its syntax. `linear` repeats the input into a 64 KiB
line (the longest one read) behind each MTA's header: a parse that takes more than BUDGET seconds of
CPU is a finding too (a pattern that is not linear in the line's length takes seconds at that size);
bench/adversarial.py times the known hostile families.
"""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
with atheris.instrument_imports():
    from adversarial import CODES, FIELDS, MODULES, UNBALANCED, literals  # the hostile tokens
    from smtp_reply_exporter.codes import BASIC_SYNTAX, ENHANCED_SYNTAX
    from smtp_reply_exporter.ingest import Ingest
    from smtp_reply_exporter.metrics import Counts
    from smtp_reply_exporter.parse import REGISTRY, line_parser
    from smtp_reply_exporter.reply import COMMANDS, DELIVERY_STATUSES, ROLES
    from smtp_reply_exporter.syslog_server import frames, to_line
    from smtp_reply_exporter.unwrap import Unwrapper

BASIC, ENHANCED = re.compile(BASIC_SYNTAX), re.compile(ENHANCED_SYNTAX)
HEADERS = {
    "postfix": "Nov 28 12:01:11 mx postfix/smtpd[1]: ",
    "exim": "2026-11-28 12:01:11 1vPzAb-000ABC-12 ",
    "sendmail": "Nov 28 12:01:11 mx sm-mta[1]: 5ASC1BqZ001234: ",
    "opensmtpd": "Nov 28 12:01:11 mx smtpd[1]: 3b9c2a1f5c0e7d11 ",
    "auto": "",
}


def check(counts: Counts) -> None:
    for mta, role, command, code, enhanced in list(counts.replies) + list(counts.warnings):
        assert mta in REGISTRY and role in ROLES and (command in COMMANDS or command == "")
        assert BASIC.fullmatch(code) and (enhanced == "" or ENHANCED.fullmatch(enhanced))
    for mta, status in counts.deliveries:
        assert mta in REGISTRY and status in DELIVERY_STATUSES


def ingest_target(mta: str):  # type: ignore[no-untyped-def]
    head = HEADERS[mta].encode()

    def one(data: bytes) -> None:
        counts = Counts()
        Ingest(counts, "auto" if mta == "auto" else mta).feed(head + data.replace(b"\n", b" ") + b"\n" + data + b"\n",
                                                              counts.source("fuzz"), unwrap=Unwrapper())
        check(counts)

    return one


SIZE = 1 << 16
BUDGET = 0.05  # seconds of CPU for one 64 KiB line; the worst family takes a few milliseconds


TOKENS = sorted({t for mta in MODULES for m in MODULES[mta] for t in literals(m)}
                | {t for fields in FIELDS.values() for t in fields} | set(CODES) | set(UNBALANCED))


def linear_target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    head = list(HEADERS.values())[fdp.ConsumeIntInRange(0, len(HEADERS) - 1)]
    opener = "".join(TOKENS[fdp.ConsumeIntInRange(0, len(TOKENS) - 1)] for _ in range(fdp.ConsumeIntInRange(0, 4)))
    unit = "".join(TOKENS[fdp.ConsumeIntInRange(0, len(TOKENS) - 1)] for _ in range(fdp.ConsumeIntInRange(1, 6)))
    unit = (unit + fdp.ConsumeUnicodeNoSurrogates(64)).replace("\n", " ")
    line = (head + opener + unit * (SIZE // len(unit) + 1))[:SIZE]
    parse = line_parser()
    start = time.process_time()
    parse(line)
    spent = time.process_time() - start
    assert spent < BUDGET, f"{spent:.3f} s of CPU for {opener!r} then {unit[:80]!r} repeated"


def syslog_target(data: bytes) -> None:
    to_line(data)
    for batch in frames(io.BytesIO(data), lambda: None):
        for message in batch:
            to_line(message)


if __name__ == "__main__":
    target = sys.argv.pop()
    targets = {"syslog": syslog_target, "linear": linear_target}
    atheris.Setup(sys.argv, targets[target] if target in targets else ingest_target(target))
    atheris.Fuzz()
