"""The project's container image, built from the repository's Dockerfile with podman, and run as the chart runs it.

No registry is reachable here: the Dockerfile's BASE (a Debian bookworm with python3 and
python3-venv) is made once from Debian's packages with mmdebstrap, and the dependencies reach the
build as wheels in the build context, as the README says for an offline build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import Exporter, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/debian-python:bookworm"
CONTEXT = ("Dockerfile", ".dockerignore", "pyproject.toml", "setup.py", "README.md", "exporter", "container")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def ensure_base() -> None:
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "base.tar"
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3,python3-venv", "bookworm",
                        str(tar)], check=True, capture_output=True)
        podman("import", str(tar), BASE)


def build(tag: str) -> None:
    """`podman build` of the repository's Dockerfile, from a copy of what .dockerignore lets through."""
    ensure_base()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp)
        for name in CONTEXT:
            src = ROOT / name
            (shutil.copytree(src, ctx / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
             if src.is_dir() else shutil.copy2(src, ctx / name))
        # the dependencies and build requirements as wheels; the image compiles the project itself
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(ctx / "wheels"), str(ctx),
                        "setuptools", "mypy"], check=True, capture_output=True,
                       env={**os.environ, "SMTP_REPLY_EXPORTER_PURE": "1"})
        podman("build", "--pull=never", "--quiet", "--tag", tag, str(ctx))


class Container(Exporter):
    """The image running hardened as in the chart (read-only, no capabilities, nobody), scraped like Exporter."""

    def __init__(self, image: str, args: list[str], ports: tuple[str, ...], volumes: tuple[str, ...] = (),
                 tmpfs: str | None = None) -> None:
        # ports: the container's ports (with /udp if so), each published on a free port of 127.0.0.1
        self.ports = {spec: free_port() for spec in ports}
        self.port = self.ports["10125"]
        publish = [a for spec, host in self.ports.items() for a in ("--publish", f"127.0.0.1:{host}:{spec}")]
        mounts = [a for v in volumes for a in ("--volume", v)] + (["--tmpfs", f"{tmpfs}:mode=1777"] if tmpfs else [])
        self.id = podman("run", "--detach", "--read-only", "--cap-drop=ALL", "--user", "65534",
                         "--security-opt", "no-new-privileges", *publish, *mounts, image, *args).stdout.strip()
        try:
            wait_for(lambda: self.get("/-/ready")[0] == 200, what="container ready")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.stop()}") from None

    def stop(self) -> str:
        """Stop and remove the container; what it logged."""
        logs = podman("logs", self.id, check=False)
        podman("rm", "--force", "--time", "5", self.id, check=False)
        return logs.stdout + logs.stderr
