"""Lines crafted by whoever can write to syslog: never an exception, never a count no real line holds,
never a neighbour lost, and the same meaning however long the crafted part is."""

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts, SmtpCollector
from smtp_reply_exporter.parse import line_parser
from smtp_reply_exporter.parse.limits import MAX_COUNT
from smtp_reply_exporter.reply import Parsed, Reply

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
