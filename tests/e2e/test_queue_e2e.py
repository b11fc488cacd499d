"""The queue gauges against a real Postfix: what `postqueue -j` lists, queue by queue, read through the
same showq service by the exporter (no Postfix binary, no root needed on its side)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter

import pytest

from conftest import have_postfix, wait_for
from e2e.test_postfix_e2e import Client
from smtp_reply_exporter.queues import POSTFIX_QUEUES

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1" and (not have_postfix() or os.geteuid() != 0),
        reason="needs Debian's postfix and root",
    ),
]


def postqueue(conf) -> list[dict]:  # type: ignore[no-untyped-def]
    out = subprocess.run(["postqueue", "-c", str(conf), "-j"], capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_queue_gauges_equal_postqueue(mta, exporter):
    postfix, _, _ = mta
    d = "dest.example"
    client = Client()  # the sink answers 4xx to these: the messages stay in the deferred queue
    client.session(postfix.port, "client.test.example", [
        ([f"rcpt450@{d}"], True), ([f"data451@{d}", f"two@{d}"], True), ([f"data452@{d}"], True), ([f"ok@{d}"], True),
    ], sender="sender@src.example")
    wait_for(lambda: sum(m["queue_name"] == "deferred" for m in postqueue(postfix.conf)) == 3, timeout=60,
             what="three deferred messages")
    held = postqueue(postfix.conf)[0]["queue_id"]
    subprocess.run(["postsuper", "-c", str(postfix.conf), "-h", held], check=True, capture_output=True)

    exp = exporter("--log.path", str(postfix.log), "--postfix.queue", str(postfix.root / "spool"))
    listed = postqueue(postfix.conf)
    now = time.time()
    messages = exp.samples("smtp_queue_messages")
    sizes = exp.samples("smtp_queue_size_bytes")
    ages = exp.samples("smtp_queue_oldest_message_age_seconds")

    count, size = Counter(m["queue_name"] for m in listed), Counter()
    for m in listed:
        size[m["queue_name"]] += m["message_size"]
    assert count == Counter(deferred=2, hold=1)
    for queue in POSTFIX_QUEUES:
        labels = (("mta", "postfix"), ("queue", queue))
        assert messages[labels] == count[queue]
        assert sizes[labels] == size[queue]
        arrivals = [m["arrival_time"] for m in listed if m["queue_name"] == queue]
        expected_age = now - min(arrivals) if arrivals else 0.0
        assert abs(ages[labels] - expected_age) <= 2.0, (queue, ages[labels], expected_age)
    assert exp.value("smtp_exporter_queue_scrape_errors_total") == 0


def exim_bp(exim) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """(size, first line) of each message `exim -bp` lists; sizes under 10K are plain bytes."""
    out = subprocess.run([str(exim.binary), "-C", str(exim.root / "exim.conf"), "-bp"], capture_output=True, text=True,
                         check=True).stdout
    return [(int(m[1]), m[0]) for m in re.finditer(r"(?m)^ *\d+[mhd] +(\d+) \S+-\S+-\S+ .*$", out)]


def test_exim_queue_gauges_equal_exim_bp(exim_mta, exporter):
    exim, _, _ = exim_mta
    d = "dest.example"
    Client().session(exim.port, "client.test.example", [
        ([f"rcpt450@{d}"], True), ([f"data451@{d}", f"two@{d}"], True), ([f"ok@{d}"], True),
    ], sender="sender@src.example")
    wait_for(lambda: len(exim_bp(exim)) == 2, timeout=60, what="two deferred messages")
    exp = exporter("--log.path", str(exim.log), "--exim.queue", str(exim.root / "spool"))
    listed = exim_bp(exim)
    labels = (("mta", "exim"), ("queue", "queued"))
    assert exp.samples("smtp_queue_messages")[labels] == len(listed) == 2
    assert exp.samples("smtp_queue_size_bytes")[labels] == sum(size for size, _ in listed)
    assert exp.samples("smtp_queue_messages")[(("mta", "exim"), ("queue", "frozen"))] == 0
    assert 0 <= exp.samples("smtp_queue_oldest_message_age_seconds")[labels] < 60
