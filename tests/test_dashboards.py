"""The Grafana dashboard: generated, current, and written the way Grafana expects."""

import json
import re
import subprocess
import sys
from pathlib import Path

DASHBOARDS = Path(__file__).parent.parent / "dashboards"


def test_committed_dashboard_is_what_the_generator_writes():
    sys.path.insert(0, str(DASHBOARDS))
    try:
        import build
    finally:
        sys.path.pop(0)
    assert (DASHBOARDS / "smtp-reply-exporter.json").read_text() == build.render(), \
        "run: python3 dashboards/build.py"


def test_dashboard_has_variables_rate_interval_and_the_required_panels():
    board = json.loads((DASHBOARDS / "smtp-reply-exporter.json").read_text())
    assert board["schemaVersion"] >= 39 and board["uid"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "instance", "mta", "role"]
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    for expr in exprs:
        for window in re.findall(r"\)?\}\[([^\]]+)\]", expr):  # range selectors follow a "}"
            assert window in ("$__rate_interval", "$__range"), expr
    titles = " | ".join(p["title"] for p in board["panels"])
    for needed in ("by class", "meaning", "ratio", "221", "455", "how to fix", "Deliveries", "Exporter"):
        assert needed in titles
    assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"])
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_generator_runs_as_a_script(tmp_path):
    out = subprocess.run([sys.executable, str(DASHBOARDS / "build.py")], capture_output=True, text=True)
    assert out.returncode == 0 and "wrote" in out.stdout
