"""The image the Helm chart installs by default, built from the Dockerfile and run as the chart runs it.

It follows a real Postfix log (made by the e2e harness) mounted read-only, and receives the same log
as syslog in the chart's default (deployment) mode with the chart's own arguments; both times its
counters equal what `parse` finds in the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import samples_in, wait_for
from e2e.image import Container, build, podman
from e2e.test_postfix_e2e import Client, traffic, wait_for_deliveries
from smtp_reply_exporter import __version__
from test_helm import CHART, manifests

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SMTP_E2E_REQUIRED") != "1"
        and (shutil.which("podman") is None or shutil.which("mmdebstrap") is None or os.geteuid() != 0),
        reason="needs root, podman and mmdebstrap to build and run the image",
    ),
]
FAMILIES = ("smtp_replies_total", "smtp_deliveries_total")


def chart_container(values: dict | None = None) -> dict:
    """The exporter container of the chart's manifests (its defaults, or with `values`)."""
    docs = manifests(values)
    workload = next(d for d in docs if d["kind"] in ("Deployment", "DaemonSet"))
    return workload["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The Dockerfile built under the name and tag the chart's defaults pull."""
    name = chart_container()["image"]
    build(name)
    yield name
    podman("rmi", "--force", name, check=False)


@pytest.fixture
def postfix_log(mta) -> Iterator[Path]:
    """A real Postfix log (every code the e2e sinks and smtpd answer), readable by nobody."""
    postfix, _, _ = mta
    n, _ = traffic(postfix, Client(), 1)
    wait_for_deliveries(postfix, n)
    folder = Path(tempfile.mkdtemp(prefix="smtp-reply-exporter-image-"))
    os.chmod(folder, 0o755)
    log = folder / "mail.log"
    log.write_bytes(postfix.log.read_bytes())
    os.chmod(log, 0o644)
    yield log
    shutil.rmtree(folder, ignore_errors=True)


def parsed(log: Path) -> dict[str, dict]:
    """What `parse --format prometheus` finds in the file, by family: sample labels -> value."""
    text = subprocess.run([sys.executable, "-m", "smtp_reply_exporter", "parse", "--format", "prometheus", str(log)],
                          capture_output=True, text=True, check=True).stdout
    return {name: samples_in(text, name) for name in FAMILIES}


def served(container: Container) -> dict[str, dict]:
    return {name: container.samples(name) for name in FAMILIES}


def test_chart_tag_is_the_package_version_and_the_image_label():
    chart = (CHART / "Chart.yaml").read_text()
    assert re.search(r'(?m)^appVersion: "?([^"\n]+)"?$', chart)[1] == __version__
    assert chart_container()["image"].endswith(f":{__version__}")
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert re.search(r"(?m)^ARG VERSION=(\S+)$", dockerfile)[1] == __version__


def test_image_follows_a_mounted_postfix_log_read_only_as_nobody(image, postfix_log):
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", image).stdout)
    assert labels["org.opencontainers.image.version"] == __version__
    assert podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip() == "65534:65534"
    assert podman("run", "--rm", "--entrypoint", "sh", image, "-c", "true", check=False).returncode != 0  # no shell
    variant = podman("run", "--rm", "--read-only", "--user", "65534", image, "parse", "--format", "prometheus",
                     "/dev/null").stdout
    assert 'variant="compiled"' in variant  # the image ships the hot path compiled by mypyc

    lines = postfix_log.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    full = postfix_log.read_bytes()
    postfix_log.write_bytes(b"".join(lines[:half]))  # the rest arrives while it runs: file events in the container
    # the chart's DaemonSet arguments, with its state file on a tmpfs as on the chart's emptyDir
    args = chart_container({"mode": "daemonset", "daemonset": {"logGlob": "/logs/mail.log"},
                            "extraArgs": ["--tail.from-start"]})["args"]
    assert "--tail.state-file=/var/lib/smtp-reply-exporter/state.json" in args
    container = Container(image, args, ("10125",), (f"{postfix_log.parent}:/logs:ro",),
                          tmpfs="/var/lib/smtp-reply-exporter")
    try:
        with open(postfix_log, "ab") as f:
            f.write(b"".join(lines[half:]))
        assert postfix_log.read_bytes() == full
        wait_for(lambda: container.value("smtp_exporter_lines_read_total") >= len(lines), what="container caught up")
        assert container.value("smtp_exporter_lines_read_total") == len(lines)
        expected = parsed(postfix_log)
        assert expected["smtp_replies_total"] and expected["smtp_deliveries_total"]
        assert served(container) == expected
        assert container.value("smtp_exporter_open_errors_total") == 0
    finally:
        print(container.stop())


def test_image_receives_syslog_with_the_charts_default_arguments(image, postfix_log):
    args = chart_container()["args"]
    assert args[0] == "serve" and "--syslog.listen-address=0.0.0.0:5514" in args
    container = Container(image, args, ("10125", "5514/tcp"))
    try:
        lines = postfix_log.read_bytes().splitlines()
        with socket.create_connection(("127.0.0.1", container.ports["5514/tcp"])) as sock:
            sock.sendall(b"".join(b"<22>" + line + b"\n" for line in lines))
        wait_for(lambda: container.value("smtp_exporter_lines_read_total") >= len(lines), what="syslog received")
        assert container.value("smtp_exporter_lines_read_total") == len(lines)
        assert served(container) == parsed(postfix_log)
    finally:
        print(container.stop())
