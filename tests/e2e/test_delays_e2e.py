"""Delivery delays against real MTAs: the histograms equal the delays in the MTA's own log, bucket by bucket.

The expected counts come from the log that each real MTA wrote, read here with a simple regular
expression of its own, never from the exporter's code: every bucket (every `le` the exporter shows),
the count and the sum, per status, and Postfix's four stages.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import free_port, have_postfix, wait_for
from e2e.opensmtpd import OpenSmtpd
from e2e.sendmail import Sendmail
from e2e.smtp_sink import SmtpSink
from e2e.test_exim_e2e import pytestmark as exim_marks
from e2e.test_opensmtpd_e2e import pytestmark as opensmtpd_marks
from e2e.test_postfix_e2e import Client, traffic, wait_for_deliveries
from e2e.test_sendmail_e2e import pytestmark as sendmail_marks

ROOT_ONLY = os.environ.get("SMTP_E2E_REQUIRED") != "1" and os.geteuid() != 0
Observed = dict[tuple[str, ...], list[float]]  # labels (status or stage) -> seconds


def histograms(exp, name: str, label: str) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """{label value: {"le bound": cumulative count, ..., "count": n, "sum": s}} as the exporter shows them."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for suffix in ("bucket", "count", "sum"):
        for labels, value in exp.samples(f"{name}_{suffix}").items():
            d = dict(labels)
            out[d[label]][d["le"] if suffix == "bucket" else suffix] = value
    return dict(out)


def assert_histograms_equal(shown: dict[str, dict[str, float]], observed: dict[str, list[float]]) -> None:
    assert set(shown) == set(observed), (shown.keys(), observed.keys())
    for key, seconds in observed.items():
        series = shown[key]
        bounds = [b for b in series if b not in ("count", "sum")]
        assert "+Inf" in bounds and len(bounds) == 21, bounds  # 0.1 s to 5 days, and +Inf
        for bound in bounds:
            limit = math.inf if bound == "+Inf" else float(bound)
            assert series[bound] == sum(1 for s in seconds if s <= limit), (key, bound, sorted(seconds))
        assert series["count"] == len(seconds)
        assert math.isclose(series["sum"], math.fsum(seconds), abs_tol=1e-6)


def by_status(exp, mta: str) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    shown = histograms(exp, "smtp_delivery_delay_seconds", "status")
    assert all(dict(k)["mta"] == mta for k in exp.samples("smtp_delivery_delay_seconds_count"))
    return shown


@pytest.mark.e2e
@pytest.mark.skipif(os.environ.get("SMTP_E2E_REQUIRED") != "1" and (not have_postfix() or ROOT_ONLY),
                    reason="needs Debian's postfix and root")
def test_postfix_delays_and_stages_equal_its_log(mta, exporter):
    postfix, _sink, _sink421 = mta
    exp = exporter("--log.path", str(postfix.log), "--tail.from-start")
    n, _ = traffic(postfix, Client(), 1)
    wait_for_deliveries(postfix, n)
    lines = len(postfix.log.read_bytes().splitlines())
    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") >= lines, what="exporter caught up")

    delays: dict[str, list[float]] = defaultdict(list)
    stages: dict[str, list[float]] = defaultdict(list)
    pattern = re.compile(r" delay=([\d.]+), delays=([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+), .* status=(\w+)")
    for m in pattern.finditer(postfix.log_text()):
        delays[m[6]].append(float(m[1]))
        for stage, value in zip(("before_queue_manager", "in_queue_manager", "connection_setup", "transmission"),
                                m.groups()[1:5], strict=True):
            stages[stage].append(float(value))
    assert sum(map(len, delays.values())) == n
    assert_histograms_equal(by_status(exp, "postfix"), delays)
    assert_histograms_equal(histograms(exp, "smtp_delivery_stage_delay_seconds", "stage"), stages)


