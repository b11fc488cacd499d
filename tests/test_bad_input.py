"""Whatever bytes arrive, parsing and counting never raise, and labels stay inside their syntax."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from smtp_reply_exporter.codes import BASIC_SYNTAX, ENHANCED_SYNTAX
from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts
from smtp_reply_exporter.parse import line_parser
from smtp_reply_exporter.reply import COMMANDS, ROLES

HEAD = "Nov 28 12:01:11 mx postfix/smtpd[1]: "
PIECES = ["NOQUEUE: reject: RCPT from a[1.2.3.4]: ", "status=sent (", " said: ", "250", "455 ", "4.5.3",
          "550-5.1.1 ", "disconnect from x ehlo=", "quit=1", "from MTA(smtp:[::1]:1): ", "(in reply to ",
          " command)", "refused to talk to me: ", "proxy-accept: END-OF-MESSAGE: ", "reject_warning: ",
          "\x00", "\ufffd"]
fragments = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=20)), max_size=12).map("".join)


def labels_valid(counts: Counts) -> bool:
    for mta, role, command, code, enh in list(counts.replies) + list(counts.warnings):
        assert mta == "postfix" and role in ROLES and (command in COMMANDS or command == "")
        assert re.fullmatch(BASIC_SYNTAX, code) and (enh == "" or re.fullmatch(ENHANCED_SYNTAX, enh))
    return True


@settings(max_examples=400, deadline=None)
@given(fragments)
def test_postfix_shaped_noise_never_raises_and_yields_only_valid_labels(text):
    parse = line_parser()
    parsed = parse(HEAD + text)
    assert parsed is not None
    counts = Counts()
    Ingest(counts).feed((HEAD + text.replace("\n", " ") + "\n").encode("utf-8", "surrogatepass"),
                        counts.source("t"))
    assert labels_valid(counts)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_counted_as_lines_and_never_raise(data):
    counts = Counts()
    stats = counts.source("t")
    Ingest(counts).feed(data + b"\n", stats)
    assert stats.lines == data.count(b"\n") + 1
    assert labels_valid(counts)
