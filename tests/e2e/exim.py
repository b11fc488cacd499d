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

from conftest import free_port, wait_listening
from e2e.unpacked import unpack

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


LOG_SELECTOR = "+smtp_connection +smtp_confirmation +smtp_protocol_error +smtp_syntax_error"


class Exim:
    """Relays every domain to the sink at `sink_port`; `greet<code>.example` to the sink at the port that
    `greeters` names for it (a sink that refuses at connect), and the domains of `ipv6` to a sink on ::1 at
    the port named. `retry` is Exim's retry rule, and `queue_every` starts queue runners at that interval
    (Exim retries only from a queue run); `log_selector` says what its log lines carry."""

    def __init__(self, root: Path, sink_port: int, sink421_port: int, greeters: dict[str, int] | None = None,
                 retry: str = "F,1h,1h", queue_every: str | None = None, log_selector: str = LOG_SELECTOR,
                 ipv6: dict[str, int] | None = None) -> None:
        self.root = root
        self.log = root / "log" / "mainlog"
        self.port = free_port()
        self.sink_port = sink_port
        self.routes = {"greet421.example": ("127.0.0.1", sink421_port), **{
            domain: ("127.0.0.1", port) for domain, port in (greeters or {}).items()},
            **{domain: ("::::1", port) for domain, port in (ipv6 or {}).items()}}  # colons doubled in a list
        self.retry, self.queue_every, self.log_selector = retry, queue_every, log_selector
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Exim:
        ensure_user()
        self.binary = binary = unpack("exim", "usr/sbin/exim4")
        for sub in ("spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            shutil.chown(self.root / sub, USER, USER)
        acl = "".join(
            f"  {verb} recipients = {rcpt}\n          message = {reply}\n"
            for rcpt, (verb, reply) in RECIPIENT_REJECTS.items()
        )
        routers = "".join(f"to_{i}:\n  driver = manualroute\n  domains = {domain}\n  route_list = * {host}\n"
                          f"  transport = smtp_{i}\n  self = send\n"
                          for i, (domain, (host, _port)) in enumerate(self.routes.items()))
        transports = "".join(f"smtp_{i}:\n  driver = smtp\n  port = {port}\n  hosts_avoid_tls = *\n"
                             for i, (_host, port) in enumerate(self.routes.values()))
        config = f"""
primary_hostname = exim.test.example
exim_user = {USER}
exim_group = {USER}
exim_path = {binary}
spool_directory = {self.root / 'spool'}
log_file_path = {self.root / 'log'}/%slog
log_selector = {self.log_selector}
daemon_smtp_ports = {self.port}
local_interfaces = 127.0.0.1
disable_ipv6 = {"false" if any(":" in host for host, _port in self.routes.values()) else "true"}
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
keep_environment =
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
{acl}  accept

begin routers
{routers}smarthost:
  driver = manualroute
  route_list = * 127.0.0.1
  transport = remote_smtp
  self = send

begin transports
remote_smtp:
  driver = smtp
  port = {self.sink_port}
  hosts_avoid_tls = *
{transports}
begin retry
* * {self.retry}
"""
        conf = self.root / "exim.conf"
        conf.write_text(config)
        with open(self.root / "exim.stderr", "wb") as stderr:
            queue = [f"-q{self.queue_every}"] if self.queue_every else []
            self.proc = subprocess.Popen([str(binary), "-C", str(conf), "-bdf", *queue], stdout=subprocess.DEVNULL,
                                         stderr=stderr)
        wait_listening(self.port, "exim", proc=self.proc,
                       diagnose=lambda: (self.root / "exim.stderr").read_text() + self.log_text())
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
