"""Which provider replied, against a real Postfix: one destination's server is reached by a name that a
`--remote.providers` file maps to a provider, the other by address. Each server's replies, as it sent them,
are counted under its provider, and the providers add up to smtp_replies_total's client role."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from conftest import have_postfix, wait_for
from e2e.smtp_sink import SmtpSink
from e2e.test_postfix_e2e import Client
from e2e.tuned import transports, tuned_postfix
from e2e.wire import Key, client_expected, scraped

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1" and (not have_postfix() or os.geteuid() != 0),
        reason="needs Debian's postfix and root",
    ),
]


def remote(exp) -> dict[str, Counter[Key]]:  # type: ignore[no-untyped-def]
    out: dict[str, Counter[Key]] = {}
    for labels, value in exp.samples("smtp_remote_replies_total").items():
        d = dict(labels)
        assert d["mta"] == "postfix" and d["class"] == d["code"][0] + "xx"
        out.setdefault(d["provider"], Counter())[("client", d["command"], d["code"], d["enhanced_code"])] += int(value)
    return out


def test_replies_are_counted_under_the_provider_of_the_server_that_sent_them(exporter, tmp_path):
    provider_sink = SmtpSink().start()
    mapping = tmp_path / "providers.json"
    mapping.write_text(json.dumps({"providers": [{"name": "testlocal", "suffixes": ["localhost"]}]}))
    # Postfix reaches provider.example by the name localhost: it logs relay=localhost[127.0.0.1]
    settings = {"transport_maps": transports(0, **{"provider.example": f"smtp:[localhost]:{provider_sink.port}"})}
    try:
        with tuned_postfix(settings) as (postfix, sink):
            exp = exporter("--log.path", str(postfix.log), "--tail.from-start", "--remote.providers", str(mapping))
            Client().session(postfix.port, "client.test.example", [
                (["ok@dest.example", "rcpt455@dest.example", "ok@provider.example", "rcpt455@provider.example",
                  "rcpt550@provider.example"], True),
                (["data451@provider.example"], True),
                (["data554@dest.example"], True),
            ])
            wait_for(lambda: postfix.log_text().count(" status=") == 7, timeout=60, what="7 delivery attempts")
            lines = len(postfix.log.read_bytes().splitlines())
            wait_for(lambda: exp.value("smtp_exporter_lines_read_total") >= lines, what="exporter caught up")

            got = remote(exp)
            assert got == {"testlocal": client_expected(provider_sink), "other": client_expected(sink)}, \
                postfix.log_text()
            assert got["testlocal"][("client", "RCPT", "455", "4.5.3")] == 1
            assert sum(got.values(), Counter()) == Counter(
                {k: n for k, n in scraped(exp, "postfix").items() if k[0] == "client"})
    finally:
        provider_sink.stop()
