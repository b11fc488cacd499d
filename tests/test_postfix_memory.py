"""Postfix's parser remembers deferred recipients in bounded memory, in O(1) per line."""

from __future__ import annotations

from smtp_reply_exporter.parse.postfix import MAX_DEFERRED, PostfixParser

SMTP = "postfix/smtp"
DEFERRED = ("{qid}: to=<{rcpt}>, relay=mx.example.net[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=4.2.0, "
            "status=deferred (host mx.example.net[192.0.2.1] said: 450 4.2.0 Try later (in reply to RCPT TO command))")
EXPIRED = "{qid}: from=<a@example.org>, status=expired, returned to sender"


def defer(parser: PostfixParser, qid: str, rcpt: str) -> None:
    parser.parse(SMTP, "7", DEFERRED.format(qid=qid, rcpt=rcpt))


def expired_deliveries(parser: PostfixParser, qid: str) -> int:
    parsed = parser.parse("postfix/qmgr", "8", EXPIRED.format(qid=qid))
    assert parsed.delivery == "expired"
    return parsed.deliveries


def test_an_expired_message_stands_for_each_recipient_last_deferred_after_the_memory_rolls_over_once():
    parser = PostfixParser()
    defer(parser, "AAA111", "one@example.net")
    defer(parser, "AAA111", "two@example.net")
    for n in range(MAX_DEFERRED // 2):  # other messages: AAA111 moves to the older half
        defer(parser, f"B{n:09X}", "x@example.net")
    assert expired_deliveries(parser, "AAA111") == 2


def test_a_message_deferred_before_the_memory_rolled_over_twice_is_forgotten_and_counts_once():
    parser = PostfixParser()
    defer(parser, "AAA111", "one@example.net")
    defer(parser, "AAA111", "two@example.net")
    for n in range(MAX_DEFERRED + 1):
        defer(parser, f"B{n:09X}", "x@example.net")
    assert expired_deliveries(parser, "AAA111") == 1
    assert len(parser._deferred) + len(parser._older_deferred) <= MAX_DEFERRED
