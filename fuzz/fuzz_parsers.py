"""Coverage-guided fuzzing (atheris) of every parser, the ingest path, the container unwrapping and
the syslog framing. Not part of CI: run it by hand, e.g. for ten minutes per target:

    python3 fuzz/fuzz_parsers.py -max_total_time=600 -only_ascii=0 TARGET

TARGET is one of: postfix, exim, sendmail, opensmtpd, auto, syslog. Any exception is a finding;
so is a parse that yields a label value outside its syntax.
"""

from __future__ import annotations

import io
import re
import sys

import atheris

with atheris.instrument_imports():
    from smtp_reply_exporter.codes import BASIC_SYNTAX, ENHANCED_SYNTAX
    from smtp_reply_exporter.ingest import Ingest
    from smtp_reply_exporter.metrics import Counts
    from smtp_reply_exporter.parse import REGISTRY
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


def syslog_target(data: bytes) -> None:
    to_line(data)
    for batch in frames(io.BytesIO(data), lambda: None):
        for message in batch:
            to_line(message)


if __name__ == "__main__":
    target = sys.argv.pop()
    atheris.Setup(sys.argv, syslog_target if target == "syslog" else ingest_target(target))
    atheris.Fuzz()
