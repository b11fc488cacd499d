"""Lines without a syslog header (`journalctl -o cat`, a shipper that keeps only the message field) count
what the same lines with their header count: each goes to the MTA whose message shape it has, or to the
MTA `--mta` names; `--log.format` says whether lines carry headers at all."""

import re
from collections import Counter

import pytest

from smtp_reply_exporter.parse import line_parser, syslog
from test_parse_samples import sample_cases

EXIM_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? ")
HEADERED = ("postfix", "sendmail", "opensmtpd")  # sample files whose lines carry syslog headers


def bare(line: str) -> str:
    head = syslog.split(line) or syslog.split_hostless(line)
    return line if head is None else head[2]


def totals(lines: list[str], *args: str) -> tuple[Counter[tuple[str, ...]], Counter[str], int]:
    """Replies, deliveries and unrecognised lines, as one parser reads `lines` in order."""
    parse = line_parser(*args)
    replies: Counter[tuple[str, ...]] = Counter()
    deliveries: Counter[str] = Counter()
    unrecognised = 0
    for line in lines:
        parsed = parse(line)
        if parsed is None:
            unrecognised += 1
            continue
        for r in parsed.replies:
            replies[(parsed.mta, r.role, r.command, r.code, r.enhanced)] += r.times
        if parsed.delivery:
            deliveries[parsed.delivery] += parsed.deliveries
    return replies, deliveries, unrecognised


@pytest.mark.parametrize("mta", HEADERED)
def test_each_line_without_its_header_says_what_it_says_with_it_when_the_mta_is_named(mta):
    lines = [line for _no, _expect, line in sample_cases(mta)]
    with_header, without = line_parser(mta), line_parser(mta)
    for line in lines:
        assert without(bare(line)) == with_header(line), line


@pytest.mark.parametrize("mta", HEADERED)
def test_lines_without_header_are_given_to_their_mta_by_the_shape_of_their_message(mta):
    lines = [line for _no, _expect, line in sample_cases(mta)]
    replies, deliveries, _ = totals(lines)
    assert replies and totals([bare(line) for line in lines])[:2] == (replies, deliveries)


def test_every_mta_in_one_stream_without_headers_counts_as_with_them():
    lines = [line for mta in (*HEADERED, "exim") for _no, _expect, line in sample_cases(mta)]
    assert totals([bare(line) for line in lines])[:2] == totals(lines)[:2]


@pytest.mark.parametrize(("message", "role"), [
    ("NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 550 5.1.1 <a@example.org>: Recipient address rejected: "
     "User unknown; from=<s@example.com> to=<a@example.org> proto=ESMTP helo=<c.example>", "server"),
    ("4E74613FE76: proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject, id=1 - spam; from=<s@example.com> "
     "to=<a@example.org> proto=ESMTP helo=<c.example>", "server"),
    ("4E74613FE76: to=<a@example.org>, relay=mx.example.org[192.0.2.7]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, "
     "status=bounced (host mx.example.org[192.0.2.7] said: 550 5.1.1 No such user (in reply to RCPT TO command))",
     "client"),
    ("4Ht4tB3tLwz9sx7: to=<a@example.org>, relay=mx.example.org[192.0.2.7]:25, delay=1, delays=0/0/0/1, "
     "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234)", "client"),
    ("c1a89cb774083905 smtp failed-command command=\"RCPT TO:<a@example.org>\" result=\"550 5.7.1 Delivery not "
     "authorized\"", "server"),
    ("5ASC1BqZ001234: ruleset=check_rcpt, arg1=<a@example.org>, relay=[192.0.2.1], reject=550 5.7.1 "
     "<a@example.org>... Relaying denied", "server"),
    ("1vPzAb-000ABC-12 ** a@example.org R=dnslookup T=remote_smtp H=mx.example.org [192.0.2.7]: SMTP error from "
     "remote mail server after RCPT TO:<a@example.org>: 550 5.1.1 No such user", "client"),
], ids=["postfix-reject", "postfix-proxy", "postfix-said", "postfix-long-queue-id", "opensmtpd", "sendmail", "exim"])
def test_the_role_comes_from_the_message_itself(message, role):
    parsed = line_parser()(message)
    assert parsed is not None and [r.role for r in parsed.replies] == [role]


def test_a_line_of_another_program_without_header_is_not_recognised():
    parse = line_parser()
    for line in ("imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.1", "Started Session 4 of user root.",
                 "550 5.7.1 a code alone", ""):
        assert parse(line) is None


def test_a_named_mta_takes_every_line_without_header():
    parsed = line_parser("postfix")("statistics: max connection rate 1/60s for (smtp:192.0.2.1) at Nov 28 12:01:11")
    assert parsed is not None and parsed.mta == "postfix"


def test_log_format_syslog_leaves_lines_without_header_unrecognised():
    message = bare(sample_cases("postfix")[0][2])
    assert line_parser("postfix", "syslog")(message) is None
    assert line_parser("auto", "syslog")(message) is None


def test_log_format_message_takes_no_header():
    """A message that looks like a header line is still a message ("host program[pid]: ..." opens it)."""
    line = "mx postfix/smtp[12]: 4E74613FE76: host mx said: 451 4.3.0 Try later (in reply to MAIL FROM command)"
    assert line_parser("postfix", "message")(line) is not None
    assert line_parser("sendmail", "message")(line) is not None  # every line is the named MTA's
    assert line_parser("auto", "message")(line) is None  # no MTA's message opens so


def test_exim_lines_without_timestamp_are_exims():
    """What Exim sends to syslog with syslog_timestamp = false: [pid] (with +pid), a message id, a client's H=."""
    lines = [line for _no, _expect, line in sample_cases("exim")]
    stripped = [EXIM_STAMP.sub("", line, count=1) for line in lines]
    assert stripped != lines
    assert totals(stripped, "exim")[2] == 0
    replies, deliveries, _ = totals(stripped)
    assert replies and (replies, deliveries) == totals(stripped, "exim")[:2]
