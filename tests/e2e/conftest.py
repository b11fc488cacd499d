"""Fixtures shared by the end-to-end tests: a real Postfix relaying to SMTP sinks on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.exim import Exim
from e2e.postfix import Postfix
from e2e.smtp_sink import SmtpSink


def _with_sinks(kind: type[Postfix] | type[Exim], prefix: str) -> Iterator[tuple[Any, SmtpSink, SmtpSink]]:
    """An MTA in a private directory, relaying to a sink and to a sink that greets with 421."""
    # The MTAs' unprivileged daemons must traverse the path: pytest's tmp_path is private to root.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    sink, sink421 = SmtpSink().start(), SmtpSink("421 4.7.0 Too many connections, slow down").start()
    server = kind(root, sink.port, sink421.port)
    try:
        yield server.start(), sink, sink421
    finally:
        server.stop()
        sink.stop()
        sink421.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def mta() -> Iterator[tuple[Postfix, SmtpSink, SmtpSink]]:
    yield from _with_sinks(Postfix, "smtp-reply-exporter-postfix-")


@pytest.fixture
def exim_mta() -> Iterator[tuple[Exim, SmtpSink, SmtpSink]]:
    yield from _with_sinks(Exim, "smtp-reply-exporter-exim-")
