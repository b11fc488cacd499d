"""Lines crafted by whoever can write to syslog: never an exception, never a count no real line holds,
never a neighbour lost, and the same meaning however long the crafted part is."""

import importlib.util
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from smtp_reply_exporter.codes import BASIC_SYNTAX, ENHANCED_SYNTAX
from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts, SmtpCollector
from smtp_reply_exporter.parse import REGISTRY, line_parser
from smtp_reply_exporter.parse.limits import MAX_COUNT
from smtp_reply_exporter.reply import COMMANDS, ROLES, Parsed, Reply

POSTFIX = "Nov 28 12:01:11 mx postfix/smtpd[1]: "
DISCONNECT = POSTFIX + "disconnect from x[1.2.3.4] ehlo=1 quit={} commands=2"
HUGE = {
    "beyond_the_bound": str(MAX_COUNT + 1),
    "beyond_a_float": "9" * 400,  # float() of it overflows at scrape time
    "beyond_int_parsing": "1" * 5000,  # int() refuses more than 4300 digits
    "beyond_digits": "0" * 7 + "1",
}


@pytest.mark.parametrize("digits", HUGE.values(), ids=HUGE.keys())
def test_a_disconnect_counter_beyond_any_session_makes_the_line_implausible(digits):
    assert line_parser()(DISCONNECT.format(digits)) == Parsed("postfix", implausible=True)


def test_a_disconnect_counter_at_the_bound_is_still_believed():
    parsed = line_parser()(DISCONNECT.format(MAX_COUNT))
    assert parsed.replies == (Reply("server", "EHLO", "250", "", True, 1),
                              Reply("server", "QUIT", "221", "", True, MAX_COUNT))


def test_a_sendmail_line_for_more_recipients_than_the_bound_is_implausible():
    recipients = ",".join(f"<u{i}@example.org>" for i in range(MAX_COUNT + 1))
    line = f"Nov 28 12:01:11 mx sm-mta[1]: 5ASC1BqZ001234: to={recipients}, delay=00:00:01, stat=Sent (ok)"
    assert line_parser()(line) == Parsed("sendmail", implausible=True)


def test_implausible_lines_are_counted_as_bad_and_cost_none_of_their_neighbours():
    good = [DISCONNECT.format(1)] * 1000
    lines = good + [DISCONNECT.format(digits) for digits in HUGE.values()] + good
    counts = Counts()
    stats = counts.source("syslog")
    Ingest(counts).feed(("\n".join(lines) + "\n").encode(), stats)
    assert stats.lines == len(lines)
    assert stats.bad_lines["implausible"] == len(HUGE)
    assert counts.replies[("postfix", "server", "QUIT", "221", "")] == 2000
    registry = CollectorRegistry()
    registry.register(SmtpCollector(counts))
    exposition = generate_latest(registry).decode()  # the scrape that a float overflow used to break
    assert 'smtp_exporter_lines_bad_total{reason="implausible",source="syslog"} 4.0' in exposition
    assert 'smtp_replies_total{class="2xx",code="221",command="QUIT",enhanced_code="",mta="postfix",role="server"}' \
        ' 2000.0' in exposition


@pytest.mark.parametrize("fmt", ["table", "jsonl", "prometheus"])
def test_parse_reads_implausible_lines_without_a_traceback(tmp_path, fmt):
    log = tmp_path / "mail.log"
    log.write_text("\n".join([DISCONNECT.format(1), *(DISCONNECT.format(d) for d in HUGE.values())]) + "\n")
    done = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", str(log), "--format", fmt],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert "221" in done.stdout


