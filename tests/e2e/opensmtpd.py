"""A real OpenSMTPD (Debian's package, unpacked) on 127.0.0.1, logging through syslog to the exporter.

Run in the foreground (-d), OpenSMTPD writes its log lines to stderr; this harness plays the part of
syslogd and sends each one as an RFC 3164 message over TCP to the exporter's syslog receiver. Its
spool (/var/spool/smtpd) and chroot (/var/lib/opensmtpd/empty) are compiled in, so only one instance
runs at a time; users opensmtpd and opensmtpq must exist.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import free_port, wait_listening
from e2e.unpacked import unpack

SPOOL = Path("/var/spool/smtpd")
CHROOT = Path("/var/lib/opensmtpd/empty")


def ensure_users() -> None:
    for user in ("opensmtpd", "opensmtpq"):
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", user], check=True)


class OpenSmtpd:
    def __init__(self, root: Path, sink_port: int, sink421_port: int, syslog_port: int) -> None:
        self.root = root
        self.port = free_port()
        self.sink_port, self.sink421_port, self.syslog_port = sink_port, sink421_port, syslog_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[bytes] = []  # what OpenSMTPD logged, in order
        self.syslog_lines: list[str] = []  # the same as the exporter received them (less the priority)

    def start(self) -> OpenSmtpd:
        ensure_users()
        binary = unpack("opensmtpd", "usr/sbin/smtpd")
        CHROOT.mkdir(parents=True, exist_ok=True)
        SPOOL.mkdir(parents=True, exist_ok=True)
        os.chmod(SPOOL, 0o711)
        conf = self.root / "smtpd.conf"
        conf.write_text(f"""
table rejects {{ "reject550@test.example" }}
listen on 127.0.0.1 port {self.port}
action "relay" relay host smtp://127.0.0.1:{self.sink_port}
action "throttled" relay host smtp://127.0.0.1:{self.sink421_port}
match from any for rcpt-to <rejects> reject
match from any for domain "greet421.example" action "throttled"
match from any for any action "relay"
""")
        self.proc = subprocess.Popen([str(binary), "-d", "-f", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._forward, daemon=True).start()
        wait_listening(self.port, "opensmtpd", proc=self.proc, diagnose=self.log_text)
        return self

    def _forward(self) -> None:
        """syslogd's part: each stderr line as an RFC 3164 message over TCP, newline framed."""
        assert self.proc is not None and self.proc.stderr is not None
        with socket.create_connection(("127.0.0.1", self.syslog_port)) as sock:
            for line in self.proc.stderr:
                line = line.rstrip(b"\n")
                self.lines.append(line)
                stamp = time.strftime("%b %d %H:%M:%S").encode()
                record = b"%s mx smtpd[%d]: %s" % (stamp, self.proc.pid, line)
                self.syslog_lines.append(record.decode(errors="replace"))
                sock.sendall(b"<22>%s\n" % record)

    def log_text(self) -> str:
        return b"\n".join(self.lines).decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
        subprocess.run(["rm", "-rf", str(SPOOL)], check=False)
