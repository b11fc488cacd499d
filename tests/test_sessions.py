"""How sessions end: every MTA's wording of a lost, timed-out, erroring or rejected session, counted once."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts, SmtpCollector
from smtp_reply_exporter.parse.pattern import lines_matching

PF = "Feb 18 09:45:10 mx postfix/smtpd[42]: "
# (line, mta, role, end, command): real shapes (fail2ban and the project's samples) and the MTAs' source formats
ENDS = [
    (PF + "lost connection after CONNECT from spammer.example.com[192.0.2.10]", "postfix", "server", "lost", "CONNECT"),
    (PF + "lost connection after DATA (0 bytes) from mail-250.example.com[192.0.2.250]", "postfix", "server", "lost",
     "DATA"),
    (PF + "NOQUEUE: lost connection after CONNECT from unknown[192.0.2.25]", "postfix", "server", "lost", "CONNECT"),
    (PF + "timeout after END-OF-MESSAGE from a.example[192.0.2.1]", "postfix", "server", "timeout", "DATA"),
    (PF + "too many errors after RCPT from example.com[192.0.2.11]", "postfix", "server", "too_many_errors", "RCPT"),
    (PF + "lost connection after UNKNOWN from a.example[192.0.2.1]", "postfix", "server", "lost", ""),
    ("Feb 18 09:45:10 mx postfix/submission/smtpd[42]: timeout after AUTH from a[192.0.2.1]", "postfix", "server",
     "timeout", "AUTH"),
    ("Nov 28 12:01:11 mx postfix/smtp[7]: 1A2B3C4D5E: to=<u@example.org>, relay=mx.example.org[192.0.2.7]:25, "
     "delay=301, delays=0/0/1/300, dsn=4.4.2, status=deferred (conversation with mx.example.org[192.0.2.7] timed out "
     "while sending end of data -- message may be sent more than once)", "postfix", "client", "timeout", "DATA"),
    ("Nov 28 12:01:11 mx postfix/smtp[8]: 1A2B3C4D5F: to=<u@example.org>, relay=mx.example.org[192.0.2.7]:25, "
     "delay=1, delays=0/0/0/1, dsn=4.4.2, status=deferred (lost connection with mx.example.org[192.0.2.7] while "
     "receiving the initial server greeting)", "postfix", "client", "lost", "CONNECT"),
    ("2010-03-21 16:28:51 unexpected disconnection while reading SMTP command from (ZTZUWWCRQY) [218.108.42.254] "
     "(error: Connection reset by peer)", "exim", "server", "lost", ""),
    ("2012-08-09 08:07:30 SMTP connection from www.drupal7.net [192.168.10.17] lost while reading message data "
     "(header)", "exim", "server", "lost", "DATA"),
    ("2012-08-09 08:07:30 SMTP command timeout on TLS connection from a.example [192.0.2.1]", "exim", "server",
     "timeout", ""),
    ("2012-08-09 08:07:30 SMTP data timeout (message abandoned) on connection from a.example [192.0.2.1] F=<a@b>",
     "exim", "server", "timeout", "DATA"),
    ('2017-01-24 05:36:23 SMTP call from (000000) [::1]:39480 dropped: too many syntax or protocol errors (last '
     'command was "RCPT TO:<x>")', "exim", "server", "too_many_errors", "RCPT"),
    ("2016-03-21 04:33:13 [26074] 1ahrVl-0006mY-79 SMTP connection from riveruse.com [206.214.71.53]:39865 "
     "I=[172.89.0.6]:25 closed by DROP in ACL", "exim", "server", "rejected", ""),
    ("Jun  6 09:31:56 mx sm-mta[1234]: 5A69VuXq001234: lost input channel from host.example [192.0.2.9] to MTA "
     "after rcpt", "sendmail", "server", "lost", "RCPT"),
    ("Jun  6 09:31:56 mx sm-mta[1234]: 5A69VuXq001234: timeout waiting for input from host.example during server "
     "cmd read", "sendmail", "server", "timeout", ""),
    ("Jun  6 09:31:56 mx sm-mta[1234]: 5A69VuXq001234: timeout waiting for input from mx.example.org. during client "
     "RCPT", "sendmail", "client", "timeout", "RCPT"),
    ("Nov 28 12:01:12 mx smtpd[811]: 3b9c2a1f5c0e7d15 smtp disconnected reason=disconnect", "opensmtpd", "server",
     "lost", ""),
    ("Nov 28 12:01:12 mx smtpd[811]: 3b9c2a1f5c0e7d16 smtp disconnected reason=timeout", "opensmtpd", "server",
     "timeout", ""),
    ('Nov 28 12:01:12 mx smtpd[811]: 3b9c2a1f5c0e7d17 smtp disconnected reason="io-error: handshake failed"',
     "opensmtpd", "server", "lost", ""),
]


def sessions_of(lines: list[str]) -> dict[tuple[str, str, str, str], float]:
    counts = Counts()
    Ingest(counts).feed(("\n".join(lines) + "\n").encode(), counts.source("test"))
    registry = CollectorRegistry()
    registry.register(SmtpCollector(counts))
    return {(s.labels["mta"], s.labels["role"], s.labels["end"], s.labels["command"]): s.value
            for fam in registry.collect() if fam.name == "smtp_sessions" for s in fam.samples}


@pytest.mark.parametrize(("line", "mta", "role", "end", "command"), ENDS, ids=[f"{e[1]}-{e[3]}-{e[4]}" for e in ENDS])
def test_each_wording_of_a_session_end_counts_once_with_its_role_and_command(line, mta, role, end, command):
    assert sessions_of([line]) == {(mta, role, end, command): 1}


def test_quit_ends_are_the_221_replies_and_421_ends_are_rejections():
    got = sessions_of([
        PF + "disconnect from a.example[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
        "2026-11-28 12:01:15 SMTP connection from client.example [192.0.2.50]:41234 I=[192.0.2.1]:25 closed by QUIT",
        "Nov 28 12:01:12 mx smtpd[811]: 3b9c2a1f5c0e7d11 smtp disconnected reason=quit",
        PF + "NOQUEUE: reject: RCPT from a[192.0.2.1]: 421 4.7.0 Too busy; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
        "Nov 28 12:01:11 mx postfix/smtp[9]: 2B3C4D5E6F: to=<u@greet421.example>, relay=127.0.0.1[127.0.0.1]:40111, "
        "delay=0.02, delays=0.01/0/0.01/0, dsn=4.7.0, status=deferred (host 127.0.0.1[127.0.0.1] refused to talk to "
        "me: 421 4.7.0 Too many connections, slow down)",
    ])
    assert got == {("postfix", "server", "quit", "QUIT"): 1, ("exim", "server", "quit", "QUIT"): 1,
                   ("opensmtpd", "server", "quit", "QUIT"): 1, ("postfix", "server", "rejected", "RCPT"): 1,
                   ("postfix", "client", "rejected", "CONNECT"): 1}


def test_an_opensmtpd_quit_after_the_server_closed_the_session_proves_no_221():
    """smtpd logs reason=quit for a session it closed itself (after a 421, a reply in place of the greeting,
    bad input) as for a client's QUIT: only the last is a 221 on the wire."""
    at = "Aug  2 17:23:36 mx smtpd[48048]: "
    lines = [at + f'{sid} smtp {what}' for sid, what in (
        ("a2cc7671f3eb8824", 'failed-command command="" result="550 no rDNS please fix"'),
        ("a2cc7671f3eb8824", "disconnected reason=quit"),
        ("b4a942c181a10c63", 'failed-command command="MAIL FROM:<a@b.example>" result="421 4.3.0 Temporary Error"'),
        ("b4a942c181a10c63", "disconnected reason=quit"),
        ("c1a89cb8c5b84cbf", 'bad-input result="500 5.5.1 Invalid command: Pipelining not supported"'),
        ("c1a89cb8c5b84cbf", "disconnected reason=quit"),
        ("d0e1f2a3b4c5d6e7", 'failed-command command="RCPT TO:<x@y.example>" result="550 5.1.1 No such user"'),
        ("d0e1f2a3b4c5d6e7", "disconnected reason=quit"),
    )]
    counts = Counts()
    Ingest(counts).feed(("\n".join(lines) + "\n").encode(), counts.source("test"))
    registry = CollectorRegistry()
    registry.register(SmtpCollector(counts))
    replies = {(s.labels["command"], s.labels["code"]): s.value
               for fam in registry.collect() if fam.name == "smtp_replies" for s in fam.samples}
    assert replies == {("CONNECT", "550"): 1, ("MAIL", "421"): 1, ("", "500"): 1, ("RCPT", "550"): 1,
                       ("QUIT", "221"): 1}
    assert sessions_of(lines) == {("opensmtpd", "server", "rejected", "MAIL"): 1,
                                  ("opensmtpd", "server", "quit", "QUIT"): 1}