# Crafted lines of 64 KiB, the longest a line is read, that once took seconds each (quadratic patterns).
# Whether a pattern is linear cannot be asserted without a clock; bench/adversarial.py times them. Here
# each gets the outcome it must have, so that a rewrite of a pattern cannot change what it finds.
SIZE = 1 << 16
N = SIZE // 16
OPENSMTPD = "Nov 28 12:01:11 mx smtpd[1]: 3b9c2a1f5c0e7d11 "
SENDMAIL = "Nov 28 12:01:11 mx sm-mta[1]: 5ASC1BqZ001234: "
EXIM = "2026-11-28 12:01:11 1vPzAb-000ABC-12 "
DEFERRED = "A1B2C3: to=<a@b>, relay=x[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=4.0.0, status=deferred "
HOSTILE = {
    "opensmtpd_repeated_delivery": (OPENSMTPD + "mta delivery " * N, Parsed("opensmtpd")),
    "opensmtpd_repeated_delivery_then_result": (
        OPENSMTPD + "mta delivery " * N + 'result="TempFail" stat="451 4.7.1 busy"',
        Parsed("opensmtpd", (Reply("client", "", "451", "4.7.1"),), "deferred"),
    ),
    "sendmail_repeated_ruleset_after_reject": (SENDMAIL + "reject= " + "ruleset=a, " * N, Parsed("sendmail")),
    "sendmail_repeated_ruleset_then_reject": (
        SENDMAIL + "ruleset=a, " * N + "reject=550 5.7.1 denied",
        Parsed("sendmail", (Reply("server", "", "550", "5.7.1"),)),
    ),
    "sendmail_repeated_milter": (SENDMAIL + "reject= " + "Milter: " * N, Parsed("sendmail")),
    "postfix_repeated_in_reply_to": (
        POSTFIX + DEFERRED + "(host x[1.2.3.4] said: 450 4.2.0 busy " + "(in reply to " * N,
        Parsed("postfix", (Reply("client", "", "450", "4.2.0"),), "deferred"),
    ),
    "postfix_reply_of_thousands_of_lines": (
        POSTFIX + DEFERRED + "(host x[1.2.3.4] said: " + "450-4.2.0 busy " * N + "450 4.2.0 busy)",
        Parsed("postfix", (Reply("client", "", "450", "4.2.0"),), "deferred"),
    ),
    "postfix_relayed_beyond_the_bound": (
        POSTFIX + "A1: to=<a@b>, status=sent (250 2.0.0 " + "250 from MTA(x): " * N + ")",
        Parsed("postfix", implausible=True),
    ),
    "postfix_multi_line_replies_of_every_code": (
        POSTFIX + "A1: to=<a@b>, status=sent (250 2.0.0 " + "".join(f"{c}-x from MTA(a): " for c in range(200, 600)),
        Parsed("postfix", implausible=True),
    ),
    "exim_repeated_temporarily_rejected": (EXIM + "temporarily rejected RCPT " * N, Parsed("exim")),
    "exim_repeated_authenticator_failed": (EXIM + "authenticator failed for " * N, Parsed("exim")),
    "exim_repeated_unclosed_host": (
        EXIM + "== a@b R=r T=t H=x [1.2.3.4]: SMTP error from remote mail server after RCPT" + ": host x [" * N,
        Parsed("exim", (), "deferred"),
    ),
    "exim_repeated_callout_host": (EXIM + 'response to "a" from b [' * N + " was: 550 5.1.1 no", Parsed("exim")),
    "exim_escaped_quotes": (EXIM + '=> a@b R=r T=t C="' + '\\"' * N, Parsed("exim", (), "sent")),
    "exim_pipelined_replies_beyond_the_bound": (
        EXIM + '=> a@b R=r T=t C="' + "250 2.0.0 Ok\\n" * N + '"', Parsed("exim", implausible=True),
    ),
}


@pytest.mark.parametrize(("line", "expected"), HOSTILE.values(), ids=HOSTILE.keys())
def test_crafted_long_lines_mean_what_they_say(line, expected):
    assert line_parser()(line[:SIZE]) == expected


def _adversarial():  # the benchmark's families, so that each crafted line is also checked here
    spec = importlib.util.spec_from_file_location("adversarial", Path(__file__).parents[1] / "bench/adversarial.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_crafted_family_is_counted_without_an_exception_or_a_label_outside_its_syntax():
    lines = [family.line(1 << 13) for family in _adversarial().families()]
    counts = Counts()
    stats = counts.source("t")
    Ingest(counts).feed(("\n".join(lines) + "\n").encode(), stats)
    assert stats.lines == len(lines)
    for mta, role, command, code, enhanced in list(counts.replies) + list(counts.warnings):
        assert mta in REGISTRY and role in ROLES and (command in COMMANDS or command == "")
        assert re.fullmatch(BASIC_SYNTAX, code) and (enhanced == "" or re.fullmatch(ENHANCED_SYNTAX, enhanced))


def test_the_parsers_keep_no_text_of_long_hostile_lines():
    """Each parser remembers a little per process, message or session, and caches short texts: lines of
    32 KiB with ever new process ids, program names, sessions and replies must not be kept whole."""
    filler = "x" * (1 << 15)
    lines = []
    for i in range(400):
        lines += [
            f"Nov 28 12:01:11 mx postfix/smtp[{i}{'1' * 30000}]: A1: to=<a@b>, delay=1, delays=1/0/0/0, "
            f"status=sent (250 2.0.0 {i} {filler})",
            f"Nov 28 12:01:11 mx {filler}{i}[1]: message",
            f"Nov 28 12:01:11 mx smtpd[1]: {filler}{i} mta delivery evpid=0123456789abcdef result=\"Ok\" "
            f'stat="250 2.0.0 {i} {filler}"',
            f'{EXIM}=> a@b R=r T=t C="250 {i} {filler}"',
            f"{EXIM}== a@b R=r T=t H=x [1.2.3.4]: SMTP error from remote mail server after {filler}{i}: 451 x",
        ]
    parse = line_parser()
    tracemalloc.start()
    try:
        for line in lines:
            parse(line)
        kept, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < (1 << 22), f"{kept / (1 << 20):.0f} MiB kept after {len(lines)} lines of 32 KiB"
