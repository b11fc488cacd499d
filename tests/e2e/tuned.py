"""The e2e Postfix with main.cf settings changed before it starts, and remote servers that misbehave.

`tuned_postfix` starts the harness's Postfix (tests/e2e/postfix.py, unchanged) with extra settings, such
as a short smtpd_timeout or more transports. `DroppingServer` is a remote SMTP server that accepts a
message's envelope and drops the connection at DATA: what a crashed or filtered MX looks like to our client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from e2e.postfix import Postfix
from e2e.smtp_sink import SmtpSink


class _Tuned(Postfix):
    def __init__(self, root: Path, sink_port: int, sink421_port: int, settings: dict[str, str]) -> None:
        super().__init__(root, sink_port, sink421_port)
        self.settings = settings

    def _postfix(self, command: str) -> None:
        if command == "start" and self.settings:  # main.cf is written: change it before Postfix reads it
            subprocess.run(["postconf", "-c", str(self.conf), "-e", *(f"{k}={v}" for k, v in self.settings.items())],
                           check=True, capture_output=True, timeout=60)
        super()._postfix(command)


def transports(postfix_sink421_port: int, **routes: str) -> str:
    """transport_maps as an inline table: the harness's greet421.example and `routes` (domain: nexthop)."""
    table = {"greet421.example": f"smtp:[127.0.0.1]:{postfix_sink421_port}", **routes}
    return "inline:{ " + ", ".join(f"{{ {domain} = {nexthop} }}" for domain, nexthop in table.items()) + " }"


@contextlib.contextmanager
def tuned_postfix(settings: dict[str, str], sink421: SmtpSink | None = None) -> Iterator[tuple[Postfix, SmtpSink]]:
    """A started Postfix with `settings`, relaying to a sink (greet421.example to `sink421`, if given)."""
    root = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-tuned-"))
    os.chmod(root, 0o755)
    sink = SmtpSink().start()
    postfix = _Tuned(root, sink.port, sink421.port if sink421 else sink.port, settings)
    try:
        yield postfix.start(), sink
    finally:
        postfix.stop()
        sink.stop()
        shutil.rmtree(root, ignore_errors=True)


class DroppingServer:
    """Greets, accepts EHLO, MAIL and RCPT, and closes the connection when DATA comes (one thread, one
    connection at a time; counts the connections it dropped)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.dropped = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with conn, conn.makefile("rb") as reader:
                conn.sendall(b"220 drop.test ESMTP\r\n")
                for line in reader:
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        self.dropped += 1
                        break
                    conn.sendall(b"221 2.0.0 Bye\r\n" if verb == b"QUIT" else b"250 2.0.0 Ok\r\n")
                    if verb == b"QUIT":
                        break

    def stop(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(10)
