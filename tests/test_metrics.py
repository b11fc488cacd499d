"""The exposition: the metric contract, clean for promtool, bounded and safe whatever the input."""

import os
import shutil
import subprocess
import sys
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from smtp_reply_exporter.codes import knowledge_base
from smtp_reply_exporter.ingest import Ingest
from smtp_reply_exporter.metrics import Counts, SmtpCollector

LINE = ("Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: "
        "{code} {enh} no; from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")


def registry_for(counts: Counts) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SmtpCollector(counts))
    return registry


def feed(text: bytes, counts: Counts | None = None) -> tuple[Counts, CollectorRegistry]:
    counts = counts or Counts()
    Ingest(counts).feed(text, counts.source("test"))
    return counts, registry_for(counts)


def test_replies_are_labelled_by_mta_role_command_code_class_and_enhanced_code():
    _, reg = feed(LINE.format(code=455, enh="4.5.3").encode() * 3)
    labels = dict(mta="postfix", role="server", command="RCPT", code="455", enhanced_code="4.5.3")
    assert reg.get_sample_value("smtp_replies_total", {**labels, "class": "4xx"}) == 3
    assert reg.get_sample_value("smtp_exporter_lines_with_replies_total", {"source": "test"}) == 3


def test_code_info_carries_meaning_and_weight_for_every_known_code():
    _, reg = feed(b"")
    kb = knowledge_base()
    for entry in kb.basic_codes():
        assert reg.get_sample_value("smtp_reply_code_info", {
            "code": entry.code, "class": entry.klass, "category": entry.category,
            "weight": entry.weight, "meaning": entry.meaning, "fix": entry.fix}) == 1
    assert kb.basic("221").weight == "normal" and kb.basic("455").weight == "transient_pressure"


def test_invalid_utf8_and_nul_bytes_are_counted_and_the_line_still_counts():
    line = LINE.format(code=550, enh="5.7.1").encode()
    bad = line.replace(b"no;", b"\xff\xfe;").replace(b"mx", b"m\x00x")
    counts, reg = feed(bad + line)
    assert reg.get_sample_value("smtp_exporter_lines_bad_total", {"source": "test", "reason": "invalid_utf8"}) == 1
    assert reg.get_sample_value("smtp_exporter_lines_bad_total", {"source": "test", "reason": "nul_bytes"}) == 1
    assert sum(counts.replies.values()) == 2


def test_hostile_text_never_reaches_a_label_value():
    hostile = (b'Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT"} 1\n# from a: '
               b'550 5.7.1" code="999"} no\n')
    counts, reg = feed(hostile + b"\xff" * 100 + b"\n" + b"\x00random\x01bytes 455 4.5.3\n")
    for key in counts.replies:
        assert all(v.replace(".", "").isalnum() or v == "" for v in key)
    text = generate_latest(reg).decode()
    assert 'code="999"' not in text


def test_series_beyond_the_cap_are_dropped_and_counted():
    counts = Counts(max_series=5)
    text = "".join(LINE.format(code=550, enh=f"5.7.{i}") for i in range(20)).encode()
    _, reg = feed(text, counts)
    assert len(counts.replies) == 5
    assert reg.get_sample_value("smtp_exporter_series_dropped_total", {"reason": "cap"}) == 15


def test_unrecognised_lines_are_counted_not_dropped():
    _, reg = feed(b"Nov 28 12:01:11 mx dovecot[1]: imap-login: x\nnot a log line\n")
    assert reg.get_sample_value("smtp_exporter_lines_unrecognised_total", {"source": "test"}) == 2
    assert reg.get_sample_value("smtp_exporter_lines_read_total", {"source": "test"}) == 2


@pytest.mark.skipif(shutil.which("promtool") is None and os.environ.get("SMTP_E2E_REQUIRED") != "1",
                    reason="needs promtool (Debian package prometheus)")
def test_promtool_check_metrics_is_clean(tmp_path):
    out = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "prometheus",
                          "exporter/smtp_reply_exporter/samples/postfix.log"],
                         capture_output=True, text=True, check=True).stdout
    assert "smtp_replies_total{" in out
    check = subprocess.run(["promtool", "check", "metrics"], input=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == ""


def test_a_scrape_never_shows_lines_read_before_their_replies_are_counted():
    counts = Counts()
    ingest, stats = Ingest(counts), counts.source("mail.log")
    chunk = ("Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; "
             "from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n" * 50).encode()
    collector, stop, seen = SmtpCollector(counts), threading.Event(), []

    def scrape() -> None:
        while not stop.is_set():
            values = {(s.name, s.labels.get("code")): s.value for fam in collector.collect() for s in fam.samples}
            seen.append((values.get(("smtp_exporter_lines_read_total", None), 0),
                         values.get(("smtp_replies_total", "455"), 0)))

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for _ in range(2_000):
            ingest.feed(chunk, stats)
    finally:
        stop.set()
        scraper.join()
    assert len(seen) > 10
    assert all(read == replies for read, replies in seen), [pair for pair in seen if pair[0] != pair[1]][:5]
