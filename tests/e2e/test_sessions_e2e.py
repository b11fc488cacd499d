"""How sessions end, against a real Postfix: every end the test provokes is counted once, by role and command.

Ground truth is what the test did: clients that QUIT, drop after RCPT or in the middle of DATA, fall
silent until smtpd_timeout, or make too many errors; and a remote server that drops our client at DATA.
"""

from __future__ import annotations

import os
import socket
from collections import Counter

import pytest

from conftest import have_postfix, wait_for
from e2e.test_postfix_e2e import Client
from e2e.tuned import DroppingServer, transports, tuned_postfix

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1" and (not have_postfix() or os.geteuid() != 0),
        reason="needs Debian's postfix and root",
    ),
]


class Raw:
    """An SMTP client that can stop anywhere: it speaks line by line and reads each reply whole."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader = self.sock.makefile("rb")
        self.reply()

    def reply(self) -> bytes:
        while (line := self.reader.readline())[3:4] == b"-":
            pass
        return line

    def send(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def drop(self) -> None:
        self.reader.close()
        self.sock.close()

    def wait_closed(self) -> None:
        """Until the server closes the connection (it says why first); a 30 s socket timeout bounds it."""
        while self.reader.readline():
            pass
        self.drop()


def sessions(exp) -> Counter[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    out: Counter[tuple[str, str, str]] = Counter()
    for labels, value in exp.samples("smtp_sessions_total").items():
        d = dict(labels)
        assert d["mta"] == "postfix"
        out[(d["role"], d["end"], d["command"])] += int(value)
    return out


def test_every_provoked_session_end_is_counted_once_with_its_command(exporter):
    dropper = DroppingServer()
    settings = {"smtpd_timeout": "2s", "smtpd_hard_error_limit": "3",
                "transport_maps": transports(0, **{"drop.example": f"smtp:[127.0.0.1]:{dropper.port}"})}
    try:
        with tuned_postfix(settings) as (postfix, _sink):
            exp = exporter("--log.path", str(postfix.log), "--tail.from-start")
            client = Client()
            client.session(postfix.port, "client.test.example", [(["ok@dest.example"], True)])
            # two recipients of one message: the remote drops the session once, Postfix logs it twice
            client.session(postfix.port, "client.test.example", [(["a@drop.example", "b@drop.example"], True)])

            raw = Raw(postfix.port)  # drops after RCPT
            for line in ("EHLO raw.test.example", "MAIL FROM:<>", "RCPT TO:<x@dest.example>"):
                raw.send(line)
            raw.drop()
            raw = Raw(postfix.port)  # drops in the middle of the message
            for line in ("EHLO raw.test.example", "MAIL FROM:<>", "RCPT TO:<x@dest.example>", "DATA"):
                raw.send(line)
            raw.sock.sendall(b"Subject: cut short\r\n\r\nhello\r\n")
            raw.drop()
            raw = Raw(postfix.port)  # falls silent after EHLO until smtpd_timeout
            raw.send("EHLO raw.test.example")
            raw.wait_closed()
            raw = Raw(postfix.port)  # three errors: RCPT before MAIL
            raw.send("EHLO raw.test.example")
            for _ in range(3):
                raw.send("RCPT TO:<x@dest.example>")
            raw.wait_closed()

            log = postfix.log_text
            # the harness's own probe (wait_listening) connected and closed once: lost after CONNECT
            wait_for(lambda: log().count(" lost connection after ") == 3 and log().count(" timeout after ") == 1
                     and log().count(" too many errors after ") == 1, timeout=60, what="the server-side ends logged")
            wait_for(lambda: log().count("status=deferred (lost connection with ") == 2, timeout=60,
                     what="the remote's drop logged for both recipients")
            lines = len(postfix.log.read_bytes().splitlines())
            wait_for(lambda: exp.value("smtp_exporter_lines_read_total") >= lines, what="exporter caught up")

            quits = client.seen[("QUIT", "221", "2.0.0")] + client.seen[("QUIT", "221", "")]
            assert quits == 2
            assert sessions(exp) == Counter({
                ("server", "quit", "QUIT"): quits, ("server", "lost", "CONNECT"): 1,
                ("server", "lost", "RCPT"): 1, ("server", "lost", "DATA"): 1,
                ("server", "timeout", "EHLO"): 1, ("server", "too_many_errors", "RCPT"): 1,
                ("client", "lost", "DATA"): 1,
            }), log()
            assert dropper.dropped == 1
            assert exp.value("smtp_replies_total", role="server", command="QUIT", code="221") == quits
    finally:
        dropper.stop()
