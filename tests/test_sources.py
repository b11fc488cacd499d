"""Log sources other than files, each through its real path: a pipe, sockets on 127.0.0.1, a journal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Exporter, free_port, wait_for
from smtp_reply_exporter.sources.journal import JournalSource
from smtp_reply_exporter.stats import SourceStats
from smtp_reply_exporter.syslog_server import to_line
from smtp_reply_exporter.unwrap import Unwrapper

MSG = "NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; from=<a@b> to=<c@d> proto=ESMTP helo=<x>"
LINE = f"Nov 28 12:01:11 mx postfix/smtpd[1]: {MSG}"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def test_standard_input_is_a_source(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "smtp_reply_exporter", "serve", "--log.path", "-",
                             "--web.listen-address", f"127.0.0.1:{port}"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exp = Exporter.__new__(Exporter)
    exp.port, exp.proc = port, proc
    try:
        wait_for(lambda: exp.get("/-/ready")[0] == 200, what="ready")
        assert proc.stdin is not None
        proc.stdin.write((LINE + "\n").encode() * 3 + LINE.encode())  # the last line has no newline yet
        proc.stdin.flush()
        wait_for(lambda: exp.value("smtp_replies_total", code="455") == 3, what="3 lines from stdin")
        proc.stdin.close()  # end of input completes the last line; the exporter keeps serving
        wait_for(lambda: exp.value("smtp_replies_total", code="455") == 4, what="last line at EOF")
        assert exp.value("smtp_exporter_lines_read_total", source="-") == 4
        assert exp.get("/-/healthy")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_cri_lines_are_unwrapped_and_partial_lines_joined():
    u = Unwrapper()
    head, tail = LINE[:40], LINE[40:]
    out = u.lines([f"2026-11-28T12:00:00.123456789Z stdout F {LINE}",
                   f"2026-11-28T12:00:00.2Z stderr P {head}",
                   f"2026-11-28T12:00:00.3Z stderr F {tail}",
                   "not a cri line"])
    assert out == [LINE, LINE] and u.mode == "cri" and u.malformed == 1


def test_docker_json_lines_are_unwrapped_and_partial_lines_joined():
    u = Unwrapper()
    rec = [json.dumps({"log": LINE + "\n", "stream": "stdout", "time": "2026-11-28T12:00:00Z"}),
           json.dumps({"log": LINE[:30], "stream": "stdout", "time": "2026-11-28T12:00:00Z"}),
           json.dumps({"log": LINE[30:] + "\n", "stream": "stdout", "time": "2026-11-28T12:00:00Z"}),
           '{"log": 5}']
    assert u.lines(rec) == [LINE, LINE] and u.mode == "docker" and u.malformed == 1


def test_plain_lines_pass_untouched():
    u = Unwrapper()
    assert u.lines(["", LINE, "x"]) == ["", LINE, "x"] and u.mode == "plain"


def test_kubernetes_pod_logs_are_read_through_a_glob(tmp_path, exporter):
    pod = tmp_path / "pods" / "mail_postfix-0_uid" / "postfix"
    pod.mkdir(parents=True)
    exp = exporter("--log.path", str(tmp_path / "pods" / "*" / "*" / "*.log"))
    with open(pod / "0.log", "w") as f:
        f.write(f"2026-11-28T12:00:00.1Z stdout F {LINE}\n2026-11-28T12:00:00.2Z stdout P {LINE[:20]}\n")
        f.write(f"2026-11-28T12:00:00.3Z stdout F {LINE[20:]}\n")
    wait_for(lambda: exp.value("smtp_replies_total", code="455") == 2, what="CRI lines counted")


@pytest.mark.parametrize("message", [
    f"<22>1 2026-11-28T12:00:00.123Z mx postfix/smtpd 123 - - {MSG}".encode(),
    f"<22>1 2026-11-28T12:00:00Z mx postfix/smtpd 123 ID47 [origin ip=\"192.0.2.1\"] \ufeff{MSG}".encode(),
    f"<22>Nov 28 12:00:00 mx postfix/smtpd[123]: {MSG}\n".encode(),
    f"<22>Nov 28 12:00:00 postfix/smtpd[123]: {MSG}".encode(),
])
def test_syslog_messages_become_log_lines(message):
    line = to_line(message)
    assert line is not None and line.endswith(MSG.encode()) and b"postfix/smtpd" in line


def test_syslog_receiver_counts_udp_and_tcp_and_drops_garbage(exporter):
    port = free_port()
    exp = exporter("--syslog.listen-address", f"127.0.0.1:{port}")
    rfc5424 = f"<22>1 2026-11-28T12:00:00Z mx postfix/smtpd 123 - - {MSG}".encode()
    rfc3164 = f"<22>Nov 28 12:00:00 mx postfix/smtpd[123]: {MSG}".encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(rfc5424, ("127.0.0.1", port))
        udp.sendto(rfc3164, ("127.0.0.1", port))
        udp.sendto(b"\x00\xffgarbage", ("127.0.0.1", port))
    with socket.create_connection(("127.0.0.1", port)) as tcp:
        tcp.sendall(b"%d %s" % (len(rfc5424), rfc5424))  # octet counting
        tcp.sendall(rfc3164 + b"\n")  # newline framing
        tcp.sendall(b"not syslog at all\n")
    source = f"syslog:127.0.0.1:{port}"
    wait_for(lambda: exp.value("smtp_replies_total", code="455") == 4, what="4 syslog messages")
    wait_for(lambda: exp.value("smtp_exporter_lines_bad_total", source=source, reason="malformed") == 2,
             what="2 malformed")
    assert exp.value("smtp_exporter_lines_read_total", source=source) == 4


def write_journal(path: Path, entries: list[tuple[int, str]]) -> None:
    """Entries written into a real journal file by systemd-journal-remote (Journal Export Format)."""
    export = "".join(
        f"__REALTIME_TIMESTAMP={1764331200000000 + i * 1000}\n__MONOTONIC_TIMESTAMP={i + 1}\n"
        f"_BOOT_ID=0123456789abcdef0123456789abcdef\nMESSAGE={msg}\nSYSLOG_IDENTIFIER=postfix/smtpd\n"
        f"_PID=4242\n_HOSTNAME=mx\n\n" for i, msg in entries)
    subprocess.run([JOURNAL_REMOTE, f"--output={path}", "-"], input=export.encode(), check=True,
                   capture_output=True)


@pytest.mark.skipif(not os.path.exists(JOURNAL_REMOTE) and os.environ.get("SMTP_E2E_REQUIRED") != "1",
                    reason="needs Debian's systemd-journal-remote to write a real journal")
@pytest.mark.skipif(shutil.which("journalctl") is None, reason="needs journalctl")
def test_journal_is_followed_and_resumed_from_the_saved_cursor(tmp_path, exporter):
    journal_dir, state_file = tmp_path / "journal", tmp_path / "state.json"
    journal_dir.mkdir()
    write_journal(journal_dir / "remote.journal", [(i, MSG) for i in range(3)])
    args = ("--log.journal", "--log.journal.directory", str(journal_dir), "--log.journal.identifier",
            "postfix/smtpd", "--tail.state-file", str(state_file))
    first = exporter(*args, "--tail.from-start")
    wait_for(lambda: first.value("smtp_replies_total", code="455") == 3, what="3 journal entries")
    write_journal(journal_dir / "remote.journal", [(3, MSG)])
    wait_for(lambda: first.value("smtp_replies_total", code="455") == 4, what="an appended entry")
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(30) == 0
    assert "journal" in json.loads(state_file.read_text())["cursors"]

    write_journal(journal_dir / "remote.journal", [(4, MSG), (5, MSG)])  # while the exporter is down
    second = exporter(*args)
    wait_for(lambda: second.value("smtp_replies_total", code="455") == 2, what="only the 2 new entries")
    assert second.value("smtp_exporter_lines_read_total", source="journal") == 2


def test_journalctl_restarted_before_any_entry_resumes_from_when_following_began():
    reader = JournalSource(SourceStats(), [], [], None, None, from_start=False)
    assert reader.command()[-1] == "--lines=0"  # first start: from now on, like files
    reader._since = 1764331200.5  # journalctl died before any entry gave a cursor
    assert reader.command()[-2:] == ["--since=@1764331200.500000", "--no-tail"]  # neither history nor a gap
    reader.cursor = "s=abc"
    assert reader.command()[-1] == "--after-cursor=s=abc"
