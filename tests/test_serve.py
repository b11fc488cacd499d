"""The daemon as a user runs it: a real process, real files, real HTTP on 127.0.0.1."""

import gzip
import os
import pty
import signal
import subprocess
import sys

from conftest import wait_for

REJECT = ("Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: "
          "455 4.5.3 Busy; from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")
QUIT = "Nov 28 12:01:12 mx postfix/smtpd[1]: disconnect from a[192.0.2.1] ehlo=1 quit=1 commands=2\n"


def append(path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_lines_appended_to_a_followed_log_show_up_on_metrics(tmp_path, exporter):
    log = tmp_path / "mail.log"
    log.write_text(REJECT)  # before start: skipped, as tailers do
    exp = exporter("--log.path", str(log))
    append(log, REJECT * 2 + QUIT)
    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") == 3, what="3 lines")
    assert exp.value("smtp_replies_total", code="455", role="server", command="RCPT", enhanced_code="4.5.3") == 2
    assert exp.value("smtp_replies_total", code="221", command="QUIT", **{"class": "2xx"}) == 1
    assert exp.get("/-/healthy")[0] == 200 and exp.get("/-/ready")[0] == 200
    status, page = exp.get("/")
    assert status == 200 and "<td>455</td>" in page and "cannot accommodate the parameters" in page
    assert "<td>221</td>" in page and 'href="/metrics"' in page
    assert exp.get("/nope")[0] == 404


def test_sigterm_saves_state_and_a_restart_counts_nothing_twice(tmp_path, exporter):
    log, state_file = tmp_path / "mail.log", tmp_path / "state.json"
    log.write_text("")
    first = exporter("--log.path", str(log), "--tail.state-file", str(state_file))
    append(log, REJECT * 3)
    wait_for(lambda: first.value("smtp_exporter_lines_read_total") == 3, what="first run")
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=30) == 0
    assert state_file.exists()
    append(log, REJECT * 2)  # written while the exporter was down
    second = exporter("--log.path", str(log), "--tail.state-file", str(state_file))
    wait_for(lambda: second.value("smtp_exporter_lines_read_total") == 2, what="second run")
    append(log, QUIT)
    wait_for(lambda: second.value("smtp_exporter_lines_read_total") == 3, what="new line")
    assert second.value("smtp_replies_total", code="455") == 2


def test_glob_paths_pick_up_new_files_and_read_them_whole(tmp_path, exporter):
    exp = exporter("--log.path", str(tmp_path / "*.log"))
    append(tmp_path / "a.log", REJECT)
    wait_for(lambda: exp.value("smtp_replies_total", code="455") == 1, what="new file counted")


def test_without_a_log_path_the_bundled_sample_is_served(exporter):
    exp = exporter()
    wait_for(lambda: exp.value("smtp_replies_total") > 0, what="sample counted")
    assert exp.value("smtp_replies_total", code="221", role="server") > 0
    assert exp.value("smtp_replies_total", code="455", role="client") > 0


def test_it_warns_when_run_as_root_and_writes_nothing_but_its_state_file(tmp_path, exporter):
    log, state = tmp_path / "mail.log", tmp_path / "state.json"
    log.write_text("")
    exp = exporter("--log.path", str(log), "--tail.state-file", str(state))
    append(log, REJECT)
    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") == 1, what="1 line")
    output = exp.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mail.log", "state.json"]
    if os.geteuid() == 0:
        assert "running as root" in output


def test_parse_reads_a_gzipped_rotated_log_like_the_plain_one(tmp_path):
    plain, packed = tmp_path / "mail.log.1", tmp_path / "mail.log.2.gz"
    plain.write_text(REJECT * 3)
    with gzip.open(packed, "wt") as f:
        f.write(REJECT * 3)
    cmd = [sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "table"]
    outputs = [subprocess.run([*cmd, str(p)], capture_output=True, text=True, timeout=60) for p in (plain, packed)]
    assert all(out.returncode == 0 for out in outputs)
    assert "Lines: 3 read, 0 not recognised" in outputs[1].stdout
    assert outputs[0].stdout == outputs[1].stdout


def test_parse_shows_progress_on_a_terminal_and_is_quiet_otherwise(tmp_path):
    log = tmp_path / "big.log"
    log.write_text(REJECT * 200_000)
    cmd = [sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "table", str(log)]
    quiet = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == "" and "455" in quiet.stdout
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert proc.wait(120) == 0
    assert b"big.log:" in shown and b" MB" in shown
