"""End to end against a real Exim: counters equal what was said on the wire, as for Postfix.

Exim logs fewer successes than Postfix: of the server-role 2xx it proves only the 250 after the
message body (the `<=` line) and the 221 to QUIT ("closed by QUIT"). Those, and every rejection
with its code, are what the exporter must count exactly.
"""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import wait_for
from e2e.test_postfix_e2e import Client
from e2e.wire import client_expected, deliveries, scraped, server_expected

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
    lines = len(exim.log.read_bytes().splitlines())
    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") >= lines, what="exporter caught up")

    expected = server_expected(client.seen, LOGGED_SERVER_SUCCESSES) + client_expected(sink, sink421)
    assert scraped(exp, "exim") == expected, exim.log_text()
    assert expected[("server", "QUIT", "221", "")] == 2
    assert expected[("server", "RCPT", "455", "4.5.3")] == 1
    assert expected[("client", "RCPT", "455", "4.5.3")] == 1
    assert expected[("client", "CONNECT", "421", "4.7.0")] == 1
    assert deliveries(exp) == outcomes
    assert exp.value("smtp_exporter_lines_unrecognised_total") == 0
