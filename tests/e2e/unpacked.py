"""Debian MTAs run from their unpacked packages, and a start that fails loudly.

`dpkg -x` unpacks a package without its `Depends`: tests/run.sh installs the shared libraries those
packages need with apt (the `lib*` Depends of UNPACKED), and `unpack` refuses a binary whose
libraries do not all resolve, naming the missing ones, instead of letting it die unseen at start
(`conftest.wait_listening` with the process then reports its exit status and stderr).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("SMTP_E2E_CACHE", "/var/cache/smtp-reply-exporter-tests"))
# The packages the e2e harness unpacks (tests/run.sh reads this list to install their libraries).
UNPACKED = {"exim": ("exim4-daemon-light",), "opensmtpd": ("opensmtpd",), "sendmail": ("sendmail-bin", "sendmail-cf")}


def missing_libraries(binary: Path) -> list[str]:
    """The shared libraries `binary` needs that the dynamic loader cannot find."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    return [line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line]


def unpack(name: str, binary: str) -> Path:
    """`binary` (a path inside the packages) from the packages UNPACKED[name], unpacked once into the cache."""
    root = CACHE / f"{name}-root"
    path = root / binary
    if not path.exists():
        downloads = CACHE / f"{name}-debs"
        downloads.mkdir(parents=True, exist_ok=True)
        os.chmod(CACHE, 0o755)
        os.chmod(downloads, 0o777)  # apt's sandbox user writes here
        got = subprocess.run(["apt-get", "download", *UNPACKED[name]], cwd=downloads, capture_output=True,
                             text=True, check=False)
        if got.returncode != 0:
            raise RuntimeError(f"apt-get download {' '.join(UNPACKED[name])} failed: {got.stderr}")
        for deb in downloads.glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    missing = missing_libraries(path)
    if missing:
        raise RuntimeError(f"{path} cannot start: shared libraries not found: {', '.join(missing)} "
                           "(tests/run.sh installs the lib* Depends of the unpacked packages with apt)")
    return path
