"""A private, real Exim 4 on 127.0.0.1, run from its unpacked Debian package beside the system's Postfix.

Debian's exim4-daemon-light cannot be installed next to Postfix (both are the system MTA), so its
package is downloaded and unpacked into a cache (tests/run.sh installs the libraries it needs).
The compiled-in user Debian-exim must exist.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
from pathlib import Path

from conftest import free_port
from e2e.unpacked import unpack, wait_started

USER = "Debian-exim"
RECIPIENT_REJECTS = {"reject550@test.example": ("deny", "550 5.1.1 No such user"),
                     "tempfail450@test.example": ("defer", "450 4.2.0 Try again later"),
                     "busy455@test.example": ("defer", "455 4.5.3 Too busy")}


def ensure_user() -> None:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", USER], check=True)


class Exim:
    def __init__(self, root: Path, sink_port: int, sink421_port: int) -> None:
        self.root = root
        self.log = root / "log" / "mainlog"
        self.port = free_port()
        self.sink_port, self.sink421_port = sink_port, sink421_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Exim:
        ensure_user()
        binary = unpack("exim", "usr/sbin/exim4")
        for sub in ("spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            shutil.chown(self.root / sub, USER, USER)
        acl = "".join(
            f"  {verb} recipients = {rcpt}\n          message = {reply}\n"
            for rcpt, (verb, reply) in RECIPIENT_REJECTS.items()
        )
        config = f"""
primary_hostname = exim.test.example
exim_user = {USER}
exim_group = {USER}
exim_path = {binary}
spool_directory = {self.root / 'spool'}
log_file_path = {self.root / 'log'}/%slog
log_selector = +smtp_connection +smtp_confirmation +smtp_protocol_error +smtp_syntax_error
daemon_smtp_ports = {self.port}
local_interfaces = 127.0.0.1
disable_ipv6 = true
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
keep_environment =
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
{acl}  accept

begin routers
throttled:
  driver = manualroute
  domains = greet421.example
  route_list = * 127.0.0.1
  transport = smtp_421
  self = send
smarthost:
  driver = manualroute
  route_list = * 127.0.0.1
  transport = remote_smtp
  self = send

begin transports
remote_smtp:
  driver = smtp
  port = {self.sink_port}
  hosts_avoid_tls = *
smtp_421:
  driver = smtp
  port = {self.sink421_port}
  hosts_avoid_tls = *

begin retry
* * F,1h,1h
"""
        conf = self.root / "exim.conf"
        conf.write_text(config)
        with open(self.root / "exim.stderr", "wb") as stderr:
            self.proc = subprocess.Popen([str(binary), "-C", str(conf), "-bdf"], stdout=subprocess.DEVNULL,
                                         stderr=stderr)
        wait_started(self.proc, self.port, "exim", lambda: (self.root / 'exim.stderr').read_text() + self.log_text())
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
