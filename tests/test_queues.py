"""Reading the queue: Postfix's showq record stream and Exim's spool header files, and the collector
that serves the last good read when a read fails."""

from __future__ import annotations

import pytest

from smtp_reply_exporter.queues import QueueCollector, QueueError, QueueTotals, read_exim_spool, showq_totals

# What the showq service of the e2e harness's real Postfix 3.7 sent (two deferred messages).
SHOWQ = (
    b"protocol\0mail_queue_list_protocol\0\0"
    b"queue_name\0deferred\0queue_id\0E959320CAC1\0time\x001796126403\0size\x00304\0forced_expire\x000\0"
    b"sender\0s@src.example\0recipient\0rcpt450@dest.example\0reason\0host 127.0.0.1[127.0.0.1] said: 450 4.2.1"
    b" Mailbox busy, try again (in reply to RCPT TO command)\0recipient\0data451@dest.example\0reason\0host"
    b" 127.0.0.1[127.0.0.1] said: 451 4.3.0 Local error in processing (in reply to end of DATA command)\0\0"
    b"queue_name\0deferred\0queue_id\0EA68120C103\0time\x001796126400\0size\x00310\0forced_expire\x000\0"
    b"sender\0s@src.example\0recipient\0x@dest.example\0reason\0host 127.0.0.1[127.0.0.1] said: 451 4.3.0 Local"
    b" error in processing (in reply to end of DATA command)\0\0"
    b"\0"
)


def test_showq_stream_gives_totals_per_queue_with_every_queue_present():
    totals = showq_totals([SHOWQ])
    assert totals["deferred"] == QueueTotals(messages=2, size=614, oldest=1796126400.0)
    assert totals["active"] == totals["hold"] == totals["incoming"] == totals["maildrop"] == QueueTotals()


def test_showq_stream_cut_anywhere_gives_the_same_totals():
    whole = showq_totals([SHOWQ])
    for cut in range(1, len(SHOWQ)):
        assert showq_totals([SHOWQ[:cut], SHOWQ[cut:]]) == whole


def test_showq_record_with_an_empty_sender_is_one_message():
    bounce = (b"protocol\0mail_queue_list_protocol\0\0queue_name\0active\0queue_id\0A1\0time\x00100\0size\x0050\0"
              b"sender\0\0recipient\0a@b.example\0\0\0")
    assert showq_totals([bounce])["active"] == QueueTotals(messages=1, size=50, oldest=100.0)


@pytest.mark.parametrize("stream", [
    SHOWQ[:-1],                                      # no end-of-list record
    SHOWQ[:100],                                     # cut inside a record
    b"protocol\0something_else\0\0\0",               # another service on the socket
    b"protocol\0mail_queue_list_protocol\0\0queue_name\0hold\0time\0soon\0size\x001\0\0\0",  # bad time
    b"",
], ids=["no-end", "cut", "protocol", "bad-time", "empty"])
def test_showq_stream_that_is_not_whole_is_an_error_not_a_wrong_total(stream):
    with pytest.raises(QueueError):
        showq_totals([stream])


def spool_message(spool, msgid: str, arrival: int, headers: list[bytes], flags: tuple[bytes, ...] = (),
                  body: bytes = b"hello\n") -> None:
    (spool / f"{msgid}-D").write_bytes(f"{msgid}-D\n".encode() + body)
    (spool / f"{msgid}-H").write_bytes(
        f"{msgid}-H\nDebian-exim 999 994\n<s@src.example>\n{arrival} 0\n".encode() + b"".join(f + b"\n" for f in flags)
        + b"XX\n1\nrcpt@dest.example\n\n" + b"".join(headers))


def test_exim_spool_sizes_messages_as_exim_bp_and_tells_frozen_ones(tmp_path):
    spool = tmp_path / "input"
    (spool / "A").mkdir(parents=True)  # split_spool_directory
    received = b"064P Received: from [127.0.0.1]\n\tby exim.test.example with esmtp id x;\n\tTue, 1 Dec\n"
    spool_message(spool, "1xYMYi-0001Ql-0I", 1796126528, [received, b"014  Subject: test\n"])
    spool_message(spool / "A", "1xYMYA-0001Ql-0M", 1796126500, [b"014  Subject: test\n", b"020* X-Deleted: gone\n"],
                  flags=(b"-received_protocol esmtp", b"-frozen 1796126510"))
    totals = read_exim_spool(str(tmp_path))
    # exim -bp: headers' lengths (deleted ones aside) + the body file less its id line, + 1
    assert totals["queued"] == QueueTotals(messages=1, size=64 + 14 + 6 + 1, oldest=1796126528.0)
    assert totals["frozen"] == QueueTotals(messages=1, size=14 + 6 + 1, oldest=1796126500.0)


def test_exim_spool_skips_a_message_being_written_or_gone(tmp_path):
    spool = tmp_path / "input"
    spool.mkdir()
    (spool / "1xYMYi-0001Ql-0I-H").write_bytes(b"1xYMYi-0001Ql-0I-H\nDebian-exim 999 994\n")  # no -D, cut short
    assert read_exim_spool(str(tmp_path))["queued"] == QueueTotals()


def test_missing_spool_is_an_error(tmp_path):
    with pytest.raises(QueueError):
        read_exim_spool(str(tmp_path / "nowhere"))


def test_collector_serves_the_last_good_read_and_counts_failures():
    reads = iter([{"deferred": QueueTotals(2, 614, 100.0)}, QueueError("timed out")])

    def reader() -> dict[str, QueueTotals]:
        result = next(reads)
        if isinstance(result, Exception):
            raise result
        return result

    collector = QueueCollector({"postfix": reader}, clock=lambda: 160.0)

    def scrape() -> dict[str, float]:
        return {f"{s.name}{sorted(s.labels.values())}": s.value for fam in collector.collect() for s in fam.samples}

    first = scrape()
    assert first["smtp_queue_messages['deferred', 'postfix']"] == 2
    assert first["smtp_queue_oldest_message_age_seconds['deferred', 'postfix']"] == 60.0
    assert first["smtp_exporter_queue_scrape_errors_total['postfix']"] == 0
    second = scrape()
    assert second["smtp_queue_messages['deferred', 'postfix']"] == 2
    assert second["smtp_exporter_queue_scrape_errors_total['postfix']"] == 1


def test_unreachable_queue_is_a_counted_error_not_a_failed_scrape(exporter, tmp_path):
    log = tmp_path / "mail.log"
    log.write_text("")
    exp = exporter("--log.path", str(log), "--postfix.queue", str(tmp_path / "no-such-queue"))
    assert exp.value("smtp_exporter_queue_scrape_errors_total", mta="postfix") >= 1
    assert exp.samples("smtp_queue_messages") == {}
    assert exp.get("/metrics")[0] == 200