def _syslog_mta_delays(exporter, make, pattern: re.Pattern[str], status_of, recipients_of, deliveries: int,  # type: ignore[no-untyped-def]
                       mta: str) -> None:
    """Runs a syslog-logging MTA through a few deliveries and compares its delays with its own log."""
    syslog_port = free_port()
    exp = exporter("--syslog.listen-address", f"tcp://127.0.0.1:{syslog_port}")
    sink = SmtpSink().start()
    server = make(sink.port, syslog_port)
    try:
        server.start()
        d = "dest.example"
        Client().session(server.port, "client.test.example", [
            ([f"ok1@{d}", f"rcpt455@{d}", f"rcpt550@{d}", f"ok2@{d}"], True), ([f"data554@{d}"], True)])
        wait_for(lambda: sum(recipients_of(m) for m in pattern.finditer(server.log_text())) >= deliveries,
                 timeout=60, what=f"{deliveries} deliveries logged")
        log = server.log_text()
        observed: dict[str, list[float]] = defaultdict(list)
        for m in pattern.finditer(log):
            if (status := status_of(m)) is not None:  # a line that is no delivery (Sendmail's stat=Host unknown...)
                observed[status] += [_seconds(m["seconds"])] * recipients_of(m)
        wait_for(lambda: exp.value("smtp_delivery_delay_seconds_count") == sum(map(len, observed.values())),
                 timeout=30, what="exporter caught up")
        assert_histograms_equal(by_status(exp, mta), observed)
    finally:
        server.stop()
        sink.stop()


def _seconds(text: str) -> float:
    """[d+]hh:mm:ss (Sendmail) or 1d2h3m4s (OpenSMTPD), read the simple way."""
    if ":" in text:
        days, _, clock = text.rpartition("+")
        h, m, s = (int(x) for x in clock.split(":"))
        return (int(days or 0) * 24 + h) * 3600 + m * 60 + s
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    return float(sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)([wdhms])", text)))


def _with_marks(marks):  # type: ignore[no-untyped-def]
    def apply(test):  # type: ignore[no-untyped-def]
        for mark in marks:
            test = mark(test)
        return test
    return apply


@_with_marks(sendmail_marks)
def test_sendmail_delays_equal_its_log(exporter):
    pattern = re.compile(r"to=(?P<to>[^ ]+), delay=(?P<seconds>[\d:+]+), .*?(?:dsn=(?P<dsn>\d)\S*, )?"
                         r"(?:reply=[^,]*, )?stat=(?P<stat>\w+)")
    status = lambda m: {"Sent": "sent", "Deferred": "deferred"}.get(  # noqa: E731
        m["stat"], "bounced" if m["dsn"] == "5" else None)
    _syslog_mta_delays(exporter, lambda sink, port: Sendmail(sink, port), pattern, status,
                       lambda m: m["to"].count("<"), 5, "sendmail")


@_with_marks(opensmtpd_marks)
def test_opensmtpd_delays_equal_its_log(exporter):
    root = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-opensmtpd-"))
    pattern = re.compile(r'delivery evpid=.* delay=(?P<seconds>\S+) result="?(?P<result>\w+)')
    status = lambda m: {"Ok": "sent", "TempFail": "deferred"}.get(m["result"], "bounced")  # noqa: E731
    try:
        _syslog_mta_delays(exporter, lambda sink, port: OpenSmtpd(root, sink, sink, port), pattern, status,
                           lambda m: 1, 5, "opensmtpd")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@_with_marks(exim_marks)
def test_exim_queue_times_equal_its_log(exim_mta, exporter):
    exim, _sink, _sink421 = exim_mta
    # QT= needs log_selector +queue_time. The deliveries are made by processes that exim execs anew with the
    # same -C file: adding it to the running daemon's configuration file is enough (and adds nothing else).
    conf = exim.root / "exim.conf"
    conf.write_text(re.sub(r"(?m)^log_selector = .*$", r"\g<0> +queue_time", conf.read_text(), count=1))
    exp = exporter("--log.path", str(exim.log), "--tail.from-start")
    d = "dest.example"
    Client().session(exim.port, "client.test.example", [([f"ok1@{d}", f"ok2@{d}"], True), ([f"ok3@{d}"], True)])
    wait_for(lambda: exim.log_text().count(" QT=") == 3, timeout=60, what="3 deliveries with QT=")
    lines = len(exim.log.read_bytes().splitlines())
    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") >= lines, what="exporter caught up")
    observed = {"sent": [_seconds(t) for t in re.findall(r" [=-]> .* QT=(\S+)", exim.log_text())]}
    assert len(observed["sent"]) == 3
    assert_histograms_equal(by_status(exp, "exim"), observed)
