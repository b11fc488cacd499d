"""The follower: complete lines only, across rename, copytruncate, delete+recreate and restarts."""

import json
import os
import shutil

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Reader, reader_of_empty
from smtp_reply_exporter import state
from smtp_reply_exporter.sources.file import Position
from smtp_reply_exporter.tail import MAX_LINE, has_long_line


def write(path, text: str, mode: str = "a") -> None:
    with open(path, mode) as fh:
        fh.write(text)


def test_starts_at_the_end_by_default_and_from_the_start_when_asked(tmp_path):
    log = tmp_path / "mail.log"
    write(log, "old 1\nold 2\n")
    assert Reader(log).lines == []
    assert Reader(log, from_start=True).lines == [b"old 1", b"old 2"]


def test_a_partial_line_is_held_until_its_newline(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "first\nsec")
    assert r.poll() == [b"first"]
    write(log, "ond\n")
    assert r.poll() == [b"second"]


def test_rename_rotation_drains_the_old_file_then_reads_the_new_one(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "a\n")
    assert r.poll() == [b"a"]
    write(log, "b\n")  # written before rotation, not yet read
    os.rename(log, tmp_path / "mail.log.1")
    write(tmp_path / "mail.log.1", "c\n")  # the writer still had the old file open
    write(log, "d\n", "w")
    assert r.poll() == [b"b", b"c", b"d"]
    assert r.stats.rotations == 1


def test_copytruncate_reads_again_from_the_start(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "one\ntwo\n")
    assert r.poll() == [b"one", b"two"]
    log.write_text("")  # copytruncate
    write(log, "x\n")
    assert r.poll() == [b"x"]
    assert r.stats.truncations == 1


def test_delete_and_recreate_is_a_rotation(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "before\n")
    log.unlink()
    assert r.poll() == [b"before"]  # drained from the still open descriptor
    write(log, "after\n", "w")
    assert r.poll() == [b"after"]
    assert r.stats.rotations == 1


def test_a_file_that_does_not_exist_yet_is_read_whole_when_it_appears(tmp_path):
    log = tmp_path / "later.log"
    r = Reader(log)
    assert r.lines == []
    write(log, "hello\n", "w")
    assert r.poll() == [b"hello"]


def test_overlong_lines_are_cut_counted_and_the_next_line_survives(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "x" * (3 * MAX_LINE))
    assert r.poll() == [b"x" * MAX_LINE]
    write(log, "y" * 100 + "\nnext\n")
    assert r.poll() == [b"next"]
    write(log, "z" * (MAX_LINE + 5) + "\nafter\n")
    assert r.poll() == [b"z" * MAX_LINE, b"after"]
    assert r.stats.bad_lines["too_long"] == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 100, MAX_LINE - 1, MAX_LINE, MAX_LINE + 1, 2 * MAX_LINE]), max_size=8))
def test_long_line_check_agrees_with_measuring_every_line(lengths):
    chunk = b"".join(b"x" * n + b"\n" for n in lengths)
    assert has_long_line(chunk) == any(n > MAX_LINE for n in lengths)


def test_restart_with_state_resumes_without_skip_or_repeat(tmp_path):
    log, state_file = tmp_path / "mail.log", str(tmp_path / "state.json")
    write(log, "a\nb\n")
    r = Reader(log, from_start=True)
    assert r.lines == [b"a", b"b"]
    write(log, "partial")
    assert r.poll() == []
    state.save(state_file, state.State({str(log): r.follower.position}))
    r.follower.close()
    write(log, " line\nc\n")
    assert Reader(log, resume=state.load(state_file).positions[str(log)]).lines == [b"partial line", b"c"]


def test_restart_after_a_rotation_while_stopped_finishes_the_old_file_first(tmp_path):
    log = tmp_path / "mail.log"
    write(log, "a\n")
    r = Reader(log, from_start=True)
    assert r.lines == [b"a"]
    pos = r.follower.position
    r.follower.close()
    write(log, "b\n")
    os.rename(log, tmp_path / "mail.log.1")
    write(log, "c\n", "w")
    assert Reader(log, resume=pos).lines == [b"b", b"c"]


def test_a_corrupt_state_file_is_reported_and_ignored(tmp_path, caplog):
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    assert state.load(str(bad)) == state.State()
    assert "unreadable" in caplog.text


def test_copytruncate_regrown_to_the_old_size_is_read_from_the_start(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "".join(f"old {i:04d}\n" for i in range(3011)))
    assert len(r.poll()) == 3011
    os.link(log, tmp_path / "mail.log.1")  # the copy keeps what was read
    os.truncate(log, 0)
    write(log, "".join(f"new {i:04d}\n" for i in range(3011)), "w")  # same size, other bytes
    assert r.poll() == [f"new {i:04d}".encode() for i in range(3011)]
    assert r.stats.truncations == 1


