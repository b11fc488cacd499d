"""Files as a source in the running pipeline: discovery, file events, letting go, the state file."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import wait_for
from smtp_reply_exporter import state
from smtp_reply_exporter.config import Config
from smtp_reply_exporter.metrics import Counts
from smtp_reply_exporter.pipeline import Pipeline

LINE = ("Nov 28 12:01:11 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from a[192.0.2.1]: 455 4.5.3 Busy; "
        "from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n")


def append(path: Path, n: int = 1) -> None:
    with open(path, "a") as f:
        f.write(LINE * n)


def lines_read(pipeline: Pipeline) -> int:
    return sum(stats.lines for _name, stats in pipeline.counts.snapshot().sources)


def followed(pipeline: Pipeline) -> list[str]:
    return sorted(pipeline.followers)


def deleted_descriptors() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith(" (deleted)"):
            out.append(target)
    return out


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    made: list[Pipeline] = []
    yield made
    for p in made:
        p.stop()


def make(pipelines: list[Pipeline], *paths: Path | str, **kw) -> Pipeline:  # type: ignore[no-untyped-def]
    p = Pipeline(Config(paths=tuple(str(x) for x in paths), **kw), Counts())
    pipelines.append(p)
    return p


def test_a_symlinked_log_is_woken_by_events_in_its_targets_directory(tmp_path, pipelines):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    target, link = tmp_path / "real" / "mail.log", tmp_path / "links" / "mail.log"
    target.write_text("")
    link.symlink_to(target)
    p = make(pipelines, link, poll_interval=3600.0)  # only a file event can wake it
    p.start()
    wait_for(p.ready.is_set, what="first pass")
    append(target, 3)
    wait_for(lambda: lines_read(p) == 3, what="lines read on a file event", timeout=10)


def test_fifty_deleted_globbed_files_are_let_go_with_their_state(tmp_path, pipelines):
    logs = tmp_path / "pods"
    logs.mkdir()
    p = make(pipelines, logs / "*.log", poll_only=True, state_file=str(tmp_path / "state.json"))
    p.poll()
    for i in range(50):
        append(logs / f"{i}.log", 2)
    append(logs / "live.log", 1)
    p.poll()
    assert lines_read(p) == 101 and len(followed(p)) == 51
    for i in range(50):
        (logs / f"{i}.log").unlink()
    p.poll()
    assert followed(p) == [str(logs / "live.log")]
    assert not [d for d in deleted_descriptors() if str(logs) in d]
    p.save_state()
    assert list(json.loads((tmp_path / "state.json").read_text())["files"]) == [str(logs / "live.log")]
    assert lines_read(p) == 101


def test_a_named_pipe_matched_by_a_glob_never_blocks_and_is_warned_about_once(tmp_path, pipelines, caplog):
    os.mkfifo(tmp_path / "fifo.log")
    (tmp_path / "dir.log").mkdir()
    append(tmp_path / "mail.log", 1)
    p = make(pipelines, tmp_path / "*.log", poll_only=True, from_start=True)
    passes = threading.Thread(target=lambda: [p.poll() for _ in range(3)])
    passes.start()
    passes.join(10)
    if passes.is_alive():  # blocked in open(): a writer lets it go, then fail
        with open(tmp_path / "fifo.log", "w"):
            pass
        passes.join()
        pytest.fail("a pass over the glob blocked on a named pipe")
    assert lines_read(p) == 1
    assert sum("not a regular file" in m for m in caplog.messages) == 2  # the FIFO and the directory, once each


def test_events_for_files_not_followed_do_not_wake_the_reader(tmp_path, pipelines):
    log = tmp_path / "mail.log"
    log.write_text("")
    p = make(pipelines, log, poll_interval=3600.0)
    p.start()
    wait_for(p.ready.is_set, what="first pass")
    for _ in range(20):  # e.g. the exporter's own log, written into the same directory
        append(tmp_path / "exporter.log")
    append(log, 1)  # then a followed one: its event comes after theirs
    wait_for(lambda: lines_read(p) == 1, what="the followed line", timeout=10)
    assert p.passes <= 3  # the start, the followed file's events; not one per unrelated write


def test_the_state_is_saved_on_the_interval_while_catching_up(tmp_path, pipelines, monkeypatch):
    log, state_file = tmp_path / "mail.log", tmp_path / "state.json"
    append(log, 20_000)  # several reads' worth, counted in one pass
    saved: list[int] = []
    real_save = state.save

    def recording_save(path: str | None, st: state.State) -> bool:
        saved.extend(pos.offset for pos in st.positions.values())
        return real_save(path, st)

    monkeypatch.setattr(state, "save", recording_save)
    p = make(pipelines, log, poll_only=True, from_start=True, state_file=str(state_file), state_interval=1e-9)
    p.poll()
    assert lines_read(p) == 20_000
    assert len([o for o in saved if 0 < o < log.stat().st_size]) >= 2  # saved while the pass went on
    assert saved == sorted(saved)


def test_the_state_is_written_right_after_start(tmp_path, pipelines):
    log, state_file = tmp_path / "mail.log", tmp_path / "state.json"
    append(log, 5)
    p = make(pipelines, log, poll_interval=3600.0, state_file=str(state_file), state_interval=3600.0)
    p.start()
    saved = json.loads(state_file.read_text())["files"][str(log)]
    assert saved["offset"] == log.stat().st_size  # where this run starts: a kill now loses nothing


def test_a_new_pods_log_under_a_glob_is_found_on_file_events(tmp_path, pipelines):
    (tmp_path / "pods").mkdir()
    p = make(pipelines, tmp_path / "pods" / "*" / "*" / "*.log", poll_interval=3600.0)
    p.start()
    wait_for(p.ready.is_set, what="first pass")
    container = tmp_path / "pods" / "mail_postfix-0_uid" / "postfix"
    container.mkdir(parents=True)  # directories that did not exist at start, then the log in them
    append(container / "0.log", 2)
    wait_for(lambda: lines_read(p) == 2, what="the new pod's lines on file events", timeout=10)
