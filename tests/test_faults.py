"""Faults the daemon must survive with exact counts: crashes, busy scrapers, no file events."""

from __future__ import annotations

import json
import signal
import threading
import urllib.request

from conftest import wait_for

LINE = ("Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; "
        "from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")


def append(path, n: int) -> None:
    with open(path, "a") as f:
        f.write(LINE * n)


def test_sigkill_rereads_at_most_what_came_after_the_last_state_save(tmp_path, exporter):
    log, state = tmp_path / "mail.log", tmp_path / "state.json"
    log.write_text("")
    args = ("--log.path", str(log), "--tail.state-file", str(state), "--tail.state-interval", "200ms")
    first = exporter(*args)
    append(log, 20_000)
    wait_for(lambda: first.value("smtp_exporter_lines_read_total") == 20_000, what="first run caught up")
    size = log.stat().st_size
    wait_for(lambda: state.exists() and json.loads(state.read_text())["files"][str(log)]["offset"] == size,
             what="state saved")
    append(log, 5_000)  # the crash comes while these may or may not be counted yet
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    saved = json.loads(state.read_text())["files"][str(log)]["offset"]
    assert size <= saved <= log.stat().st_size  # never ahead of what was written
    append(log, 1_000)
    second = exporter(*args)
    expected = (log.stat().st_size - saved) // len(LINE)
    wait_for(lambda: second.value("smtp_exporter_lines_read_total") == expected, what="second run")
    # no line skipped: the second run read everything after the saved offset, which the first run
    # had counted; re-read at most the 5,000 lines written after the last save that the crash could hide
    assert 1_000 <= expected <= 6_000
    assert second.value("smtp_replies_total", code="455") == expected


def test_concurrent_scrapes_do_not_stall_ingestion(tmp_path, exporter):
    log = tmp_path / "mail.log"
    log.write_text("")
    exp = exporter("--log.path", str(log))
    stop, statuses = threading.Event(), []

    def scraper() -> None:
        while not stop.is_set():
            with urllib.request.urlopen(f"http://127.0.0.1:{exp.port}/metrics", timeout=10) as r:
                r.read()
                statuses.append(r.status)

    threads = [threading.Thread(target=scraper) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        append(log, 100_000)
        wait_for(lambda: exp.value("smtp_exporter_lines_read_total") == 100_000, timeout=60, what="100k lines")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert exp.value("smtp_replies_total", code="455") == 100_000
    assert statuses and set(statuses) == {200}


def test_without_file_events_the_stat_check_keeps_counting(tmp_path, exporter):
    log = tmp_path / "not-yet" / "mail.log"  # no directory to watch at start
    exp = exporter("--log.path", str(log))
    assert exp.value("smtp_exporter_file_watch_active") == 0
    log.parent.mkdir()
    append(log, 10)
    wait_for(lambda: exp.value("smtp_replies_total", code="455") == 10, what="polled lines")
