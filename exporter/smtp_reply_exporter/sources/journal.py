"""The systemd journal as a log source, read through `journalctl --follow --output=json`.

journalctl rather than the `systemd` Python bindings: it is on every systemd host, needs no C
build, reads any journal directory (a node's /var/log/journal mounted into a pod), and its JSON
carries the cursor that the state file keeps so that a restart resumes after the last counted entry.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ..stats import SourceStats
from . import Lines
from .inbox import Queued

log = logging.getLogger(__name__)
SOURCE = "journal"
RETRY_SECONDS = 5.0


def entry_to_line(entry: dict[str, Any]) -> bytes | None:
    """A journal entry in the "timestamp host program[pid]: message" form the parsers read."""
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # journalctl writes non-UTF-8 messages as byte arrays
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    if not isinstance(message, str):
        return None
    ident = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or "-"
    pid = entry.get("SYSLOG_PID") or entry.get("_PID")
    host = entry.get("_HOSTNAME") or "-"
    try:
        stamp = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, UTC).isoformat()
    except (KeyError, ValueError, TypeError):
        stamp = datetime.now(UTC).isoformat()
    head = f"{stamp} {host} {ident}[{pid}]: " if pid else f"{stamp} {host} {ident}: "
    return (head + message.replace("\r", " ").replace("\n", " ")).encode("utf-8", "replace")


class JournalSource(Queued):
    def __init__(
        self,
        stats: SourceStats,
        units: list[str],
        identifiers: list[str],
        directory: str | None = None,
        cursor: str | None = None,
        from_start: bool = False,
    ) -> None:
        super().__init__("journal")
        self.name, self.stats = SOURCE, stats
        self.units, self.identifiers, self.directory = units, identifiers, directory
        self.cursor = cursor
        self.from_start = from_start
        self._since: float | None = None  # when following began, for a journalctl restarted before any entry
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = ["journalctl", "--follow", "--output=json", "--all", "--quiet"]
        if self.directory:
            cmd.append(f"--directory={self.directory}")
        if self.cursor:
            cmd.append(f"--after-cursor={self.cursor}")
        elif self.from_start:
            cmd.append("--no-tail")
        elif self._since is not None:
            cmd += [f"--since=@{self._since:.6f}", "--no-tail"]
        else:
            cmd.append("--lines=0")
        cmd += [f"--unit={u}" for u in self.units] + [f"--identifier={i}" for i in self.identifiers]
        return cmd

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            if shutil.which("journalctl") is None:
                self._failed("journalctl is not installed")
                continue
            command = self.command()
            if self._since is None:
                self._since = time.time()
            try:
                with self._lock:  # started and terminated under one lock: stop() never misses it
                    if self._stop.is_set():
                        return
                    proc = self._proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                                                         stderr=subprocess.DEVNULL)
            except OSError as err:
                self._failed(str(err))
                continue
            assert proc.stdout is not None
            with proc.stdout:
                for raw in proc.stdout:
                    self._entry(raw)
            if proc.wait() != 0 and not self._stop.is_set():
                self._failed(f"journalctl exited with {proc.returncode}")

    def _entry(self, raw: bytes) -> None:
        try:
            entry = json.loads(raw)
            line = entry_to_line(entry)
        except ValueError:
            line = None
            entry = {}
        cursor = entry.get("__CURSOR") if isinstance(entry, dict) else None
        if line is None:
            self.stats.add(malformed=1)
            return
        lines = Lines(line + b"\n", None, cursor if isinstance(cursor, str) else None)
        while not self.inbox.put(lines, timeout=0.5):  # wait while counting catches up, but not past a stop
            if self._stop.is_set():
                return
        if isinstance(cursor, str):
            self.cursor = cursor

    def _failed(self, why: str) -> None:
        self.stats.add(open_errors=1)
        log.warning("journal: %s; retrying in %.0fs", why, RETRY_SECONDS)
        self._stop.wait(RETRY_SECONDS)
