"""Rotation torture beyond the matrix (test_rotation_matrix.py): rotations missed between polls, compression,
a re-created directory, bursts; exact counts (lines written = lines read, never twice)."""

from __future__ import annotations

import gzip
import os
import shutil
import threading

from conftest import Reader, reader_of_empty, wait_for


def write(path, *lines: str, mode: str = "a") -> None:
    with open(path, mode) as f:
        f.write("".join(f"{line}\n" for line in lines))


def numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i}" for i in range(n)]


def expect(reader: Reader, *groups: list[str]) -> None:
    """After one more poll, everything the reader yielded is these lines, in this order, once."""
    reader.poll()
    assert reader.lines == [line.encode() for group in groups for line in group]


def test_two_rotations_before_the_reader_wakes_up(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, *numbered("a", 3))
    r.poll()
    write(log, *numbered("a-late", 1))
    os.rename(log, tmp_path / "mail.log.1")
    write(log, *numbered("b", 4))  # lived only between two polls
    os.rename(tmp_path / "mail.log.1", tmp_path / "mail.log.2")
    os.rename(log, tmp_path / "mail.log.1")
    write(log, *numbered("c", 2))
    expect(r, numbered("a", 3), numbered("a-late", 1), numbered("b", 4), numbered("c", 2))
    assert r.stats.rotations == 2


def test_compressed_rotation_of_the_file_being_read(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, *numbered("a", 3))
    r.poll()
    write(log, *numbered("a-late", 2))
    os.rename(log, tmp_path / "mail.log.1")
    with open(tmp_path / "mail.log.1", "rb") as src, gzip.open(tmp_path / "mail.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "mail.log.1").unlink()  # compressed before the reader looked again
    write(log, *numbered("b", 1))
    expect(r, numbered("a", 3), numbered("a-late", 2), numbered("b", 1))


def test_a_missed_rotation_that_was_compressed_is_read_through_gzip(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, *numbered("a", 1))
    r.poll()
    os.rename(log, tmp_path / "mail.log.1")
    write(log, *numbered("b", 3))
    with open(log, "rb") as src, gzip.open(tmp_path / "mail.log.2.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    log.unlink()
    write(log, *numbered("c", 1))
    expect(r, numbered("a", 1), numbered("b", 3), numbered("c", 1))


def test_directory_recreated(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "mail.log"
    r = reader_of_empty(log)
    write(log, *numbered("a", 2))
    shutil.rmtree(logs)
    r.poll()
    logs.mkdir()
    write(log, *numbered("b", 2))
    expect(r, numbered("a", 2), numbered("b", 2))


def test_rotation_in_the_middle_of_a_burst_of_100k_lines(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    done = threading.Event()

    def writer() -> None:
        with open(log, "a") as f:
            for i in range(50_000):
                f.write(f"first {i}\n")
        os.rename(log, tmp_path / "mail.log.1")
        with open(log, "a") as f:
            for i in range(50_000):
                f.write(f"second {i}\n")
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        r.poll()
    thread.join()
    r.poll()
    assert r.lines == [f"first {i}".encode() for i in range(50_000)] + [f"second {i}".encode() for i in range(50_000)]


def test_daemon_counts_a_burst_with_rotation_exactly(tmp_path, exporter):
    log = tmp_path / "mail.log"
    log.write_text("")
    exp = exporter("--log.path", str(log))
    line = ("Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; "
            "from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")
    with open(log, "a") as f:
        for _ in range(50_000):
            f.write(line)
    os.rename(log, tmp_path / "mail.log.1")
    with open(log, "a") as f:
        for _ in range(50_000):
            f.write(line)
    wait_for(lambda: exp.value("smtp_exporter_lines_read_total") >= 100_000, timeout=60, what="100k lines")
    assert exp.value("smtp_replies_total", code="455") == 100_000
    assert exp.value("smtp_exporter_lines_read_total") == 100_000
