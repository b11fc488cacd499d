"""The follower: complete lines only, across rename, copytruncate, delete+recreate and restarts."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Reader, reader_of_empty
from smtp_reply_exporter import state
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
