"""Delivery delays: each MTA's delay field read exactly, counted per recipient into fixed buckets."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry

from smtp_reply_exporter.delays import BUCKETS, STAGES, bucket, delay_of
from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts, SmtpCollector

POSTFIX = ("Feb 24 16:18:40 letterman postfix/smtp[59649]: 5270320179: to=<hebj@telia.com>, "
           "relay=mail.telia.com[81.236.60.210]:25, delay=2017, delays=0.1/2017/0.03/0.05, dsn=2.0.0, status=sent "
           "(250 2.0.0 6FVIjIMwUJwU66FVIjAEB0 mail accepted for delivery)")
EXIM = ("2016-03-25 15:06:10 1ajLoq-0001wC-Pk => a@gmail.com R=dnslookup T=remote_smtp "
        "H=gmail-smtp-in.l.google.com [74.125.200.27] C=\"250 2.0.0 OK gsmtp\" QT=1d2h3m4s DT=5s")
SENDMAIL = ("Nov 28 12:01:12 mx sm-mta[2345]: 5ASC1BqZ001235: to=<c@example.org>,<d@example.org>, delay=2+03:04:05, "
            "xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.org. [192.0.2.7], dsn=4.1.8, "
            "stat=Deferred: 450 4.1.8 <s@example.com>: Sender address rejected: Domain not found")
OPENSMTPD = ('Nov 28 12:01:13 mx smtpd[812]: 3b9c2a1f5c0e7d20 mta delivery evpid=a1b2c3d4e5f60710 from=<s@example.com> '
             'to=<c@example.org> rcpt=<-> source="192.0.2.1" relay="192.0.2.7 (mx.example.org)" delay=1h2m3s '
             'result="Ok" stat="250 2.0.0 Ok: queued as 9F8E7D"')


@pytest.mark.parametrize(("mta", "line", "seconds"), [
    ("postfix", POSTFIX, 2017.0),
    ("exim", EXIM, 93784.0),
    ("exim", EXIM.replace("QT=1d2h3m4s", "QT=0.125s"), 0.125),  # log_selector +millisec, under 5 s
    ("exim", EXIM.replace("QT=1d2h3m4s", "QT=2w"), 1209600.0),
    ("sendmail", SENDMAIL, 2 * 86400 + 3 * 3600 + 4 * 60 + 5.0),  # xdelay= is the attempt alone: not taken
    ("opensmtpd", OPENSMTPD, 3723.0),
    ("opensmtpd", OPENSMTPD.replace("delay=1h2m3s", "delay=0s"), 0.0),
])
def test_each_mta_delay_field_is_read_in_seconds(mta, line, seconds):
    assert delay_of(mta, line)[0] == seconds


@pytest.mark.parametrize(("mta", "line"), [
    ("exim", EXIM.replace("QT=1d2h3m4s", "QT=-3s")),  # the clock went back
    ("exim", EXIM.replace(" QT=1d2h3m4s", "")),  # no +queue_time: no delay, not a zero one
    ("postfix", POSTFIX.replace("delay=2017", "delay=99999999999")),  # beyond any queue lifetime
    ("opensmtpd", OPENSMTPD.replace("delay=1h2m3s", "delay=")),
])
def test_a_missing_or_implausible_delay_is_no_observation(mta, line):
    assert delay_of(mta, line)[0] is None


def test_postfix_stages_are_the_four_fields_of_delays():
    assert delay_of("postfix", POSTFIX)[1] == (0.1, 2017.0, 0.03, 0.05)
    assert delay_of("postfix", POSTFIX.replace(", delays=0.1/2017/0.03/0.05", ""))[1] is None  # before Postfix 2.3


def test_a_delay_falls_in_the_first_bucket_whose_bound_holds_it():
    assert bucket(0.1) == 0 and bucket(0.11) == 1 and bucket(0) == 0
    assert bucket(BUCKETS[-1]) == len(BUCKETS) - 1 and bucket(BUCKETS[-1] + 1) == len(BUCKETS)
    assert BUCKETS[0] == 0.1 and BUCKETS[-1] == 5 * 86400  # 0.1 s to 5 days


def histogram(lines: list[str]) -> CollectorRegistry:
    counts = Counts()
    Ingest(counts).feed(("\n".join(lines) + "\n").encode(), counts.source("test"))
    registry = CollectorRegistry()
    registry.register(SmtpCollector(counts))
    return registry


def test_the_histogram_counts_every_recipient_of_a_delivery_line_once():
    reg = histogram([SENDMAIL, POSTFIX, POSTFIX])  # Sendmail's line stands for two recipients
    for mta, status, n, seconds in (("sendmail", "deferred", 2, 183845.0), ("postfix", "sent", 2, 2017.0)):
        labels = {"mta": mta, "status": status}
        assert reg.get_sample_value("smtp_delivery_delay_seconds_count", labels) == n
        assert reg.get_sample_value("smtp_delivery_delay_seconds_sum", labels) == n * seconds
        assert reg.get_sample_value("smtp_deliveries_total", labels) == n  # one observation per delivery
        for le in BUCKETS:
            below = reg.get_sample_value("smtp_delivery_delay_seconds_bucket", {**labels, "le": str(float(le))})
            assert below == (n if seconds <= le else 0)
        assert reg.get_sample_value("smtp_delivery_delay_seconds_bucket", {**labels, "le": "+Inf"}) == n


def test_stage_histograms_hold_each_postfix_stage():
    reg = histogram([POSTFIX])
    for stage, seconds in zip(STAGES, (0.1, 2017.0, 0.03, 0.05), strict=True):
        assert reg.get_sample_value("smtp_delivery_stage_delay_seconds_count", {"stage": stage}) == 1
        assert math.isclose(reg.get_sample_value("smtp_delivery_stage_delay_seconds_sum", {"stage": stage}), seconds)


def test_quiet_lines_and_non_delivery_lines_observe_nothing():
    reg = histogram([POSTFIX.replace("status=sent", "status=later"),
                     "Nov 28 12:01:11 mx postfix/qmgr[9]: 5270320179: removed"])
    assert reg.get_sample_value("smtp_delivery_delay_seconds_count", {"mta": "postfix", "status": "sent"}) is None


def test_lines_with_and_without_stages_in_one_chunk_are_each_counted():
    old = POSTFIX.replace(", delays=0.1/2017/0.03/0.05", "")  # Postfix before 2.3
    reg = histogram([POSTFIX, old, old])
    assert reg.get_sample_value("smtp_delivery_delay_seconds_count", {"mta": "postfix", "status": "sent"}) == 3
    assert reg.get_sample_value("smtp_delivery_stage_delay_seconds_count", {"stage": "transmission"}) == 1