def test_fast_rename_rotations_never_read_a_file_already_read_again(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "a\n")
    assert r.poll() == [b"a"]
    os.rename(log, tmp_path / "mail.log.1")
    write(log, "b\n", "w")
    assert r.poll() == [b"b"]
    os.rename(tmp_path / "mail.log.1", tmp_path / "mail.log.2")  # the file of "a", read whole already
    os.rename(log, tmp_path / "mail.log.1")
    write(log, "c\n", "w")
    assert r.poll() == [b"c"]
    assert r.stats.rotations == 2


def test_copytruncate_between_polls_reads_the_copy_beyond_the_old_offset_first(tmp_path):
    log = tmp_path / "mail.log"
    r = reader_of_empty(log)
    write(log, "a1\na2\n")
    assert r.poll() == [b"a1", b"a2"]
    write(log, "b1\nb2\nb3\n")  # written after the last poll, before the copy: only the copy has them
    with open(log, "rb") as src, open(tmp_path / "mail.log.1", "wb") as dst:
        dst.write(src.read())
    os.truncate(log, 0)
    write(log, "c1\n")
    assert r.poll() == [b"b1", b"b2", b"b3", b"c1"]
    assert r.poll() == []


def test_a_log_unreadable_at_start_is_read_from_its_start_once_readable(tmp_path):
    log = tmp_path / "mail.log"
    write(log, "")
    os.chmod(log, 0o600)
    os.seteuid(65534)  # the tests run as root, who may read anything: be nobody at start
    try:
        r = Reader(log)
    finally:
        os.seteuid(0)
    write(log, "written while unreadable\n")
    os.chmod(log, 0o644)
    assert r.poll() == [b"written while unreadable"]


def test_a_directory_at_the_log_path_is_skipped_with_one_warning_then_the_file_is_read(tmp_path, caplog):
    log = tmp_path / "mail.log"
    log.mkdir()  # what a Docker bind mount of a missing file makes
    r = Reader(log)
    for _ in range(5):
        assert r.poll() == []
    assert sum("not a regular file" in m for m in caplog.messages) == 1
    log.rmdir()
    write(log, "x\n", "w")
    assert r.poll() == [b"x"]


def test_warnings_about_one_file_are_rate_limited(tmp_path, caplog):
    log = tmp_path / "mail.log"
    write(log, "")
    os.chmod(log, 0o000)
    os.seteuid(65534)
    try:
        r = Reader(log)
        for _ in range(100):
            r.poll()
    finally:
        os.seteuid(0)
    assert r.stats.open_errors == 101  # every failure is counted
    assert sum("cannot open" in m for m in caplog.messages) == 1  # but warned about once


def test_a_state_file_with_absurd_values_is_reported_and_the_good_entries_kept(tmp_path, caplog):
    good = {"dev": 1, "ino": 2, "offset": 3}
    files = {"/a": {"dev": 1, "ino": 2, "offset": 1e400}, "/b": {"dev": 1, "ino": 2, "offset": -5},
             "/c": {"dev": 1, "ino": 2, "offset": 2**70}, "/d": {"dev": True, "ino": 2, "offset": 3},
             "/e": {"dev": "1", "ino": 2, "offset": 3}, "/ok": good}
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 1, "files": files}).replace("1e+400", "1e400").replace("Infinity", "1e400"))
    assert set(state.load(str(path)).positions) == {"/ok"}
    assert caplog.text.count("ignored") == 5
    path.write_text('{"version": 1, "files": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert state.load(str(path)) == state.State()
    assert "unreadable" in caplog.text


def test_a_saved_offset_past_the_end_of_the_file_reads_it_from_the_start_and_says_so(tmp_path, caplog):
    log = tmp_path / "mail.log"
    write(log, "a\nb\n")
    st = log.stat()
    r = Reader(log, resume=Position(st.st_dev, st.st_ino, 10_000))  # truncated while stopped
    assert r.lines == [b"a", b"b"]
    assert "past its end" in caplog.text


def test_a_log_copied_to_a_new_inode_while_stopped_resumes_where_it_was(tmp_path):
    log, state_file = tmp_path / "mail.log", str(tmp_path / "state.json")
    write(log, "a\nb\n")
    r = Reader(log, from_start=True)
    state.save(state_file, state.State({str(log): r.follower.position}))
    r.follower.close()
    shutil.copyfile(log, tmp_path / "copy")  # restored from a backup, moved between filesystems
    os.replace(tmp_path / "copy", log)
    write(log, "c\n")
    assert Reader(log, resume=state.load(state_file).positions[str(log)]).lines == [b"c"]


def test_a_state_entry_for_another_file_is_not_trusted(tmp_path, caplog):
    log = tmp_path / "mail.log"
    write(log, "a\nb\n")
    st = log.stat()
    r = Reader(log, resume=Position(st.st_dev, st.st_ino + 12345, 2))  # nothing by that inode
    assert r.lines == [b"a", b"b"]  # a file we never read: whole
    assert "not the file" in caplog.text
