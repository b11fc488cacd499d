"""End to end against a real Postfix: the exporter's counters equal what was said on the wire.

Ground truth is never the log: server-role replies are what our SMTP client received from
Postfix's smtpd; client-role replies are what the SMTP sink sent to Postfix's smtp client.
"""

from __future__ import annotations

import gzip
import json
import os
import smtplib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

import pytest

from conftest import have_postfix, wait_for
from e2e.message_only import assert_counts_equal_without_headers, messages
from e2e.postfix import BAD_HELO, Postfix
from e2e.wire import Key, caught_up, client_expected, deliveries, scraped, server_expected, sink_deliveries

# tests/run.sh sets SMTP_E2E_REQUIRED=1: in CI a missing Postfix is a failure, not a skip.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1" and (not have_postfix() or os.geteuid() != 0),
        reason="needs Debian's postfix and root",
    ),
]


class Client:
    """An SMTP client that records every reply Postfix's smtpd sent it."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str, str]] = Counter()  # command, code, enhanced

    def note(self, command: str, reply: tuple[int, bytes]) -> int:
        code, text = reply
        first = text.split(b"\n")[-1].split(b" ", 1)[0].decode()
        enhanced = first if first[:1] in "245" and first.count(".") == 2 else ""
        self.seen[(command, str(code), enhanced)] += 1
        return code

    def session(self, port: int, helo: str, transactions: list[tuple[list[str], bool]], extra: tuple[str, ...] = (),
                sender: str = ""):
        """One SMTP session: EHLO, then per transaction MAIL (from `sender`), RCPTs and DATA (if any
        accepted), QUIT."""
        smtp = smtplib.SMTP()
        if self.note("CONNECT", smtp.connect("127.0.0.1", port)) != 220:
            self.note("QUIT", smtp.quit())  # as RFC 5321 section 3.1 asks of a refused client
            return
        if self.note("EHLO", smtp.ehlo(helo)) == 250:
            for command in extra:
                self.note(command.upper(), getattr(smtp, command)())
            for recipients, send_data in transactions:
                self.note("MAIL", smtp.mail(f"<{sender}>"))
                accepted = [r for r in recipients if self.note("RCPT", smtp.rcpt(f"<{r}>")) == 250]
                if accepted and send_data:
                    self.note("DATA", smtp.data(b"Subject: test\r\n\r\nhello\r\n"))
                else:
                    self.note("RSET", smtp.rset())
        self.note("QUIT", smtp.quit())



def traffic(postfix: Postfix, client: Client, round_: int) -> tuple[int, Counter[str]]:
    """Mail that makes Postfix's smtpd and the sinks answer every chosen code.

    Returns the number of deliveries Postfix will attempt and their expected outcomes.
    """
    d = "dest.example"
    client.session(postfix.port, "client.test.example", [
        ([f"ok{round_}@{d}", f"rcpt455@{d}", f"rcpt452@{d}", f"rcpt450@{d}", f"rcpt550@{d}", f"rcpt552@{d}",
          "reject550@test.example", "tempfail450@test.example", "pressure452@test.example",
          "busy455@test.example"], True),
        ([f"data451@{d}"], True),
        ([f"data554@{d}", f"also{round_}@{d}"], True),
        ([f"data455@{d}"], True),
        (["user@greet421.example"], True),
        (["reject550@test.example"], True),  # every recipient refused: no DATA, RSET instead
    ], extra=("noop", "rset"))
    client.session(postfix.port, BAD_HELO, [])
    client.session(postfix.reject_port, "client.test.example", [([f"x@{d}"], True)])
    outcomes = Counter(sent=1, deferred=3 + 1 + 1 + 1, bounced=2 + 2)
    return sum(outcomes.values()), outcomes


def wait_for_deliveries(postfix: Postfix, n: int) -> None:
    wait_for(lambda: postfix.log_text().count(" status=") >= n, timeout=60, what=f"{n} delivery attempts")


def test_counters_equal_the_replies_on_the_wire(mta, exporter, tmp_path):
    postfix, sink, sink421 = mta
    exp = exporter("--log.path", str(postfix.log), "--tail.from-start")
    client = Client()
    n, outcomes = traffic(postfix, client, 1)
    wait_for_deliveries(postfix, n)
    caught_up(exp, postfix.log)

    expected = server_expected(client.seen, None) + client_expected(sink, sink421)
    assert scraped(exp, "postfix") == expected
    # the contract's headline facts, spelled out
    assert expected[("server", "QUIT", "221", "")] == 3
    assert expected[("client", "RCPT", "455", "4.5.3")] == 1
    assert expected[("server", "RCPT", "455", "4.5.3")] == 1
    assert expected[("client", "CONNECT", "421", "4.7.0")] == 1
    assert deliveries(exp) == dict(outcomes)
    assert exp.value("smtp_exporter_lines_unrecognised_total") == 0

    # `parse` on the same file agrees with `serve`, reply for reply
    out = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "jsonl",
                          str(postfix.log)], capture_output=True, text=True, check=True).stdout
    from_parse: Counter[Key] = Counter()
    for line in out.splitlines():
        obj = json.loads(line)
        from_parse[(obj["role"], obj["command"], obj["code"], obj["enhanced_code"])] += 1
        assert obj["inferred"] == (obj["role"] == "server" and obj["code"][0] in "23")
    assert from_parse == expected

    text = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "prometheus",
                           str(postfix.log)], capture_output=True, text=True, check=True).stdout
    served = exp.get("/metrics")[1]
    pick = lambda t: sorted(x for x in t.splitlines() if x.startswith("smtp_replies_total{"))  # noqa: E731
    assert pick(text) == pick(served)
    log = postfix.log_text().splitlines()
    assert_counts_equal_without_headers(log, messages(log), "postfix")


def settled(count: Callable[[], int], quiet: float = 2.0, timeout: float = 60.0) -> None:
    """Wait until `count` stays the same for `quiet` seconds (Postfix has finished what it was doing)."""
    deadline, last, since = time.monotonic() + timeout, count(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the log kept growing"
        time.sleep(0.2)
        now = count()
        if now != last:
            last, since = now, time.monotonic()


def test_postfix_retries_by_a_reused_smtp_process_count_each_try(mta, exporter):
    """Several recipients per transaction: a reply to MAIL, to the end of DATA or at the greeting is logged
    on each recipient's line and counted once; a retry by the same smtp process is counted again; a
    message Postfix gives up on expires once per recipient still deferred (one qmgr line per message)."""
    postfix, sink, sink421 = mta
    exp = exporter("--log.path", str(postfix.log), "--tail.from-start")
    client = Client()
    d = "dest.example"
    client.session(postfix.port, "client.test.example", [([f"a@{d}", f"b@{d}"], True)], sender="mail451@src.example")
    client.session(postfix.port, "client.test.example", [
        ([f"data451@{d}", f"two@{d}"], True), ([f"data452ml@{d}"], True),
        ([f"rcpt450@{d}", f"ok@{d}", f"rcpt550ml@{d}"], True), ([f"ok2@{d}", f"ok3@{d}"], True),
        (["u@greet421.example", "v@greet421.example"], True),
    ], sender="s@src.example")
    deferred = 8  # a, b, data451, two, data452ml, rcpt450, u, v: deferred at each try
    tries = lambda: postfix.log_text().count(" status=deferred ")  # noqa: E731
    wait_for(lambda: tries() >= deferred, timeout=60, what="first tries")
    for attempt in (2, 3):  # retried by the smtp processes that made the first tries (they stay for 100 s)
        settled(tries)
        subprocess.run(["postqueue", "-c", str(postfix.conf), "-f"], check=True, capture_output=True)
        # at least one more line for each deferred recipient (qmgr may add "delivery temporarily suspended"
        # lines for a destination it holds back: the count need not be a multiple of 8)
        wait_for(lambda: tries() >= attempt * deferred, timeout=60, what=f"try {attempt}")  # noqa: B023
    settled(tries)
    postfix.configure(maximal_queue_lifetime="0", bounce_queue_lifetime="0")  # the next failure is the last
    subprocess.run(["postqueue", "-c", str(postfix.conf), "-f"], check=True, capture_output=True)
    wait_for(lambda: postfix.log_text().count(", status=expired,") == 5, timeout=60, what="5 messages expired")
    # one bounce for rcpt550ml, one for each expired message: all delivered to the sink
    wait_for(lambda: sink.outcomes()["sent"] == 3 + 6, timeout=60, what="bounces delivered")
    caught_up(exp, postfix.log)

    expected = server_expected(client.seen, None) + client_expected(sink, sink421)
    assert scraped(exp, "postfix") == expected, postfix.log_text()
    log = postfix.log_text().splitlines()
    # each try is one MAIL 451 (to a and b at once) and one 421 greeting (u and v): counted per try, not
    # per recipient; the sinks saw exactly these (expected is their tally)
    mail_tries = sum(1 for line in log if f"to=<a@{d}>" in line and " said: 451 4.3.0" in line
                     and "delivery temporarily suspended" not in line)
    assert expected[("client", "MAIL", "451", "4.3.0")] == mail_tries >= 4
    assert expected[("client", "CONNECT", "421", "4.7.0")] >= 4
    # u and v are deferred at each try and expire with their message, unknown to any sink
    held = sum(1 for line in log if "@greet421.example>" in line and " status=deferred " in line)
    outcomes = sink_deliveries(sink, expired=True) + Counter(deferred=held, expired=2)
    assert outcomes["expired"] == deferred
    assert deliveries(exp) == dict(outcomes), postfix.log_text()
    log = postfix.log_text().splitlines()
    assert_counts_equal_without_headers(log, messages(log), "postfix")


def test_postfix_logrotate_loses_and_repeats_no_line(mta, exporter):
    postfix, sink, sink421 = mta
    exp = exporter("--log.path", str(postfix.log), "--tail.from-start")
    client = Client()
    n1, _ = traffic(postfix, client, 1)
    wait_for_deliveries(postfix, n1)
    before = postfix.log.read_bytes()
    subprocess.run(["postfix", "-c", str(postfix.conf), "logrotate"], check=True, capture_output=True)
    rotated = [p for p in postfix.log.parent.iterdir() if p.name != postfix.log.name]
    assert len(rotated) == 1
    n2, _ = traffic(postfix, client, 2)
    wait_for_deliveries(postfix, n2)
    # Postfix renames the file, reopens its log, then gzips the old one: the exporter's open
    # descriptor must have kept the old inode readable to its end.
    old = gzip.decompress(rotated[0].read_bytes())
    assert old.startswith(before)
    # Postfix may still be logging (qmgr, disconnects): count both files again at each check; a line
    # read twice would keep the exporter above the files' total, and the wait would fail
    def written() -> int:
        return len(gzip.decompress(rotated[0].read_bytes()).splitlines()) + len(postfix.log.read_bytes().splitlines())

    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") == written(), what="caught up after rotation")
    assert exp.value("smtp_exporter_rotations_total") == 1
    assert scraped(exp, "postfix") == server_expected(client.seen, None) + client_expected(sink, sink421)
