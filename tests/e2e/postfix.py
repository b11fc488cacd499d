"""A private, real Postfix instance on 127.0.0.1: its own config, queue and `maillog_file`, no syslog.

It relays everything to an SmtpSink; one transport goes to a second sink that greets with 421.
Its smtpd rejects chosen recipients, a HELO name and, on a second listener with its own
syslog_name, every client at connect time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from conftest import free_port, wait_listening

RECIPIENT_REJECTS = {  # recipient -> what our Postfix smtpd answers at RCPT
    "reject550@test.example": "550 5.1.1 No such user",
    "tempfail450@test.example": "450 4.2.0 Try again later",
    "pressure452@test.example": "452 4.3.1 Insufficient system storage",
    "busy455@test.example": "455 4.5.3 Too many recipients at once",
}
BAD_HELO = "bad.helo.example"


def _inline(table: dict[str, str]) -> str:
    return "inline:{ " + ", ".join(f"{{ {k} = {v} }}" for k, v in table.items()) + " }"


class Postfix:
    def __init__(self, root: Path, sink_port: int, sink421_port: int) -> None:
        self.root = root
        self.conf = root / "etc"
        self.log = root / "log" / "postfix.log"
        self.port = free_port()
        self.reject_port = free_port()
        self.sink_port = sink_port
        self.sink421_port = sink421_port

    def start(self) -> Postfix:
        for sub in ("etc", "log", "data"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        spool = self.root / "spool"
        spool.mkdir(exist_ok=True)
        os.chmod(self.root, 0o755)
        shutil.chown(self.root / "data", "postfix", "postfix")
        master = Path("/etc/postfix/master.cf").read_text()
        master = re.sub(r"(?m)^smtp\s+inet.*$", "", master)
        master = re.sub(r"(?m)^(\S+\s+(?:unix|inet|fifo|unix-dgram|pass)\s+\S+\s+\S+\s+)y(\s)", r"\1n\2", master)
        master += (
            f"\n127.0.0.1:{self.port} inet n - n - - smtpd\n"
            f"127.0.0.1:{self.reject_port} inet n - n - - smtpd -o syslog_name=postfix/submission"
            " -o smtpd_client_restrictions=reject\n"
        )
        (self.conf / "master.cf").write_text(master)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(spool),
            "data_directory": str(self.root / "data"),
            "maillog_file": str(self.log),
            "maillog_file_prefixes": str(self.log.parent),
            "myhostname": "mx.test.example",
            "mydomain": "test.example",
            "myorigin": "test.example",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.sink_port}",
            "transport_maps": _inline({"greet421.example": f"smtp:[127.0.0.1]:{self.sink421_port}"}),
            "smtpd_delay_reject": "no",
            "smtpd_helo_restrictions": f"check_helo_access {_inline({BAD_HELO: '554 5.7.1 Go away'})}",
            "smtpd_recipient_restrictions": f"check_recipient_access {_inline(RECIPIENT_REJECTS)},"
            " permit_mynetworks, reject_unauth_destination",
            "smtpd_relay_restrictions": "",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtp_dns_support_level": "disabled",
            "disable_dns_lookups": "yes",
            "smtpd_peername_lookup": "no",
            "smtp_address_preference": "ipv4",
            # one attempt per message within a test: no queue runs or retries
            "queue_run_delay": "3600s",
            "minimal_backoff_time": "3600s",
            "maximal_backoff_time": "7200s",
            "notify_classes": "",
            # let one test client provoke many rejects quickly
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "1000",
            "smtpd_hard_error_limit": "1000",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
        }
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        self._postfix("check")
        self._postfix("start")
        wait_listening(self.port, "postfix", self.log_text)
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def configure(self, **settings: str) -> None:
        """Change main.cf settings of the running Postfix (`postconf -e`, then `postfix reload`)."""
        subprocess.run(["postconf", "-c", str(self.conf), "-e", *(f"{k}={v}" for k, v in settings.items())],
                       check=True, capture_output=True, timeout=60)
        self._postfix("reload")

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True, timeout=60)

    def _postfix(self, command: str) -> None:
        proc = subprocess.run(["postfix", "-c", str(self.conf), command], capture_output=True, text=True,
                              timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"postfix {command} failed: {proc.stdout}{proc.stderr}\n{self.log_text()}")
