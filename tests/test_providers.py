"""Which provider pushes back: client-role replies labelled with a bounded provider, never a host name."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts
from smtp_reply_exporter.providers import OTHER, ProvidersError, load, parse, remote_host

ROOT = Path(__file__).parent
REAL_LOGS = sorted((ROOT / "samples").glob("*.log")) + sorted((ROOT / "fixtures" / "corpus").glob("*.log"))


@pytest.mark.parametrize(("host", "provider"), [
    ("gmail-smtp-in.l.google.com", "google"), ("ALT1.ASPMX.L.GOOGLE.COM.", "google"), ("smtp.google.com", "google"),
    ("aspmx2.googlemail.com", "google"), ("contoso-com.mail.protection.outlook.com", "microsoft"),
    ("hotmail-com.olc.protection.outlook.com", "microsoft"), ("mx-aol.mail.gm0.yahoodns.net", "yahoo"),
    ("mx01.mail.icloud.com", "apple"), ("mx00.emig.gmx.net", "gmx"), ("mx-ha01.web.de", "webde"),
    ("mx.yandex.net", "yandex"), ("mxs.mail.ru", "mailru"), ("mx2.zoho.eu", "zoho"),
    ("mailsec.protonmail.ch", "proton"), ("in1-smtp.messagingengine.com", "fastmail"),
    ("google.com.evil.example", OTHER), ("notgoogle.com", OTHER), ("mx.example.org", OTHER), ("127.0.0.1", OTHER),
    ("2001:db8::1", OTHER), ("", OTHER), (None, OTHER), ("x" * 300 + ".google.com", OTHER),
])
def test_the_packaged_mapping_names_the_large_providers_by_their_mx_names(host, provider):
    assert load().of_host(host) == provider


@pytest.mark.parametrize(("mta", "line", "host"), [
    ("postfix", "Nov 28 12:01:11 mx postfix/smtp[6505]: 4D5E6F7081: to=<n@gmail.com>, relay=gmail-smtp-in.l.google.com"
     "[192.0.2.27]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host gmail-smtp-in.l.google.com"
     "[192.0.2.27] said: 550-5.1.1 The email account does not exist (in reply to RCPT TO command))",
     "gmail-smtp-in.l.google.com"),
    ("postfix", "Nov 28 12:01:11 mx postfix/smtp[6503]: 2B3C4D5E6F: to=<u@yahoo.com>, relay=none, delay=0.1, "
     "delays=0.1/0/0/0, dsn=4.7.0, status=deferred (delivery temporarily suspended: host mta5.am0.yahoodns.net"
     "[192.0.2.5] refused to talk to me: 421 4.7.0 [TSS04] Messages temporarily deferred)", "mta5.am0.yahoodns.net"),
    ("postfix", "Oct 16 07:06:16 h postfix/smtp[28516]: 570517A73: host mx01.emig.gmx.net[212.227.17.5] refused to "
     "talk to me: 554-gmx.net (mxgmx116) Nemesis ESMTP Service not available", "mx01.emig.gmx.net"),
    ("exim", '2016-03-25 15:06:10 1ajLoq-0001wC-Pk => 0129.alexng@gmail.com R=dnslookup T=dkim_remote_smtp '
     'H=gmail-smtp-in.l.google.com [74.125.200.27] X=TLSv1.2:ECDHE-RSA-AES128-GCM-SHA256:128 CV=yes C="250 2.0.0 OK"',
     "gmail-smtp-in.l.google.com"),
    ("exim", '2026-11-28 12:01:13 H=client.example [192.0.2.50] sender verify fail for <x@example.org>: response to '
     '"RCPT TO:<x@example.org>" from mx.example.org [192.0.2.7] was: 550 5.1.1 User unknown', "mx.example.org"),
    ("sendmail", "Nov 28 12:01:12 mx sm-mta[2345]: 5ASC1BqZ001236: to=<d@example.org>, delay=00:00:01, "
     "xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx01.mail.icloud.com. [192.0.2.7], dsn=4.7.0, "
     "stat=Deferred: 421-4.7.0 rate", "mx01.mail.icloud.com."),
    ("opensmtpd", 'Nov 28 12:01:13 mx smtpd[812]: 3b9c2a1f5c0e7d20 mta delivery evpid=a1b2c3d4e5f60708 '
     'from=<s@example.com> to=<a@example.org> rcpt=<-> source="192.0.2.1" relay="192.0.2.7 (mx.zoho.eu)" delay=2s '
     'result="TempFail" stat="421 4.7.0: Try again later"', "mx.zoho.eu"),
])
def test_each_mta_names_the_remote_server_where_it_writes_it(mta, line, host):
    assert remote_host(mta, line) == host


@pytest.mark.parametrize("path", REAL_LOGS, ids=lambda p: p.name)
def test_remote_replies_by_provider_add_up_to_the_client_role_replies(path):
    counts = Counts()
    Ingest(counts).feed(path.read_bytes().rstrip(b"\n") + b"\n", counts.source(str(path)))
    remote: Counter[tuple[str, ...]] = Counter()
    for (mta, _provider, command, code, enhanced), n in counts.remote.items():
        remote[(mta, command, code, enhanced)] += n
    client = Counter({(mta, cmd, code, enh): n for (mta, role, cmd, code, enh), n in counts.replies.items()
                      if role == "client"})
    assert remote == client


def test_a_mapping_file_in_json_or_yaml_names_the_providers(tmp_path):
    mapping = {"providers": [{"name": "acme", "suffixes": ["mx.acme.example"], "examples": ["in1.mx.acme.example"]}]}
    (tmp_path / "p.json").write_text(json.dumps(mapping))
    (tmp_path / "p.yml").write_text("providers:\n  - name: acme\n    suffixes: [mx.acme.example]\n")
    for name in ("p.json", "p.yml"):
        got = load(str(tmp_path / name))
        assert got.of_host("a.MX.acme.example") == "acme" and got.of_host("gmail-smtp-in.l.google.com") == OTHER
        assert got.names == ("acme", OTHER)


@pytest.mark.parametrize(("data", "why"), [
    ({}, "non-empty list"),
    ({"providers": [{"name": "Big Corp", "suffixes": ["a.example"]}]}, "must match"),
    ({"providers": [{"name": "other", "suffixes": ["a.example"]}]}, "must match"),
    ({"providers": [{"name": "a", "suffixes": []}]}, "non-empty list of host-name suffixes"),
    ({"providers": [{"name": "a", "suffixes": ["*.a.example"]}]}, "not a host-name suffix"),
    ({"providers": [{"name": "a", "suffixes": ["192.0.2.1"]}]}, "not a host-name suffix"),
    ({"providers": [{"name": "a", "suffixes": ["x.example"]}, {"name": "b", "suffixes": ["X.example"]}]},
     "belongs to a and b"),
    ({"providers": [{"name": "a", "suffixes": ["x.example"], "examples": ["y.example"]}]}, "does not map"),
    ({"providers": [{"name": f"p{i}", "suffixes": [f"p{i}.example"]} for i in range(65)]}, "at most 64"),
])
def test_a_mapping_that_would_make_the_label_unbounded_or_wrong_is_refused(data, why):
    with pytest.raises(ProvidersError, match=why):
        parse(data)


def test_an_unreadable_mapping_file_is_a_clear_error(tmp_path):
    with pytest.raises(ProvidersError, match="cannot read"):
        load(str(tmp_path / "missing.json"))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-[]: ", max_size=80))
def test_a_host_name_never_becomes_a_label_value(host):
    mapping = load()
    assert mapping.of_host(host) in mapping.names


@pytest.mark.parametrize(("mta", "line"), [  # 64 KiB of what a pattern starts at, as whoever writes to syslog can
    ("postfix", "relay=" * 10923), ("postfix", "host x" * 10923), ("exim", "H=" * 32768),
    ("exim", " from x [" * 7281 + " was: "), ("opensmtpd", 'relay="(' * 8192),
])
def test_a_crafted_line_names_no_provider(mta, line):
    assert load().of_host(remote_host(mta, line)) == OTHER
