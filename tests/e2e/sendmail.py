"""A real Sendmail (Debian's sendmail-bin, unpacked) on 127.0.0.1, logging to a /dev/log this harness reads.

Sendmail logs only through syslog(3). The harness binds /dev/log (when nothing else has), plays
syslogd, and passes each message to the exporter's syslog receiver over TCP. Sendmail insists on
a resolvable fully qualified host name and on configuration files in directories no one else can
write: it runs in its own UTS and mount namespaces (`unshare`), where the host is mx.test.example and
/etc/hosts says so, with its files under /var/cache. Its .cf is built with m4 from sendmail-cf.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from conftest import free_port, wait_listening
from e2e.unpacked import CACHE, unpack

ACCESS = {"To:reject550@test.example": "ERROR:5.1.1:550 No such user",
          "To:busy455@test.example": "ERROR:4.5.3:455 Too busy"}


class Sendmail:
    def __init__(self, sink_port: int, syslog_port: int) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        os.chmod(CACHE, 0o755)
        self.root = Path(tempfile.mkdtemp(prefix="sendmail-", dir=CACHE))
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.sink_port, self.syslog_port = sink_port, syslog_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[bytes] = []
        self.syslog_lines: list[str] = []  # what the exporter received (less the priority)
        self._devlog: socket.socket | None = None

    def start(self) -> Sendmail:
        binary = unpack("sendmail", "usr/libexec/sendmail/sendmail")
        root = binary.parents[3]  # the unpacked packages
        cf_dir = root / "usr" / "share" / "sendmail" / "cf"
        r = self.root
        (r / "mqueue").mkdir(mode=0o700)
        (r / "hosts").write_text("127.0.0.1 mx.test.example mx localhost\n")
        (r / "access").write_text("".join(f"{k}\t{v}\n" for k, v in ACCESS.items()))
        (r / "test.mc").write_text(f"""divert(0)dnl
include(`{cf_dir}/m4/cf.m4')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mx.test.example')dnl
define(`confLOG_LEVEL', `9')dnl
define(`QUEUE_DIR', `{r}/mqueue')dnl
define(`confPID_FILE', `{r}/sendmail.pid')dnl
define(`confSTATUS_FILE', `{r}/statistics')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confDELIVERY_MODE', `background')dnl
define(`confALIAS_FILE', `')dnl
define(`SMART_HOST', `[127.0.0.1]')dnl
define(`RELAY_MAILER_ARGS', `TCP $h {self.sink_port}')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {self.sink_port}')dnl
define(`confTO_QUEUEWARN', `0')dnl
DAEMON_OPTIONS(`Port={self.port}, Addr=127.0.0.1, Name=MTA')dnl
FEATURE(`access_db', `hash -T<TMPF> {r}/access')dnl
FEATURE(`mailertable', `hash {r}/mailertable')dnl
FEATURE(`promiscuous_relay')dnl
FEATURE(`blocklist_recipients')dnl
MAILER(`smtp')dnl
""")
        with open(r / "test.cf", "wb") as cf:
            subprocess.run(["m4", str(r / "test.mc")], stdout=cf, stderr=subprocess.DEVNULL, check=True)
        (r / "mailertable").write_text(".\trelay:[127.0.0.1]\n")  # every domain to the sink
        for table in ("access", "mailertable"):
            subprocess.run([str(root / "usr" / "sbin" / "makemap"), "-C", str(r / "test.cf"), "hash",
                            str(r / table)], input=(r / table).read_bytes(), check=True, capture_output=True)
        self._listen_devlog()
        script = (f"mount --bind {r}/hosts /etc/hosts && hostname mx.test.example && "
                  f"exec {binary} -C {r}/test.cf -bD")
        with open(r / "sendmail.stderr", "wb") as stderr:
            self.proc = subprocess.Popen(["unshare", "--mount", "--uts", "sh", "-c", script],
                                         stdout=subprocess.DEVNULL, stderr=stderr)
        wait_listening(self.port, "sendmail", proc=self.proc,
                       diagnose=lambda: (r / "sendmail.stderr").read_text(errors="replace") + self.log_text())
        return self

    def _listen_devlog(self) -> None:
        if os.path.exists("/dev/log"):
            raise RuntimeError("/dev/log exists: another syslog daemon would receive Sendmail's log")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("/dev/log")
        os.chmod("/dev/log", 0o666)
        self._devlog = sock
        self._forwarder = threading.Thread(target=self._forward, daemon=True)
        self._forwarder.start()

    def _forward(self) -> None:
        """syslogd's part: datagrams from /dev/log, as RFC 3164 messages with a host, over TCP."""
        assert self._devlog is not None
        with socket.create_connection(("127.0.0.1", self.syslog_port)) as out:
            while True:
                try:
                    data = self._devlog.recv(65536)
                except OSError:
                    return
                if not data:  # shut down by stop()
                    return
                self.lines.append(data)
                pri, _, rest = data.partition(b">")
                # syslog(3) sends "<PRI>Mmm dd hh:mm:ss ident[pid]: msg"; syslogd adds the host
                record = rest[:16] + b"mx " + rest[16:]
                self.syslog_lines.append(record.decode(errors="replace"))
                out.sendall(pri + b">" + record + b"\n")

    def log_text(self) -> str:
        return b"\n".join(self.lines).decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:  # unshare and sh exec'd: this is the Sendmail daemon itself
            self.proc.terminate()
            self.proc.wait(30)
        if self._devlog is not None:
            self._devlog.shutdown(socket.SHUT_RDWR)  # wakes the forwarder's recv; close() alone does not
            self._forwarder.join()
            self._devlog.close()
            os.unlink("/dev/log")
        shutil.rmtree(self.root, ignore_errors=True)