def test_a_lost_remote_session_logged_for_each_recipient_counts_once():
    line = ("Nov 28 12:01:11 mx postfix/smtp[8]: 1A2B3C4D5F: to=<{}@example.org>, relay=mx.example.org[192.0.2.7]:25, "
            "delay=1, delays=0/0/0/1, dsn=4.4.2, status=deferred (lost connection with mx.example.org[192.0.2.7] "
            "while sending RCPT TO)")
    other_message = line.replace("1A2B3C4D5F", "9F8E7D6C5B")
    assert sessions_of([line.format("a"), line.format("b"), other_message.format("c")]) == {
        ("postfix", "client", "lost", "RCPT"): 2}


@pytest.mark.parametrize("line", [
    PF + "connect from a.example[192.0.2.1]",
    "Nov 28 12:01:11 mx postfix/postscreen[5]: HANGUP after 0.5 from [192.0.2.1]:5678 in tests after SMTP handshake",
    "Nov 28 12:01:11 mx postfix/smtp[8]: 1A2B: to=<u@e.org>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.2, "
    "status=deferred (delivery temporarily suspended: lost connection with mx.e.org[192.0.2.7] while sending RCPT TO)",
    "2012-08-09 08:07:30 1RwtJY-0009RI-E4 ** a@b.example: retry timeout exceeded",
    PF + "warning: improper command pipelining after EHLO from a[192.0.2.1]: QUIT",
])
def test_lines_that_only_look_like_an_end_count_none(line):
    assert sessions_of([line]) == {}


