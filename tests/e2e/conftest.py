"""Fixtures shared by the end-to-end tests: a real Postfix relaying to SMTP sinks on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.exim import Exim
from e2e.postfix import Postfix
from e2e.smtp_sink import SmtpSink


@pytest.fixture
def mta() -> Iterator[tuple[Postfix, SmtpSink, SmtpSink]]:
    # Postfix's unprivileged daemons must traverse the path: pytest's tmp_path is private to root.
    root = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-postfix-"))
    os.chmod(root, 0o755)
    sink, sink421 = SmtpSink().start(), SmtpSink("421 4.7.0 Too many connections, slow down").start()
    postfix = Postfix(root, sink.port, sink421.port)
    try:
        yield postfix.start(), sink, sink421
    finally:
        postfix.stop()
        sink.stop()
        sink421.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def exim_mta() -> Iterator[tuple[Exim, SmtpSink, SmtpSink]]:
    root = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-exim-"))
    os.chmod(root, 0o755)
    sink, sink421 = SmtpSink().start(), SmtpSink("421 4.7.0 Too many connections, slow down").start()
    exim = Exim(root, sink.port, sink421.port)
    try:
        yield exim.start(), sink, sink421
    finally:
        exim.stop()
        sink.stop()
        sink421.stop()
        shutil.rmtree(root, ignore_errors=True)

