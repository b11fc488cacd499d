"""End to end against a real Exim: counters equal what was said on the wire, as for Postfix.

Exim logs fewer successes than Postfix: of the server-role 2xx it proves only the 250 after the
message body (the `<=` line) and the 221 to QUIT ("closed by QUIT"). Those, and every rejection
with its code, are what the exporter must count exactly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from e2e.exim import LOG_SELECTOR, Exim
from e2e.message_only import assert_counts_equal_without_headers, exim_without_timestamps
from e2e.smtp_sink import REPLY_TEXT, SmtpSink
from e2e.test_postfix_e2e import Client
from e2e.wire import caught_up, client_expected, deliveries, scraped, server_expected, sink_deliveries

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1"
        and (shutil.which("apt-get") is None or os.geteuid() != 0),
        reason="needs root and apt-get to run Debian's Exim unpacked",
    ),
]
LOGGED_SERVER_SUCCESSES = {("DATA", "250"), ("QUIT", "221")}


def test_exim_counters_equal_the_replies_on_the_wire(exim_mta, exporter):
    exim, sink, sink421 = exim_mta
    exp = exporter("--log.path", str(exim.log), "--tail.from-start", "--mta", "auto")
    client = Client()
    d = "dest.example"
    client.session(exim.port, "client.test.example", [
        ([f"ok1@{d}", f"rcpt455@{d}", f"rcpt450@{d}", f"rcpt550@{d}", "reject550@test.example",
          "tempfail450@test.example", "busy455@test.example"], True),
        ([f"data451@{d}"], True),
        ([f"data554@{d}", f"also@{d}"], True),
        (["user@greet421.example"], True),
        (["reject550@test.example"], True),
    ])
    client.session(exim.port, "client.test.example", [([f"ok2@{d}", f"ok3@{d}"], True)])
    # deliveries: ok1 sent; rcpt455, rcpt450, data451, greet421 deferred; rcpt550, data554, also bounced;
    # ok2 and ok3 sent (one transaction, one 250 to DATA)
    outcomes = {"sent": 3, "deferred": 4, "bounced": 3}
    wait_for(lambda: sum(exim.log_text().count(f) for f in (" => ", " -> ", " == ", " ** ")) >= 10,
             timeout=60, what="exim deliveries")
    caught_up(exp, exim.log)

    expected = server_expected(client.seen, LOGGED_SERVER_SUCCESSES) + client_expected(sink, sink421)
    assert scraped(exp, "exim") == expected, exim.log_text()
    assert expected[("server", "QUIT", "221", "")] == 2
    assert expected[("server", "RCPT", "455", "4.5.3")] == 1
    assert expected[("client", "RCPT", "455", "4.5.3")] == 1
    assert expected[("client", "CONNECT", "421", "4.7.0")] == 1
    assert deliveries(exp) == outcomes
    assert exp.value("smtp_exporter_lines_unrecognised_total") == 0


@pytest.fixture
def exim_with(request: pytest.FixtureRequest) -> Iterator[tuple[Exim, SmtpSink, SmtpSink, SmtpSink, SmtpSink]]:
    """Exim with the options `request.param` names (Exim's keyword arguments, and `greeting554`: how the
    sink for greet554.example refuses); a sink, a sink on ::1 (for v6.example), that refusing sink, and a
    sink of its own for other.example (a malformed reply holds back every delivery to its host)."""
    options: dict[str, Any] = dict(request.param)
    root = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-exim-"))
    os.chmod(root, 0o755)
    sink, v6, other = SmtpSink().start(), SmtpSink(host="::1").start(), SmtpSink().start()
    sink421 = SmtpSink(f"421 {REPLY_TEXT['421']}").start()
    sink554 = SmtpSink(options.pop("greeting554", f"554 {REPLY_TEXT['554']}")).start()
    exim = Exim(root, sink.port, sink421.port, {"greet554.example": sink554.port, "other.example": other.port},
                ipv6={"v6.example": v6.port}, **options)
    try:
        yield exim.start(), sink, v6, sink554, other
    finally:
        exim.stop()
        for s in (sink, v6, other, sink421, sink554):
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


RETRYING = {"retry": "F,20s,5s", "queue_every": "5s"}


@pytest.mark.parametrize("exim_with", [{**RETRYING, "log_selector": sel} for sel in (LOG_SELECTOR, "+all")],
                         ids=["selector_default", "selector_all"], indirect=True)
def test_exim_temporary_errors_with_retries_count_once_per_reply(exim_with, exporter):
    """Each try that meets a 4xx is one reply on the wire, counted once although Exim logs it on a host line
    and again on each recipient's `==` line (with +all the two differ by `I=`, `DT=` and a `*`); a queue
    run that skips a message (`defer (-54): retry time not reached`) is no delivery attempt; each
    recipient still deferred when the retry rule gives up expires once."""
    exim, sink, v6, sink554, _ = exim_with
    exp = exporter("--log.path", str(exim.log), "--tail.from-start")
    client = Client()
    d = "dest.example"
    client.session(exim.port, "client.test.example", [([f"a@{d}", f"b@{d}"], True)], sender="mail451@src.example")
    client.session(exim.port, "client.test.example", [
        ([f"data451ml@{d}", f"two@{d}"], True), ([f"data452@{d}"], True), (["u@greet554.example"], True),
        ([f"ok@{d}", f"ok2@{d}"], True), ([f"rcpt450@{d}", f"rcpt550@{d}", f"ok3@{d}"], True),
        (["x@v6.example", "rcpt450@v6.example"], True),
    ], sender="s@src.example")
    # a, b, data451ml, two, data452, rcpt450 and rcpt450@v6 stay deferred until the retry rule gives up
    wait_for(lambda: exim.log_text().count(": retry timeout exceeded") == 7, timeout=120, what="7 expirations")
    # 7 messages, and the bounces for u, rcpt550, and the 5 messages that expired: all delivered
    wait_for(lambda: (exim.log_text().count(" <= "), exim.log_text().count(" Completed")) == (14, 14), timeout=60,
             what="every message completed")
    caught_up(exp, exim.log)

    expected = server_expected(client.seen, LOGGED_SERVER_SUCCESSES) + client_expected(sink, v6, sink554)
    assert scraped(exp, "exim") == expected, exim.log_text()
    assert expected[("client", "MAIL", "451", "4.3.0")] >= 3  # tried three times at least
    assert expected[("client", "DATA", "451", "4.3.0")] >= 3
    assert expected[("client", "CONNECT", "554", "5.7.1")] == 1
    # u@greet554.example is bounced at the greeting, where no sink knows the recipient
    outcomes = sink_deliveries(sink, v6, expired=True) + Counter(bounced=sink554.snapshot()[("CONNECT", "554")])
    assert outcomes["expired"] == 7
    assert deliveries(exp) == dict(outcomes), exim.log_text()
    assert exp.value("smtp_exporter_lines_unrecognised_total") == 0
    if exim.log_selector == "+all":  # [pid] on every line: the same without the timestamps Exim adds
        mainlog = exim.log_text().splitlines()
        assert_counts_equal_without_headers(mainlog, exim_without_timestamps(mainlog), "exim")


@pytest.mark.parametrize("exim_with", [{"log_selector": "+all", "greeting554": "554-5.7.1 No SMTP service here\r\n"
                                        "554 5.7.1 Message refused"}], ids=["selector_all"], indirect=True)
def test_exim_reply_shapes_count_as_on_the_wire(exim_with, exporter):
    """Multi-line replies (a literal \\n between their lines) on host, `==`, `**` and `=>`/`->` lines, a
    malformed reply (`Malformed SMTP reply in response to ...`) and a server on ::1 (`H=::1 [::1]:port`)."""
    exim, sink, v6, sink554, other = exim_with
    exp = exporter("--log.path", str(exim.log), "--tail.from-start")
    client = Client()
    d = "dest.example"
    client.session(exim.port, "client.test.example", [
        ([f"rcpt550ml@{d}", f"ok@{d}"], True), ([f"data250ml@{d}", f"two@{d}"], True), (["u@greet554.example"], True),
        (["rcpt550bad@other.example", "ok4@other.example"], True), (["x@v6.example", "rcpt550@v6.example"], True),
        (["data554ml@v6.example", "also@v6.example"], True), (["data451ml@v6.example"], True),
    ], sender="s@src.example")
    # 7 messages and 4 bounces (for rcpt550ml, u, rcpt550@v6, data554ml and also); the malformed reply and
    # the 451 leave theirs in the queue
    wait_for(lambda: (exim.log_text().count(" <= "), exim.log_text().count(" Completed")) == (11, 9), timeout=60,
             what="every message delivered or deferred")
    wait_for(lambda: " == ok4@" in exim.log_text() and " == data451ml@" in exim.log_text(), what="deferrals")
    caught_up(exp, exim.log)

    expected = server_expected(client.seen, LOGGED_SERVER_SUCCESSES) + client_expected(sink, v6, sink554, other)
    assert scraped(exp, "exim") == expected, exim.log_text()
    assert expected[("client", "RCPT", "550", "5.1.1")] >= 3  # multi-line, malformed, on ::1
    assert other.malformed >= 1
    # Exim cannot read a malformed reply: it defers each recipient of that transaction, each time
    outcomes = (sink_deliveries(sink, v6, other) + Counter(bounced=sink554.snapshot()[("CONNECT", "554")])
                + Counter(deferred=2 * other.malformed))
    assert deliveries(exp) == dict(outcomes), exim.log_text()
    assert exp.value("smtp_exporter_lines_unrecognised_total") == 0