@given(st.lists(st.sampled_from(["", "x", "ab after cd", " after ", "after", "lost connection after X"]), max_size=30),
       st.sampled_from([" after ", "after", "x"]))
def test_lines_matching_finds_exactly_the_lines_that_hold_a_needle(lines, needle):
    as_literal, as_regex = [needle, needle], [re.compile(re.escape(needle))] * 2
    for patterns in (as_literal, as_regex):
        assert lines_matching("\n".join(lines), patterns) == [i for i, line in enumerate(lines) if needle in line]


def test_a_chunk_of_many_lines_finds_each_end_where_it_is():
    rng = random.Random(7)
    quiet = PF + "connect from a.example[192.0.2.1]"
    lines = [quiet] * 500
    for at in rng.sample(range(500), 20):
        lines[at] = ENDS[0][0]
    assert sessions_of(lines) == {("postfix", "server", "lost", "CONNECT"): 20}


@pytest.mark.parametrize("line", [  # 64 KiB of what a pattern starts at, as whoever writes to syslog can
    PF + "lost connection after " * 2849,
    "Jun  6 09:31:56 mx sm-mta[1234]: " + "lost input channel from a to " * 2259,
    "2026-11-28 12:01:11 " + "SMTP connection from " * 3120,
    "Nov 28 12:01:12 mx smtpd[811]: x" + " smtp disconnected reason=" * 2520,
])
def test_a_crafted_line_ends_no_session(line):
    assert sessions_of([line]) == {}
