"""End to end against a real OpenSMTPD whose log reaches the exporter over syslog (TCP on 127.0.0.1).

OpenSMTPD logs which command a client's failed command was, but not which command a remote
server's failure answered, so client-role failures are compared by code and enhanced code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from conftest import free_port, wait_for
from e2e.message_only import assert_counts_equal_without_headers, messages
from e2e.opensmtpd import OpenSmtpd
from e2e.smtp_sink import SmtpSink
from e2e.test_postfix_e2e import Client
from e2e.wire import client_expected, deliveries, scraped, server_expected

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1" and (shutil.which("apt-get") is None or os.geteuid() != 0),
        reason="needs root and apt-get to run Debian's OpenSMTPD unpacked",
    ),
]


def test_opensmtpd_counters_equal_the_replies_on_the_wire(exporter):
    syslog_port = free_port()
    exp = exporter("--syslog.listen-address", f"tcp://127.0.0.1:{syslog_port}")
    root = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-opensmtpd-"))
    sink, sink421 = SmtpSink().start(), SmtpSink("421 4.7.0 Too many connections, slow down").start()
    smtpd = OpenSmtpd(root, sink.port, sink421.port, syslog_port)
    try:
        smtpd.start()
        client = Client()
        d = "dest.example"
        client.session(smtpd.port, "client.test.example", [
            ([f"ok1@{d}", f"rcpt455@{d}", f"rcpt550@{d}", "reject550@test.example"], True),
            ([f"data554@{d}", f"also@{d}"], True),
        ])
        client.session(smtpd.port, "client.test.example", [([f"ok2@{d}", f"ok3@{d}"], True)])
        want_sink = Counter({("RCPT", "455"): 1, ("RCPT", "550"): 1, ("DATA", "554"): 1, ("DATA", "250"): 2})
        wait_for(lambda: all(sink.snapshot()[k] >= n for k, n in want_sink.items()), timeout=60,
                 what="deliveries at the sink")
        wait_for(lambda: smtpd.log_text().count(" mta delivery ") >= 7, timeout=60, what="delivery lines")

        expected = server_expected(client.seen, {("QUIT", "221")}) + client_expected(sink, knows_command=False)

        wait_for(lambda: scraped(exp, "opensmtpd") == expected, timeout=30, what=f"counters {expected}")
        assert expected[("server", "QUIT", "221", "")] == 2
        assert expected[("client", "", "455", "4.5.3")] == 1
        assert deliveries(exp) == {"sent": 3, "deferred": 1, "bounced": 3}, smtpd.log_text()
        # what OpenSMTPD wrote is the message alone: as `journalctl -o cat` shows it
        assert_counts_equal_without_headers(smtpd.syslog_lines, messages(smtpd.syslog_lines), "opensmtpd")
    finally:
        smtpd.stop()
        sink.stop()
        sink421.stop()
        shutil.rmtree(root, ignore_errors=True)
