"""What the end-to-end tests compare: replies by role, command, code and enhanced code."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from conftest import wait_for
from e2e.smtp_sink import REPLY_TEXT, SmtpSink

Key = tuple[str, str, str, str]  # role, command, code, enhanced code


def scraped(exporter, mta: str) -> Counter[Key]:  # type: ignore[no-untyped-def]
    """smtp_replies_total on the exporter's /metrics, by role, command, code and enhanced code."""
    out: Counter[Key] = Counter()
    for labels, value in exporter.samples("smtp_replies_total").items():
        d = dict(labels)
        assert d["mta"] == mta and d["class"] == d["code"][0] + "xx"
        out[(d["role"], d["command"], d["code"], d["enhanced_code"])] += int(value)
    return out


def server_expected(seen: Counter[tuple[str, str, str]], logged_successes: set[tuple[str, str]] | None) -> Counter[Key]:
    """Server-role replies an MTA's log can prove, from what our SMTP client received: every failure
    with its enhanced code, and the successes the MTA logs (None: all but the 220 greeting, as
    Postfix's disconnect counters do). A success proven that way carries no enhanced code."""
    out: Counter[Key] = Counter()
    for (command, code, enhanced), n in seen.items():
        if code[0] in "45":
            out[("server", command, code, enhanced)] += n
        elif (command, code) != ("CONNECT", "220") and (
            logged_successes is None or (command, code) in logged_successes
        ):
            out[("server", command, code, "")] += n
    return out


def client_expected(*sinks: SmtpSink, knows_command: bool = True, logs_data_reply: bool = True) -> Counter[Key]:
    """Client-role replies an MTA's log shows, from what the sinks sent: every failure, and the final
    reply to DATA when the MTA logs it; the command only when the MTA's log names it."""
    out: Counter[Key] = Counter()
    for sink in sinks:
        for (command, code), n in sink.snapshot().items():
            if code[0] in "45" or (command == "DATA" and logs_data_reply):
                named = command if knows_command or (command == "DATA" and code[0] == "2") else ""
                out[("client", named, code, REPLY_TEXT.get(code, "").split(" ", 1)[0])] += n
    return out


def deliveries(exporter) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {dict(k)["status"]: int(v) for k, v in exporter.samples("smtp_deliveries_total").items()}


def sink_deliveries(*sinks: SmtpSink, expired: bool = False) -> Counter[str]:
    """Deliveries as the sinks' replies decided them, one per recipient and answer; with `expired`, each
    recipient whose last answer deferred it counts as expired too (the MTA gave up on it after that try).
    Recipients refused at the greeting are not known to a sink: the test adds them."""
    out: Counter[str] = Counter()
    for sink in sinks:
        out += sink.outcomes()
        if expired:
            out["expired"] += sum(status == "deferred" for status in sink.last_outcomes().values())
    return out


def caught_up(exporter, log: Path) -> None:  # type: ignore[no-untyped-def]
    """Wait until the exporter has read every line `log` holds now."""
    lines = len(log.read_bytes().splitlines())
    wait_for(lambda: exporter.value("smtp_exporter_lines_read_total") >= lines, what="exporter caught up")
