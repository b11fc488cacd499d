"""End to end against a real Sendmail whose syslog messages reach the exporter's syslog receiver.

Sendmail logs its rulesets' rejections with the code (server role) and a remote server's failures
in `reply=` or `stat=Deferred: ...` (client role, without the command). It logs neither its own
successful replies nor the remote's successful ones as numbers, so those are not compared.
"""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import free_port, wait_for
from e2e.message_only import assert_counts_equal_without_headers, messages
from e2e.sendmail import Sendmail
from e2e.smtp_sink import SmtpSink
from e2e.test_postfix_e2e import Client
from e2e.wire import client_expected, deliveries, scraped, server_expected

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1"
        and (shutil.which("apt-get") is None or shutil.which("m4") is None or os.geteuid() != 0
             or os.path.exists("/dev/log")),
        reason="needs root, apt-get, m4, unshare and a free /dev/log to run Debian's Sendmail unpacked",
    ),
]


def test_sendmail_counters_equal_the_replies_on_the_wire(exporter):
    syslog_port = free_port()
    exp = exporter("--syslog.listen-address", f"tcp://127.0.0.1:{syslog_port}")
    sink = SmtpSink().start()
    sendmail = Sendmail(sink.port, syslog_port)
    try:
        sendmail.start()
        client = Client()
        d = "dest.example"
        client.session(sendmail.port, "client.test.example", [
            ([f"ok1@{d}", f"rcpt455@{d}", f"rcpt450@{d}", f"rcpt550@{d}", "reject550@test.example",
              "busy455@test.example"], True),
        ])
        wait_for(lambda: sendmail.log_text().count(" stat=") >= 4, timeout=60, what="sendmail deliveries")

        # Sendmail logs a remote's failures (reply=, stat=Deferred:) without the command, and no 250s
        expected = server_expected(client.seen, set()) + client_expected(sink, knows_command=False,
                                                                         logs_data_reply=False)

        wait_for(lambda: scraped(exp, "sendmail") == expected, timeout=30, what=f"counters {expected}")
        assert expected[("server", "RCPT", "455", "4.5.3")] == 1, sendmail.log_text()
        assert expected[("client", "", "455", "4.5.3")] == 1
        assert deliveries(exp) == {"sent": 1, "deferred": 2, "bounced": 1}, sendmail.log_text()
        assert_counts_equal_without_headers(sendmail.syslog_lines, messages(sendmail.syslog_lines), "sendmail")
    finally:
        sendmail.stop()
        sink.stop()
