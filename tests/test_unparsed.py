"""Format drift is visible: a known MTA's line that looks like a reply but gave none is counted, and
nothing else is (real logs count 0)."""

import io
from pathlib import Path

import pytest

from smtp_reply_exporter import cli
from smtp_reply_exporter.oneshot import run
from test_metrics import feed

TESTS = Path(__file__).parent
REAL_LOGS = sorted((TESTS / "samples").glob("*.log")) + sorted((TESTS / "fixtures" / "corpus").glob("*.log"))
STATUS = ("Nov 28 12:01:11 mx postfix/smtp[2]: 4E746: to=<{rcpt}@b.example>, relay=mx.b.example[192.0.2.9]:25, "
          "delay=1, delays=0/0/0/1, dsn=4.3.0, status=deferred (host mx.b.example[192.0.2.9] {verb}: 451 4.3.0 "
          "Try again later (in reply to end of DATA command))\n")


def unparsed(text: str) -> dict[tuple[str, str], int]:
    counts, _ = feed(text.encode())
    return counts.unparsed


@pytest.mark.parametrize("log", REAL_LOGS, ids=lambda p: p.name)
def test_no_line_of_a_real_log_is_counted_as_unparsed(log):
    assert unparsed(log.read_text()) == {}


def test_a_new_wording_of_a_postfix_reply_is_counted_with_its_mta_and_program():
    _, reg = feed(STATUS.format(rcpt="a", verb="answered").encode())
    assert reg.get_sample_value("smtp_exporter_lines_unparsed_total", {"mta": "postfix", "program": "smtp"}) == 1
    assert reg.get_sample_value("smtp_replies_total", {"mta": "postfix", "role": "client", "command": "DATA",
                                                      "code": "451", "class": "4xx", "enhanced_code": "4.3.0"}) is None


@pytest.mark.parametrize(("line", "key"), [
    ("2026-11-28 12:01:11 1vPzAb-000ABC-1234 == a@b.example R=dnslookup T=remote_smtp defer (-46) "
     "H=mx.b.example [192.0.2.9]: SMTP failure reported by remote server after RCPT TO:<a@b.example>: "
     "451 4.3.0 Try later", ("exim", "exim")),
    ("Nov 28 12:01:11 mx sm-mta[5]: 6ASDvGTf005340: to=<a@b.example>, delay=00:00:01, mailer=esmtp, pri=1, "
     "relay=mx.b.example. [192.0.2.9], dsn=4.3.0, stat=Postponed: 451 4.3.0 Try later", ("sendmail", "sm-mta")),
    ('Nov 28 12:01:11 mx smtpd[7]: 0123456789abcdef smtp failed-cmd command="RCPT TO:<a@b.example>" '
     'result="550 5.1.1 Invalid recipient"', ("opensmtpd", "smtpd")),
], ids=["exim", "sendmail", "opensmtpd"])
def test_a_new_wording_of_every_mta_is_counted(line, key):
    assert unparsed(line + "\n") == {key: 1}


def test_a_reply_logged_again_for_another_recipient_is_folded_not_unparsed():
    counts, _ = feed((STATUS.format(rcpt="a", verb="said") + STATUS.format(rcpt="b", verb="said")).encode())
    assert sum(counts.replies.values()) == 1 and counts.unparsed == {}


@pytest.mark.parametrize("line", [
    "Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject_warning: RCPT from a[192.0.2.1]: 450 4.1.8 <a@b>: "
    "Sender address rejected: Domain not found; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
    "Nov 28 12:01:11 mx postfix/smtpd[1]: warning: Message delivery request rate limit exceeded: 334 from "
    "a[192.0.2.1] for service submission",
    "Nov 28 12:01:11 mx postfix/cleanup[3]: A3B4C5D6E7: milter-reject: END-OF-MESSAGE from a[192.0.2.1]: "
    "5.7.1 Blocked by policy; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
    "Nov 28 12:01:11 mx postfix/master[9]: daemon started -- version 2.11.3, configuration /etc/postfix",
    "Nov 28 12:01:11 mx sm-mta[5]: 6ASDvGTf005340: to=<a@b>, delay=00:00:00, mailer=relay, pri=90021, "
    "relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (2.0.0 Ok)",
    "Nov 28 12:01:11 mx dovecot[7]: lmtp(a): 451 4.3.0 not an MTA this exporter reads",
], ids=["reject_warning", "rate-figure", "cleanup-enhanced-only", "version", "sendmail-sent",
        "other-program"])
def test_known_forms_that_are_not_replies_are_not_counted(line):
    assert unparsed(line + "\n") == {}


def test_a_program_outside_the_mtas_closed_set_is_labelled_other():
    line = "Nov 28 12:01:11 mx sm-newthing[5]: 6ASDvGTf005340: relay said: 451 4.3.0 Try later\n"
    assert unparsed(line) == {("sendmail", "other"): 1}


def test_parse_unparsed_prints_only_those_lines_with_file_and_line_number(tmp_path, capsys):
    log = tmp_path / "mail.log"
    log.write_text(STATUS.format(rcpt="a", verb="said") + STATUS.format(rcpt="b", verb="answered"))
    assert cli.main(["parse", "--unparsed", str(log)]) == 0
    out = capsys.readouterr().out
    assert out == f"{log}:2:{STATUS.format(rcpt='b', verb='answered')}"


def test_parse_table_says_how_many_lines_gave_no_reply(tmp_path):
    log, out = tmp_path / "mail.log", io.StringIO()
    log.write_text(STATUS.format(rcpt="a", verb="answered"))
    assert run([str(log)], "table", "auto", out, io.StringIO()) == 0
    assert "1 with a reply no rule took (see parse --unparsed)" in out.getvalue()
